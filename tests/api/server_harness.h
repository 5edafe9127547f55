// Runs the real `pstorage serve` binary for a test: a temporary folder with
// a config (loopback, port 0, a known admin key, a small flash device), the
// server's stdout/stderr captured to files, the port read from its
// "listening on" line; stopped with SIGTERM (or killed) at the end. The NBD
// server listens on a free port too ("nbd_port": 0), read from the
// "nbd listening on" line that follows.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <rapidjson/document.h>

#include "api/http_client.h"
#include "tests/status_matchers.h"

namespace pstorage::api::testing {

inline const char kTestKey[] = "psk_test_0123456789abcdefghijklmnopqrstuvwxyzAB";

struct ServerOptions {
  bool auth = true;
  bool rate_limit = false;
  double rate_per_second = 5000;
  uint64_t burst = 10000;
  uint64_t flash_bytes = 64ull << 20;
  uint64_t max_body_bytes = 8ull << 20;
  // The config's "projects" array, as JSON text (see ProjectEntry).
  std::string projects_json = "[]";
  // The "kv" section; 0 leaves a limit at its default (no section when all are 0).
  uint64_t kv_max_key_bytes = 0;
  uint64_t kv_max_value_bytes = 0;
  uint64_t kv_max_batch_items = 0;
  uint64_t kv_expiry_interval_ms = 0;
  bool nbd = true;  // "nbd_enabled"
  // More top-level keys, as JSON text ending in a comma (e.g. nbd_allowed_exports).
  std::string extra_json;
};

// One entry of the config's "projects" array. A non-empty `api_key` is the
// project's plain key (the server hashes it and removes it from the file);
// "" writes null (a key is generated at start when authentication is on).
inline std::string ProjectEntry(const std::string& id, const std::string& api_key,
                                bool on_disk = true, bool auth = true) {
  return "{\"id\": \"" + id + "\", \"storage\": {\"on_disk\": " +
         (on_disk ? "true" : "false") +
         ", \"cache_in_memory\": true}, \"authentication\": {\"enabled\": " +
         (auth ? "true" : "false") + ", \"save_api_key_to_file\": false, \"api_key\": " +
         (api_key.empty() ? std::string("null") : "\"" + api_key + "\"") +
         ", \"api_key_hash\": null}}";
}

inline std::string ReadFileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ServerProcess {
 public:
  // `name` makes the folder unique per test: /var/tmp/pstorage-api-<name>-<pid>.
  explicit ServerProcess(const std::string& name, ServerOptions o = {})
      : dir_("/var/tmp/pstorage-api-" + name + "-" + std::to_string(::getpid())), opts_(o) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    WriteConfig();
  }
  ~ServerProcess() {
    if (pid_ > 0) Kill();
    std::filesystem::remove_all(dir_);
  }

  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/config.json"; }
  int port() const { return port_; }
  int nbd_port() const { return nbd_port_; }
  std::string stdout_text() const { return ReadFileText(dir_ + "/stdout.log"); }
  std::string stderr_text() const { return ReadFileText(dir_ + "/stderr.log"); }

  // Starts the server and waits (up to 20 s) for its "listening on" line.
  ::testing::AssertionResult Start() {
    std::filesystem::remove(dir_ + "/stdout.log");
    pid_ = ::fork();
    if (pid_ == 0) {
      int out = ::open((dir_ + "/stdout.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open((dir_ + "/stderr.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::string cfg = config_path();
      ::execl(PSTORAGE_BIN, PSTORAGE_BIN, "serve", "--config", cfg.c_str(), nullptr);
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string out = stdout_text();
      size_t at = out.find("listening on http://127.0.0.1:");
      const size_t nbd_at = out.find("nbd listening on 127.0.0.1:");
      const bool nbd_ready = !opts_.nbd || (nbd_at != std::string::npos &&
                                            out.find('\n', nbd_at) != std::string::npos);
      if (at != std::string::npos && out.find('\n', at) != std::string::npos && nbd_ready) {
        port_ = std::stoi(out.substr(at + 30));
        nbd_port_ = opts_.nbd ? std::stoi(out.substr(nbd_at + 27)) : 0;
        client_ = std::make_unique<HttpClient>("127.0.0.1", port_);
        return ::testing::AssertionSuccess();
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure() << "server exited early: " << stderr_text();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ::testing::AssertionFailure() << "server did not start: " << stderr_text();
  }

  // Sends `sig` and returns the exit code (-1 when killed by a signal).
  int Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    client_.reset();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void Kill() { Stop(SIGKILL); }

  HttpClient& client() { return *client_; }
  pid_t pid() const { return pid_; }

  // True while the started process has not exited (reaps it when it has).
  bool Alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  // A request with `key` as X-API-Key ("" sends none).
  HttpResponse CallAs(const std::string& key, std::string_view method, std::string_view target,
                      std::string_view body = {}, HttpHeaders headers = {}) {
    if (!key.empty()) headers.emplace_back("X-API-Key", key);
    return Call(method, target, body, std::move(headers), /*with_key=*/false);
  }

  // A request with the admin key (unless `with_key` is false).
  HttpResponse Call(std::string_view method, std::string_view target, std::string_view body = {},
                    HttpHeaders headers = {}, bool with_key = true) {
    if (with_key) headers.emplace_back("X-API-Key", kTestKey);
    if (!body.empty() && !HasHeader(headers, "Content-Type")) {
      headers.emplace_back("Content-Type", "application/json");
    }
    Result<HttpResponse> r = client_->Request(method, target, body, headers);
    EXPECT_TRUE(r.ok()) << method << " " << target << ": " << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }

 private:
  static bool HasHeader(const HttpHeaders& h, std::string_view name) {
    for (const auto& [k, v] : h) {
      if (k == name) return true;
    }
    return false;
  }

  void WriteConfig() {
    std::ofstream f(config_path());
    f << "{\n  \"version\": 1,\n  \"server_port\": 0,\n  \"bind_address\": \"127.0.0.1\",\n"
      << "  \"log_level\": \"info\",\n"
      << "  \"nbd_enabled\": " << (opts_.nbd ? "true" : "false") << ",\n  \"nbd_port\": 0,\n"
      << opts_.extra_json
      << "  \"max_body_bytes\": " << opts_.max_body_bytes << ",\n"
      << "  \"rate_limit\": {\"enabled\": " << (opts_.rate_limit ? "true" : "false")
      << ", \"requests_per_second\": " << opts_.rate_per_second
      << ", \"burst\": " << opts_.burst << "},\n"
      << "  \"default\": {\n    \"storage\": {\"persistent_file_path\": \"kv/\"},\n"
      << "    \"authentication\": {\"enabled\": " << (opts_.auth ? "true" : "false")
      << ", \"save_api_key_to_file\": false, \"api_key\": \"" << kTestKey << "\"}\n  },\n"
      << "  \"array\": {\"data_dir\": \"data\", \"flash_capacity_bytes\": " << opts_.flash_bytes
      << ", \"pages_per_block\": 64},\n";
    std::string kv;
    const std::pair<const char*, uint64_t> limits[] = {
        {"max_key_bytes", opts_.kv_max_key_bytes},
        {"max_value_bytes", opts_.kv_max_value_bytes},
        {"max_batch_items", opts_.kv_max_batch_items},
        {"expiry_interval_ms", opts_.kv_expiry_interval_ms}};
    for (const auto& [name, v] : limits) {
      if (v == 0) continue;
      kv += (kv.empty() ? "\"" : ", \"") + std::string(name) + "\": " + std::to_string(v);
    }
    if (!kv.empty()) f << "  \"kv\": {" << kv << "},\n";
    f << "  \"projects\": " << opts_.projects_json << "\n}\n";
  }

  std::string dir_;
  ServerOptions opts_;
  pid_t pid_ = -1;
  int port_ = 0;
  int nbd_port_ = 0;
  std::unique_ptr<HttpClient> client_;
};

// Parses a response body that must be a JSON object.
inline rapidjson::Document Json(const HttpResponse& r) {
  rapidjson::Document d;
  d.Parse(r.body.data(), r.body.size());
  EXPECT_FALSE(d.HasParseError()) << "not JSON: " << r.body.substr(0, 200);
  if (d.HasParseError()) d.SetObject();
  return d;
}

}  // namespace pstorage::api::testing
