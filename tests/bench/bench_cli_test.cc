// Smoke runs of the real `pstorage bench` binary: each target for about a
// second against the engine, a real `pstorage serve`, nbdkit, redis-server and
// etcd. No speed is asserted; what is checked is
// that a run completes, its JSON says so, it cleans up after itself, and a
// server that dies mid-run ends the run with a partial result and exit 1.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/api/nbd_test_util.h"
#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

const std::string kBin = PSTORAGE_BIN;

class BenchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/var/tmp/pstorage-bench-cli-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `pstorage bench ARGS` (TMPDIR in the test's folder); output in r.output.
  CmdResult Bench(const std::string& args) {
    return RunCmd("TMPDIR=" + dir_ + " timeout 120 " + kBin + " bench --quiet " + args);
  }
  rapidjson::Document ReadJson(const std::string& path) {
    rapidjson::Document d;
    std::string text = ReadFileText(path);
    d.Parse(text.c_str());
    EXPECT_FALSE(d.HasParseError()) << path << ": " << text.substr(0, 200);
    if (d.HasParseError()) d.SetObject();
    return d;
  }
  // A finished run: complete, some I/O, no errors.
  void ExpectCompleteRun(const rapidjson::Document& d) {
    ASSERT_TRUE(d.HasMember("complete"));
    EXPECT_TRUE(d["complete"].GetBool()) << d["error"].GetString();
    EXPECT_GT(d["total"]["ops"].GetUint64(), 0u);
    EXPECT_EQ(d["total"]["errors"].GetUint64(), 0u);
    EXPECT_GT(d["total"]["latency_ns"]["p99"].GetUint64(), 0u);
    EXPECT_GT(d["timeline"].Size(), 0u);
  }
  std::string dir_;
};

ServerOptions BenchServer() {
  ServerOptions o;
  o.flash_bytes = 512ull << 20;
  o.projects_json = "[";  // appended, not a + chain: GCC 12 -O2 -Wrestrict misfires on that
  o.projects_json.append(ProjectEntry("bench", "", true, false)).append("]");
  return o;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

TEST_F(BenchCliTest, EngineRunPrintsATableAndWritesJsonAndHtml) {
  std::string json = dir_ + "/engine.json", html = dir_ + "/engine.html";
  CmdResult r = Bench(
      "--duration 1 --working-set 16m --queue-depth 2 --read-percent 50 "
      "--dedupe-ratio 2 --compress-ratio 2 --zero-percent 10 --json " +
      json + " --html " + html);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("IOPS"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("p99.9"), std::string::npos);
  rapidjson::Document d = ReadJson(json);
  ExpectCompleteRun(d);
  EXPECT_GT(d["reads"]["ops"].GetUint64(), 0u);
  EXPECT_GT(d["writes"]["ops"].GetUint64(), 0u);
  ASSERT_TRUE(d["reduction"]["available"].GetBool());
  // 10 % zeros, then 2:1 dedupe and 2:1 compression of the rest: well above 2.
  EXPECT_GT(d["reduction"]["data_reduction_ratio"].GetDouble(), 2.0);
  EXPECT_EQ(ReadFileText(html).rfind("<!DOCTYPE html>", 0), 0u);
  // The temporary data dir is gone.
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().rfind("pstorage-bench-", 0), std::string::npos)
        << e.path();
  }
}

TEST_F(BenchCliTest, CompareTwoResultFiles) {
  std::string a = dir_ + "/a.json", b = dir_ + "/b.json";
  ASSERT_EQ(Bench("--duration 0.5 --working-set 8m --json " + a).exit_code, 0);
  ASSERT_EQ(Bench("--duration 0.5 --working-set 8m --queue-depth 2 --json " + b).exit_code, 0);
  CmdResult r = RunCmd(kBin + " bench --compare " + a + " " + b);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("write IOPS"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("B/A"), std::string::npos);
  CmdResult bad = RunCmd(kBin + " bench --compare " + a + " " + dir_ + "/missing.json");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("missing.json: cannot open"), std::string::npos) << bad.output;
}

TEST_F(BenchCliTest, KvSmallInProcess) {
  std::string json = dir_ + "/kv.json";
  CmdResult r = Bench("--profile kv-small --duration 1 --keys 500 --queue-depth 4 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = ReadJson(json);
  ExpectCompleteRun(d);
  EXPECT_GT(d["reads"]["ops"].GetUint64(), 0u);  // gets found the prefilled keys
}

TEST_F(BenchCliTest, MalformedOptionsAndUnreachableServersFailClearly) {
  CmdResult r = Bench("--block-size 3000");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--block-size: '3000' is not a multiple of 4k"), std::string::npos)
      << r.output;
  int port = FreePort();  // nothing listens there
  auto t0 = std::chrono::steady_clock::now();
  r = Bench("--target rest --url http://127.0.0.1:" + std::to_string(port) + " --duration 1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << r.output;
  r = Bench("--target nbd --nbd-url nbd://127.0.0.1:" + std::to_string(port) + " --duration 1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("cannot connect"), std::string::npos) << r.output;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  r = RunCmd(kBin + " bench --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("vdi-clone-boot"), std::string::npos);
}

TEST_F(BenchCliTest, RestNbdAndKvAgainstARealServer) {
  ServerProcess s("bench-cli", BenchServer());
  ASSERT_TRUE(s.Start());
  std::string url =
      " --url http://127.0.0.1:" + std::to_string(s.port()) + " --api-key " + kTestKey;
  std::string nbd = " --nbd-url nbd://127.0.0.1:" + std::to_string(s.nbd_port());
  struct Case {
    const char* name;
    std::string args;
  } cases[] = {
      {"rest", "--target rest" + url + " --working-set 16m --read-percent 50 --queue-depth 2"},
      {"nbd", "--target nbd" + url + nbd + " --working-set 16m --read-percent 50 --queue-depth 2"},
      {"nbd-clones",
       "--target nbd --profile vdi-clone-boot --working-set 8m --clones 2" + url + nbd},
      {"rest-seq", "--target rest --profile backup-seq-1m --working-set 16m" + url},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string json = dir_ + "/" + c.name + ".json";
    CmdResult r = Bench(c.args + " --duration 1 --json " + json);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    rapidjson::Document d = ReadJson(json);
    ExpectCompleteRun(d);
    EXPECT_TRUE(d["reduction"]["available"].GetBool());
    EXPECT_GE(d["server_cpu_s"].GetDouble(), 0);
  }
  // Every volume the runs created (and the clones) is gone again.
  HttpResponse list = s.Call("GET", "/api/v1/volumes");
  EXPECT_EQ(list.body.find("pstorage-bench-"), std::string::npos) << list.body;
  // kv-small through /v1 on the server's first project.
  std::string json = dir_ + "/kv-rest.json";
  CmdResult r =
      Bench("--target rest --profile kv-small --keys 300 --duration 1" + url + " --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectCompleteRun(ReadJson(json));
  EXPECT_EQ(s.Stop(), 0);
}

// A server's rate limit slows the run down (each 429 waited out and
// retried, as Retry-After asks) instead of ending it; the result says so.
TEST_F(BenchCliTest, RateLimitedServerIsWaitedOutAndReported) {
  ServerOptions o = BenchServer();
  o.rate_limit = true;
  o.rate_per_second = 200;
  o.burst = 50;
  ServerProcess s("bench-cli-limit", o);
  ASSERT_TRUE(s.Start());
  std::string json = dir_ + "/limited.json";
  CmdResult r =
      Bench("--target rest --url http://127.0.0.1:" + std::to_string(s.port()) + " --api-key " +
            kTestKey + " --working-set 8m --queue-depth 2 --duration 1 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("throttled: "), std::string::npos) << r.output;
  rapidjson::Document d = ReadJson(json);
  ExpectCompleteRun(d);
  EXPECT_GT(d["throttled"].GetUint64(), 0u);
  // A throttled operation's latency includes its wait (Retry-After >= 1 s).
  EXPECT_GE(d["total"]["latency_ns"]["max"].GetUint64(), 1000000000u);
}

TEST_F(BenchCliTest, NbdkitThroughTheSameClient) {
  ASSERT_TRUE(HaveTool("nbdkit")) << "nbdkit not installed: run scripts/install-deps.sh";
  int port = FreePort();
  std::string pidfile = dir_ + "/nbdkit.pid";
  CmdResult start =
      RunCmd("nbdkit -i 127.0.0.1 -p " + std::to_string(port) + " -P " + pidfile + " memory 64M");
  ASSERT_EQ(start.exit_code, 0) << start.output;
  std::string json = dir_ + "/nbdkit.json";
  CmdResult r = Bench("--target nbd --nbd-url nbd://127.0.0.1:" + std::to_string(port) +
                      " --working-set 16m --read-percent 50 --duration 1 --json " + json);
  RunCmd("kill $(cat " + pidfile + ")");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = ReadJson(json);
  ExpectCompleteRun(d);
  EXPECT_FALSE(d["reduction"]["available"].GetBool());  // nbdkit has no metrics
  EXPECT_NE(r.output.find("not reported by this target"), std::string::npos);
}

TEST_F(BenchCliTest, ServerDyingMidRunEndsWithAPartialResult) {
  for (std::string target : {"rest", "nbd"}) {
    SCOPED_TRACE(target);
    ServerProcess s("bench-cli-kill", BenchServer());
    ASSERT_TRUE(s.Start());
    std::string json = dir_ + "/partial-" + target + ".json";
    std::string out = dir_ + "/partial-" + target + ".out";
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string url = "http://127.0.0.1:" + std::to_string(s.port());
      std::string nbd = "nbd://127.0.0.1:" + std::to_string(s.nbd_port());
      ::setenv("TMPDIR", dir_.c_str(), 1);
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1), ::dup2(fd, 2);
      ::execl(kBin.c_str(), kBin.c_str(), "bench", "--quiet", "--target", target.c_str(), "--url",
              url.c_str(), "--nbd-url", nbd.c_str(), "--api-key", kTestKey, "--working-set", "16m",
              "--queue-depth", "4", "--duration", "60", "--json", json.c_str(), nullptr);
      ::_exit(127);
    }
    // Kill the server once the run has written something.
    for (int i = 0; i < 400; i++) {
      HttpResponse m = s.Call("GET", "/api/v1/metrics/reduction");
      if (m.status == 200 && m.body.find("\"logical_written\": 0") == std::string::npos &&
          m.body.find("\"logical_written\":0") == std::string::npos) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    s.Kill();
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (::waitpid(pid, &status, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL() << "bench still running 30 s after the server died";
    }
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1) << ReadFileText(out);
    EXPECT_NE(ReadFileText(out).find("INCOMPLETE"), std::string::npos) << ReadFileText(out);
    rapidjson::Document d = ReadJson(json);
    ASSERT_TRUE(d.HasMember("complete"));
    EXPECT_FALSE(d["complete"].GetBool());
    EXPECT_GT(d["writes"]["ops"].GetUint64(), 0u);  // what finished before is kept
    EXPECT_NE(std::string(d["error"].GetString()), "");
  }
}

// The KV peers of the performance report (scripts/install-deps.sh installs
// them; neither is started as a service by its package here).
TEST_F(BenchCliTest, RedisAndEtcdPeers) {
  ASSERT_TRUE(HaveTool("redis-server")) << "run scripts/install-deps.sh";
  ASSERT_TRUE(HaveTool("etcd")) << "run scripts/install-deps.sh";
  {
    int port = FreePort();
    std::string pidfile = dir_ + "/redis.pid";
    CmdResult start =
        RunCmd("redis-server --bind 127.0.0.1 --port " + std::to_string(port) +
               " --save '' --appendonly no --daemonize yes --pidfile " + pidfile + " --dir " +
               dir_ + " && for i in $(seq 100); do redis-cli -p " + std::to_string(port) +
               " ping >/dev/null 2>&1 && break; sleep 0.1; done");
    ASSERT_EQ(start.exit_code, 0) << start.output;
    // Its CPU read from /proc, as the report does for the peers.
    std::string pid = ReadFileText(pidfile);
    pid.erase(pid.find_last_not_of(" \n") + 1);
    CmdResult r = Bench(
        "--target redis --profile kv-small --keys 300 --duration 1 --url redis://"
        "127.0.0.1:" +
        std::to_string(port) + " --server-pid " + pid + " --json " + dir_ + "/redis.json");
    RunCmd("kill $(cat " + pidfile + ")");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    rapidjson::Document d = ReadJson(dir_ + "/redis.json");
    ExpectCompleteRun(d);
    EXPECT_GT(d["server_cpu_s"].GetDouble(), 0) << "redis did work during the run";
  }
  {
    int client = FreePort(), peer = FreePort();
    std::string c = "http://127.0.0.1:" + std::to_string(client);
    std::string p = "http://127.0.0.1:" + std::to_string(peer);
    RunCmd("etcd --data-dir " + dir_ + "/etcd --listen-client-urls " + c +
           " --advertise-client-urls " + c + " --listen-peer-urls " + p +
           " --initial-advertise-peer-urls " + p + " --initial-cluster default=" + p + " >" + dir_ +
           "/etcd.log 2>&1 & echo $! >" + dir_ + "/etcd.pid; sleep 2");
    CmdResult r = Bench("--target etcd --profile kv-small --keys 300 --duration 1 --url " + c +
                        " --json " + dir_ + "/etcd.json");
    RunCmd("kill $(cat " + dir_ + "/etcd.pid)");
    ASSERT_EQ(r.exit_code, 0) << r.output << ReadFileText(dir_ + "/etcd.log");
    ExpectCompleteRun(ReadJson(dir_ + "/etcd.json"));
  }
}

}  // namespace
}  // namespace pstorage::api::testing
