// The few REST calls `pstorage bench` makes outside the timed I/O: volumes
// to create, clone and delete, and the server's metrics before and after a
// run. Also the URL parsing the targets share.
#pragma once

#include <chrono>
#include <string>

#include "api/http_client.h"
#include "bench/tool/bench.h"

namespace pstorage::bench {

struct Url {
  std::string scheme;  // http, redis, nbd
  std::string host;
  int port = 0;
  std::string path;  // after the authority, without the leading '/'
};
// "scheme://host[:port][/path]"; `default_port` when the port is absent.
Result<Url> ParseUrl(const std::string& text, const std::string& scheme, int default_port);

class RestApi {
 public:
  RestApi(const Url& url, std::string api_key);
  // The id of the volume named `name`, created with `size_bytes` when absent
  // (*created tells which). An existing one must be at least that large.
  Result<std::string> EnsureVolume(const std::string& name, uint64_t size_bytes, bool* created);
  Result<std::string> Clone(const std::string& volume_id, const std::string& name);
  Status DeleteVolume(const std::string& volume_id);
  // /api/v1/metrics and the process CPU from /metrics; available == false
  // when the server does not answer (it never blocks more than a few seconds).
  ServerMetrics Metrics();
  Result<api::HttpResponse> Call(const std::string& method, const std::string& path,
                                 const std::string& body = {});
  const Url& url() const { return url_; }
  const std::string& api_key() const { return api_key_; }

 private:
  Url url_;
  std::string api_key_;
  api::HttpClient client_;
};

// One request as a polite client sends it: a 429 from the server's rate
// limit is waited out as its Retry-After says (1..5 s) and the request sent
// again, up to 30 s in all; each 429 is counted in *throttled.
Result<api::HttpResponse> RequestWithRetry(api::HttpClient& client, std::string_view method,
                                           std::string_view target, std::string_view body,
                                           const api::HttpHeaders& headers, uint64_t* throttled);

// "HTTP 404 NOT_FOUND: volume 'x' not found" from an error reply.
std::string DescribeError(const api::HttpResponse& r);

}  // namespace pstorage::bench
