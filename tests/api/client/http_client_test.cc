// HttpClient against a real loopback socket. A test thread accepts one
// connection at a time and runs the test's script on it: the script reads
// requests and writes exactly the bytes the test wants, including broken ones.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "tests/status_matchers.h"

namespace pstorage::api {
namespace {

class ScriptedServer {
 public:
  // Runs on the server thread for each accepted connection; `index` counts
  // from 0. The server closes `fd` when the script returns.
  using Script = std::function<void(ScriptedServer& server, int fd, int index)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(0, ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
    EXPECT_EQ(0, ::listen(listen_fd_, 8));
    socklen_t len = sizeof(addr);
    EXPECT_EQ(0, ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len));
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(0, ::pipe2(stop_pipe_, O_CLOEXEC));
    thread_ = std::thread([this] { Run(); });
  }

  ~ScriptedServer() {
    char c = 0;
    EXPECT_EQ(1, ::write(stop_pipe_[1], &c, 1));
    thread_.join();
    ::close(listen_fd_);
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }

  int port() const { return port_; }
  int accepts() const { return accepts_.load(); }

  // Blocks until the server has closed `n` connections.
  void WaitClosed(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ >= n; });
  }

  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  // Reads one request (head and Content-Length body); "" on EOF. The client
  // never pipelines, so nothing past the request arrives early.
  std::string ReadRequest(int fd) {
    std::string req;
    size_t body_at = std::string::npos, want = 0;
    char buf[65536];
    while (body_at == std::string::npos || req.size() < body_at + want) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return "";
      req.append(buf, static_cast<size_t>(n));
      if (body_at == std::string::npos && req.find("\r\n\r\n") != std::string::npos) {
        body_at = req.find("\r\n\r\n") + 4;
        size_t cl = req.find("Content-Length: ");
        if (cl != std::string::npos && cl < body_at) want = std::stoull(req.substr(cl + 16));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req);
    return req;
  }

  static void Write(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

 private:
  void Run() {
    for (int index = 0;; index++) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 || p[1].revents != 0) return;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      accepts_++;
      script_(*this, fd, index);
      ::close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      closed_++;
      cv_.notify_all();
    }
  }

  Script script_;
  int listen_fd_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<int> accepts_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int closed_ = 0;                     // guarded by mu_
  std::vector<std::string> requests_;  // guarded by mu_
};

constexpr char kHello[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

// Answers every request on a connection with `response` until the client
// closes it.
ScriptedServer::Script AnswerAll(std::string response) {
  return [response](ScriptedServer& s, int fd, int) {
    while (!s.ReadRequest(fd).empty()) ScriptedServer::Write(fd, response);
  };
}

TEST(HttpClientTest, ContentLengthBodyAndLowerCasedHeaders) {
  ScriptedServer server(AnswerAll(
      "HTTP/1.1 201 Created\r\nContent-Length: 11\r\nX-Request-ID: abc\r\n"
      "Content-Type:  application/json \r\n\r\n{\"ok\":true}"));
  HttpClient client("127.0.0.1", server.port());
  Result<HttpResponse> r = client.Request("GET", "/api/v1/volumes");
  ASSERT_OK(r.status());
  EXPECT_EQ(201, r->status);
  EXPECT_EQ("{\"ok\":true}", r->body);
  EXPECT_EQ("abc", r->headers["x-request-id"]);
  EXPECT_EQ("application/json", r->Header("Content-TYPE"));
  EXPECT_EQ("", r->Header("x-missing"));
}

TEST(HttpClientTest, SendsHostConnectionContentLengthAndCallerHeaders) {
  ScriptedServer server(AnswerAll(kHello));
  HttpClient client("127.0.0.1", server.port());
  ASSERT_OK(client.Request("POST", "/a?b=c", "", {{"X-API-Key", "k1"}}).status());
  ASSERT_OK(client.Request("PUT", "/d", "12345").status());
  ASSERT_OK(client.Request("GET", "/e").status());
  std::vector<std::string> reqs = server.requests();
  ASSERT_EQ(3u, reqs.size());
  std::string host = "Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
  EXPECT_EQ(0u, reqs[0].find("POST /a?b=c HTTP/1.1\r\n")) << reqs[0];
  EXPECT_NE(std::string::npos, reqs[0].find(host)) << reqs[0];
  EXPECT_NE(std::string::npos, reqs[0].find("Connection: keep-alive\r\n")) << reqs[0];
  EXPECT_NE(std::string::npos, reqs[0].find("X-API-Key: k1\r\n")) << reqs[0];
  EXPECT_NE(std::string::npos, reqs[0].find("Content-Length: 0\r\n")) << reqs[0];
  EXPECT_NE(std::string::npos, reqs[1].find("Content-Length: 5\r\n\r\n12345")) << reqs[1];
  EXPECT_EQ(std::string::npos, reqs[2].find("Content-Length")) << reqs[2];
}

TEST(HttpClientTest, RejectsLineBreaksInRequestLineAndHeaders) {
  HttpClient client("127.0.0.1", 1);
  EXPECT_EQ(Code::kInvalidArgument, client.Request("GET", "/a\r\nX: y").status().code());
  EXPECT_EQ(Code::kInvalidArgument,
            client.Request("GET", "/", "", {{"A", "b\nc"}}).status().code());
}

TEST(HttpClientTest, ChunkedBodyWithExtensionsAndTrailers) {
  ScriptedServer server(AnswerAll(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n"
      "1\r\n \r\n"
      "A ; quoted=\"x;y\"\r\nworld, wor\r\n"
      "0\r\nX-Checksum: 123\r\nX-Other: 4\r\n\r\n"));
  HttpClient client("127.0.0.1", server.port());
  // The second request proves the trailers were consumed to the last byte.
  for (int i = 0; i < 2; i++) {
    Result<HttpResponse> r = client.Request("GET", "/chunked");
    ASSERT_OK(r.status());
    EXPECT_EQ(200, r->status);
    EXPECT_EQ("hello world, wor", r->body);
  }
  EXPECT_EQ(1, server.accepts());
}

TEST(HttpClientTest, NoContentNotModifiedAndHeadHaveNoBody) {
  ScriptedServer server([](ScriptedServer& s, int fd, int) {
    s.ReadRequest(fd);
    ScriptedServer::Write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    s.ReadRequest(fd);
    ScriptedServer::Write(fd, "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n");
    s.ReadRequest(fd);
    // HEAD: the length of the body a GET would get, and no body.
    ScriptedServer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    while (!s.ReadRequest(fd).empty()) ScriptedServer::Write(fd, kHello);
  });
  HttpClient client("127.0.0.1", server.port());
  client.set_timeout(std::chrono::seconds(5));
  Result<HttpResponse> r = client.Request("DELETE", "/v/1");
  ASSERT_OK(r.status());
  EXPECT_EQ(204, r->status);
  EXPECT_EQ("", r->body);
  r = client.Request("GET", "/v/1");
  ASSERT_OK(r.status());
  EXPECT_EQ(304, r->status);
  r = client.Request("HEAD", "/v/1");
  ASSERT_OK(r.status());
  EXPECT_EQ("1000", r->Header("content-length"));
  EXPECT_EQ("", r->body);
  r = client.Request("GET", "/v/1");
  ASSERT_OK(r.status());
  EXPECT_EQ("hello", r->body);
  EXPECT_EQ(1, server.accepts());
}

TEST(HttpClientTest, KeepAliveReusesOneConnection) {
  ScriptedServer server(AnswerAll(kHello));
  HttpClient client("127.0.0.1", server.port());
  for (int i = 0; i < 3; i++) {
    Result<HttpResponse> r = client.Request("GET", "/health");
    ASSERT_OK(r.status());
    EXPECT_EQ("hello", r->body);
  }
  EXPECT_EQ(1, server.accepts());
  EXPECT_EQ(3u, server.requests().size());
}

TEST(HttpClientTest, ConnectionCloseHeaderEndsTheConnection) {
  ScriptedServer server(
      AnswerAll("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
  HttpClient client("127.0.0.1", server.port());
  ASSERT_OK(client.Request("GET", "/").status());
  ASSERT_OK(client.Request("GET", "/").status());
  EXPECT_EQ(2, server.accepts());
}

TEST(HttpClientTest, ReconnectsWhenTheServerClosedTheIdleConnection) {
  ScriptedServer server([](ScriptedServer& s, int fd, int index) {
    if (index == 0) {
      s.ReadRequest(fd);
      ScriptedServer::Write(fd, kHello);
      return;  // an idle timeout on the server: close after one response
    }
    while (!s.ReadRequest(fd).empty()) ScriptedServer::Write(fd, kHello);
  });
  HttpClient client("127.0.0.1", server.port());
  ASSERT_OK(client.Request("GET", "/1").status());
  server.WaitClosed(1);
  Result<HttpResponse> r = client.Request("GET", "/2");
  ASSERT_OK(r.status());
  EXPECT_EQ("hello", r->body);
  EXPECT_EQ(2, server.accepts());
}

// The close races the next request: the server reads it, then drops the
// connection without a byte of response. The client resends on a new one.
TEST(HttpClientTest, ResendsOnceWhenAnIdleConnectionDropsTheRequest) {
  ScriptedServer server([](ScriptedServer& s, int fd, int index) {
    s.ReadRequest(fd);
    if (index == 0) {
      ScriptedServer::Write(fd, kHello);
      s.ReadRequest(fd);
      return;
    }
    ScriptedServer::Write(fd, kHello);
    while (!s.ReadRequest(fd).empty()) ScriptedServer::Write(fd, kHello);
  });
  HttpClient client("127.0.0.1", server.port());
  ASSERT_OK(client.Request("GET", "/1").status());
  Result<HttpResponse> r = client.Request("POST", "/2", "body");
  ASSERT_OK(r.status());
  EXPECT_EQ("hello", r->body);
  EXPECT_EQ(2, server.accepts());
  std::vector<std::string> reqs = server.requests();
  ASSERT_EQ(3u, reqs.size());
  EXPECT_EQ(reqs[1], reqs[2]);
}

TEST(HttpClientTest, FreshConnectionClosedWithoutResponseIsNotRetried) {
  ScriptedServer server([](ScriptedServer& s, int fd, int) { s.ReadRequest(fd); });
  HttpClient client("127.0.0.1", server.port());
  Result<HttpResponse> r = client.Request("GET", "/");
  EXPECT_EQ(Code::kIoError, r.status().code());
  server.WaitClosed(1);
  EXPECT_EQ(1, server.accepts());
}

TEST(HttpClientTest, ServerClosingMidResponseIsIoError) {
  ScriptedServer server([](ScriptedServer& s, int fd, int index) {
    s.ReadRequest(fd);
    if (index == 0) {
      ScriptedServer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part");
    } else if (index == 1) {
      ScriptedServer::Write(fd,
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    } else {
      ScriptedServer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Le");
    }
  });
  HttpClient client("127.0.0.1", server.port());
  for (int i = 0; i < 3; i++) {
    Result<HttpResponse> r = client.Request("GET", "/");
    EXPECT_EQ(Code::kIoError, r.status().code()) << i;
  }
  // Part of a response arrived each time, so none was resent.
  server.WaitClosed(3);
  EXPECT_EQ(3, server.accepts());
}

TEST(HttpClientTest, SilentServerTimesOut) {
  std::latch release(1);
  ScriptedServer server([&](ScriptedServer& s, int fd, int) {
    s.ReadRequest(fd);
    release.wait();
  });
  HttpClient client("127.0.0.1", server.port());
  client.set_timeout(std::chrono::milliseconds(200));
  auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> r = client.Request("GET", "/slow");
  auto waited = std::chrono::steady_clock::now() - start;
  release.count_down();
  EXPECT_EQ(Code::kIoError, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("timed out")) << r.status().ToString();
  EXPECT_GE(waited, std::chrono::milliseconds(190));
  EXPECT_LT(waited, std::chrono::seconds(10));
}

TEST(HttpClientTest, ResponseSplitAcrossManySmallWrites) {
  const std::string response =
      "HTTP/1.1 200 OK\r\nX-A: b\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nlengthy";
  ScriptedServer server([&](ScriptedServer& s, int fd, int) {
    const size_t second = response.find("HTTP/1.1", 10);
    s.ReadRequest(fd);
    for (size_t i = 0; i < second; i++) ScriptedServer::Write(fd, response.substr(i, 1));
    s.ReadRequest(fd);
    for (size_t i = second; i < response.size(); i++) {
      ScriptedServer::Write(fd, response.substr(i, 1));
    }
    s.ReadRequest(fd);
  });
  HttpClient client("127.0.0.1", server.port());
  Result<HttpResponse> r = client.Request("GET", "/1");
  ASSERT_OK(r.status());
  EXPECT_EQ("wikipedia", r->body);
  EXPECT_EQ("b", r->Header("x-a"));
  r = client.Request("GET", "/2");
  ASSERT_OK(r.status());
  EXPECT_EQ("lengthy", r->body);
  EXPECT_EQ(1, server.accepts());
}

TEST(HttpClientTest, LargeBodiesBothWays) {
  std::string big(5 << 20, '\0');
  for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>(i * 131 % 251);
  ScriptedServer server([&](ScriptedServer& s, int fd, int) {
    std::string req = s.ReadRequest(fd);
    bool same =
        req.size() > big.size() && req.compare(req.size() - big.size(), big.size(), big) == 0;
    ScriptedServer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) +
                                  "\r\nX-Same: " + (same ? "yes" : "no") + "\r\n\r\n");
    ScriptedServer::Write(fd, big);
    s.ReadRequest(fd);
  });
  HttpClient client("127.0.0.1", server.port());
  Result<HttpResponse> r = client.Request("PUT", "/data", big);
  ASSERT_OK(r.status());
  EXPECT_EQ("yes", r->Header("x-same"));
  EXPECT_TRUE(r->body == big);
}

// A server that refuses a request may leave its body unread in the stream
// (Pistache answers 413 and keeps the connection): the next request must not
// be framed behind those bytes.
TEST(HttpClientTest, ErrorAnswerToARequestWithABodyEndsTheConnection) {
  ScriptedServer server(
      AnswerAll("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig"));
  HttpClient client("127.0.0.1", server.port());
  Result<HttpResponse> r = client.Request("PUT", "/data", std::string(1000, 'x'));
  ASSERT_OK(r.status());
  EXPECT_EQ(413, r->status);
  ASSERT_OK(client.Request("GET", "/").status());  // errors without a body keep it
  ASSERT_OK(client.Request("GET", "/").status());
  EXPECT_EQ(2, server.accepts());
}

TEST(HttpClientTest, AnswerBeforeTheBodyWasSentIsReturnedWithoutWaiting) {
  std::latch release(1);
  ScriptedServer server([&](ScriptedServer&, int fd, int) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    ScriptedServer::Write(fd, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n");
    release.wait();  // reads no more: the client's send buffer fills up
  });
  HttpClient client("127.0.0.1", server.port());
  client.set_timeout(std::chrono::seconds(20));
  auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> r = client.Request("PUT", "/data", std::string(64 << 20, 'x'));
  auto waited = std::chrono::steady_clock::now() - start;
  release.count_down();
  ASSERT_OK(r.status());
  EXPECT_EQ(413, r->status);
  EXPECT_LT(waited, std::chrono::seconds(10));
}

TEST(HttpClientTest, BodyWithoutLengthEndsAtClose) {
  ScriptedServer server([](ScriptedServer& s, int fd, int index) {
    s.ReadRequest(fd);
    ScriptedServer::Write(fd, "HTTP/1.1 200 OK\r\n\r\nuntil close " + std::to_string(index));
  });
  HttpClient client("127.0.0.1", server.port());
  for (int i = 0; i < 2; i++) {
    Result<HttpResponse> r = client.Request("GET", "/");
    ASSERT_OK(r.status());
    EXPECT_EQ("until close " + std::to_string(i), r->body);
  }
  EXPECT_EQ(2, server.accepts());
}

TEST(HttpClientTest, SkipsInterimResponses) {
  ScriptedServer server(AnswerAll("HTTP/1.1 100 Continue\r\n\r\n" + std::string(kHello)));
  HttpClient client("127.0.0.1", server.port());
  Result<HttpResponse> r = client.Request("POST", "/", "x");
  ASSERT_OK(r.status());
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("hello", r->body);
}

TEST(HttpClientTest, MalformedResponsesAreIoErrors) {
  const std::vector<std::string> bad = {
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
  };
  ScriptedServer server([&](ScriptedServer& s, int fd, int index) {
    s.ReadRequest(fd);
    ScriptedServer::Write(fd, bad[static_cast<size_t>(index) % bad.size()]);
  });
  HttpClient client("127.0.0.1", server.port());
  for (size_t i = 0; i < bad.size(); i++) {
    Result<HttpResponse> r = client.Request("GET", "/");
    EXPECT_EQ(Code::kIoError, r.status().code()) << bad[i];
  }
}

TEST(HttpClientTest, ConnectionRefusedIsIoError) {
  int port = 0;
  {
    ScriptedServer server(AnswerAll(kHello));
    port = server.port();
  }
  HttpClient client("127.0.0.1", port);
  Result<HttpResponse> r = client.Request("GET", "/");
  EXPECT_EQ(Code::kIoError, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("127.0.0.1:")) << r.status().ToString();
}

TEST(HttpClientTest, UnknownHostIsIoError) {
  HttpClient client("no-such-host.invalid", 80);
  EXPECT_EQ(Code::kIoError, client.Request("GET", "/").status().code());
}

TEST(HttpClientTest, LocalhostResolves) {
  ScriptedServer server(AnswerAll(kHello));
  HttpClient client("localhost", server.port());
  ASSERT_OK(client.Request("GET", "/").status());
}

TEST(HttpClientTest, RawExchangeSendsBytesAsIsAndCloses) {
  ScriptedServer server([](ScriptedServer& s, int fd, int index) {
    if (index == 0) {
      char buf[256];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      std::string got(buf, n > 0 ? static_cast<size_t>(n) : 0);
      ScriptedServer::Write(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: " +
                                    std::to_string(got.size()) + "\r\n\r\n" + got);
      char c;
      ::recv(fd, &c, 1, 0);  // until the client closes
      return;
    }
    while (!s.ReadRequest(fd).empty()) ScriptedServer::Write(fd, kHello);
  });
  HttpClient client("127.0.0.1", server.port());
  Result<HttpResponse> r = client.RawExchange("GARBAGE / HTTP/9\n\n");
  ASSERT_OK(r.status());
  EXPECT_EQ(400, r->status);
  EXPECT_EQ("GARBAGE / HTTP/9\n\n", r->body);
  server.WaitClosed(1);  // only returns if the client closed its end
  ASSERT_OK(client.Request("GET", "/").status());
  EXPECT_EQ(2, server.accepts());
}

TEST(UrlEncodeTest, KeepsUnreservedAndEscapesEverythingElse) {
  EXPECT_EQ("", UrlEncode(""));
  EXPECT_EQ("AZaz09-_.~", UrlEncode("AZaz09-_.~"));
  EXPECT_EQ("a%20b%2Fc%3Fd%3De%26f%2Bg%25", UrlEncode("a b/c?d=e&f+g%"));
  EXPECT_EQ("%C3%A9t%C3%A9", UrlEncode("\xC3\xA9t\xC3\xA9"));
  EXPECT_EQ("%00%0D%0A", UrlEncode(std::string_view("\0\r\n", 3)));
}

}  // namespace
}  // namespace pstorage::api
