#include "api/server/server.h"

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/http_header.h>
#include <pistache/peer.h>

#include "api/auth.h"
#include "api/rate_limit.h"
#include "api/server/log.h"
#include "api/server/router.h"
#include "api/server/services.h"
#include "api/server/stats.h"

namespace pstorage::api {

namespace Http = Pistache::Http;

namespace {

// Pistache drops headers added with addRaw(); a typed header with a name
// chosen at run time goes through.
class NamedHeader : public Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()); }
  void write(std::ostream& os) const override { os << value_; }

 private:
  std::string name_;
  std::string value_;
};

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The media type without parameters, lower-cased: "application/json".
std::string MediaType(const Http::Request& req) {
  auto ct = req.headers().tryGet<Http::Header::ContentType>();
  if (!ct) return "";
  std::string s = Lower(ct->mime().toString());
  size_t semi = s.find(';');
  if (semi != std::string::npos) s.resize(semi);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string RawHeader(const Http::Request& req, const std::string& name) {
  std::optional<Http::Header::Raw> raw = req.headers().tryGetRaw(name);
  return raw ? raw->value() : std::string();
}

// The key a client presented: X-API-Key, or Authorization: Bearer.
std::string PresentedKey(const Http::Request& req) {
  std::string key = RawHeader(req, "X-API-Key");
  if (!key.empty()) return key;
  auto auth = req.headers().tryGet<Http::Header::Authorization>();
  if (!auth) return "";
  const std::string& v = auth->value();
  if (v.size() > 7 && Lower(v.substr(0, 7)) == "bearer ") return v.substr(7);
  return "";
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(engine::Engine& engine, const ServerConfig& config)
      : config_(config),
        router_(AllRoutes()),
        stats_(router_.routes().size()),
        services_(engine, config_, stats_),
        limiter_(config.rate_limit.requests_per_second, config.rate_limit.burst) {
    services_.router = &router_;
    services_.started_ms = NowMs();
  }

  Status Listen();
  void Handle(const Http::Request& request, Http::ResponseWriter response);
  void Shutdown(std::chrono::milliseconds drain);
  uint16_t port() const { return port_; }

 private:
  Reply Dispatch(Request& req, const Http::Request& raw, std::string* client_key,
                 int* route_index, RateLimitDecision* limit);

  const ServerConfig config_;
  Router router_;
  RequestStats stats_;
  Services services_;
  RateLimiter limiter_;
  std::unique_ptr<Http::Endpoint> endpoint_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable idle_;
  int in_flight_ = 0;  // guarded by mu_
};

namespace {

class PistacheHandler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(PistacheHandler)
  explicit PistacheHandler(HttpServer::Impl* server) : server_(server) {}
  void onRequest(const Http::Request& request, Http::ResponseWriter response) override;
  void onTimeout(const Http::Request&, Http::ResponseWriter response) override {
    Reply r = ErrorReply(408, "REQUEST_TIMEOUT", "the request was not received in time", "");
    response.headers().add<Http::Header::Connection>(Http::ConnectionControl::Close);
    response.setMime(Http::Mime::MediaType::fromString(r.content_type));
    response.send(Http::Code::Request_Timeout, r.body);
  }

 private:
  HttpServer::Impl* server_;
};

void PistacheHandler::onRequest(const Http::Request& request, Http::ResponseWriter response) {
  server_->Handle(request, std::move(response));
}

}  // namespace

Status HttpServer::Impl::Listen() {
  // JSON bodies carry base64 (4/3 of the bytes) plus a little syntax; the
  // request limit leaves room for that and the headers, so that bodies just
  // past max_body_bytes still get this server's JSON 413.
  size_t json_limit = config_.max_body_bytes / 3 * 4 + (64u << 10);
  size_t request_limit = 2 * json_limit + (64u << 10);
  int threads = config_.server_threads;
  // Handlers block: a cache miss waits for a flash read, a write for its
  // group commit. Threads beyond the cores keep more of those in flight
  // (measured: 4 KiB reads missing the cache, 23k/s with 4 threads, 34k/s
  // with 16, on 2 cores).
  if (threads == 0) {
    threads = std::max(16, 8 * static_cast<int>(std::thread::hardware_concurrency()));
  }
  try {
    Pistache::Address addr(config_.bind_address, Pistache::Port(config_.server_port));
    endpoint_ = std::make_unique<Http::Endpoint>(addr);
    auto opts = Http::Endpoint::options()
                    .threads(threads)
                    .flags(Pistache::Tcp::Options::ReuseAddr)
                    .maxRequestSize(request_limit)
                    .maxResponseSize(json_limit + (64u << 10));
    endpoint_->init(opts);
    endpoint_->setHandler(Http::make_handler<PistacheHandler>(this));
    endpoint_->serveThreaded();
    port_ = static_cast<uint16_t>(endpoint_->getPort());
  } catch (const std::exception& e) {
    return Status::IoError("cannot listen on " + config_.bind_address + ":" +
                           std::to_string(config_.server_port) + ": " + e.what());
  }
  return Status::Ok();
}

Reply HttpServer::Impl::Dispatch(Request& req, const Http::Request& raw, std::string* client_key,
                                 int* route_index, RateLimitDecision* limit) {
  RouteMatch m = router_.Match(req.method, req.path);
  // While draining, /health still answers (503, "shutting_down") so load
  // balancers see why; everything else is refused.
  if (services_.shutting_down.load() && req.path != "/health") {
    Reply r = ErrorReply(503, "SHUTTING_DOWN", "the server is shutting down; retry shortly",
                         req.request_id);
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  *route_index = m.index;
  if (m.index < 0) return NoRouteReply(m, req);
  const Route& route = router_.routes()[static_cast<size_t>(m.index)];
  std::string presented = PresentedKey(raw);
  if (route.needs_auth && config_.auth.enabled) {
    if (presented.empty()) {
      Reply r = ErrorReply(401, "UNAUTHORIZED",
                           "missing API key: send it as 'X-API-Key: <key>' or "
                           "'Authorization: Bearer <key>'",
                           req.request_id);
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    if (!VerifyApiKey(presented, config_.auth.api_key_hash)) {
      Reply r = ErrorReply(401, "UNAUTHORIZED", "invalid API key", req.request_id);
      r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return r;
    }
    *client_key = "key:" + config_.auth.api_key_hash;
  }
  if (config_.rate_limit.enabled) {
    *limit = limiter_.Take(*client_key);
    if (!limit->allowed) {
      Reply r = ErrorReply(429, "RATE_LIMITED",
                           "rate limit exceeded: " + std::to_string(limit->limit) +
                               " requests burst; retry after " +
                               std::to_string(limit->retry_after_s) + " s",
                           req.request_id);
      r.headers.emplace_back("Retry-After", std::to_string(limit->retry_after_s));
      return r;
    }
  }
  req.params = std::move(m.params);
  return route.handler(services_, req);
}

void HttpServer::Impl::Handle(const Http::Request& raw, Http::ResponseWriter response) {
  auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> l(mu_);
    in_flight_++;
  }
  Request req;
  req.method = Http::methodString(raw.method());
  req.path = raw.resource();
  std::string id = RawHeader(raw, "X-Request-ID");
  req.request_id = ValidRequestId(id) ? id : RandomHex(8);
  std::string client_key;
  try {
    client_key = "ip:" + response.peer()->address().host();
  } catch (const std::exception&) {
    client_key = "ip:?";
  }
  int route_index = -1;
  RateLimitDecision limit;
  Reply reply;
  std::string query = raw.query().as_str();
  if (!query.empty() && query[0] == '?') query.erase(0, 1);
  const bool query_ok = ParseQuery(query, &req.query);
  req.body = raw.body();
  req.content_type = MediaType(raw);
  req.range = RawHeader(raw, "Range");
  try {
    if (!query_ok) {
      reply = ErrorReply(400, "INVALID_ARGUMENT", "malformed percent-escape in the query string",
                         req.request_id);
    } else {
      reply = Dispatch(req, raw, &client_key, &route_index, &limit);
    }
  } catch (const std::exception& e) {
    // Handlers report errors as values; this is the last guard so that one
    // bad request (say, an allocation failure) cannot take the server down.
    Log(LogLevel::kError, "request " + req.request_id + " failed: " + e.what());
    reply = ErrorReply(500, "INTERNAL", "internal error; see the server log for request " +
                                            req.request_id, req.request_id);
  }

  auto& h = response.headers();
  auto conn = raw.headers().tryGet<Http::Header::Connection>();
  bool close = conn && conn->control() == Http::ConnectionControl::Close;
  // Pistache has already put "Connection: Close" on the response of any
  // request without a Connection header (curl and most clients send none),
  // and add() does not replace: remove it first, or keep-alive is lost.
  h.remove<Http::Header::Connection>();
  h.add<Http::Header::Connection>(close ? Http::ConnectionControl::Close
                                        : Http::ConnectionControl::KeepAlive);
  h.add(std::make_shared<NamedHeader>("X-Request-ID", req.request_id));
  if (limit.limit > 0) {
    h.add(std::make_shared<NamedHeader>("X-RateLimit-Limit", std::to_string(limit.limit)));
    h.add(std::make_shared<NamedHeader>("X-RateLimit-Remaining", std::to_string(limit.remaining)));
    h.add(std::make_shared<NamedHeader>("X-RateLimit-Reset", std::to_string(limit.reset_unix_s)));
  }
  for (auto& [name, value] : reply.headers) h.add(std::make_shared<NamedHeader>(name, value));
  if (!reply.content_type.empty()) {
    response.setMime(Http::Mime::MediaType::fromString(reply.content_type));
  }
  size_t body_bytes = reply.body.size();
  response.send(static_cast<Http::Code>(reply.status), reply.body);

  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats_.Record(route_index, reply.status, seconds);
  if (LogEnabled(LogLevel::kInfo)) {
    char line[160];
    std::snprintf(line, sizeof(line), " %d %.3fms %zuB id=", reply.status, seconds * 1e3,
                  body_bytes);
    Log(LogLevel::kInfo, req.method + " " + req.path + line + req.request_id);
  }
  std::lock_guard<std::mutex> l(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

void HttpServer::Impl::Shutdown(std::chrono::milliseconds drain) {
  services_.shutting_down.store(true);
  {
    std::unique_lock<std::mutex> l(mu_);
    if (!idle_.wait_for(l, drain, [&] { return in_flight_ == 0; })) {
      Log(LogLevel::kWarn, std::to_string(in_flight_) + " requests still running after drain");
    }
  }
  if (endpoint_) endpoint_->shutdown();
  endpoint_.reset();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { impl_->Shutdown(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(engine::Engine& engine,
                                                      const ServerConfig& config) {
  auto impl = std::make_unique<Impl>(engine, config);
  PS_RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::Shutdown(std::chrono::milliseconds drain) { impl_->Shutdown(drain); }

}  // namespace pstorage::api
