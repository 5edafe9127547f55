// The terminal client against the real server: volumes, snapshots, metrics,
// and a file streamed in and out with `pstorage write` / `pstorage read`.
#include <gtest/gtest.h>

#include <random>

#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

class CliTest : public ::testing::Test {
 protected:
  explicit CliTest(ServerOptions o = {}) : server_("cli", o) {}
  void SetUp() override { ASSERT_TRUE(server_.Start()); }
  void TearDown() override { EXPECT_EQ(0, server_.Stop()); }

  CliRun Cli(const std::string& args, bool with_key = true) {
    std::string cmd = "PSTORAGE_URL=http://127.0.0.1:" + std::to_string(server_.port()) + " ";
    if (with_key) cmd += std::string("PSTORAGE_API_KEY=") + kTestKey + " ";
    cmd += std::string(PSTORAGE_BIN) + " " + args + " 2>&1";
    CliRun r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
    int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }

  ServerProcess server_;
};

// A server whose max_body_bytes (64 KiB) is below the CLI's 4 MiB requests.
class SmallBodyCliTest : public CliTest {
 protected:
  static ServerOptions Small() {
    ServerOptions o;
    o.max_body_bytes = 64 << 10;
    return o;
  }
  SmallBodyCliTest() : CliTest(Small()) {}
};

TEST_F(CliTest, VolumesSnapshotsMetrics) {
  CliRun c = Cli("volume create db --size-gb 1 --description 'main db' --tag env=prod");
  ASSERT_EQ(0, c.exit_code) << c.out;
  EXPECT_NE(std::string::npos, c.out.find("db")) << c.out;
  CliRun l = Cli("volume list");
  ASSERT_EQ(0, l.exit_code) << l.out;
  EXPECT_NE(std::string::npos, l.out.find("db")) << l.out;
  CliRun g = Cli("volume get db --json");  // by name
  ASSERT_EQ(0, g.exit_code) << g.out;
  EXPECT_NE(std::string::npos, g.out.find("\"size_bytes\":1073741824")) << g.out;
  EXPECT_EQ(0, Cli("volume resize db --size-gb 2").exit_code);
  EXPECT_EQ(0, Cli("snapshot create db s1").exit_code);
  CliRun sl = Cli("snapshot list db");
  EXPECT_NE(std::string::npos, sl.out.find("s1")) << sl.out;
  EXPECT_EQ(0, Cli("snapshot restore db s1 --name db-restored").exit_code);
  EXPECT_EQ(0, Cli("volume clone db db-clone").exit_code);
  CliRun m = Cli("metrics reduction --json");
  ASSERT_EQ(0, m.exit_code);
  EXPECT_NE(std::string::npos, m.out.find("overall_reduction_ratio")) << m.out;
  // Errors: the server's message, exit 1; a missing key is a 401.
  CliRun dup = Cli("volume create db --size-gb 1");
  EXPECT_EQ(1, dup.exit_code);
  EXPECT_NE(std::string::npos, dup.out.find("409")) << dup.out;
  CliRun nokey = Cli("volume list", false);
  EXPECT_EQ(1, nokey.exit_code);
  EXPECT_NE(std::string::npos, nokey.out.find("401")) << nokey.out;
  CliRun del = Cli("volume delete db");  // has a snapshot
  EXPECT_EQ(1, del.exit_code) << del.out;
  EXPECT_EQ(0, Cli("snapshot delete db s1").exit_code);
  EXPECT_EQ(0, Cli("volume delete db").exit_code);
  EXPECT_EQ(2, Cli("volume frobnicate").exit_code);
}

TEST_F(CliTest, WriteAndReadAFile) {
  ASSERT_EQ(0, Cli("volume create files --size-gb 0.1").exit_code);
  std::string in = server_.dir() + "/in.bin", out = server_.dir() + "/out.bin";
  std::string data(5 * 1024 * 1024 + 1234, '\0');  // not a whole number of blocks
  std::mt19937 rng(3);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i % 3 ? rng() : 0);
  {
    std::ofstream f(in, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  CliRun w = Cli("write files " + in + " --offset 8192");
  ASSERT_EQ(0, w.exit_code) << w.out;
  CliRun r = Cli("read files " + out + " --offset 8192 --length " + std::to_string(data.size()));
  ASSERT_EQ(0, r.exit_code) << r.out;
  EXPECT_TRUE(ReadFileText(out) == data);
  EXPECT_EQ(0, Cli("volume delete files").exit_code);
}

// The CLI halves its requests until the server takes them.
TEST_F(SmallBodyCliTest, WriteAndReadShrinkTheirRequests) {
  ASSERT_EQ(0, Cli("volume create small --size-gb 0.01").exit_code);
  std::string in = server_.dir() + "/in.bin", out = server_.dir() + "/out.bin";
  std::string data(300 * 1024 + 1000, '\0');
  std::mt19937 rng(5);
  for (char& c : data) c = static_cast<char>(rng());
  {
    std::ofstream f(in, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  CliRun w = Cli("write small " + in);
  ASSERT_EQ(0, w.exit_code) << w.out;
  EXPECT_EQ(std::string::npos, w.out.find("413")) << w.out;
  CliRun r = Cli("read small " + out + " --length " + std::to_string(data.size()));
  ASSERT_EQ(0, r.exit_code) << r.out;
  EXPECT_TRUE(ReadFileText(out) == data);
}

TEST(CliUnreachableTest, SaysTheServerIsNotReachable) {
  std::string cmd = std::string("PSTORAGE_URL=http://127.0.0.1:1 ") + PSTORAGE_BIN +
                    " volume list 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(nullptr, p);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p)) out += buf;
  int status = ::pclose(p);
  EXPECT_EQ(2, WEXITSTATUS(status)) << out;
  EXPECT_NE(std::string::npos, out.find("127.0.0.1:1")) << out;
}

}  // namespace
}  // namespace pstorage::api::testing
