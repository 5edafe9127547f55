// What the KV HTTP API tests (tests/api/kv_*_test.cc) share: the projects
// and keys of the server they start, JSON and error-shape checks, and the
// KvApiTest fixture, which runs one `pstorage serve` per test with projects
// p1 and p2 (authentication on, keys kP1Key and kP2Key) and "open"
// (authentication off), all on disk.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "tests/api/server_harness.h"

namespace pstorage::api::testing {

inline const std::string kP1Key = "p1-key-0123456789abcdefABCDEF";
inline const std::string kP2Key = "p2-key-0123456789abcdefABCDEF";
inline const std::string kWrongKey = "psk_not-a-key-of-this-server-000000000000000";

inline ServerOptions KvOptions() {
  ServerOptions o;
  o.projects_json = "[" + ProjectEntry("p1", kP1Key) + ", " + ProjectEntry("p2", kP2Key) + ", " +
                    ProjectEntry("open", "", /*on_disk=*/true, /*auth=*/false) + "]";
  o.kv_expiry_interval_ms = 100;
  return o;
}

inline std::string TestName() {
  return ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

inline std::string Compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// The compact form of JSON text as the server keeps it: whitespace outside
// strings dropped, everything else (numbers included) verbatim. Test inputs
// use only escapes the server writes back the same way.
inline std::string CompactText(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  EXPECT_FALSE(d.HasParseError()) << json;
  std::string out;
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      out += c;
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
      out += c;
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out += c;
    }
  }
  return out;
}

// A JSON string literal for `s`.
inline std::string Quote(const std::string& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(sb.GetString(), sb.GetSize());
}

inline int64_t IsoSeconds(const std::string& iso) {
  std::tm tm{};
  const char* end = ::strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  EXPECT_TRUE(end != nullptr && *end == '\0') << iso;
  return static_cast<int64_t>(::timegm(&tm));
}

inline void ExpectIso(const rapidjson::Value& v, const char* what) {
  ASSERT_TRUE(v.IsString()) << what;
  std::string s = v.GetString();
  EXPECT_EQ(20u, s.size()) << what << ": " << s;
  EXPECT_GT(IsoSeconds(s), 1700000000) << what << ": " << s;
}

// Status, JSON error shape (both documents' fields) and code.
inline void ExpectError(const HttpResponse& r, int status, const std::string& code) {
  EXPECT_EQ(status, r.status) << r.body;
  rapidjson::Document e;
  e.Parse(r.body.data(), r.body.size());
  ASSERT_FALSE(e.HasParseError()) << r.body;
  ASSERT_TRUE(e.IsObject()) << r.body;
  for (const char* f : {"error", "details", "code", "timestamp", "trace_id"}) {
    ASSERT_TRUE(e.HasMember(f) && e[f].IsString()) << "no " << f << ": " << r.body;
  }
  EXPECT_EQ(code, e["code"].GetString()) << r.body;
  EXPECT_NE(0u, e["details"].GetStringLength()) << r.body;
  ExpectIso(e["timestamp"], "timestamp");
}

// Polls `done` every millisecond; false when it is still false after `limit`.
inline bool WaitUntil(const std::function<bool()>& done,
                      std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

inline std::set<std::string> FilesOf(const std::string& dir, const std::string& project) {
  std::set<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind(project + ".", 0) == 0) out.insert(name);
  }
  return out;
}

// One server per test, in a folder named after the test, started with
// KvOptions(); Restart() stops it with SIGTERM and starts it again on the
// same folder. The *P1 helpers act on project p1 with the admin key.
class KvApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(KvOptions()); }
  void TearDown() override {
    if (server_ != nullptr && server_->Alive()) {
      EXPECT_EQ(0, server_->Stop()) << server_->stderr_text();
    }
  }

  void Start(ServerOptions o) {
    server_ = std::make_unique<ServerProcess>("kv-" + TestName(), o);
    ASSERT_TRUE(server_->Start());
  }
  void Restart() {
    ASSERT_EQ(0, server_->Stop()) << server_->stderr_text();
    ASSERT_TRUE(server_->Start());
  }
  ServerProcess& s() { return *server_; }
  std::string kv_dir() const { return server_->dir() + "/kv"; }

  // GET of a key of p1 (admin key): the parsed body.
  rapidjson::Document GetP1(const std::string& key, bool meta = true) {
    HttpResponse r = s().Call("GET", "/api/v1/projects/p1/keys/" + UrlEncode(key) +
                                         (meta ? "?include_metadata=true" : ""));
    EXPECT_EQ(200, r.status) << key << ": " << r.body;
    return Json(r);
  }
  int StatusP1(const std::string& key) {
    return s().Call("GET", "/api/v1/projects/p1/keys/" + UrlEncode(key)).status;
  }
  HttpResponse PutP1(const std::string& key, const std::string& body, HttpHeaders h = {}) {
    return s().Call("PUT", "/api/v1/projects/p1/keys/" + UrlEncode(key), body, std::move(h));
  }

  std::unique_ptr<ServerProcess> server_;
};

// Seed 000's transaction example, as its curl sends it.
inline const char kSeedTransaction[] = R"({
    "operations": [
      {
        "type": "put",
        "key": "user:123:profile",
        "value": "Updated profile",
        "conditions": [
          {
            "type": "version_match",
            "value": "5"
          }
        ]
      },
      {
        "type": "delete",
        "key": "user:123:temp_data"
      },
      {
        "type": "put",
        "key": "user:123:last_login",
        "value": "2024-01-15T10:30:00Z",
        "ttl_seconds": 86400
      }
    ]
  })";

}  // namespace pstorage::api::testing
