// NbdClient against nbdkit's memory plugin, against scripted fake servers
// (GO unsupported, refusals, silence, a close in the middle of a reply) and,
// when PSTORAGE_BIN is defined, against the real `pstorage serve`. Everything
// listens on 127.0.0.1 only.
#include "bench/tool/nbd_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/nbd/nbd_proto.h"
#include "tests/status_matchers.h"

#ifdef PSTORAGE_BIN
#include "tests/api/nbd_test_util.h"
#endif

namespace pstorage::bench {
namespace {

namespace nbd = pstorage::api::nbd;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kSeed = 20261126;
constexpr uint64_t kNbdkitBytes = 64ull << 20;

std::vector<uint8_t> RandomBytes(size_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// A loopback listening socket on a free port.
int Listen(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(sa.sin_port);
  return fd;
}

// A port nobody listens on (bound once, then released).
int FreePort() {
  int port = 0;
  const int fd = Listen(&port);
  ::close(fd);
  return port;
}

// nbdkit's memory plugin on 127.0.0.1; ready once its pid file exists
// (nbdkit writes it after binding). Killed and reaped at the end.
class Nbdkit {
 public:
  Nbdkit() : pidfile_("/tmp/nbd_client_test-" + std::to_string(::getpid()) + ".pid") {
    std::filesystem::remove(pidfile_);
    port_ = FreePort();
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execlp("nbdkit", "nbdkit", "--foreground", "--exit-with-parent", "-i", "127.0.0.1", "-p",
               port.c_str(), "-P", pidfile_.c_str(), "memory", "64M", nullptr);
      ::_exit(127);
    }
  }
  ~Nbdkit() {
    Signal(SIGKILL);
    std::filesystem::remove(pidfile_);
  }

  ::testing::AssertionResult WaitReady() {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      if (std::filesystem::exists(pidfile_)) return ::testing::AssertionSuccess();
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure() << "nbdkit exited early";
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return ::testing::AssertionFailure() << "nbdkit did not start on port " << port_;
  }

  int port() const { return port_; }
  // SIGSTOP is asynchronous: returns once the process is really stopped.
  bool Stop() {
    int status = 0;
    return ::kill(pid_, SIGSTOP) == 0 && ::waitpid(pid_, &status, WUNTRACED) == pid_ &&
           WIFSTOPPED(status);
  }
  void Continue() { ::kill(pid_, SIGCONT); }
  void Signal(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string pidfile_;
  int port_ = 0;
  pid_t pid_ = -1;
};

class NbdkitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.WaitReady());
    auto c = NbdClient::Connect("127.0.0.1", server_.port(), "", milliseconds(5000));
    ASSERT_OK(c.status());
    client_ = std::move(c.value());
  }

  Nbdkit server_;
  std::unique_ptr<NbdClient> client_;
};

TEST_F(NbdkitTest, ConnectReportsExport) {
  EXPECT_EQ(kNbdkitBytes, client_->size());
  EXPECT_FALSE(client_->read_only());
  EXPECT_NE(0, client_->flags() & nbd::kHasFlags);
  EXPECT_NE(0, client_->flags() & nbd::kSendFlush);
  EXPECT_GT(client_->preferred_block_size(), 0u);
  EXPECT_GE(client_->max_payload(), 1u << 20);
}

TEST_F(NbdkitTest, WriteThenReadBack) {
  std::mt19937_64 rng(kSeed);
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  for (size_t bytes : {size_t{4096}, size_t{1} << 20}) {
    const std::vector<uint8_t> data = RandomBytes(bytes, rng);
    const uint64_t offset = (rng() % (kNbdkitBytes / bytes)) * bytes;
    ASSERT_OK(client_->Write(offset, data));
    std::vector<uint8_t> back(bytes);
    ASSERT_OK(client_->Read(offset, back));
    EXPECT_EQ(data, back) << bytes << " bytes at " << offset;
  }
}

TEST_F(NbdkitTest, UnalignedRead) {
  std::mt19937_64 rng(kSeed + 1);
  const std::vector<uint8_t> data = RandomBytes(3 * 4096, rng);
  ASSERT_OK(client_->Write(8192, data));
  std::vector<uint8_t> back(5000);
  ASSERT_OK(client_->Read(8192 + 123, back));
  EXPECT_TRUE(std::equal(back.begin(), back.end(), data.begin() + 123));
}

TEST_F(NbdkitTest, FlushAndFua) {
  std::vector<uint8_t> data(4096, 0x5a);
  ASSERT_OK(client_->Write(0, data, /*fua=*/true));
  EXPECT_OK(client_->Flush());
}

TEST_F(NbdkitTest, ReadPastEndFailsAndConnectionStaysUsable) {
  std::vector<uint8_t> buf(4096);
  Status s = client_->Read(kNbdkitBytes - 512, buf);
  EXPECT_EQ(Code::kInvalidArgument, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("EINVAL")) << s.message();
  s = client_->Read(kNbdkitBytes, buf);
  EXPECT_FALSE(s.ok());
  EXPECT_OK(client_->Read(kNbdkitBytes - 4096, buf));
}

TEST_F(NbdkitTest, BadLengthsRefusedLocally) {
  EXPECT_EQ(Code::kInvalidArgument, client_->Read(0, {}).code());
  std::vector<uint8_t> big(size_t{client_->max_payload()} + 1);
  EXPECT_EQ(Code::kInvalidArgument, client_->Write(0, big).code());
  std::vector<uint8_t> buf(4096);
  EXPECT_OK(client_->Read(0, buf));
}

TEST_F(NbdkitTest, KilledServerFailsPromptly) {
  std::vector<uint8_t> buf(1 << 20);
  ASSERT_OK(client_->Read(0, buf));
  server_.Signal(SIGKILL);
  const auto start = Clock::now();
  Status s = client_->Read(0, buf);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(Code::kIoError, s.code());
  EXPECT_NE(std::string::npos, s.message().find("connection closed by server")) << s.message();
  s = client_->Write(0, buf);
  EXPECT_EQ(Code::kFailedPrecondition, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("closed by server")) << s.message();
}

TEST(NbdClientTest, StoppedServerTimesOut) {
  Nbdkit server;
  ASSERT_TRUE(server.WaitReady());
  auto c = NbdClient::Connect("127.0.0.1", server.port(), "", milliseconds(300));
  ASSERT_OK(c.status());
  ASSERT_TRUE(server.Stop());
  std::vector<uint8_t> buf(4096);
  const auto start = Clock::now();
  Status s = (*c)->Read(0, buf);
  const auto elapsed = Clock::now() - start;
  server.Continue();
  EXPECT_EQ(Code::kIoError, s.code());
  EXPECT_NE(std::string::npos, s.message().find("no answer")) << s.message();
  EXPECT_GE(elapsed, milliseconds(300));
  EXPECT_LT(elapsed, milliseconds(2000));
}

TEST(NbdClientTest, ConnectRefusedNamesHostAndPort) {
  const int port = FreePort();
  auto c = NbdClient::Connect("127.0.0.1", port, "x", milliseconds(1000));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(Code::kIoError, c.status().code());
  EXPECT_NE(std::string::npos, c.status().message().find("127.0.0.1:" + std::to_string(port)))
      << c.status().message();
}

// --- scripted servers ---

// Exactly n bytes within 5 s, or "" (EOF, error, timeout).
std::string RecvN(int fd, size_t n) {
  std::string out(n, '\0');
  for (size_t got = 0; got < n;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return "";
    const ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
    if (r <= 0) return "";
    got += static_cast<size_t>(r);
  }
  return out;
}

void SendBytes(int fd, const std::vector<uint8_t>& b) {
  EXPECT_EQ(static_cast<ssize_t>(b.size()), ::send(fd, b.data(), b.size(), MSG_NOSIGNAL));
}

const uint8_t* Bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Runs `script` on the first connection to a loopback port, in a thread.
class FakeServer {
 public:
  explicit FakeServer(std::function<void(int fd)> script) {
    listen_fd_ = Listen(&port_);
    thread_ = std::thread([this, script = std::move(script)] {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      script(fd);
      ::close(fd);
    });
  }
  ~FakeServer() {
    thread_.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// Greeting (fixed newstyle, no zeroes) and the client's flags.
void Greet(int fd) {
  std::vector<uint8_t> g(18);
  nbd::Put64(g.data(), nbd::kNbdMagic);
  nbd::Put64(g.data() + 8, nbd::kIHaveOpt);
  nbd::Put16(g.data() + 16, nbd::kFlagFixedNewstyle | nbd::kFlagNoZeroes);
  SendBytes(fd, g);
  const std::string f = RecvN(fd, 4);
  ASSERT_EQ(4u, f.size());
  EXPECT_EQ(nbd::kClientFixedNewstyle | nbd::kClientNoZeroes, nbd::Get32(Bytes(f)));
}

// Reads one option; returns its number and sets *data.
uint32_t ReadOption(int fd, std::string* data) {
  const std::string h = RecvN(fd, 16);
  if (h.size() != 16 || nbd::Get64(Bytes(h)) != nbd::kIHaveOpt) return 0;
  *data = RecvN(fd, nbd::Get32(Bytes(h) + 12));
  return nbd::Get32(Bytes(h) + 8);
}

void OptionReply(int fd, uint32_t option, uint32_t type) {
  std::vector<uint8_t> r(20);
  nbd::Put64(r.data(), nbd::kOptReplyMagic);
  nbd::Put32(r.data() + 8, option);
  nbd::Put32(r.data() + 12, type);
  SendBytes(fd, r);
}

constexpr uint64_t kFakeBytes = 1 << 20;

// A server without NBD_OPT_GO: refuses it, then serves EXPORT_NAME "old"
// (or closes, as such servers do, for any other name).
bool ServeExportNameOnly(int fd) {
  Greet(fd);
  std::string data;
  EXPECT_EQ(nbd::kOptGo, ReadOption(fd, &data));
  OptionReply(fd, nbd::kOptGo, nbd::kRepErrUnsup);
  EXPECT_EQ(nbd::kOptExportName, ReadOption(fd, &data));
  if (data != "old") return false;
  std::vector<uint8_t> r(10);
  nbd::Put64(r.data(), kFakeBytes);
  nbd::Put16(r.data() + 8, nbd::kHasFlags | nbd::kSendFlush);
  SendBytes(fd, r);
  return true;
}

// Answers one READ with `send_bytes` of its payload, then stops.
void ServeRead(int fd, size_t send_bytes) {
  const std::string req = RecvN(fd, nbd::kRequestBytes);
  nbd::Request r;
  ASSERT_TRUE(nbd::DecodeRequest(Bytes(req), &r));
  ASSERT_EQ(nbd::kCmdRead, r.type);
  std::vector<uint8_t> reply(nbd::kSimpleReplyBytes + send_bytes, 0xab);
  nbd::Put32(reply.data(), nbd::kSimpleReplyMagic);
  nbd::Put32(reply.data() + 4, 0);
  nbd::Put64(reply.data() + 8, r.handle);
  SendBytes(fd, reply);
}

TEST(NbdClientTest, FallsBackToExportNameWithoutGo) {
  FakeServer server([](int fd) {
    if (ServeExportNameOnly(fd)) ServeRead(fd, 4096);
    RecvN(fd, nbd::kRequestBytes);  // NBD_CMD_DISC
  });
  auto c = NbdClient::Connect("127.0.0.1", server.port(), "old", milliseconds(2000));
  ASSERT_OK(c.status());
  EXPECT_EQ(kFakeBytes, (*c)->size());
  std::vector<uint8_t> buf(4096);
  ASSERT_OK((*c)->Read(0, buf));
  EXPECT_EQ(std::vector<uint8_t>(4096, 0xab), buf);
}

TEST(NbdClientTest, ExportNameRefusalIsNotFound) {
  FakeServer server([](int fd) { ServeExportNameOnly(fd); });
  auto c = NbdClient::Connect("127.0.0.1", server.port(), "nope", milliseconds(2000));
  EXPECT_EQ(Code::kNotFound, c.status().code()) << c.status().ToString();
  EXPECT_NE(std::string::npos, c.status().message().find("'nope'")) << c.status().message();
}

TEST(NbdClientTest, CloseMidReplyIsAnError) {
  FakeServer server([](int fd) {
    if (ServeExportNameOnly(fd)) ServeRead(fd, 1000);
  });
  auto c = NbdClient::Connect("127.0.0.1", server.port(), "old", milliseconds(2000));
  ASSERT_OK(c.status());
  std::vector<uint8_t> buf(4096);
  Status s = (*c)->Read(0, buf);
  EXPECT_EQ(Code::kIoError, s.code());
  EXPECT_NE(std::string::npos, s.message().find("connection closed by server")) << s.message();
}

TEST(NbdClientTest, HalfGreetingIsAnError) {
  FakeServer server([](int fd) {
    std::vector<uint8_t> g(10);
    nbd::Put64(g.data(), nbd::kNbdMagic);
    SendBytes(fd, g);
  });
  auto c = NbdClient::Connect("127.0.0.1", server.port(), "", milliseconds(2000));
  EXPECT_EQ(Code::kIoError, c.status().code());
  EXPECT_NE(std::string::npos, c.status().message().find("connection closed by server"))
      << c.status().message();
}

TEST(NbdClientTest, SilentServerTimesOut) {
  FakeServer server([](int fd) { RecvN(fd, 1); });  // returns when the client closes
  const auto start = Clock::now();
  auto c = NbdClient::Connect("127.0.0.1", server.port(), "", milliseconds(200));
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  EXPECT_EQ(Code::kIoError, c.status().code());
  EXPECT_NE(std::string::npos, c.status().message().find("no answer")) << c.status().message();
}

// Not a benchmark: a rough QD1 figure printed for the record.
TEST_F(NbdkitTest, Qd1WriteRate) {
  std::vector<uint8_t> block(4096, 0x11);
  constexpr int kWrites = 5000;
  const auto start = Clock::now();
  for (int i = 0; i < kWrites; i++) ASSERT_OK(client_->Write(uint64_t(i % 16384) * 4096, block));
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("nbdkit memory, QD1 4 KiB writes: %.0f/s\n", kWrites / s);
}

#ifdef PSTORAGE_BIN
using api::testing::CreateVolume;
using api::testing::ServerProcess;

TEST(NbdClientPstorageTest, RoundTripAndUnknownExport) {
  ServerProcess server("nbdclient");
  ASSERT_TRUE(server.Start());
  CreateVolume(server, "benchvol", 16 << 20);
  auto c = NbdClient::Connect("127.0.0.1", server.nbd_port(), "benchvol", milliseconds(5000));
  ASSERT_OK(c.status());
  EXPECT_EQ(uint64_t{16} << 20, (*c)->size());
  EXPECT_FALSE((*c)->read_only());
  std::mt19937_64 rng(kSeed + 2);
  for (size_t bytes : {size_t{4096}, size_t{1} << 20}) {
    const std::vector<uint8_t> data = RandomBytes(bytes, rng);
    ASSERT_OK((*c)->Write(bytes, data));
    std::vector<uint8_t> back(bytes);
    ASSERT_OK((*c)->Read(bytes, back));
    EXPECT_EQ(data, back) << bytes << " bytes";
  }
  EXPECT_OK((*c)->Flush());

  auto missing = NbdClient::Connect("127.0.0.1", server.nbd_port(), "nope", milliseconds(5000));
  EXPECT_EQ(Code::kNotFound, missing.status().code()) << missing.status().ToString();
  EXPECT_NE(std::string::npos, missing.status().message().find("'nope' on 127.0.0.1:"));
  EXPECT_NE(std::string::npos, missing.status().message().find("NBD_REP_ERR_UNKNOWN"));
}
#endif

}  // namespace
}  // namespace pstorage::bench
