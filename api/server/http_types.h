// The server's view of one request and one reply, free of Pistache so that
// handlers are plain functions: (Services, Request) -> Reply.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace pstorage::api {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::map<std::string, std::string> query;   // percent-decoded
  std::map<std::string, std::string> params;  // {name} segments of the route
  std::string_view body;
  std::string content_type;  // lower-cased media type, parameters dropped
  std::string range;         // the Range header, "" when absent
  std::string if_match;      // the If-Match header, "" when absent
  std::string if_none_match; // the If-None-Match header, "" when absent
  std::string request_id;
  std::string project_id;    // KV routes: the project the request acts on
  bool anonymous = true;     // no valid key was presented (open routes and open projects)
};

// The sending side of a streamed reply (text/event-stream). Send queues
// bytes for the client without blocking and returns false once the stream
// is over (client gone, too far behind, server stopping). Thread-safe.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual bool Send(std::string_view bytes) = 0;
  virtual void Close() = 0;  // ends the stream (last chunk); idempotent
  virtual bool closed() const = 0;
};

// A reply that stays open. The server sends the status and headers and
// `first` bytes, then calls Start with the sink for everything after.
struct StreamReply {
  std::string first;
  std::function<void(std::shared_ptr<StreamSink>)> start;
};

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<StreamReply> stream;  // set for streamed replies (body unused)
};

// The one JSON error shape:
//   {"error": "Not Found", "code": "NOT_FOUND", "detail": "...", "details": "...",
//    "request_id": "...", "trace_id": "...", "timestamp": "2024-01-15T10:30:00Z"}
// `detail` (block API) and `details` (KV API) carry the same text, as do
// `request_id` and `trace_id`: both documents' clients read errors unchanged.
Reply ErrorReply(int http_status, std::string_view code, std::string_view detail,
                 std::string_view request_id);

// The single table from engine error codes to HTTP: kInvalidArgument 400,
// kNotFound 404, kAlreadyExists 409, kFailedPrecondition 409, kNoSpace 503,
// kBusy 503, kCorruption / kIoError / kInternal 500.
int HttpStatusFor(Code code);
std::string_view ErrorCodeFor(Code code);
Reply StatusReply(const Status& status, std::string_view request_id);

// `s` with every byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string ValidUtf8(std::string_view s);

// Reason phrase of an HTTP status ("Not Found").
std::string_view ReasonPhrase(int http_status);

}  // namespace pstorage::api
