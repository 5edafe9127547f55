// A small blocking HTTP/1.1 client: one keep-alive TCP connection to one
// host:port. Used by the `pstorage` CLI, the integration tests and the load
// generator. Not thread-safe: one client per thread.
//
// Errors are values: kIoError when the connection fails (connect refused,
// reset, timeout, malformed response). A dropped idle keep-alive connection
// is reconnected once, transparently, before a request is sent.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace pstorage::api {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  // Value of a header (name matched case-insensitively), "" when absent.
  std::string Header(std::string_view name) const;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  HttpClient(std::string host, int port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole response (Content-Length or
  // chunked). `target` is the path with its query string, already encoded.
  // A Content-Length header is added for a non-empty body (and for POST/PUT
  // with an empty one); Host and Connection: keep-alive always.
  // The connection is closed after an error status (>= 400) to a request with
  // a body, as the server may have left that body unread in the stream.
  Result<HttpResponse> Request(std::string_view method, std::string_view target,
                               std::string_view body = {}, const HttpHeaders& headers = {});

  // Sends raw bytes as they are and reads one response: for tests of
  // malformed requests. The connection is closed afterwards.
  Result<HttpResponse> RawExchange(std::string_view bytes);

  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  void Close();

 private:
  std::string host_;
  int port_;
  int fd_ = -1;
  std::chrono::milliseconds timeout_{30000};
  std::string rbuf_;  // bytes read past the previous response
};

// Percent-encodes a string for use in a query parameter or path segment.
std::string UrlEncode(std::string_view s);

}  // namespace pstorage::api
