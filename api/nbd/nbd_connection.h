// Internal: one NBD client connection (handshake, then transmission), and
// the export catalog it resolves names against.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "api/nbd/nbd_proto.h"
#include "api/nbd/nbd_server.h"
#include "api/nbd/nbd_transport.h"
#include "common/status.h"

namespace pstorage::api::nbd {

// An export resolved from its name: a volume, or a snapshot ("vol@snap").
struct Export {
  std::string name;
  std::string id;  // volume or snapshot id
  bool snapshot = false;
  uint64_t size_bytes = 0;
};

// kNotFound when the name names nothing or is not allowed.
Result<Export> ResolveExport(const engine::Engine& engine, const NbdOptions& options,
                             const std::string& name);
// Every export name the options allow, volumes first.
std::vector<std::string> ListExports(const engine::Engine& engine, const NbdOptions& options);

class Connection {
 public:
  // Takes ownership of `fd`; `engine`, `options` and `tls_context` (nullptr
  // when TLS is off) are borrowed.
  Connection(engine::Engine& engine, const NbdOptions& options, SSL_CTX* tls_context, int fd);
  ~Connection();

  // Serves the connection until it ends; then every worker is joined and
  // the socket closed. Run on the connection's own thread.
  void Run();
  // From any thread: ends the connection soon (reads fail; requests already
  // read are still answered).
  void Stop();
  // From any thread: closes both directions (a client that does not read
  // its replies can block a worker in send; this unblocks it).
  void Abort();
  bool done() const { return done_.load(); }

 private:
  struct Work {
    Request request;
    std::vector<uint8_t> payload;  // WRITE data
    uint64_t budget = 0;           // bytes counted against max_inflight_bytes
  };

  // nbd_handshake.cc: true when the client entered transmission.
  bool Handshake();
  bool HandleInfoOrGo(uint32_t option, std::span<const uint8_t> data, bool* go);
  bool HandleMetaContext(uint32_t option, std::span<const uint8_t> data);
  bool SendOptionReply(uint32_t option, uint32_t type, std::span<const uint8_t> data = {});
  bool SendOptionError(uint32_t option, uint32_t type, const std::string& message);
  bool SendExportNameReply();
  // 0: handled, go on; 1: the option is refused (TLS required), go on;
  // -1: close the connection.
  int RequireTls(uint32_t option);
  bool HandleStartTls(uint32_t length);
  uint16_t TransmissionFlags() const;

  // nbd_transmission.cc
  void Transmit();
  void Worker();
  void Execute(Work& w);
  uint32_t Check(const Request& r) const;  // 0 or the error for a bad request
  void BlockStatus(const Request& r);
  void ReplySimple(uint64_t handle, uint32_t error, std::span<const uint8_t> data = {});
  void ReplyError(const Request& r, uint32_t error, const std::string& message);
  void ReplyChunk(uint64_t handle, uint16_t type, std::span<const uint8_t> head,
                  std::span<const uint8_t> data = {});
  bool Send(std::span<const uint8_t> a, std::span<const uint8_t> b);
  bool TakeBudget(uint64_t bytes);  // false when the connection is ending
  void GiveBudget(uint64_t bytes);

  engine::Engine& engine_;
  const NbdOptions& options_;
  SSL_CTX* const tls_context_;
  const int fd_;
  Transport transport_{fd_};  // Read: the reader only; Write: under write_mu_

  // Set by the handshake, constant during transmission.
  bool no_zeroes_ = false;
  bool structured_ = false;
  bool allocation_context_ = false;
  Export export_;

  std::atomic<bool> done_{false};
  std::atomic<bool> stopping_{false};

  std::mutex write_mu_;        // one reply at a time on the socket
  bool write_failed_ = false;  // guarded by write_mu_

  std::mutex mu_;                      // guards queue_, inflight_bytes_, closing_
  std::condition_variable work_cv_;    // queue_ not empty or closing_
  std::condition_variable budget_cv_;  // inflight_bytes_ went down
  std::deque<Work> queue_;
  uint64_t inflight_bytes_ = 0;
  bool closing_ = false;  // the reader ended: workers drain queue_ and exit
  std::vector<std::thread> workers_;
};

}  // namespace pstorage::api::nbd
