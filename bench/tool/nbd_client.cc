// NbdClient: the client side of the fixed-newstyle handshake and of simple
// replies. Wire layout and constants: api/nbd/nbd_proto.h.
#include "bench/tool/nbd_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "api/nbd/nbd_proto.h"

namespace pstorage::bench {

namespace nbd = pstorage::api::nbd;

namespace {

using Clock = std::chrono::steady_clock;

// The second word of an oldstyle greeting (instead of IHAVEOPT).
constexpr uint64_t kOldstyleMagic = 0x00420281861253ull;
constexpr size_t kMaxExportNameBytes = 4096;  // the spec's limit
constexpr size_t kOptionHeaderBytes = 16;     // IHAVEOPT, option, length
constexpr size_t kOptionReplyHeaderBytes = 20;
constexpr size_t kExportNameReplyBytes = 10 + 124;  // size, flags, zero padding

int RemainingMs(Clock::time_point deadline) {
  const auto left = deadline - Clock::now() + std::chrono::microseconds(999);  // round up
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, INT32_MAX));
}

const char* CommandName(uint16_t type) {
  switch (type) {
    case nbd::kCmdRead: return "read";
    case nbd::kCmdWrite: return "write";
    case nbd::kCmdFlush: return "flush";
    default: return "command";
  }
}

// Wire errors use Linux numbers whatever the host (nbd_proto.h).
std::string WireErrorName(uint32_t error) {
  switch (error) {
    case nbd::kEPerm: return "EPERM";
    case nbd::kEIo: return "EIO";
    case nbd::kENoMem: return "ENOMEM";
    case nbd::kEInval: return "EINVAL";
    case nbd::kENoSpc: return "ENOSPC";
    case nbd::kEOverflow: return "EOVERFLOW";
    case nbd::kENotSup: return "ENOTSUP";
    case nbd::kEShutdown: return "ESHUTDOWN";
    default: return "error " + std::to_string(error);
  }
}

std::string OptionErrorName(uint32_t type) {
  switch (type) {
    case nbd::kRepErrUnsup: return "NBD_REP_ERR_UNSUP";
    case nbd::kRepErrPolicy: return "NBD_REP_ERR_POLICY";
    case nbd::kRepErrInvalid: return "NBD_REP_ERR_INVALID";
    case nbd::kRepErrTlsReqd: return "NBD_REP_ERR_TLS_REQD";
    case nbd::kRepErrUnknown: return "NBD_REP_ERR_UNKNOWN";
    case nbd::kRepErrTooBig: return "NBD_REP_ERR_TOO_BIG";
    default: return "NBD_REP_ERR " + std::to_string(type & ~nbd::kRepErr);
  }
}

// Server-supplied text for an error message: printable and bounded, since
// it comes from the network.
std::string Printable(std::span<const uint8_t> text) {
  std::string s;
  for (size_t i = 0; i < text.size() && i < 200; i++) {
    const uint8_t c = text[i];
    s += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  return s;
}

// One option request: header and data, ready to send.
std::vector<uint8_t> OptionRequest(uint32_t option, size_t data_bytes) {
  std::vector<uint8_t> r(kOptionHeaderBytes + data_bytes);
  nbd::Put64(r.data(), nbd::kIHaveOpt);
  nbd::Put32(r.data() + 8, option);
  nbd::Put32(r.data() + 12, static_cast<uint32_t>(data_bytes));
  return r;
}

// Tries one resolved address until `deadline`; -1 with *error set on failure.
int ConnectOne(const addrinfo* a, Clock::time_point deadline, std::string* error) {
  const int fd =
      ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) {
    *error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int n;
  do n = ::poll(&p, 1, RemainingMs(deadline));
  while (n < 0 && errno == EINTR);
  int err = 0;
  socklen_t len = sizeof(err);
  if (n > 0 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) return fd;
  *error = n == 0 ? "timed out" : std::strerror(n < 0 ? errno : err);
  ::close(fd);
  return -1;
}

Result<int> ConnectSocket(const std::string& host, int port, const std::string& peer,
                          Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (rc != 0) {
    return Status::IoError("nbd: cannot resolve " + peer + ": " + ::gai_strerror(rc));
  }
  std::string error = "no address";
  int fd = -1;
  for (const addrinfo* a = list; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ConnectOne(a, deadline, &error);
  }
  ::freeaddrinfo(list);
  if (fd < 0) {
    return Status::IoError("nbd: cannot connect to " + peer + ": " + error +
                           " (is the NBD server running and listening there?)");
  }
  // One request at a time: Nagle would hold each small request for an ACK.
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

NbdClient::NbdClient(int fd, std::string peer, std::chrono::milliseconds timeout)
    : fd_(fd), peer_(std::move(peer)), timeout_(timeout) {}

NbdClient::~NbdClient() { Disconnect(); }

Result<std::unique_ptr<NbdClient>> NbdClient::Connect(const std::string& host, int port,
                                                      const std::string& export_name,
                                                      std::chrono::milliseconds timeout) {
  const std::string peer = host + ":" + std::to_string(port);
  if (port <= 0 || port > 65535) return Status::InvalidArgument("nbd: bad port in " + peer);
  if (export_name.size() > kMaxExportNameBytes) {
    return Status::InvalidArgument("nbd: export name longer than 4096 bytes");
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  Result<int> fd = ConnectSocket(host, port, peer, deadline);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<NbdClient> c(new NbdClient(*fd, peer, timeout));
  Status s = c->Handshake(export_name, deadline);
  if (!s.ok()) return c->Broken(s);  // no NBD_CMD_DISC: transmission never started
  c->transmission_ = true;
  return c;
}

bool NbdClient::read_only() const {
  return (flags_ & nbd::kHasFlags) != 0 && (flags_ & nbd::kReadOnly) != 0;
}

Status NbdClient::Handshake(const std::string& export_name, Deadline deadline) {
  uint8_t hello[18];  // NBDMAGIC, IHAVEOPT, handshake flags
  PS_RETURN_IF_ERROR(RecvAll(hello, deadline));
  if (nbd::Get64(hello) != nbd::kNbdMagic) {
    return Status::IoError("nbd: " + peer_ + " is not an NBD server (bad greeting)");
  }
  if (nbd::Get64(hello + 8) == kOldstyleMagic) {
    return Status::IoError("nbd: " + peer_ +
                           " speaks oldstyle negotiation, which is not supported");
  }
  if (nbd::Get64(hello + 8) != nbd::kIHaveOpt) {
    return Status::IoError("nbd: " + peer_ + " sent an unknown greeting");
  }
  const uint16_t server_flags = nbd::Get16(hello + 16);
  const bool fixed = (server_flags & nbd::kFlagFixedNewstyle) != 0;
  no_zeroes_ = (server_flags & nbd::kFlagNoZeroes) != 0;
  uint8_t client_flags[4];
  nbd::Put32(client_flags,
             (fixed ? nbd::kClientFixedNewstyle : 0u) | (no_zeroes_ ? nbd::kClientNoZeroes : 0u));
  PS_RETURN_IF_ERROR(SendAll(client_flags, {}, deadline));
  // Without fixed newstyle an unknown option may end the session, so only
  // EXPORT_NAME is safe.
  bool unsupported = !fixed;
  if (fixed) PS_RETURN_IF_ERROR(Go(export_name, deadline, &unsupported));
  return unsupported ? ExportName(export_name, deadline) : Status::Ok();
}

Status NbdClient::Go(const std::string& export_name, Deadline deadline, bool* unsupported) {
  // Data: u32 name length, name, u16 count, u16 info types.
  const size_t name_bytes = export_name.size();
  std::vector<uint8_t> req = OptionRequest(nbd::kOptGo, 4 + name_bytes + 4);
  uint8_t* d = req.data() + kOptionHeaderBytes;
  nbd::Put32(d, static_cast<uint32_t>(name_bytes));
  std::memcpy(d + 4, export_name.data(), name_bytes);
  nbd::Put16(d + 4 + name_bytes, 1);
  nbd::Put16(d + 6 + name_bytes, nbd::kInfoBlockSize);
  PS_RETURN_IF_ERROR(SendAll(req, {}, deadline));

  bool have_export = false;
  std::vector<uint8_t> data;
  for (int replies = 0; replies < nbd::kMaxOptions; replies++) {
    uint8_t h[kOptionReplyHeaderBytes];  // magic, option, type, length
    PS_RETURN_IF_ERROR(RecvAll(h, deadline));
    const uint32_t type = nbd::Get32(h + 12);
    const uint32_t length = nbd::Get32(h + 16);
    if (nbd::Get64(h) != nbd::kOptReplyMagic || nbd::Get32(h + 8) != nbd::kOptGo ||
        length > nbd::kMaxOptionBytes) {
      return Status::IoError("nbd: protocol error from " + peer_ + ": bad reply to NBD_OPT_GO");
    }
    data.resize(length);
    PS_RETURN_IF_ERROR(RecvAll(data, deadline));
    if (type == nbd::kRepInfo) {
      PS_RETURN_IF_ERROR(ParseInfo(data, &have_export));
    } else if (type == nbd::kRepAck) {
      if (have_export) return Status::Ok();
      return Status::IoError("nbd: protocol error from " + peer_ +
                             ": NBD_OPT_GO acknowledged without NBD_INFO_EXPORT");
    } else if (type == nbd::kRepErrUnsup) {
      *unsupported = true;
      return Status::Ok();
    } else if ((type & nbd::kRepErr) != 0) {
      return OptionError(type, export_name, data);
    }
    // Other reply types carry nothing GO needs; the spec lets clients skip them.
  }
  return Status::IoError("nbd: protocol error from " + peer_ + ": endless replies to NBD_OPT_GO");
}

Status NbdClient::ParseInfo(std::span<const uint8_t> d, bool* have_export) {
  const uint16_t info = d.size() >= 2 ? nbd::Get16(d.data()) : 0xffff;
  if (info == nbd::kInfoExport && d.size() == 12) {  // u64 size, u16 flags
    size_bytes_ = nbd::Get64(d.data() + 2);
    flags_ = nbd::Get16(d.data() + 10);
    *have_export = true;
  } else if (info == nbd::kInfoBlockSize && d.size() == 14) {  // u32 min, preferred, max
    const uint32_t preferred = nbd::Get32(d.data() + 6);
    const uint32_t max = nbd::Get32(d.data() + 10);
    if (preferred == 0 || max == 0) {
      return Status::IoError("nbd: protocol error from " + peer_ + ": zero block size");
    }
    preferred_block_bytes_ = preferred;
    max_payload_bytes_ = max;
  } else if (info == nbd::kInfoExport || info == nbd::kInfoBlockSize || d.size() < 2) {
    return Status::IoError("nbd: protocol error from " + peer_ + ": malformed NBD_REP_INFO");
  }
  return Status::Ok();  // other information (name, description) is not needed
}

Status NbdClient::OptionError(uint32_t type, const std::string& export_name,
                              std::span<const uint8_t> text) {
  const std::string detail =
      " (" + OptionErrorName(type) + (text.empty() ? "" : ": " + Printable(text)) + ")";
  // Ending politely lets the server log a clean close; no reply is awaited.
  std::vector<uint8_t> abort = OptionRequest(nbd::kOptAbort, 0);
  (void)::send(fd_, abort.data(), abort.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  const std::string where = "nbd: export '" + export_name + "' on " + peer_;
  switch (type) {
    case nbd::kRepErrUnknown: return Status::NotFound(where + " not found" + detail);
    case nbd::kRepErrPolicy: return Status::FailedPrecondition(where + " refused" + detail);
    case nbd::kRepErrTlsReqd:
      return Status::FailedPrecondition(where + " requires TLS, which this client lacks" + detail);
    default: return Status::IoError(where + " could not be opened" + detail);
  }
}

Status NbdClient::ExportName(const std::string& export_name, Deadline deadline) {
  std::vector<uint8_t> req = OptionRequest(nbd::kOptExportName, export_name.size());
  std::memcpy(req.data() + kOptionHeaderBytes, export_name.data(), export_name.size());
  PS_RETURN_IF_ERROR(SendAll(req, {}, deadline));
  uint8_t r[kExportNameReplyBytes];
  Status s = RecvAll({r, no_zeroes_ ? size_t{10} : sizeof(r)}, deadline);
  if (!s.ok() && peer_closed_) {
    // EXPORT_NAME has no error reply: closing is how a server refuses it.
    return Status::NotFound("nbd: export '" + export_name + "' not found on " + peer_ +
                            " (server closed the connection after NBD_OPT_EXPORT_NAME)");
  }
  PS_RETURN_IF_ERROR(s);
  size_bytes_ = nbd::Get64(r);
  flags_ = nbd::Get16(r + 8);
  return Status::Ok();
}

Status NbdClient::CheckLength(const char* what, size_t length) const {
  if (length == 0) return Status::InvalidArgument(std::string("nbd: zero-length ") + what);
  if (length > max_payload_bytes_) {
    return Status::InvalidArgument("nbd: " + std::string(what) + " of " + std::to_string(length) +
                                   " bytes exceeds the server's maximum of " +
                                   std::to_string(max_payload_bytes_));
  }
  return Status::Ok();
}

Status NbdClient::Read(uint64_t offset, std::span<uint8_t> out) {
  PS_RETURN_IF_ERROR(CheckLength("read", out.size()));
  return Transact(nbd::kCmdRead, 0, offset, static_cast<uint32_t>(out.size()), {}, out);
}

Status NbdClient::Write(uint64_t offset, std::span<const uint8_t> data, bool fua) {
  PS_RETURN_IF_ERROR(CheckLength("write", data.size()));
  if (read_only()) return Status::FailedPrecondition("nbd: export on " + peer_ + " is read-only");
  const bool native_fua = fua && (flags_ & nbd::kSendFua) != 0;
  PS_RETURN_IF_ERROR(Transact(nbd::kCmdWrite, native_fua ? nbd::kCmdFlagFua : 0, offset,
                              static_cast<uint32_t>(data.size()), data, {}));
  return fua && !native_fua ? Flush() : Status::Ok();
}

Status NbdClient::Flush() {
  if ((flags_ & nbd::kSendFlush) == 0) return Usable();  // no write cache: nothing to flush
  return Transact(nbd::kCmdFlush, 0, 0, 0, {}, {});
}

void NbdClient::Disconnect() {
  if (fd_ < 0) return;
  if (transmission_) {
    uint8_t req[nbd::kRequestBytes] = {};
    nbd::Put32(req, nbd::kRequestMagic);
    nbd::Put16(req + 6, nbd::kCmdDisc);
    nbd::Put64(req + 8, next_handle_++);
    // Best effort and never blocking: DISC has no reply, and a peer that
    // stopped reading must not stall the caller.
    (void)::send(fd_, req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  ::close(fd_);
  fd_ = -1;
  closed_why_ = "disconnected";
}

Status NbdClient::Transact(uint16_t type, uint16_t cmd_flags, uint64_t offset, uint32_t length,
                           std::span<const uint8_t> payload, std::span<uint8_t> reply_data) {
  PS_RETURN_IF_ERROR(Usable());
  const Deadline deadline = Clock::now() + timeout_;
  const uint64_t handle = next_handle_++;
  uint8_t req[nbd::kRequestBytes];
  nbd::Put32(req, nbd::kRequestMagic);
  nbd::Put16(req + 4, cmd_flags);
  nbd::Put16(req + 6, type);
  nbd::Put64(req + 8, handle);
  nbd::Put64(req + 16, offset);
  nbd::Put32(req + 24, length);
  PS_RETURN_IF_ERROR(SendAll(req, payload, deadline));

  uint8_t reply[nbd::kSimpleReplyBytes];  // magic, error, handle
  PS_RETURN_IF_ERROR(RecvAll(reply, deadline));
  const uint32_t magic = nbd::Get32(reply);
  if (magic != nbd::kSimpleReplyMagic) {
    return Broken(Status::IoError("nbd: protocol error from " + peer_ +
                                  (magic == nbd::kStructuredReplyMagic
                                       ? ": structured reply, never negotiated"
                                       : ": bad reply magic")));
  }
  if (nbd::Get64(reply + 8) != handle) {
    return Broken(Status::IoError("nbd: protocol error from " + peer_ +
                                  ": reply for another request (handle mismatch)"));
  }
  const uint32_t error = nbd::Get32(reply + 4);
  // Spec: after a simple reply with an error the server sends no payload.
  if (error != 0) return ReplyError(type, error, offset, length);
  return reply_data.empty() ? Status::Ok() : RecvAll(reply_data, deadline);
}

Status NbdClient::ReplyError(uint16_t type, uint32_t error, uint64_t offset,
                             uint32_t length) const {
  const std::string m = "nbd: " + std::string(CommandName(type)) +
                        " failed: " + WireErrorName(error) + " (offset " + std::to_string(offset) +
                        ", length " + std::to_string(length) + ", export size " +
                        std::to_string(size_bytes_) + ", server " + peer_ + ")";
  if (error == nbd::kENoSpc) return Status::NoSpace(m);
  if (error == nbd::kEInval || error == nbd::kEOverflow) return Status::InvalidArgument(m);
  return Status::IoError(m);
}

Status NbdClient::SendAll(std::span<const uint8_t> head, std::span<const uint8_t> body,
                          Deadline deadline) {
  iovec iov[2] = {{const_cast<uint8_t*>(head.data()), head.size()},
                  {const_cast<uint8_t*>(body.data()), body.size()}};
  size_t first = 0;
  const size_t count = body.empty() ? 1 : 2;
  while (first < count) {
    msghdr m{};
    m.msg_iov = iov + first;
    m.msg_iovlen = count - first;
    const ssize_t n = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        PS_RETURN_IF_ERROR(WaitFor(POLLOUT, deadline));
        continue;
      }
      if (errno == EPIPE || errno == ECONNRESET) {
        return Broken(Status::IoError("nbd: connection closed by server " + peer_));
      }
      return Broken(Status::IoError("nbd: send to " + peer_ + " failed: " + std::strerror(errno)));
    }
    // Skip what was sent: whole iovecs, then a prefix of the next one.
    size_t sent = static_cast<size_t>(n);
    while (first < count && sent >= iov[first].iov_len) sent -= iov[first++].iov_len;
    if (first < count) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + sent;
      iov[first].iov_len -= sent;
    }
  }
  return Status::Ok();
}

Status NbdClient::RecvAll(std::span<uint8_t> out, Deadline deadline) {
  peer_closed_ = false;
  size_t got = 0;
  while (got < out.size()) {
    // Poll first: at QD1 the answer is rarely there yet, so a recv would
    // usually just return EAGAIN.
    PS_RETURN_IF_ERROR(WaitFor(POLLIN, deadline));
    const ssize_t n = ::recv(fd_, out.data() + got, out.size() - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0 || errno == ECONNRESET) {
      peer_closed_ = true;
      return Broken(Status::IoError("nbd: connection closed by server " + peer_));
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return Broken(
          Status::IoError("nbd: receive from " + peer_ + " failed: " + std::strerror(errno)));
    }
  }
  return Status::Ok();
}

Status NbdClient::WaitFor(short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, RemainingMs(deadline));
    // Readiness includes POLLERR/POLLHUP: the next send or recv reports them.
    if (n > 0) return Status::Ok();
    if (n == 0) {
      return Broken(Status::IoError("nbd: no answer from " + peer_ + " within " +
                                    std::to_string(timeout_.count()) + " ms"));
    }
    if (errno != EINTR) {
      return Broken(Status::IoError("nbd: poll on " + peer_ + " failed: " + std::strerror(errno)));
    }
  }
}

Status NbdClient::Broken(Status s) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  closed_why_ = s.message();
  return s;
}

Status NbdClient::Usable() const {
  if (fd_ >= 0) return Status::Ok();
  return Status::FailedPrecondition("nbd: not connected to " + peer_ + " (" + closed_why_ + ")");
}

}  // namespace pstorage::bench
