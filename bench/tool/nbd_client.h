// A small blocking NBD client for `pstorage bench --target nbd`: one TCP
// connection, the fixed-newstyle handshake (NBD_OPT_GO, falling back to
// NBD_OPT_EXPORT_NAME), simple replies only, one request in flight. No TLS,
// no structured replies. Constants and wire layout: api/nbd/nbd_proto.h.
//
// Errors are values. kIoError when the connection fails, times out or the
// server breaks the protocol; after such an error the connection is closed
// and every later call returns kFailedPrecondition naming the first error.
// A nonzero error in a reply leaves the connection usable; the call returns
// "nbd: <command> failed: <errno name> (...)" as kInvalidArgument for EINVAL
// and EOVERFLOW (e.g. a read past the end), kNoSpace for ENOSPC, kIoError
// otherwise.
//
// Timeouts: Connect gives up after `timeout` in total (TCP connect plus the
// handshake); each Read/Write/Flush gives up after `timeout` from its start.
// A peer that stops answering never blocks a caller for longer.
//
// Not thread-safe: one client per worker thread. The client owns its socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"

namespace pstorage::bench {

class NbdClient {
 public:
  // Connects to host:port (name or address; 127.0.0.1 in the tests) with
  // TCP_NODELAY and negotiates `export_name`. Errors: kNotFound when the
  // server has no such export, kFailedPrecondition when it refuses by policy
  // or requires TLS, kIoError for network and protocol failures. Every
  // message names host:port.
  static Result<std::unique_ptr<NbdClient>> Connect(const std::string& host, int port,
                                                    const std::string& export_name,
                                                    std::chrono::milliseconds timeout);

  ~NbdClient();  // Disconnect()
  NbdClient(const NbdClient&) = delete;
  NbdClient& operator=(const NbdClient&) = delete;

  // What the server announced; constant after Connect.
  uint64_t size() const { return size_bytes_; }
  bool read_only() const;
  uint16_t flags() const { return flags_; }  // NBD transmission flags
  // From NBD_INFO_BLOCK_SIZE; 4096 and 32 MiB (the spec's safe maximum)
  // when the server did not send it. Read/Write refuse lengths above max_payload().
  uint32_t preferred_block_size() const { return preferred_block_bytes_; }
  uint32_t max_payload() const { return max_payload_bytes_; }

  // Reads out.size() bytes at `offset` into `out`. The server checks the
  // range: a read past size() fails with EINVAL and the client stays usable.
  Status Read(uint64_t offset, std::span<uint8_t> out);

  // Writes `data` at `offset`; with `fua` the data is durable on return.
  // Without NBD_FLAG_SEND_FUA, fua is a Write followed by Flush (or nothing
  // more when the server has no write cache to flush either). A read-only
  // export gives kFailedPrecondition without a request.
  Status Write(uint64_t offset, std::span<const uint8_t> data, bool fua = false);

  // Makes earlier completed writes durable. OK without a request when the
  // server does not advertise NBD_FLAG_SEND_FLUSH (it has no write cache).
  Status Flush();

  // Sends NBD_CMD_DISC (best effort, no reply exists) and closes. Idempotent.
  void Disconnect();

 private:
  using Clock = std::chrono::steady_clock;
  using Deadline = Clock::time_point;

  NbdClient(int fd, std::string peer, std::chrono::milliseconds timeout);

  Status Handshake(const std::string& export_name, Deadline deadline);
  // NBD_OPT_GO; sets *unsupported (and returns OK) on NBD_REP_ERR_UNSUP.
  Status Go(const std::string& export_name, Deadline deadline, bool* unsupported);
  Status ExportName(const std::string& export_name, Deadline deadline);
  Status ParseInfo(std::span<const uint8_t> d, bool* have_export);
  Status OptionError(uint32_t type, const std::string& export_name, std::span<const uint8_t> text);

  Status CheckLength(const char* what, size_t length) const;
  // One request and its simple reply. `payload` follows the header;
  // `reply_data` is filled from the reply when its error is 0.
  Status Transact(uint16_t type, uint16_t cmd_flags, uint64_t offset, uint32_t length,
                  std::span<const uint8_t> payload, std::span<uint8_t> reply_data);
  Status ReplyError(uint16_t type, uint32_t error, uint64_t offset, uint32_t length) const;

  // Socket I/O until `deadline`. A failure closes the connection (Broken).
  Status SendAll(std::span<const uint8_t> head, std::span<const uint8_t> body, Deadline deadline);
  Status RecvAll(std::span<uint8_t> out, Deadline deadline);
  Status WaitFor(short events, Deadline deadline);
  Status Broken(Status s);  // closes the socket, remembers s, returns it
  Status Usable() const;

  int fd_ = -1;             // nonblocking socket; -1 once closed
  const std::string peer_;  // "host:port", for messages
  const std::chrono::milliseconds timeout_;
  bool no_zeroes_ = false;     // negotiated NBD_FLAG_C_NO_ZEROES
  bool transmission_ = false;  // handshake done: NBD_CMD_DISC is the way to leave
  bool peer_closed_ = false;   // the last RecvAll failure was an orderly EOF
  uint64_t next_handle_ = 1;
  std::string closed_why_;  // why the connection was closed

  // Set by the handshake, constant after.
  uint64_t size_bytes_ = 0;
  uint16_t flags_ = 0;
  uint32_t preferred_block_bytes_ = 4096;
  uint32_t max_payload_bytes_ = 32u << 20;
};

}  // namespace pstorage::bench
