// Wire handling for HttpClient. The socket is non-blocking; every wait goes
// through poll() against one deadline per call, so a silent server costs at
// most the timeout. Requests are never pipelined: one request, one response.
#include "api/http_client.h"

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
#include <memory>

namespace pstorage::api {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHeaderBytes = 64 << 10;  // status line + fields, per response
constexpr size_t kMaxLineBytes = 8 << 10;     // chunk-size and trailer lines
constexpr uint64_t kMaxBodyBytes = 1ull << 30;
constexpr size_t kRecvBytes = 64 << 10;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool HasCrLf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

Status Errno(std::string_view what, int err) {
  return Status::IoError(std::string(what) + ": " + std::strerror(err));
}

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitFd(int fd, short events, Clock::time_point deadline, short* revents = nullptr) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status::IoError("timed out");
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (revents != nullptr) *revents = p.revents;
    if (n > 0) return Status::Ok();
    if (n < 0 && errno != EINTR) return Errno("poll", errno);
  }
}

Result<int> Connect(const std::string& host, int port, Clock::time_point deadline) {
  if (port <= 0 || port > 65535) return Status::InvalidArgument("bad port " + std::to_string(port));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (rc != 0) return Status::IoError("resolve " + host + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(list, &::freeaddrinfo);

  Status last = Status::IoError("resolve " + host + ": no IPv4 address");
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      ai->ai_protocol);
    if (fd < 0) return Errno("socket", errno);
    Status s;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        s = Errno("connect", errno);
      } else {
        s = WaitFd(fd, POLLOUT, deadline);
        int err = 0;
        socklen_t len = sizeof(err);
        if (!s.ok()) {
          s = Status::IoError("connect: " + s.message());
        } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
          s = Errno("connect", err != 0 ? err : errno);
        }
      }
    }
    if (s.ok()) {
      // Requests are small writes followed by a wait: Nagle would add delay.
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return fd;
    }
    ::close(fd);
    last = s;
  }
  return last;
}

// How sending a request ended.
struct Sent {
  Status status;       // OK when every byte went out
  bool early = false;  // the server answered or closed first: a response may be waiting
};

// Sends `head` then `body` (no copy of a large body into one buffer).
Sent SendAll(int fd, std::string_view head, std::string_view body, Clock::time_point deadline) {
  size_t done = 0;
  const size_t total = head.size() + body.size();
  while (done < total) {
    iovec iov[2];
    int n_iov = 0;
    if (done < head.size()) {
      iov[n_iov++] = {const_cast<char*>(head.data() + done), head.size() - done};
    }
    size_t body_done = done > head.size() ? done - head.size() : 0;
    if (body_done < body.size()) {
      iov[n_iov++] = {const_cast<char*>(body.data() + body_done), body.size() - body_done};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n_iov);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // A server that refuses a request (413, 401) may answer and stop
      // reading: waiting for room to send would then last until the timeout.
      short revents = 0;
      Status s = WaitFd(fd, POLLOUT | POLLIN, deadline, &revents);
      if (!s.ok()) return {Status::IoError("sending the request: " + s.message())};
      if ((revents & POLLOUT) == 0) {
        return {Status::IoError("the server answered before the request was sent"), true};
      }
    } else if (n < 0 && errno != EINTR) {
      return {Errno("send", errno), errno == EPIPE || errno == ECONNRESET};
    }
  }
  return {};
}

// The result of reading one response off the connection.
struct Received {
  HttpResponse response;
  bool keep_alive = true;  // the connection may carry another request
};

// Reads one response from a connection. Bytes read past it stay in `buf`.
class ResponseReader {
 public:
  ResponseReader(int fd, std::string* buf, Clock::time_point deadline)
      : fd_(fd), buf_(buf), deadline_(deadline) {}
  ~ResponseReader() { buf_->erase(0, pos_); }
  ResponseReader(const ResponseReader&) = delete;
  ResponseReader& operator=(const ResponseReader&) = delete;

  Result<Received> Read(bool head_request);

  // The peer closed or reset the connection before one byte of the response
  // arrived: how a server's drop of an idle keep-alive connection looks.
  bool DroppedBeforeResponse() const { return dropped_ && received_ == 0; }

 private:
  size_t Available() const { return buf_->size() - pos_; }
  Status Fill();  // appends at least one byte to buf_, or fails
  Result<std::string_view> ReadLine();
  Status ReadExact(uint64_t n, std::string* out);
  Status ReadToEof(std::string* out);
  Status ReadHead(HttpResponse* r, bool* http10);
  Status ReadChunked(std::string* out);

  const int fd_;
  std::string* const buf_;
  size_t pos_ = 0;  // bytes of *buf_ already consumed
  const Clock::time_point deadline_;
  uint64_t received_ = 0;
  bool eof_ = false;
  bool dropped_ = false;  // EOF or ECONNRESET
};

Status ResponseReader::Fill() {
  if (eof_) return Status::IoError("connection closed by the server");
  if (pos_ == buf_->size()) {
    buf_->clear();
    pos_ = 0;
  }
  for (;;) {
    const size_t old = buf_->size();
    buf_->resize(old + kRecvBytes);
    ssize_t n = ::recv(fd_, buf_->data() + old, kRecvBytes, 0);
    buf_->resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n > 0) {
      received_ += static_cast<uint64_t>(n);
      return Status::Ok();
    }
    if (n == 0) {
      eof_ = dropped_ = true;
      return Status::IoError("connection closed by the server");
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Status s = WaitFd(fd_, POLLIN, deadline_);
      if (!s.ok()) return Status::IoError("reading the response: " + s.message());
    } else if (errno != EINTR) {
      if (errno == ECONNRESET) dropped_ = true;
      return Errno("recv", errno);
    }
  }
}

Result<std::string_view> ResponseReader::ReadLine() {
  size_t scanned = 0;  // bytes after pos_ known not to start "\r\n"
  for (;;) {
    size_t eol = buf_->find("\r\n", pos_ + scanned);
    if (eol != std::string::npos) {
      std::string_view line(buf_->data() + pos_, eol - pos_);
      pos_ = eol + 2;
      return line;
    }
    if (Available() > kMaxLineBytes) return Status::IoError("response line too long");
    scanned = Available() > 0 ? Available() - 1 : 0;
    PS_RETURN_IF_ERROR(Fill());
  }
}

Status ResponseReader::ReadExact(uint64_t n, std::string* out) {
  if (out->size() + n > kMaxBodyBytes) return Status::IoError("response body too large");
  const size_t take = static_cast<size_t>(std::min<uint64_t>(n, Available()));
  out->append(*buf_, pos_, take);
  pos_ += take;
  size_t need = static_cast<size_t>(n) - take;
  // Large bodies go straight from the socket into `out`.
  size_t at = out->size();
  out->resize(at + need);
  while (need > 0) {
    ssize_t got = ::recv(fd_, out->data() + at, need, 0);
    if (got > 0) {
      received_ += static_cast<uint64_t>(got);
      at += static_cast<size_t>(got);
      need -= static_cast<size_t>(got);
    } else if (got == 0) {
      eof_ = true;
      return Status::IoError("connection closed in the middle of the response body");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Status s = WaitFd(fd_, POLLIN, deadline_);
      if (!s.ok()) return Status::IoError("reading the response body: " + s.message());
    } else if (errno != EINTR) {
      return Errno("recv", errno);
    }
  }
  return Status::Ok();
}

Status ResponseReader::ReadToEof(std::string* out) {
  for (;;) {
    out->append(*buf_, pos_, Available());
    pos_ = buf_->size();
    if (out->size() > kMaxBodyBytes) return Status::IoError("response body too large");
    Status s = Fill();
    if (!s.ok()) return eof_ ? Status::Ok() : s;
  }
}

Status ResponseReader::ReadHead(HttpResponse* r, bool* http10) {
  size_t scanned = 0;  // bytes after pos_ known not to start "\r\n\r\n"
  size_t end;
  while ((end = buf_->find("\r\n\r\n", pos_ + scanned)) == std::string::npos) {
    if (Available() > kMaxHeaderBytes) return Status::IoError("response header too large");
    scanned = Available() >= 3 ? Available() - 3 : 0;
    Status s = Fill();
    if (!s.ok()) {
      if (received_ == 0) return s;
      return Status::IoError("incomplete response header: " + s.message());
    }
  }
  std::string_view head(buf_->data() + pos_, end - pos_);
  pos_ = end + 4;

  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
  // "HTTP/1.1 200 OK": the reason phrase is optional.
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      status_line[8] != ' ' || (status_line.size() > 12 && status_line[12] != ' ')) {
    return Status::IoError("malformed status line: " + std::string(status_line.substr(0, 80)));
  }
  r->status = 0;
  for (size_t i = 9; i < 12; i++) {
    if (status_line[i] < '0' || status_line[i] > '9') {
      return Status::IoError("malformed status code: " + std::string(status_line.substr(0, 80)));
    }
    r->status = r->status * 10 + (status_line[i] - '0');
  }
  *http10 = status_line[7] == '0';

  r->headers.clear();
  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t') {
      return Status::IoError("malformed header line: " + std::string(line.substr(0, 80)));
    }
    std::string& value = r->headers[Lower(line.substr(0, colon))];
    if (!value.empty()) value += ", ";  // repeated fields combine as a list
    value += Trim(line.substr(colon + 1));
  }
  return Status::Ok();
}

Status ResponseReader::ReadChunked(std::string* out) {
  for (;;) {
    Result<std::string_view> line = ReadLine();
    if (!line.ok()) return line.status();
    std::string_view size_text = Trim(line->substr(0, line->find(';')));  // drop extensions
    if (size_text.empty()) return Status::IoError("malformed chunk size");
    uint64_t size = 0;
    for (char c : size_text) {
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (digit < 0 || size > kMaxBodyBytes) return Status::IoError("malformed chunk size");
      size = size * 16 + static_cast<uint64_t>(digit);
    }
    if (size == 0) break;
    PS_RETURN_IF_ERROR(ReadExact(size, out));
    line = ReadLine();
    if (!line.ok()) return line.status();
    if (!line->empty()) return Status::IoError("chunk not followed by CRLF");
  }
  // Trailer fields carry nothing this client uses; skip to the empty line.
  for (;;) {
    Result<std::string_view> line = ReadLine();
    if (!line.ok()) return line.status();
    if (line->empty()) return Status::Ok();
  }
}

Result<Received> ResponseReader::Read(bool head_request) {
  Received got;
  HttpResponse& r = got.response;
  bool http10 = false;
  // Interim responses (100 Continue and the like) precede the real one.
  do {
    PS_RETURN_IF_ERROR(ReadHead(&r, &http10));
  } while (r.status >= 100 && r.status < 200 && r.status != 101);

  std::string connection = Lower(r.Header("connection"));
  got.keep_alive = http10 ? connection.find("keep-alive") != std::string::npos
                          : connection.find("close") == std::string::npos;
  if (head_request || r.status < 200 || r.status == 204 || r.status == 304) return got;

  Status s;
  std::string te = Lower(r.Header("transfer-encoding"));
  std::string cl = r.Header("content-length");
  if (!te.empty()) {
    if (te.size() >= 7 && te.compare(te.size() - 7, 7, "chunked") == 0) {
      s = ReadChunked(&r.body);
    } else {
      got.keep_alive = false;
      s = ReadToEof(&r.body);
    }
  } else if (!cl.empty()) {
    uint64_t n = 0;
    for (char c : cl) {
      if (c < '0' || c > '9' || n > kMaxBodyBytes) {
        return Status::IoError("malformed Content-Length: " + cl.substr(0, 40));
      }
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    s = ReadExact(n, &r.body);
  } else {
    got.keep_alive = false;  // the body ends when the server closes
    s = ReadToEof(&r.body);
  }
  if (!s.ok()) return s;
  // Unrequested bytes after a response mean the framing is off; start clean.
  if (Available() > 0 || eof_) got.keep_alive = false;
  return got;
}

bool IsHead(std::string_view method) { return method == "HEAD"; }

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(std::string host, int port) : host_(std::move(host)), port_(port) {}

HttpClient::~HttpClient() { Close(); }

void HttpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  rbuf_.clear();
}

Result<HttpResponse> HttpClient::Request(std::string_view method, std::string_view target,
                                         std::string_view body, const HttpHeaders& headers) {
  if (method.empty() || HasCrLf(method) || method.find(' ') != std::string_view::npos ||
      target.empty() || HasCrLf(target) || target.find(' ') != std::string_view::npos) {
    return Status::InvalidArgument("bad request line");
  }
  bool has_host = false, has_connection = false, has_length = false;
  std::string head;
  head.reserve(256);
  head.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  for (const auto& [name, value] : headers) {
    if (name.empty() || HasCrLf(name) || HasCrLf(value)) {
      return Status::InvalidArgument("bad header " + name);
    }
    std::string lower = Lower(name);
    has_host |= lower == "host";
    has_connection |= lower == "connection";
    has_length |= lower == "content-length";
    head.append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_host) head += "Host: " + host_ + ":" + std::to_string(port_) + "\r\n";
  if (!has_connection) head += "Connection: keep-alive\r\n";
  if (!has_length && (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")) {
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  head += "\r\n";

  const auto deadline = Clock::now() + timeout_;
  const std::string where = host_ + ":" + std::to_string(port_);
  for (int attempt = 0;; attempt++) {
    bool reused = fd_ >= 0;
    if (reused) {
      // A server that closed the idle connection has left EOF (or a final
      // unsolicited response) waiting: either way the connection is done.
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) != 0) {
        Close();
        reused = false;
      }
    }
    if (!reused) {
      Result<int> fd = Connect(host_, port_, deadline);
      if (!fd.ok()) return Status(fd.status().code(), where + ": " + fd.status().message());
      fd_ = *fd;
    }
    Sent sent = SendAll(fd_, head, body, deadline);
    ResponseReader reader(fd_, &rbuf_, deadline);
    Result<Received> got = Status::IoError("not read");
    // After an early answer or close, a response is still the best report.
    const bool read = sent.status.ok() || sent.early;
    if (read) got = reader.Read(IsHead(method));
    if (got.ok()) {
      // A server that refused a request may not have read its body (Pistache
      // answers 413 and keeps going): the stream's framing is then unknown.
      bool refused = !body.empty() && got->response.status >= 400;
      if (!sent.status.ok() || !got->keep_alive || refused) Close();
      return std::move(got->response);
    }
    Close();
    if (reused && read && reader.DroppedBeforeResponse() && attempt == 0) continue;
    const Status& why = sent.status.ok() ? got.status() : sent.status;
    return Status::IoError(where + ": " + why.message());
  }
}

Result<HttpResponse> HttpClient::RawExchange(std::string_view bytes) {
  Close();
  const auto deadline = Clock::now() + timeout_;
  const std::string where = host_ + ":" + std::to_string(port_);
  Result<int> fd = Connect(host_, port_, deadline);
  if (!fd.ok()) return Status(fd.status().code(), where + ": " + fd.status().message());
  fd_ = *fd;
  Sent sent = SendAll(fd_, bytes, {}, deadline);
  Result<Received> got = Status::IoError("not read");
  if (sent.status.ok() || sent.early) {
    ResponseReader reader(fd_, &rbuf_, deadline);
    got = reader.Read(bytes.substr(0, 5) == "HEAD ");
  }
  Close();
  if (got.ok()) return std::move(got->response);
  return Status::IoError(where + ": " + (sent.status.ok() ? got.status() : sent.status).message());
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace pstorage::api
