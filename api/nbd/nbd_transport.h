// Internal: the byte stream of one NBD connection — the socket itself, or
// TLS over it once NBD_OPT_STARTTLS succeeded — so the protocol code reads
// and writes the same way either way.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>

namespace pstorage::api::nbd {

// Threads: StartTls and SetReadTimeout before transmission (the handshake
// thread); then one reader thread calls Read while writers, serialized by
// the caller, call Write. An SSL object is not safe for concurrent use, so
// with TLS every SSL call holds ssl_mu_ and never blocks while holding it:
// the socket is non-blocking and each side waits in poll() unlocked.
class Transport {
 public:
  explicit Transport(int fd) : fd_(fd) {}  // borrows `fd`
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The server side of a TLS handshake (TLS 1.2 or newer) with `ctx`
  // (borrowed, outlives the transport); false when it fails, and the
  // connection must then close.
  bool StartTls(SSL_CTX* ctx);
  bool tls() const { return ssl_ != nullptr; }

  // Reads exactly n bytes; false on EOF, error or timeout.
  bool Read(void* buf, size_t n);
  // Writes a then b, entirely; false on error or timeout (SO_SNDTIMEO).
  bool Write(std::span<const uint8_t> a, std::span<const uint8_t> b = {});
  // With TLS, sends close_notify (best effort, never waits). Once no other
  // thread uses the transport.
  void Close();
  // 0 waits forever.
  void SetReadTimeout(std::chrono::seconds t);

 private:
  bool TlsIo(bool write, uint8_t* p, size_t n);

  const int fd_;
  SSL* ssl_ = nullptr;  // owned; set once by StartTls
  std::mutex ssl_mu_;   // guards every call on ssl_
  std::atomic<int> read_timeout_ms_{-1};
  int write_timeout_ms_ = -1;  // from SO_SNDTIMEO at StartTls
};

}  // namespace pstorage::api::nbd
