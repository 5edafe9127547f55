// The server's view of one request and one reply, free of Pistache so that
// handlers are plain functions: (Services, Request) -> Reply.
#pragma once

#include <map>
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
  std::string request_id;
};

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The one JSON error shape:
//   {"error": "Not Found", "code": "NOT_FOUND", "detail": "...",
//    "request_id": "...", "timestamp": "2024-01-15T10:30:00Z"}
// `detail` is the seed API's key, kept so its clients read errors unchanged.
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
