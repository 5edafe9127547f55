// The NBD server: exports every volume (by name, read-write) and every
// snapshot (as "volume@snapshot", read-only) of an engine to NBD clients
// (Linux nbd-client, qemu, libnbd tools) over TCP.
//
// Contract:
//   * Start binds and listens before it returns (port 0 picks a free port);
//     a thread accepts connections, and each connection has a reader thread
//     and a few workers, so requests run concurrently and replies may come
//     out of order (matched by handle).
//   * Requests call the engine's public API only; each acknowledged write is
//     durable when its reply is sent (the engine's contract), so FLUSH and
//     FUA add nothing but are accepted.
//   * NBD has no authentication: bind to loopback unless the network is
//     trusted, and narrow `allowed_exports`. With `tls` on, clients may
//     encrypt with NBD_OPT_STARTTLS; with kRequire they must. Client
//     certificates are not asked for, so TLS gives privacy, not identity.
//     OpenSSL writes with write(2): with TLS the process must ignore
//     SIGPIPE (pstorage serve does).
//   * Hostile input ends one connection at worst; it never blocks others.
//   * Shutdown (and the destructor) stop accepting, end every connection
//     after the requests it has read are answered, and join every thread.
//
// Thread safety: Start, port and Shutdown from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace pstorage::engine {
class Engine;
}

namespace pstorage::api::nbd {

enum class TlsMode {
  kOff,      // STARTTLS is refused (NBD_REP_ERR_POLICY)
  kOn,       // STARTTLS is offered; plain clients are served too
  kRequire,  // only STARTTLS and ABORT before TLS (NBD_REP_ERR_TLS_REQD)
};

struct NbdOptions {
  std::string bind_address = "127.0.0.1";  // numeric IPv4
  int port = 10809;                        // 0 picks a free port
  // Names clients may list and open; nullopt allows every export.
  std::optional<std::vector<std::string>> allowed_exports;
  size_t workers_per_connection = 4;
  uint64_t max_inflight_bytes = 64ull << 20;  // payloads read but not yet answered
  size_t max_connections = 256;               // more are closed at once
  TlsMode tls = TlsMode::kOff;
  std::string tls_certificate_file;  // PEM chain, server certificate first; unless kOff
  std::string tls_key_file;          // PEM private key; unless kOff
};

class NbdServer {
 public:
  // kInvalidArgument (bad address, TLS certificate or key that does not
  // load), kIoError (cannot bind or listen).
  // `engine` is borrowed and must outlive the server.
  static Result<std::unique_ptr<NbdServer>> Start(engine::Engine& engine,
                                                  const NbdOptions& options);
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  int port() const;
  void Shutdown();

  class Impl;

 private:
  explicit NbdServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstorage::api::nbd
