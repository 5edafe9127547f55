// The kv-small workload's targets: PStorage's KV store in-process (engine),
// its REST path (/v1/keys), and the peers it is compared with: redis-server
// (RESP over TCP) and etcd's JSON gateway (/v3/kv/put, /v3/kv/range).
// Values are JSON texts; redis and etcd store them as opaque bytes.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/base64.h"
#include "bench/tool/bench.h"
#include "bench/tool/rest_api.h"
#include "kv/kv.h"

namespace pstorage::bench {
namespace {

// ---- engine: the store in-process, on disk, every put synced ----

class StoreSession : public Session {
 public:
  explicit StoreSession(kv::KvStore* store) : store_(store) {}
  Status Write(int, uint64_t, std::span<const uint8_t>) override {
    return Status::InvalidArgument("block I/O on a KV target");
  }
  Status Read(int, uint64_t, std::span<uint8_t>) override {
    return Status::InvalidArgument("block I/O on a KV target");
  }
  Status Put(const std::string& key, const std::string& value) override {
    Result<kv::Entry> e = store_->Put(key, value);
    return e.ok() ? Status::Ok() : e.status();
  }
  Status Get(const std::string& key, std::string* value) override {
    Result<kv::Entry> e = store_->Get(key);
    if (!e.ok()) return e.status();
    *value = std::move(e->value);
    return Status::Ok();
  }

 private:
  kv::KvStore* store_;
};

class StoreTarget : public Target {
 public:
  Status Setup(const BenchOptions& o) override {
    if (Status s = dir_.Init(o.data_dir); !s.ok()) return s;
    kv::KvOptions ko;
    ko.dir = dir_.path();
    ko.project_id = "bench";
    Result<std::unique_ptr<kv::KvStore>> s = kv::KvStore::Open(ko);
    if (!s.ok()) return s.status();
    store_ = std::move(*s);
    return Status::Ok();
  }
  Result<std::unique_ptr<Session>> Connect() override {
    return std::unique_ptr<Session>(new StoreSession(store_.get()));
  }
  ServerMetrics Metrics() override { return {}; }
  void Teardown() override {
    store_.reset();
    dir_.Remove();
  }

 private:
  DataDir dir_;
  std::unique_ptr<kv::KvStore> store_;
};

// ---- rest: PUT/GET /v1/keys/{key} on the caller's project ----

class KvHttpSession : public Session {
 public:
  KvHttpSession(const Url& url, const std::string& api_key, bool etcd)
      : client_(url.host, url.port), etcd_(etcd) {
    client_.set_timeout(std::chrono::milliseconds(10000));
    headers_.emplace_back("Content-Type", "application/json");
    if (!api_key.empty() && !etcd) headers_.emplace_back("X-API-Key", api_key);
  }
  Status Write(int, uint64_t, std::span<const uint8_t>) override {
    return Status::InvalidArgument("block I/O on a KV target");
  }
  Status Read(int, uint64_t, std::span<uint8_t>) override {
    return Status::InvalidArgument("block I/O on a KV target");
  }
  Status Put(const std::string& key, const std::string& value) override {
    Result<api::HttpResponse> r =
        etcd_ ? Send("POST", "/v3/kv/put",
                     "{\"key\":\"" + api::Base64Encode(key) + "\",\"value\":\"" +
                         api::Base64Encode(value) + "\"}")
              : Send("PUT", "/v1/keys/" + api::UrlEncode(key), "{\"value\":" + value + "}");
    if (!r.ok()) return r.status();
    if (r->status != 200 && r->status != 201) return Status::IoError(DescribeError(*r));
    return Status::Ok();
  }
  Status Get(const std::string& key, std::string* value) override {
    Result<api::HttpResponse> r =
        etcd_ ? Send("POST", "/v3/kv/range", "{\"key\":\"" + api::Base64Encode(key) + "\"}")
              : Send("GET", "/v1/keys/" + api::UrlEncode(key), "");
    if (!r.ok()) return r.status();
    if (r->status != 200) return Status::IoError(DescribeError(*r));
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    if (d.HasParseError() || !d.IsObject()) return Status::IoError("get: reply is not JSON");
    if (etcd_) {
      if (!d.HasMember("kvs") || !d["kvs"].IsArray() || d["kvs"].Empty()) {
        return Status::NotFound("etcd: no key " + key);
      }
      *value = d["kvs"][0]["value"].GetString();  // base64; its length is what matters
    } else {
      if (!d.HasMember("value")) return Status::NotFound("no value for " + key);
      *value = r->body;
    }
    return Status::Ok();
  }

 private:
  Result<api::HttpResponse> Send(const char* method, const std::string& path,
                                 const std::string& body) {
    return RequestWithRetry(client_, method, path, body, headers_, &throttled);
  }

  api::HttpClient client_;
  api::HttpHeaders headers_;
  bool etcd_;
};

class KvHttpTarget : public Target {
 public:
  explicit KvHttpTarget(bool etcd) : etcd_(etcd) {}
  Status Setup(const BenchOptions& o) override {
    Result<Url> url = ParseUrl(o.url, "http", etcd_ ? 2379 : 8000);
    if (!url.ok()) return Status::InvalidArgument("--url " + url.status().message());
    url_ = *url;
    api_key_ = o.api_key;
    if (!etcd_) rest_ = std::make_unique<RestApi>(url_, api_key_);
    // One round trip now, so that a wrong address fails before the run.
    KvHttpSession probe(url_, api_key_, etcd_);
    Status s = probe.Put("bench-probe", "0");
    return s.ok() ? Status::Ok() : Status::IoError("--url " + o.url + ": " + s.message());
  }
  Result<std::unique_ptr<Session>> Connect() override {
    return std::unique_ptr<Session>(new KvHttpSession(url_, api_key_, etcd_));
  }
  ServerMetrics Metrics() override {
    ServerMetrics m;
    if (rest_) m.cpu_seconds = rest_->Metrics().cpu_seconds;
    return m;  // no block reduction for a KV run; only the server's CPU
  }
  void Teardown() override {}

 private:
  bool etcd_;
  Url url_;
  std::string api_key_;
  std::unique_ptr<RestApi> rest_;
};

// ---- redis: SET / GET in RESP over one TCP connection per session ----

class RedisSession : public Session {
 public:
  static Result<std::unique_ptr<Session>> Open(const Url& url) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    std::string port = std::to_string(url.port);
    if (getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
      return Status::IoError("redis: cannot resolve " + url.host);
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0) {
      if (fd >= 0) close(fd);
      return Status::IoError("redis: cannot connect to " + url.host + ":" + port);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return std::unique_ptr<Session>(new RedisSession(fd));
  }
  ~RedisSession() override { close(fd_); }
  Status Write(int, uint64_t, std::span<const uint8_t>) override {
    return Status::InvalidArgument("block I/O on a KV target");
  }
  Status Read(int, uint64_t, std::span<uint8_t>) override {
    return Status::InvalidArgument("block I/O on a KV target");
  }
  Status Put(const std::string& key, const std::string& value) override {
    std::string reply;
    Status s = Command({"SET", key, value}, &reply);
    if (s.ok() && reply != "+OK") return Status::IoError("redis SET: " + reply);
    return s;
  }
  Status Get(const std::string& key, std::string* value) override {
    std::string reply;
    Status s = Command({"GET", key}, &reply);
    if (!s.ok()) return s;
    if (reply.empty() || reply[0] != '$' || reply == "$-1") {
      return Status::NotFound("redis GET " + key + ": " + reply);
    }
    size_t len = std::strtoull(reply.c_str() + 1, nullptr, 10);
    std::string body;
    if (Status r = ReadExact(len + 2, &body); !r.ok()) return r;
    *value = body.substr(0, len);
    return Status::Ok();
  }

 private:
  explicit RedisSession(int fd) : fd_(fd) {}

  Status Command(std::initializer_list<std::string> args, std::string* first_line) {
    std::string req = "*";
    req.append(std::to_string(args.size())).append("\r\n");
    for (const std::string& a : args) {
      req.append("$").append(std::to_string(a.size())).append("\r\n").append(a).append("\r\n");
    }
    for (size_t off = 0; off < req.size();) {
      ssize_t n = send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return Status::IoError("redis: connection lost while sending");
      off += static_cast<size_t>(n);
    }
    return ReadLine(first_line);
  }
  Status Fill() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return Status::IoError("redis: no reply within 10 s");
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return Status::IoError("redis: connection closed by server");
    in_.append(buf, static_cast<size_t>(n));
    return Status::Ok();
  }
  Status ReadLine(std::string* line) {
    size_t eol;
    while ((eol = in_.find("\r\n")) == std::string::npos) {
      if (Status s = Fill(); !s.ok()) return s;
    }
    *line = in_.substr(0, eol);
    in_.erase(0, eol + 2);
    if (!line->empty() && (*line)[0] == '-') return Status::IoError("redis: " + line->substr(1));
    return Status::Ok();
  }
  Status ReadExact(size_t n, std::string* out) {
    while (in_.size() < n) {
      if (Status s = Fill(); !s.ok()) return s;
    }
    *out = in_.substr(0, n);
    in_.erase(0, n);
    return Status::Ok();
  }

  int fd_;
  std::string in_;
};

class RedisTarget : public Target {
 public:
  Status Setup(const BenchOptions& o) override {
    Result<Url> url = ParseUrl(o.url, "redis", 6379);
    if (!url.ok()) return Status::InvalidArgument("--url " + url.status().message());
    url_ = *url;
    Result<std::unique_ptr<Session>> probe = RedisSession::Open(url_);
    return probe.ok() ? Status::Ok() : probe.status();
  }
  Result<std::unique_ptr<Session>> Connect() override { return RedisSession::Open(url_); }
  ServerMetrics Metrics() override { return {}; }
  void Teardown() override {}

 private:
  Url url_;
};

}  // namespace

std::unique_ptr<Target> MakeKvTarget(const std::string& kind) {
  if (kind == "rest") return std::make_unique<KvHttpTarget>(false);
  if (kind == "etcd") return std::make_unique<KvHttpTarget>(true);
  if (kind == "redis") return std::make_unique<RedisTarget>();
  return std::make_unique<StoreTarget>();
}

}  // namespace pstorage::bench
