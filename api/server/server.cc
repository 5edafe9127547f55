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
#include "api/server/projects.h"
#include "api/server/router.h"
#include "api/server/services.h"
#include "api/server/stats.h"
#include "api/server/watch.h"

namespace pstorage::api {

namespace Http = Pistache::Http;

namespace {

// Idle keep-alive connections, and watch streams (which the client never
// writes to), are closed after this long.
constexpr auto kKeepaliveTimeout = std::chrono::minutes(10);
static_assert(WatchHub::kMaxStreamAge < kKeepaliveTimeout);

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

// The sink of a streamed reply: chunks framed by hand and queued with
// Tcp::Peer::send, which is safe from any thread (ResponseStream::flush is
// not: from a thread other than the handler's it can abort the process).
class PeerSink : public StreamSink, public std::enable_shared_from_this<PeerSink> {
 public:
  static constexpr int64_t kMaxBehindBytes = 4 << 20;

  explicit PeerSink(std::weak_ptr<Pistache::Tcp::Peer> peer) : peer_(std::move(peer)) {}

  bool Send(std::string_view bytes) override {
    if (closed_.load() || bytes.empty()) return !closed_.load();
    if (behind_.load() > kMaxBehindBytes) {
      // The client does not read: drop it rather than buffer without end.
      Close();
      return false;
    }
    char size[24];
    const int n = std::snprintf(size, sizeof(size), "%zx\r\n", bytes.size());
    std::string chunk;
    chunk.reserve(static_cast<size_t>(n) + bytes.size() + 2);
    chunk.append(size, static_cast<size_t>(n)).append(bytes).append("\r\n");
    return Write(std::move(chunk));
  }

  void Close() override {
    if (closed_.exchange(true)) return;
    Write("0\r\n\r\n", /*final=*/true);
  }

  // Also once the connection is gone: Pistache drops its peer then.
  bool closed() const override { return closed_.load() || peer_.expired(); }

 private:
  bool Write(std::string chunk, bool final = false) {
    std::shared_ptr<Pistache::Tcp::Peer> peer = peer_.lock();
    if (!peer) {
      closed_.store(true);
      return false;
    }
    const auto len = static_cast<int64_t>(chunk.size());
    behind_.fetch_add(len);
    std::weak_ptr<PeerSink> self = weak_from_this();
    try {
      peer->send(Pistache::RawBuffer(std::move(chunk), static_cast<size_t>(len)))
          .then(
              [self, len](ssize_t) {
                if (auto s = self.lock()) s->behind_.fetch_sub(len);
              },
              [self](std::exception_ptr&) {
                if (auto s = self.lock()) s->closed_.store(true);
              });
    } catch (const std::exception&) {
      closed_.store(true);
      return false;
    }
    return final || !closed_.load();
  }

  std::weak_ptr<Pistache::Tcp::Peer> peer_;
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> behind_{0};  // bytes queued, not yet written
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(engine::Engine& engine, ProjectRegistry& projects, const ServerConfig& config)
      : config_(config),
        router_(AllRoutes()),
        stats_(router_.routes().size()),
        services_(engine, config_, stats_),
        projects_(projects),
        limiter_(config.rate_limit.requests_per_second, config.rate_limit.burst) {
    services_.router = &router_;
    services_.started_ms = NowMs();
    services_.projects = &projects_;
    services_.watches = &watches_;
  }

  Status Listen();
  void Handle(const Http::Request& request, Http::ResponseWriter response);
  void Shutdown(std::chrono::milliseconds drain);
  uint16_t port() const { return port_; }

 private:
  Reply Dispatch(Request& req, const Http::Request& raw, std::string* client_key,
                 int* route_index, RateLimitDecision* limit);
  // Applies the route's access rule; sets req->project_id for KV routes.
  // Returns the refusal, or nullopt when the request may proceed.
  std::optional<Reply> Authorize(const Route& route, Request* req, const Http::Request& raw,
                                 std::string* client_key);

  const ServerConfig config_;
  Router router_;
  RequestStats stats_;
  Services services_;
  ProjectRegistry& projects_;
  WatchHub watches_;
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
                    .maxResponseSize(json_limit + (64u << 10))
                    .keepaliveTimeout(kKeepaliveTimeout);
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
  req.params = std::move(m.params);
  if (std::optional<Reply> refused = Authorize(route, &req, raw, client_key)) return *refused;
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
  return route.handler(services_, req);
}

namespace {

Reply Unauthorized(const Request& req, bool key_presented) {
  if (!key_presented) {
    Reply r = ErrorReply(401, "UNAUTHORIZED",
                         "missing API key: send it as 'X-API-Key: <key>' or "
                         "'Authorization: Bearer <key>'",
                         req.request_id);
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  Reply r = ErrorReply(401, "UNAUTHORIZED", "invalid API key", req.request_id);
  r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  return r;
}

Reply Forbidden(const Request& req, std::string_view detail) {
  return ErrorReply(403, "FORBIDDEN", detail, req.request_id);
}

}  // namespace

std::optional<Reply> HttpServer::Impl::Authorize(const Route& route, Request* req,
                                                 const Http::Request& raw,
                                                 std::string* client_key) {
  if (route.access == Access::kOpen) return std::nullopt;
  const std::string presented = PresentedKey(raw);
  const Caller caller = projects_.Identify(presented);
  if (!caller.rate_key.empty()) *client_key = caller.rate_key;
  // With authentication off (default.authentication.enabled: false) every
  // caller acts as the admin.
  const bool admin = !config_.auth.enabled || caller.kind == Caller::Kind::kAdmin;
  const bool invalid = caller.kind == Caller::Kind::kNone || caller.kind == Caller::Kind::kInvalid;
  req->anonymous = invalid && config_.auth.enabled;
  switch (route.access) {
    case Access::kOpen:
      return std::nullopt;
    case Access::kAdmin:
      if (admin) return std::nullopt;
      if (invalid) return Unauthorized(*req, !presented.empty());
      return Forbidden(*req, "this key belongs to project " + caller.project_id +
                                 "; this endpoint needs the admin key");
    case Access::kProject: {
      const std::string& id = req->params["project_id"];
      req->project_id = id;
      if (admin || (caller.kind == Caller::Kind::kProject && caller.project_id == id)) {
        return std::nullopt;
      }
      Result<ProjectConfig> project = projects_.Get(id);
      if (project.ok() && !project->auth.enabled) return std::nullopt;
      if (invalid) return Unauthorized(*req, !presented.empty());
      return Forbidden(*req, "this key belongs to project " + caller.project_id +
                                 ", not to project " + ValidUtf8(id));
    }
    case Access::kKeyed: {
      if (caller.kind == Caller::Kind::kProject) {
        req->project_id = caller.project_id;
        return std::nullopt;
      }
      if (!admin) return Unauthorized(*req, !presented.empty());
      Result<std::string> id = projects_.DefaultProject();
      if (!id.ok()) return StatusReply(id.status(), req->request_id);
      req->project_id = *id;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

namespace {

// Sends the status, headers and first bytes of a streamed reply from the
// handler's thread (the one place ResponseStream::flush is safe), then hands
// the connection to the stream's owner.
void StartStream(const Reply& reply, Http::ResponseWriter& response) {
  std::weak_ptr<Pistache::Tcp::Peer> peer;
  try {
    peer = response.peer();
    Http::ResponseStream stream = response.stream(static_cast<Http::Code>(reply.status));
    if (!reply.stream->first.empty()) {
      stream.write(reply.stream->first.data(),
                   static_cast<std::streamsize>(reply.stream->first.size()));
    }
    stream.flush();
    // Pistache closes a connection whose request is "in progress" after the
    // header timeout (60 s) with a 408 written into the stream; marked idle,
    // the keep-alive timeout applies instead, and the stream's owner ends
    // the stream before that (WatchHub::kMaxStreamAge).
    if (auto p = peer.lock()) p->setIdle(true);
  } catch (const std::exception& e) {
    Log(LogLevel::kDebug, std::string("stream not started: ") + e.what());
    auto sink = std::make_shared<PeerSink>(std::weak_ptr<Pistache::Tcp::Peer>());
    sink->Close();
    reply.stream->start(sink);
    return;
  }
  reply.stream->start(std::make_shared<PeerSink>(peer));
}

}  // namespace

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
  req.if_match = RawHeader(raw, "If-Match");
  req.if_none_match = RawHeader(raw, "If-None-Match");
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
  // HEAD: the status and headers of the GET, no body.
  if (req.method == "HEAD") reply.body.clear();
  size_t body_bytes = reply.body.size();
  if (reply.stream != nullptr) {
    StartStream(reply, response);
  } else {
    response.send(static_cast<Http::Code>(reply.status), reply.body);
  }

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
  watches_.Shutdown();
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
                                                      ProjectRegistry& projects,
                                                      const ServerConfig& config) {
  auto impl = std::make_unique<Impl>(engine, projects, config);
  PS_RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::Shutdown(std::chrono::milliseconds drain) { impl_->Shutdown(drain); }

}  // namespace pstorage::api
