// Authentication, rate limiting, raw data and Range, and the server's life:
// first start (generated key, config file), SIGTERM and SIGKILL restarts
// with every acknowledged write intact.
#include <gtest/gtest.h>

#include <random>

#include "api/auth.h"
#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

const HttpHeaders kOctet = {{"Content-Type", "application/octet-stream"}};

std::string RandomBlocks(size_t blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  // Half random, half zeros: LZ4 halves each block.
  std::string s(blocks * 4096, '\0');
  for (size_t i = 0; i < s.size(); i++) {
    if (i % 4096 < 2048) s[i] = static_cast<char>(rng());
  }
  return s;
}

TEST(ServerAuthTest, KeysAreRequiredAndChecked) {
  ServerProcess server("auth");
  ASSERT_TRUE(server.Start());
  HttpResponse none = server.Call("GET", "/api/v1/volumes", {}, {}, false);
  EXPECT_EQ(401, none.status);
  EXPECT_STREQ("UNAUTHORIZED", Json(none)["code"].GetString());
  EXPECT_EQ(401, server.Call("GET", "/api/v1/volumes", {}, {{"X-API-Key", "wrong"}}, false).status);
  EXPECT_EQ(401, server.Call("GET", "/api/v1/volumes", {},
                             {{"Authorization", "Bearer wrong"}}, false).status);
  EXPECT_EQ(401, server.Call("GET", "/api/v1/volumes", {},
                             {{"Authorization", std::string("Basic ") + kTestKey}}, false).status);
  EXPECT_EQ(200, server.Call("GET", "/api/v1/volumes", {},
                             {{"Authorization", std::string("Bearer ") + kTestKey}}, false).status);
  EXPECT_EQ(200, server.Call("GET", "/api/v1/volumes").status);
  // Open routes.
  EXPECT_EQ(200, server.Call("GET", "/health", {}, {}, false).status);
  EXPECT_EQ(200, server.Call("GET", "/metrics", {}, {}, false).status);
  // A 401 changes nothing.
  EXPECT_EQ(401, server.Call("POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1})", {}, false).status);
  EXPECT_EQ(0u, Json(server.Call("GET", "/api/v1/volumes"))["total"].GetUint64());
  // The plain key was replaced by its hash in the config file.
  std::string cfg = ReadFileText(server.config_path());
  EXPECT_EQ(std::string::npos, cfg.find(kTestKey)) << cfg;
  EXPECT_NE(std::string::npos, cfg.find(HashApiKey(kTestKey))) << cfg;
  // Request ids are echoed.
  HttpResponse r = server.Call("GET", "/health", {}, {{"X-Request-ID", "my-trace-42"}}, false);
  EXPECT_EQ("my-trace-42", r.Header("x-request-id"));
  EXPECT_EQ(0, server.Stop());
  // The access log has one line per request with the request id.
  EXPECT_NE(std::string::npos, server.stderr_text().find("GET /health 200")) << server.stderr_text();
  EXPECT_NE(std::string::npos, server.stderr_text().find("id=my-trace-42"));
}

TEST(ServerAuthTest, FirstStartGeneratesAKeyPrintedOnce) {
  std::string dir = "/var/tmp/pstorage-api-firstrun-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // A config without any key: the first start generates one (port 0 so the
  // test never collides; creating a missing file is covered by config_test).
  {
    std::ofstream f(dir + "/config.json");
    f << R"({"version": 1, "server_port": 0, "nbd_port": 0, "array": {"data_dir": "d", "flash_capacity_bytes": 16777216, "pages_per_block": 64}})";
  }
  std::string out = dir + "/out.log";
  std::string cmd = std::string(PSTORAGE_BIN) + " serve --config " + dir + "/config.json >" + out +
                    " 2>" + dir + "/err.log & echo $!";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(nullptr, p);
  int pid = 0;
  ASSERT_EQ(1, std::fscanf(p, "%d", &pid));
  ::pclose(p);
  std::string key, text;
  int port = 0;
  for (int i = 0; i < 500 && port == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    text = ReadFileText(out);
    size_t at = text.find("listening on http://127.0.0.1:");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      port = std::stoi(text.substr(at + 30));
    }
  }
  ASSERT_NE(0, port) << ReadFileText(dir + "/err.log");
  size_t k = text.find("admin api key: ");
  ASSERT_NE(std::string::npos, k) << text;
  key = text.substr(k + 15, text.find('\n', k) - k - 15);
  EXPECT_EQ(0u, key.rfind("psk_", 0)) << key;
  HttpClient c("127.0.0.1", port);
  Result<HttpResponse> ok = c.Request("GET", "/api/v1/volumes", {}, {{"X-API-Key", key}});
  ASSERT_OK(ok.status());
  EXPECT_EQ(200, ok->status);
  std::string cfg = ReadFileText(dir + "/config.json");
  EXPECT_EQ(std::string::npos, cfg.find(key));
  EXPECT_NE(std::string::npos, cfg.find(HashApiKey(key)));
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 500 && ::kill(pid, 0) == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Second start: no new key.
  cmd = std::string(PSTORAGE_BIN) + " serve --config " + dir + "/config.json >" + out + " 2>>" +
        dir + "/err.log & echo $!";
  p = ::popen(cmd.c_str(), "r");
  ASSERT_EQ(1, std::fscanf(p, "%d", &pid));
  ::pclose(p);
  for (int i = 0; i < 500; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (ReadFileText(out).find("listening on") != std::string::npos) break;
  }
  EXPECT_EQ(std::string::npos, ReadFileText(out).find("admin api key")) << ReadFileText(out);
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 500 && ::kill(pid, 0) == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::filesystem::remove_all(dir);
}

TEST(ServerRateLimitTest, BurstThen429WithRetryAfter) {
  ServerOptions o;
  o.rate_limit = true;
  o.rate_per_second = 1;
  o.burst = 5;
  ServerProcess server("ratelimit", o);
  ASSERT_TRUE(server.Start());
  int ok = 0, limited = 0;
  HttpResponse last;
  for (int i = 0; i < 8; i++) {
    last = server.Call("GET", "/api/v1/volumes");
    if (last.status == 200) {
      ok++;
      EXPECT_EQ("5", last.Header("x-ratelimit-limit"));
      EXPECT_FALSE(last.Header("x-ratelimit-remaining").empty());
      EXPECT_FALSE(last.Header("x-ratelimit-reset").empty());
    } else {
      EXPECT_EQ(429, last.status);
      EXPECT_GE(std::stoi(last.Header("retry-after")), 1);
      EXPECT_STREQ("RATE_LIMITED", Json(last)["code"].GetString());
      limited++;
    }
  }
  EXPECT_GE(ok, 5);
  EXPECT_LE(ok, 6);  // one token may refill during the loop
  EXPECT_GE(limited, 2);
  EXPECT_EQ(0, server.Stop());
}

TEST(DataTest, RawPathAndRange) {
  ServerProcess server("raw");
  ASSERT_TRUE(server.Start());
  std::string id = Json(server.Call("POST", "/api/v1/volumes", R"({"name": "r", "size_gb": 0.0625})"))["id"].GetString();
  std::string data = RandomBlocks(64, 7);
  HttpResponse w = server.Call("PUT", "/api/v1/volumes/" + id + "/data?offset=8192", data, kOctet);
  ASSERT_EQ(200, w.status) << w.body;
  EXPECT_EQ(data.size(), Json(w)["size"].GetUint64());
  EXPECT_TRUE(Json(w)["was_compressed"].GetBool());
  HttpResponse r = server.Call("GET", "/api/v1/volumes/" + id + "/data?offset=8192&length=" +
                                          std::to_string(data.size()));
  ASSERT_EQ(200, r.status);
  EXPECT_EQ("application/octet-stream", r.Header("content-type"));
  EXPECT_TRUE(r.body == data);
  // Unaligned reads are fine; holes read as zeros; reads stop at the end.
  r = server.Call("GET", "/api/v1/volumes/" + id + "/data?offset=8190&length=4");
  EXPECT_EQ(std::string("\0\0", 2) + data.substr(0, 2), r.body);
  uint64_t size = 64ull << 20;
  r = server.Call("GET", "/api/v1/volumes/" + id + "/data?offset=" + std::to_string(size - 100) + "&length=4096");
  EXPECT_EQ(100u, r.body.size());
  // Range.
  r = server.Call("GET", "/api/v1/volumes/" + id + "/data", {}, {{"Range", "bytes=8192-8291"}});
  EXPECT_EQ(206, r.status);
  EXPECT_EQ(data.substr(0, 100), r.body);
  EXPECT_EQ("bytes 8192-8291/" + std::to_string(size), r.Header("content-range"));
  r = server.Call("GET", "/api/v1/volumes/" + id + "/data", {}, {{"Range", "bytes=-10"}});
  EXPECT_EQ(206, r.status);
  EXPECT_EQ(10u, r.body.size());
  r = server.Call("GET", "/api/v1/volumes/" + id + "/data", {},
                  {{"Range", "bytes=" + std::to_string(size) + "-"}});
  EXPECT_EQ(416, r.status);
  EXPECT_EQ("bytes */" + std::to_string(size), r.Header("content-range"));
  EXPECT_EQ(0, server.Stop());
}

// Writes acknowledged before SIGTERM or SIGKILL read back after restart.
void WriteRestartVerify(int sig) {
  ServerProcess server(sig == SIGKILL ? "kill" : "term");
  ASSERT_TRUE(server.Start());
  std::string id = Json(server.Call("POST", "/api/v1/volumes", R"({"name": "p", "size_gb": 0.0625})"))["id"].GetString();
  std::map<uint64_t, std::string> acked;
  for (uint32_t i = 0; i < 40; i++) {
    uint64_t off = (i * 7 % 64) * 4096 * 4;
    std::string d = RandomBlocks(1 + i % 4, i);
    HttpResponse w = server.Call("PUT", "/api/v1/volumes/" + id + "/data?offset=" + std::to_string(off), d, kOctet);
    ASSERT_EQ(200, w.status) << w.body;
    for (size_t b = 0; b < d.size() / 4096; b++) acked[off + b * 4096] = d.substr(b * 4096, 4096);
  }
  ASSERT_EQ(201, server.Call("POST", "/api/v1/volumes/" + id + "/snapshots", R"({"name": "s"})").status);
  int code = server.Stop(sig);
  if (sig == SIGTERM) {
    EXPECT_EQ(0, code) << server.stderr_text();
  }
  ASSERT_TRUE(server.Start());
  for (const auto& [off, block] : acked) {
    HttpResponse r = server.Call("GET", "/api/v1/volumes/" + id + "/data?offset=" + std::to_string(off));
    ASSERT_EQ(200, r.status);
    EXPECT_TRUE(block == r.body) << "block at " << off;
  }
  EXPECT_EQ(1u, Json(server.Call("GET", "/api/v1/snapshots"))["total"].GetUint64());
  EXPECT_EQ(0, server.Stop());
}

// curl, wrk and most clients send no Connection header; HTTP/1.1 keeps the
// connection open then, and so must the server (Pistache closes by default).
TEST(DataTest, KeepAliveWithoutConnectionHeader) {
  ServerProcess server("keepalive");
  ASSERT_TRUE(server.Start());
  HttpClient c("127.0.0.1", server.port());
  Result<HttpResponse> r = c.RawExchange("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_OK(r.status());
  EXPECT_EQ(200, r->status);
  std::string conn = r->Header("connection");
  for (char& ch : conn) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_EQ("keep-alive", conn);
  r = c.RawExchange("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_OK(r.status());
  conn = r->Header("connection");
  for (char& ch : conn) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_EQ("close", conn);
  EXPECT_EQ(0, server.Stop());
}

// A full flash device answers 503 NO_SPACE; what was acknowledged before
// stays readable and the server stays up.
TEST(DataTest, FullArrayIs503AndHarmsNothing) {
  ServerOptions o;
  o.flash_bytes = 16ull << 20;
  ServerProcess server("full", o);
  ASSERT_TRUE(server.Start());
  std::string id = Json(server.Call("POST", "/api/v1/volumes", R"({"name": "big", "size_gb": 0.0625})"))["id"].GetString();
  std::mt19937 rng(11);
  std::vector<std::string> acked;
  HttpResponse last;
  for (int i = 0; i < 40; i++) {
    std::string d(1 << 20, '\0');
    for (char& c : d) c = static_cast<char>(rng());  // incompressible
    last = server.Call("PUT", "/api/v1/volumes/" + id + "/data?offset=" + std::to_string(i << 20), d, kOctet);
    if (last.status != 200) break;
    acked.push_back(std::move(d));
  }
  ASSERT_EQ(503, last.status) << last.body;
  EXPECT_STREQ("NO_SPACE", Json(last)["code"].GetString());
  EXPECT_GE(acked.size(), 8u);
  for (size_t i = 0; i < acked.size(); i++) {
    HttpResponse r = server.Call("GET", "/api/v1/volumes/" + id + "/data?offset=" +
                                            std::to_string(i << 20) + "&length=1048576");
    ASSERT_EQ(200, r.status);
    EXPECT_TRUE(r.body == acked[i]) << "chunk " << i;
  }
  EXPECT_EQ(200, server.Call("GET", "/health", {}, {}, false).status);
  EXPECT_EQ(0, server.Stop());
}

TEST(RestartTest, SigtermKeepsEverything) { WriteRestartVerify(SIGTERM); }
TEST(RestartTest, SigkillKeepsAcknowledgedWrites) { WriteRestartVerify(SIGKILL); }

}  // namespace
}  // namespace pstorage::api::testing
