// Plain socket I/O, or TLS through OpenSSL over a non-blocking socket.
#include "api/nbd/nbd_transport.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>

namespace pstorage::api::nbd {
namespace {

bool SendAll(int fd, std::span<const uint8_t> a, std::span<const uint8_t> b) {
  iovec iov[2] = {{const_cast<uint8_t*>(a.data()), a.size()},
                  {const_cast<uint8_t*>(b.data()), b.size()}};
  int n = b.empty() ? 1 : 2;
  iovec* v = iov;
  while (n > 0) {
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = static_cast<size_t>(n);
    const ssize_t sent = ::sendmsg(fd, &m, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    size_t left = static_cast<size_t>(sent);
    while (n > 0 && left >= v->iov_len) {
      left -= v->iov_len;
      v++;
      n--;
    }
    if (n > 0) {
      v->iov_base = static_cast<uint8_t*>(v->iov_base) + left;
      v->iov_len -= left;
    }
  }
  return true;
}

int TimeoutMs(std::chrono::seconds t) {
  return t.count() == 0 ? -1 : static_cast<int>(t.count() * 1000);
}

}  // namespace

Transport::~Transport() { SSL_free(ssl_); }

bool Transport::StartTls(SSL_CTX* ctx) {
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) return false;
  // Blocking, bounded by the socket's handshake timeouts (SO_RCVTIMEO).
  ERR_clear_error();
  if (SSL_accept(ssl_) != 1) {
    ERR_clear_error();
    return false;
  }
  timeval tv{};
  socklen_t len = sizeof(tv);
  if (::getsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0 && tv.tv_sec > 0) {
    write_timeout_ms_ = static_cast<int>(tv.tv_sec * 1000 + tv.tv_usec / 1000);
  }
  const int flags = ::fcntl(fd_, F_GETFL);
  return flags >= 0 && ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) == 0;
}

void Transport::Close() {
  if (ssl_ == nullptr) return;
  std::lock_guard lock(ssl_mu_);
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

void Transport::SetReadTimeout(std::chrono::seconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count());
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  read_timeout_ms_ = TimeoutMs(t);
}

bool Transport::Read(void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  if (ssl_ != nullptr) return TlsIo(false, p, n);
  while (n > 0) {
    const ssize_t r = ::recv(fd_, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool Transport::Write(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (ssl_ == nullptr) return SendAll(fd_, a, b);
  return TlsIo(true, const_cast<uint8_t*>(a.data()), a.size()) &&
         TlsIo(true, const_cast<uint8_t*>(b.data()), b.size());
}

// A WANT_READ/WANT_WRITE retry repeats the same call with the same buffer,
// as OpenSSL requires; the other direction may run in between.
bool Transport::TlsIo(bool write, uint8_t* p, size_t n) {
  while (n > 0) {
    size_t done = 0;
    int err = SSL_ERROR_NONE;
    {
      std::lock_guard lock(ssl_mu_);
      ERR_clear_error();
      const int r = write ? SSL_write_ex(ssl_, p, n, &done) : SSL_read_ex(ssl_, p, n, &done);
      if (r != 1) err = SSL_get_error(ssl_, r);
      ERR_clear_error();
    }
    if (err == SSL_ERROR_NONE) {
      p += done;
      n -= done;
      continue;
    }
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
    pollfd pfd{fd_, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    const int timeout_ms = write ? write_timeout_ms_ : read_timeout_ms_.load();
    int ready;
    do {
      ready = ::poll(&pfd, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) return false;
  }
  return true;
}

}  // namespace pstorage::api::nbd
