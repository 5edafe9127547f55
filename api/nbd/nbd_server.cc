// The listener and the export catalog; nbd_handshake.cc and
// nbd_transmission.cc serve each connection.
#include "api/nbd/nbd_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "api/nbd/nbd_connection.h"
#include "api/server/log.h"
#include "engine/engine.h"

namespace pstorage::api::nbd {
namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(30);
// A reply that cannot be sent for this long (the client reads nothing) ends
// the connection.
constexpr auto kSendTimeout = std::chrono::seconds(60);
// On shutdown, connections get this long to answer what they have read.
constexpr auto kDrainTimeout = std::chrono::seconds(5);

void SetTimeout(int fd, int option, std::chrono::seconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count());
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

std::string TlsError() {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

bool Allowed(const NbdOptions& o, const std::string& name) {
  return !o.allowed_exports.has_value() ||
         std::find(o.allowed_exports->begin(), o.allowed_exports->end(), name) !=
             o.allowed_exports->end();
}

}  // namespace

Result<Export> ResolveExport(const engine::Engine& engine, const NbdOptions& options,
                             const std::string& name) {
  if (!Allowed(options, name)) return Status::NotFound("export not allowed");
  const size_t at = name.find('@');
  Result<engine::VolumeInfo> v = engine.FindVolumeByName(name.substr(0, at));
  if (!v.ok()) return v.status();
  if (at == std::string::npos) return Export{name, v->id, false, v->size_bytes};
  Result<std::vector<engine::SnapshotInfo>> snaps = engine.ListSnapshots(v->id);
  if (!snaps.ok()) return snaps.status();
  for (const engine::SnapshotInfo& s : *snaps) {
    if (s.name == name.substr(at + 1)) return Export{name, s.id, true, s.size_bytes};
  }
  return Status::NotFound("no snapshot " + name);
}

std::vector<std::string> ListExports(const engine::Engine& engine, const NbdOptions& options) {
  std::vector<std::string> names;
  for (const engine::VolumeInfo& v : engine.ListVolumes()) {
    if (Allowed(options, v.name)) names.push_back(v.name);
  }
  for (const engine::SnapshotInfo& s : engine.ListAllSnapshots()) {
    const std::string name = s.volume_name + "@" + s.name;
    if (Allowed(options, name)) names.push_back(name);
  }
  return names;
}

Connection::Connection(engine::Engine& engine, const NbdOptions& options, SSL_CTX* tls_context,
                       int fd)
    : engine_(engine), options_(options), tls_context_(tls_context), fd_(fd) {}

Connection::~Connection() { ::close(fd_); }

void Connection::Run() {
  // A client has kHandshakeTimeout to pick an export; then reads may block
  // for as long as the client stays idle (it costs only this connection).
  transport_.SetReadTimeout(kHandshakeTimeout);
  const bool attached = Handshake();
  transport_.SetReadTimeout(std::chrono::seconds(0));
  if (attached) {
    Log(LogLevel::kDebug, "nbd: client attached export " + export_.name);
    Transmit();
  }
  transport_.Close();
  ::shutdown(fd_, SHUT_RDWR);
  done_ = true;
}

void Connection::Abort() { ::shutdown(fd_, SHUT_RDWR); }

void Connection::Stop() {
  stopping_ = true;
  ::shutdown(fd_, SHUT_RD);  // wakes the reader; replies may still go out
  { std::lock_guard lock(mu_); }
  budget_cv_.notify_all();
}

// ---- the listener ----

class NbdServer::Impl {
 public:
  Impl(engine::Engine& engine, const NbdOptions& options) : engine_(engine), options_(options) {}
  ~Impl() { Shutdown(); }

  // kInvalidArgument when the certificate or key cannot be loaded.
  Status LoadTls() {
    if (options_.tls == TlsMode::kOff) return Status::Ok();
    tls_context_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX* ctx = tls_context_.get();
    if (ctx == nullptr || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
      return Status::IoError("nbd: cannot create a TLS context");
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, options_.tls_certificate_file.c_str()) != 1) {
      return Status::InvalidArgument("nbd: cannot load the TLS certificate " +
                                     options_.tls_certificate_file + ": " + TlsError());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, options_.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      return Status::InvalidArgument("nbd: cannot load the TLS key " + options_.tls_key_file +
                                     " (or it does not match the certificate): " + TlsError());
    }
    return Status::Ok();
  }

  Status Listen() {
    in_addr addr{};
    if (inet_pton(AF_INET, options_.bind_address.c_str(), &addr) != 1) {
      return Status::InvalidArgument("nbd: bad bind address " + options_.bind_address);
    }
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return Status::IoError(std::string("nbd: socket: ") + strerror(errno));
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr = addr;
    sa.sin_port = htons(static_cast<uint16_t>(options_.port));
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      return Status::IoError("nbd: cannot listen on " + options_.bind_address + ":" +
                             std::to_string(options_.port) + ": " + strerror(errno));
    }
    socklen_t len = sizeof(sa);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return Status::Ok();
  }

  void Shutdown() {
    if (listen_fd_ < 0) return;
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    if (accept_thread_.joinable()) accept_thread_.join();
    ::close(listen_fd_);
    listen_fd_ = -1;
    std::lock_guard lock(mu_);
    for (Slot& s : slots_) s.connection->Stop();
    const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
    for (Slot& s : slots_) {
      while (!s.connection->done() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!s.connection->done()) s.connection->Abort();  // stuck in send
      s.thread.join();
    }
    slots_.clear();
  }

  int port() const { return port_; }

 private:
  struct Slot {
    std::unique_ptr<Connection> connection;
    std::thread thread;
  };

  void AcceptLoop() {
    while (!stopping_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (stopping_) return;
        Log(LogLevel::kWarn, std::string("nbd: accept: ") + strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // EMFILE: back off
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      SetTimeout(fd, SO_SNDTIMEO, kSendTimeout);
      std::lock_guard lock(mu_);
      Reap();
      if (stopping_ || slots_.size() >= options_.max_connections) {
        ::close(fd);
        continue;
      }
      Slot& s = slots_.emplace_back();
      s.connection = std::make_unique<Connection>(engine_, options_, tls_context_.get(), fd);
      s.thread = std::thread([c = s.connection.get()] { c->Run(); });
    }
  }

  // Requires mu_: joins finished connections.
  void Reap() {
    for (auto it = slots_.begin(); it != slots_.end();) {
      if (!it->connection->done()) {
        ++it;
        continue;
      }
      it->thread.join();
      it = slots_.erase(it);
    }
  }

  engine::Engine& engine_;
  const NbdOptions options_;
  std::unique_ptr<SSL_CTX, SslCtxFree> tls_context_;  // set by LoadTls, then constant
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;  // guards slots_
  std::list<Slot> slots_;
};

Result<std::unique_ptr<NbdServer>> NbdServer::Start(engine::Engine& engine,
                                                    const NbdOptions& options) {
  auto impl = std::make_unique<Impl>(engine, options);
  PS_RETURN_IF_ERROR(impl->LoadTls());
  PS_RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<NbdServer>(new NbdServer(std::move(impl)));
}

NbdServer::NbdServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NbdServer::~NbdServer() = default;
int NbdServer::port() const { return impl_->port(); }
void NbdServer::Shutdown() { impl_->Shutdown(); }

}  // namespace pstorage::api::nbd
