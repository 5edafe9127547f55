// The KV HTTP API against the real server, with exact statuses and bodies:
// projects and their keys and settings (seed 002); keys, listing, conditional
// writes, TTL and stats, batches and transactions (seed 000) on both path
// families (/api/v1/projects/{id}/... and /v1/...); every seed-000 curl
// example; persistence across restarts and the {project}.json snapshot; the
// auth matrix of route kinds and callers; and concurrent clients (counters,
// transfers, creates, deletes and storage switches racing with writes).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <rapidjson/prettywriter.h>
#include <sys/socket.h>

#include <atomic>
#include <ctime>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "api/auth.h"
#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

const std::string kP1Key = "p1-key-0123456789abcdefABCDEF";
const std::string kP2Key = "p2-key-0123456789abcdefABCDEF";
const std::string kWrongKey = "psk_not-a-key-of-this-server-000000000000000";

ServerOptions KvOptions() {
  ServerOptions o;
  o.projects_json = "[" + ProjectEntry("p1", kP1Key) + ", " + ProjectEntry("p2", kP2Key) + ", " +
                    ProjectEntry("open", "", /*on_disk=*/true, /*auth=*/false) + "]";
  o.kv_expiry_interval_ms = 100;
  return o;
}

std::string TestName() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

std::string Compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// The compact form of JSON text as the server keeps it: whitespace outside
// strings dropped, everything else (numbers included) verbatim. Test inputs
// use only escapes the server writes back the same way.
std::string CompactText(const std::string& json) {
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
std::string Quote(const std::string& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(sb.GetString(), sb.GetSize());
}

int64_t IsoSeconds(const std::string& iso) {
  std::tm tm{};
  const char* end = ::strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  EXPECT_TRUE(end != nullptr && *end == '\0') << iso;
  return static_cast<int64_t>(::timegm(&tm));
}

void ExpectIso(const rapidjson::Value& v, const char* what) {
  ASSERT_TRUE(v.IsString()) << what;
  std::string s = v.GetString();
  EXPECT_EQ(20u, s.size()) << what << ": " << s;
  EXPECT_GT(IsoSeconds(s), 1700000000) << what << ": " << s;
}

// Status, JSON error shape (both documents' fields) and code.
void ExpectError(const HttpResponse& r, int status, const std::string& code) {
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
bool WaitUntil(const std::function<bool()>& done,
               std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::set<std::string> FilesOf(const std::string& dir, const std::string& project) {
  std::set<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind(project + ".", 0) == 0) out.insert(name);
  }
  return out;
}

// The status line (and headers) of a streamed reply, read from a raw
// socket that is closed right after: HttpClient would wait for the end of
// an endless stream.
int StreamStatus(int port, const std::string& target, const std::string& key, std::string* head) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!key.empty()) req += "X-API-Key: " + key + "\r\n";
  req += "\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  *head = got;
  if (got.size() < 12 || got.compare(0, 9, "HTTP/1.1 ") != 0) return -1;
  return std::atoi(got.substr(9, 3).c_str());
}

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

// ---------------------------------------------------------------- projects

TEST_F(KvApiTest, ProjectListHasNoKeysOrHashes) {
  HttpResponse r = s().Call("GET", "/api/v1/projects");
  ASSERT_EQ(200, r.status) << r.body;
  rapidjson::Document d = Json(r);
  ASSERT_TRUE(d["projects"].IsArray());
  ASSERT_EQ(3u, d["projects"].Size());
  EXPECT_EQ(3u, d["total"].GetUint64());
  const char* ids[] = {"p1", "p2", "open"};
  for (rapidjson::SizeType i = 0; i < 3; i++) {
    const rapidjson::Value& p = d["projects"][i];
    EXPECT_STREQ(ids[i], p["id"].GetString());
    EXPECT_TRUE(p["storage"]["on_disk"].GetBool());
    EXPECT_TRUE(p["storage"]["cache_in_memory"].GetBool());
    EXPECT_EQ(i != 2, p["authentication"]["enabled"].GetBool());
    EXPECT_FALSE(p["authentication"]["save_api_key_to_file"].GetBool());
    EXPECT_FALSE(p["authentication"].HasMember("api_key"));
    EXPECT_FALSE(p["authentication"].HasMember("api_key_hash"));
  }
  for (const std::string& needle :
       {std::string("\"api_key\""), std::string("api_key_hash"), std::string("sha256:"), kP1Key,
        kP2Key, std::string("psk_"), std::string(kTestKey)}) {
    EXPECT_FALSE(Contains(r.body, needle)) << needle << " in " << r.body;
  }
  HttpResponse one = s().CallAs(kP1Key, "GET", "/api/v1/projects/p1");
  ASSERT_EQ(200, one.status) << one.body;
  EXPECT_EQ(CompactText(Compact(d["projects"][0])), CompactText(one.body));
  EXPECT_FALSE(Contains(one.body, "sha256:"));
  EXPECT_FALSE(Contains(one.body, "\"api_key\""));
}

TEST_F(KvApiTest, CreateProjectReturnsItsKeyOnceAndTheConfigHoldsOnlyTheHash) {
  HttpResponse c = s().Call("POST", "/api/v1/projects",
                            R"({"id": "new_one", "storage": {"on_disk": true,
                                "cache_in_memory": false}})");
  ASSERT_EQ(201, c.status) << c.body;
  EXPECT_EQ("/api/v1/projects/new_one", c.Header("location"));
  rapidjson::Document d = Json(c);
  EXPECT_STREQ("new_one", d["id"].GetString());
  EXPECT_TRUE(d["storage"]["on_disk"].GetBool());
  EXPECT_FALSE(d["storage"]["cache_in_memory"].GetBool());
  EXPECT_TRUE(d["authentication"]["enabled"].GetBool());
  EXPECT_FALSE(d["authentication"]["save_api_key_to_file"].GetBool());
  ASSERT_TRUE(d["api_key"].IsString()) << c.body;
  const std::string key = d["api_key"].GetString();
  EXPECT_EQ(0u, key.rfind("psk_", 0)) << key;
  EXPECT_FALSE(Contains(c.body, "sha256:"));

  // The file: the new project last, with the key's hash and no key.
  const std::string text = ReadFileText(s().config_path());
  EXPECT_FALSE(Contains(text, key));
  rapidjson::Document cfg;
  cfg.Parse(text.data(), text.size());
  ASSERT_FALSE(cfg.HasParseError());
  ASSERT_EQ(4u, cfg["projects"].Size());
  const rapidjson::Value& p = cfg["projects"][3];
  EXPECT_STREQ("new_one", p["id"].GetString());
  EXPECT_FALSE(p["storage"]["cache_in_memory"].GetBool());
  EXPECT_TRUE(p["authentication"]["api_key"].IsNull());
  ASSERT_TRUE(p["authentication"]["api_key_hash"].IsString());
  EXPECT_EQ(HashApiKey(key), p["authentication"]["api_key_hash"].GetString());
  // The first three are unchanged (their keys were hashed at start).
  EXPECT_EQ(HashApiKey(kP1Key), cfg["projects"][0]["authentication"]["api_key_hash"].GetString());

  // Shown once: never again in a GET or the list.
  HttpResponse g = s().Call("GET", "/api/v1/projects/new_one");
  ASSERT_EQ(200, g.status);
  EXPECT_FALSE(Json(g).HasMember("api_key")) << g.body;
  EXPECT_FALSE(Contains(s().Call("GET", "/api/v1/projects").body, key));

  // The key works for its project, on both path families, and only there.
  EXPECT_EQ(201,
            s().CallAs(key, "PUT", "/api/v1/projects/new_one/keys/a", R"({"value": 1})").status);
  HttpResponse v1 = s().CallAs(key, "GET", "/v1/keys/a");
  ASSERT_EQ(200, v1.status) << v1.body;
  EXPECT_EQ(1, Json(v1)["value"].GetInt());
  ExpectError(s().CallAs(key, "GET", "/api/v1/projects/p1/keys"), 403, "FORBIDDEN");
  ExpectError(s().CallAs(kP1Key, "GET", "/api/v1/projects/new_one/keys/a"), 403, "FORBIDDEN");

  // A project created with authentication off gets no key and is open.
  HttpResponse o = s().Call("POST", "/api/v1/projects",
                            R"({"id": "nokey", "authentication": {"enabled": false}})");
  ASSERT_EQ(201, o.status) << o.body;
  EXPECT_TRUE(Json(o)["api_key"].IsNull()) << o.body;
  EXPECT_EQ(201,
            s().CallAs("", "PUT", "/api/v1/projects/nokey/keys/x", R"({"value": "x"})").status);
  // Both survive a restart with their keys.
  Restart();
  EXPECT_EQ(200, s().CallAs(key, "GET", "/api/v1/projects/new_one/keys/a").status);
  EXPECT_EQ(200, s().CallAs("", "GET", "/api/v1/projects/nokey/keys/x").status);
  EXPECT_EQ(5u, Json(s().Call("GET", "/api/v1/projects"))["total"].GetUint64());
}

TEST_F(KvApiTest, RegenerateInvalidatesTheOldKey) {
  ASSERT_EQ(201, s().CallAs(kP2Key, "PUT", "/v1/keys/kept", R"({"value": "yes"})").status);
  HttpResponse r = s().Call("POST", "/api/v1/projects/p2/api-key/regenerate");
  ASSERT_EQ(200, r.status) << r.body;
  rapidjson::Document d = Json(r);
  EXPECT_STREQ("p2", d["id"].GetString());
  ASSERT_TRUE(d["api_key"].IsString());
  const std::string fresh = d["api_key"].GetString();
  EXPECT_EQ(0u, fresh.rfind("psk_", 0));
  EXPECT_NE(kP2Key, fresh);

  HttpResponse old = s().CallAs(kP2Key, "GET", "/api/v1/projects/p2/keys");
  ExpectError(old, 401, "UNAUTHORIZED");
  EXPECT_FALSE(old.Header("www-authenticate").empty());
  ExpectError(s().CallAs(kP2Key, "GET", "/v1/keys/kept"), 401, "UNAUTHORIZED");
  HttpResponse now = s().CallAs(fresh, "GET", "/v1/keys/kept");
  ASSERT_EQ(200, now.status) << now.body;
  EXPECT_STREQ("yes", Json(now)["value"].GetString());
  EXPECT_EQ(200, s().CallAs(fresh, "GET", "/api/v1/projects/p2").status);

  const std::string text = ReadFileText(s().config_path());
  EXPECT_TRUE(Contains(text, HashApiKey(fresh)));
  EXPECT_FALSE(Contains(text, HashApiKey(kP2Key)));
  EXPECT_FALSE(Contains(text, fresh));
  ExpectError(s().Call("POST", "/api/v1/projects/nope/api-key/regenerate"), 404, "NOT_FOUND");
  Restart();
  EXPECT_EQ(401, s().CallAs(kP2Key, "GET", "/v1/keys/kept").status);
  EXPECT_EQ(200, s().CallAs(fresh, "GET", "/v1/keys/kept").status);
}

TEST_F(KvApiTest, DeleteProjectRemovesItAndItsDataAndARecreatedOneIsEmpty) {
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(
        201,
        s().CallAs(kP2Key, "PUT", "/v1/keys/k" + std::to_string(i), R"({"value": "data"})").status);
  }
  EXPECT_FALSE(FilesOf(kv_dir(), "p2").empty());
  HttpResponse del = s().Call("DELETE", "/api/v1/projects/p2");
  EXPECT_EQ(204, del.status) << del.body;
  EXPECT_TRUE(del.body.empty());
  EXPECT_TRUE(FilesOf(kv_dir(), "p2").empty()) << *FilesOf(kv_dir(), "p2").begin();
  ExpectError(s().Call("GET", "/api/v1/projects/p2"), 404, "NOT_FOUND");
  ExpectError(s().Call("GET", "/api/v1/projects/p2/keys/k0"), 404, "NOT_FOUND");
  ExpectError(s().Call("DELETE", "/api/v1/projects/p2"), 404, "NOT_FOUND");
  ExpectError(s().CallAs(kP2Key, "GET", "/v1/keys/k0"), 401, "UNAUTHORIZED");
  EXPECT_EQ(2u, Json(s().Call("GET", "/api/v1/projects"))["total"].GetUint64());
  EXPECT_FALSE(Contains(ReadFileText(s().config_path()), "\"p2\""));
  // p1 is untouched.
  EXPECT_EQ(201, PutP1("still", R"({"value": 1})").status);

  HttpResponse again = s().Call("POST", "/api/v1/projects", R"({"id": "p2"})");
  ASSERT_EQ(201, again.status) << again.body;
  const std::string key = Json(again)["api_key"].GetString();
  HttpResponse list = s().CallAs(key, "GET", "/api/v1/projects/p2/keys");
  ASSERT_EQ(200, list.status);
  EXPECT_EQ(0u, Json(list)["items"].Size()) << list.body;
  EXPECT_EQ(404, s().CallAs(key, "GET", "/v1/keys/k0").status);
  Restart();
  EXPECT_EQ(0u, Json(s().CallAs(key, "GET", "/api/v1/projects/p2/keys"))["items"].Size());
  EXPECT_EQ(200, StatusP1("still"));
}

TEST_F(KvApiTest, ProjectSettingsAuthOffOpensTheProjectAndOnAgainKeepsItsKey) {
  HttpResponse g = s().CallAs(kP1Key, "GET", "/api/v1/projects/p1");
  ASSERT_EQ(200, g.status) << g.body;
  EXPECT_EQ(CompactText(R"({"id": "p1", "storage": {"on_disk": true, "cache_in_memory": true},
                "authentication": {"enabled": true, "save_api_key_to_file": false}})"),
            g.body);

  HttpResponse off =
      s().CallAs(kP1Key, "PUT", "/api/v1/projects/p1", R"({"authentication": {"enabled": false}})");
  ASSERT_EQ(200, off.status) << off.body;
  EXPECT_FALSE(Json(off)["authentication"]["enabled"].GetBool());
  EXPECT_TRUE(Json(off)["api_key"].IsNull()) << off.body;
  // Open: no key needed for the project's routes; admin routes still need one.
  EXPECT_EQ(201, s().CallAs("", "PUT", "/api/v1/projects/p1/keys/open", R"({"value": 1})").status);
  EXPECT_EQ(200, s().CallAs("", "GET", "/api/v1/projects/p1/keys").status);
  EXPECT_EQ(200, s().CallAs("", "GET", "/api/v1/projects/p1").status);
  EXPECT_EQ(401, s().CallAs("", "GET", "/api/v1/projects").status);
  {
    rapidjson::Document cfg;
    std::string text = ReadFileText(s().config_path());
    cfg.Parse(text.data(), text.size());
    EXPECT_FALSE(cfg["projects"][0]["authentication"]["enabled"].GetBool());
  }

  // Changing authentication takes a key even on an open project.
  ExpectError(
      s().CallAs("", "PUT", "/api/v1/projects/p1", R"({"authentication": {"enabled": true}})"), 403,
      "FORBIDDEN");
  HttpResponse on =
      s().Call("PUT", "/api/v1/projects/p1", R"({"authentication": {"enabled": true}})");
  ASSERT_EQ(200, on.status) << on.body;
  EXPECT_TRUE(Json(on)["authentication"]["enabled"].GetBool());
  // The project kept its key hash while open: the same key works again and
  // none is generated (regenerate gives a new one).
  EXPECT_TRUE(Json(on)["api_key"].IsNull()) << on.body;
  const std::string fresh = kP1Key;
  EXPECT_EQ(401, s().CallAs("", "GET", "/api/v1/projects/p1/keys").status);
  HttpResponse k = s().CallAs(fresh, "GET", "/api/v1/projects/p1/keys/open");
  ASSERT_EQ(200, k.status) << k.body;
  EXPECT_EQ(1, Json(k)["value"].GetInt());

  // Storage settings are reported and kept.
  HttpResponse c =
      s().CallAs(fresh, "PUT", "/api/v1/projects/p1", R"({"storage": {"cache_in_memory": false}})");
  ASSERT_EQ(200, c.status) << c.body;
  EXPECT_FALSE(Json(c)["storage"]["cache_in_memory"].GetBool());
  EXPECT_TRUE(Json(c)["api_key"].IsNull());
  Restart();
  HttpResponse after = s().CallAs(fresh, "GET", "/api/v1/projects/p1");
  ASSERT_EQ(200, after.status);
  EXPECT_FALSE(Json(after)["storage"]["cache_in_memory"].GetBool());
  EXPECT_TRUE(Json(after)["authentication"]["enabled"].GetBool());
}

TEST_F(KvApiTest, OnDiskSwitchKeepsDataAndOnlyOnDiskDataSurvivesARestart) {
  ASSERT_EQ(201,
            s().Call("POST", "/api/v1/projects", R"({"id": "mem", "storage": {"on_disk": false}})")
                .status);
  const std::string base = "/api/v1/projects/mem/keys/";
  ASSERT_EQ(201, s().Call("PUT", base + "a", R"({"value": "A"})").status);
  EXPECT_TRUE(FilesOf(kv_dir(), "mem").empty());

  HttpResponse on = s().Call("PUT", "/api/v1/projects/mem", R"({"storage": {"on_disk": true}})");
  ASSERT_EQ(200, on.status) << on.body;
  EXPECT_TRUE(Json(on)["storage"]["on_disk"].GetBool());
  EXPECT_STREQ("A", Json(s().Call("GET", base + "a"))["value"].GetString());
  ASSERT_EQ(201, s().Call("PUT", base + "b", R"({"value": "B"})").status);
  Restart();
  EXPECT_STREQ("A", Json(s().Call("GET", base + "a"))["value"].GetString());
  EXPECT_STREQ("B", Json(s().Call("GET", base + "b"))["value"].GetString());

  HttpResponse off = s().Call("PUT", "/api/v1/projects/mem", R"({"storage": {"on_disk": false}})");
  ASSERT_EQ(200, off.status) << off.body;
  EXPECT_FALSE(Json(off)["storage"]["on_disk"].GetBool());
  EXPECT_STREQ("A", Json(s().Call("GET", base + "a"))["value"].GetString());
  EXPECT_STREQ("B", Json(s().Call("GET", base + "b"))["value"].GetString());
  ASSERT_EQ(201, s().Call("PUT", base + "c", R"({"value": "C"})").status);
  Restart();
  HttpResponse list = s().Call("GET", "/api/v1/projects/mem/keys");
  ASSERT_EQ(200, list.status);
  EXPECT_EQ(0u, Json(list)["items"].Size()) << "memory-only data survived a restart: " << list.body;
  // Turning disk storage on again must not bring back old files.
  ASSERT_EQ(200,
            s().Call("PUT", "/api/v1/projects/mem", R"({"storage": {"on_disk": true}})").status);
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/mem/keys"))["items"].Size());
  Restart();
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/mem/keys"))["items"].Size());
}

TEST_F(KvApiTest, ProjectsAddedToTheConfigFileWorkAfterARestart) {
  ASSERT_EQ(0, s().Stop());
  std::string text = ReadFileText(s().config_path());
  rapidjson::Document cfg;
  cfg.Parse(text.data(), text.size());
  ASSERT_FALSE(cfg.HasParseError());
  for (const std::string& entry :
       {ProjectEntry("added", "added-key-0123456789"), ProjectEntry("genkey", "")}) {
    rapidjson::Document p(&cfg.GetAllocator());
    p.Parse(entry.data(), entry.size());
    cfg["projects"].PushBack(rapidjson::Value(p, cfg.GetAllocator()), cfg.GetAllocator());
  }
  {
    rapidjson::StringBuffer sb;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    cfg.Accept(w);
    std::ofstream(s().config_path()) << sb.GetString() << "\n";
  }
  ASSERT_TRUE(s().Start());
  const std::string out = s().stdout_text();
  const std::string marker = "project genkey api key: ";
  size_t at = out.find(marker);
  ASSERT_NE(std::string::npos, at) << out;
  const std::string gen = out.substr(at + marker.size(), out.find('\n', at) - at - marker.size());
  EXPECT_EQ(0u, gen.rfind("psk_", 0)) << gen;
  EXPECT_FALSE(Contains(out, "project added api key")) << out;

  EXPECT_EQ(201, s().CallAs("added-key-0123456789", "PUT", "/v1/keys/x", R"({"value": 1})").status);
  EXPECT_EQ(201,
            s().CallAs(gen, "PUT", "/api/v1/projects/genkey/keys/y", R"({"value": 2})").status);
  EXPECT_EQ(1, Json(s().Call("GET", "/api/v1/projects/added/keys/x"))["value"].GetInt());
  EXPECT_EQ(404, s().CallAs(gen, "GET", "/v1/keys/x").status);
  EXPECT_EQ(5u, Json(s().Call("GET", "/api/v1/projects"))["total"].GetUint64());
  text = ReadFileText(s().config_path());
  EXPECT_FALSE(Contains(text, "added-key-0123456789"));
  EXPECT_FALSE(Contains(text, gen));
  EXPECT_TRUE(Contains(text, HashApiKey("added-key-0123456789")));
  EXPECT_TRUE(Contains(text, HashApiKey(gen)));
  Restart();
  EXPECT_FALSE(Contains(s().stdout_text(), "api key:")) << s().stdout_text();
  EXPECT_EQ(2, Json(s().CallAs(gen, "GET", "/v1/keys/y"))["value"].GetInt());
}

// ---------------------------------------------------------------- keys

TEST_F(KvApiTest, PutAndPostCreateThenUpdateOnBothPathFamilies) {
  struct Way {
    const char* method;
    std::string target;
    std::string key;  // "" = admin
  };
  const Way ways[] = {{"PUT", "/api/v1/projects/p1/keys/put2", ""},
                      {"POST", "/api/v1/projects/p1/keys/post2", ""},
                      {"PUT", "/api/v1/projects/p1/keys/put2own", kP1Key},
                      {"PUT", "/v1/keys/put0", kP1Key},
                      {"POST", "/v1/keys/post0", kP1Key},
                      {"PUT", "/v1/keys/put0admin", ""}};
  for (const Way& w : ways) {
    auto call = [&](const std::string& body) {
      return w.key.empty() ? s().Call(w.method, w.target, body)
                           : s().CallAs(w.key, w.method, w.target, body);
    };
    HttpResponse c = call(R"({"value": "first"})");
    ASSERT_EQ(201, c.status) << w.method << " " << w.target << ": " << c.body;
    rapidjson::Document d = Json(c);
    EXPECT_TRUE(d["success"].GetBool());
    EXPECT_EQ(1u, d["version"].GetUint64());
    EXPECT_EQ("\"1\"", c.Header("etag"));
    HttpResponse u = call(R"({"value": "second"})");
    ASSERT_EQ(200, u.status) << w.method << " " << w.target << ": " << u.body;
    EXPECT_TRUE(Json(u)["success"].GetBool());
    EXPECT_EQ(2u, Json(u)["version"].GetUint64());
    EXPECT_EQ("\"2\"", u.Header("etag"));
  }
  // Every one of them landed in p1 (the admin key's /v1 project is the first).
  for (const char* k : {"put2", "post2", "put2own", "put0", "post0", "put0admin"}) {
    rapidjson::Document d = GetP1(k);
    EXPECT_STREQ("second", d["value"].GetString()) << k;
    EXPECT_EQ(2u, d["metadata"]["version"].GetUint64()) << k;
  }
  EXPECT_EQ(404, s().CallAs(kP2Key, "GET", "/v1/keys/put0").status);
}

TEST_F(KvApiTest, GetWithAndWithoutMetadata) {
  ASSERT_EQ(201, PutP1("m", R"({"value": {"a": 1}, "ttl_seconds": 3600,
                               "metadata": {"content_type": "application/json", "source": "t"}})")
                     .status);
  HttpResponse plain = s().Call("GET", "/api/v1/projects/p1/keys/m");
  ASSERT_EQ(200, plain.status) << plain.body;
  rapidjson::Document d = Json(plain);
  EXPECT_TRUE(d["found"].GetBool());
  EXPECT_EQ(R"({"a":1})", Compact(d["value"]));
  EXPECT_FALSE(d.HasMember("metadata")) << plain.body;
  EXPECT_EQ("\"1\"", plain.Header("etag"));
  EXPECT_FALSE(Json(s().Call("GET", "/api/v1/projects/p1/keys/m?include_metadata=false"))
                   .HasMember("metadata"));

  rapidjson::Document m = GetP1("m");
  EXPECT_TRUE(m["found"].GetBool());
  EXPECT_EQ(R"({"a":1})", Compact(m["value"]));
  const rapidjson::Value& md = m["metadata"];
  ExpectIso(md["created_at"], "created_at");
  ExpectIso(md["updated_at"], "updated_at");
  ExpectIso(md["expires_at"], "expires_at");
  const int64_t ttl =
      IsoSeconds(md["expires_at"].GetString()) - IsoSeconds(md["created_at"].GetString());
  EXPECT_GE(ttl, 3599);
  EXPECT_LE(ttl, 3601);
  EXPECT_EQ(1u, md["version"].GetUint64());
  EXPECT_EQ(R"({"content_type":"application/json","source":"t"})", Compact(md["tags"]));
  const std::string created = md["created_at"].GetString();

  // An update replaces value, TTL and tags; created_at stays.
  ASSERT_EQ(200, PutP1("m", R"({"value": [true]})").status);
  rapidjson::Document m2 = GetP1("m");
  EXPECT_EQ("[true]", Compact(m2["value"]));
  EXPECT_EQ(created, m2["metadata"]["created_at"].GetString());
  EXPECT_FALSE(m2["metadata"].HasMember("expires_at")) << Compact(m2);
  EXPECT_EQ(2u, m2["metadata"]["version"].GetUint64());
  EXPECT_TRUE(!m2["metadata"].HasMember("tags") || m2["metadata"]["tags"].MemberCount() == 0);

  ExpectError(s().Call("GET", "/api/v1/projects/p1/keys/absent"), 404, "KEY_NOT_FOUND");
  ExpectError(s().CallAs(kP1Key, "GET", "/v1/keys/absent?include_metadata=true"), 404,
              "KEY_NOT_FOUND");
}

TEST_F(KvApiTest, ValuesOfEveryJsonTypeComeBackAsStored) {
  const std::vector<std::string> values = {
      R"("text")",
      R"("")",
      "0",
      "-17",
      "3.25",
      "-0.5",
      "1e300",
      "9007199254740993",
      "18446744073709551615",
      "-9223372036854775808",
      "true",
      "false",
      "null",
      "[]",
      "{}",
      R"([1, "two", null, true, {"x": [1, 2, {"y": null}]}])",
      R"({"nested": {"deep": {"deeper": [1, 2, 3]}}, "empty": {}, "list": []})",
      R"("line\nbreak \"quoted\" tab\t back\\slash \u0001")",
      R"("日本語 ключ é 😀")",
      R"({"a": 1, "b": 2, "a2": {"z": 0, "y": 1}})",
      // Doubles whose shortest form has 16-17 digits: a parse that is not
      // correctly rounded changes their text.
      "0.30000000000000004",
      "3.141592653589793",
      "2.2250738585072014e-308",
      "1.7976931348623157e308",
      "5e-324",
      "123456789.12345679",
      "0.1",
  };
  std::map<std::string, std::string> expected;
  for (size_t i = 0; i < values.size(); i++) {
    const std::string key = "types/" + std::to_string(i);
    expected[key] = CompactText(values[i]);
    HttpResponse p = PutP1(key, "{\"value\": " + values[i] + "}");
    ASSERT_EQ(201, p.status) << values[i] << ": " << p.body;
    HttpResponse g = s().Call("GET", "/api/v1/projects/p1/keys/" + UrlEncode(key));
    ASSERT_EQ(200, g.status) << values[i];
    // The whole body, byte for byte: the stored value is the compact text.
    const std::string want =
        "{\"found\":true,\"key\":\"" + key + "\",\"value\":" + expected[key] + "}";
    EXPECT_EQ(want, g.body) << values[i];
    HttpResponse v1 = s().CallAs(kP1Key, "GET", "/v1/keys/" + UrlEncode(key));
    EXPECT_EQ(want, v1.body) << values[i];
  }
  // Whitespace is not part of a value.
  ASSERT_EQ(201, PutP1("types/ws", "{\"value\" :\n [ 1 ,\t2 ] }").status);
  expected["types/ws"] = "[1,2]";
  HttpResponse list =
      s().Call("GET", "/api/v1/projects/p1/keys?prefix=types%2F&include_values=true");
  ASSERT_EQ(200, list.status);
  rapidjson::Document l;
  l.Parse(list.body.data(), list.body.size());
  ASSERT_EQ(expected.size(), l["items"].Size());
  for (const auto& [key, value] : expected) {
    EXPECT_NE(std::string::npos, list.body.find("{\"key\":\"" + key + "\",\"value\":" + value + ","))
        << key << " " << value;
  }
}

TEST_F(KvApiTest, NumbersKeepTheTextTheyWereSentWith) {
  // No double round trip: RapidJSON 1.1.0's full-precision parse turns the
  // first into -2.0e264; the others would lose their spelling.
  for (const std::string n : {"184467440737095516156", "1.0", "1E2", "-0", "0.10",
                              "123456789012345678901234567890"}) {
    const std::string key = "num/" + n;
    ASSERT_EQ(201, PutP1(key, "{\"value\": [" + n + ", {\"n\": " + n + "}]}").status) << n;
    HttpResponse g = s().Call("GET", "/api/v1/projects/p1/keys/" + UrlEncode(key));
    EXPECT_EQ("{\"found\":true,\"key\":\"" + key + "\",\"value\":[" + n + ",{\"n\":" + n + "}]}",
              g.body);
    // The same through a batch and a transaction (with a value_equals on it).
    HttpResponse b = s().Call("POST", "/api/v1/projects/p1/batch/put",
                              "{\"items\": [{\"key\": \"b" + key + "\", \"value\": " + n + "}]}");
    ASSERT_EQ(200, b.status) << b.body;
    HttpResponse t = s().Call(
        "POST", "/api/v1/projects/p1/transaction",
        "{\"operations\": [{\"type\": \"put\", \"key\": \"t" + key + "\", \"value\": " + n +
            ", \"conditions\": [{\"type\": \"not_exists\"}]}, {\"type\": \"delete\", \"key\": \"b" +
            key + "\", \"conditions\": [{\"type\": \"value_equals\", \"value\": " + n + "}]}]}");
    ASSERT_EQ(200, t.status) << t.body;
    HttpResponse tg = s().Call("GET", "/api/v1/projects/p1/keys/" + UrlEncode("t" + key));
    EXPECT_NE(std::string::npos, tg.body.find("\"value\":" + n + "}")) << tg.body;
    EXPECT_EQ(404, s().Call("GET", "/api/v1/projects/p1/keys/" + UrlEncode("b" + key)).status)
        << "value_equals compared the verbatim text";
  }
}

TEST_F(KvApiTest, HeadAndDeleteAndDeleteAll) {
  for (const std::string base : {"/api/v1/projects/p1/keys/", "/v1/keys/"}) {
    const std::string t = base + "h";
    ASSERT_EQ(201, s().CallAs(kP1Key, "PUT", t, R"({"value": "x"})").status);
    HttpResponse h = s().CallAs(kP1Key, "HEAD", t);
    EXPECT_EQ(200, h.status) << t;
    EXPECT_TRUE(h.body.empty());
    HttpResponse miss = s().CallAs(kP1Key, "HEAD", base + "missing");
    EXPECT_EQ(404, miss.status) << base;
    EXPECT_TRUE(miss.body.empty());
    HttpResponse d = s().CallAs(kP1Key, "DELETE", t);
    ASSERT_EQ(200, d.status) << d.body;
    EXPECT_TRUE(Json(d)["success"].GetBool());
    ExpectError(s().CallAs(kP1Key, "GET", t), 404, "KEY_NOT_FOUND");
    EXPECT_EQ(404, s().CallAs(kP1Key, "HEAD", t).status);
    ExpectError(s().CallAs(kP1Key, "DELETE", t), 404, "KEY_NOT_FOUND");
    // Re-created after a delete: a new key, version 1.
    HttpResponse again = s().CallAs(kP1Key, "PUT", t, R"({"value": "y"})");
    EXPECT_EQ(201, again.status);
    EXPECT_EQ(1u, Json(again)["version"].GetUint64());
    ASSERT_EQ(200, s().CallAs(kP1Key, "DELETE", t).status);
  }
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(201, PutP1("all" + std::to_string(i), R"({"value": 1})").status);
  }
  ASSERT_EQ(201, s().CallAs(kP2Key, "PUT", "/v1/keys/all0", R"({"value": 2})").status);
  HttpResponse all = s().CallAs(kP1Key, "DELETE", "/api/v1/projects/p1/keys");
  ASSERT_EQ(200, all.status) << all.body;
  EXPECT_TRUE(Json(all)["success"].GetBool());
  EXPECT_EQ(5u, Json(all)["deleted"].GetUint64());
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/p1/keys"))["items"].Size());
  EXPECT_EQ(2, Json(s().CallAs(kP2Key, "GET", "/v1/keys/all0"))["value"].GetInt());
  ExpectError(s().CallAs(kP2Key, "DELETE", "/api/v1/projects/p1/keys"), 403, "FORBIDDEN");
  HttpResponse none = s().Call("DELETE", "/api/v1/projects/p1/keys");
  EXPECT_EQ(200, none.status);
  EXPECT_EQ(0u, Json(none)["deleted"].GetUint64());
  Restart();
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/p1/keys"))["items"].Size());
}

TEST_F(KvApiTest, KeysWithSlashesColonsSpacesAndUtf8) {
  const std::vector<std::string> keys = {
      "a/b/c",      "user:123:profile", "with space", "ключ/日本語", "trailing/", "%percent",
      "q?mark&x=1", "hash#tag",         "plus+sign",  "a//b",        "..",        "emoji😀"};
  std::set<std::string> sorted(keys.begin(), keys.end());
  for (const std::string& k : keys) {
    for (const std::string base : {"/api/v1/projects/p1/keys/", "/v1/keys/"}) {
      HttpResponse p =
          s().CallAs(kP1Key, "PUT", base + UrlEncode(k), "{\"value\": " + Quote(k) + "}");
      ASSERT_TRUE(p.status == 201 || p.status == 200) << k << ": " << p.status << " " << p.body;
      EXPECT_EQ(k, Json(p)["key"].GetString());
    }
    HttpResponse g =
        s().CallAs(kP1Key, "GET", "/v1/keys/" + UrlEncode(k) + "?include_metadata=true");
    ASSERT_EQ(200, g.status) << k;
    rapidjson::Document d = Json(g);
    EXPECT_EQ(k, d["key"].GetString());
    EXPECT_EQ(k, d["value"].GetString());
    EXPECT_EQ(2u, d["metadata"]["version"].GetUint64()) << k;
  }
  // Raw slashes in the path name the same key as %2F.
  HttpResponse raw = s().CallAs(kP1Key, "GET", "/v1/keys/a/b/c");
  ASSERT_EQ(200, raw.status);
  EXPECT_STREQ("a/b/c", Json(raw)["key"].GetString());
  ASSERT_EQ(200, s().CallAs(kP1Key, "PUT", "/api/v1/projects/p1/keys/user:123:profile",
                            R"({"value": "raw colons"})")
                     .status);
  EXPECT_STREQ("raw colons", GetP1("user:123:profile")["value"].GetString());

  HttpResponse list = s().Call("GET", "/api/v1/projects/p1/keys");
  ASSERT_EQ(200, list.status);
  std::vector<std::string> listed;
  const rapidjson::Document listing = Json(list);  // outlives the loop
  for (const auto& item : listing["items"].GetArray()) listed.push_back(item["key"].GetString());
  EXPECT_EQ(std::vector<std::string>(sorted.begin(), sorted.end()), listed);
  HttpResponse pre = s().Call("GET", "/api/v1/projects/p1/keys?prefix=" + UrlEncode("ключ/"));
  ASSERT_EQ(1u, Json(pre)["items"].Size()) << pre.body;
  EXPECT_STREQ("ключ/日本語", Json(pre)["items"][0]["key"].GetString());
  for (const std::string& k : keys) {
    EXPECT_EQ(200, s().CallAs(kP1Key, "DELETE", "/v1/keys/" + UrlEncode(k)).status) << k;
  }
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/p1/keys"))["items"].Size());
}

TEST_F(KvApiTest, ListingWalksEveryPageOnceWhileKeysAreInserted) {
  std::string items;
  std::map<std::string, int> originals;
  for (int i = 0; i < 300; i++) {
    char k[16];
    std::snprintf(k, sizeof(k), "page:%04d", i * 2);
    originals[k] = i;
    items += std::string(items.empty() ? "" : ", ") + "{\"key\": \"" + k +
             "\", \"value\": " + std::to_string(i) + "}";
  }
  ASSERT_EQ(
      200,
      s().Call("POST", "/api/v1/projects/p1/batch/put", "{\"items\": [" + items + "]}").status);
  ASSERT_EQ(201, PutP1("pagf", R"({"value": "outside"})").status);
  ASSERT_EQ(201, PutP1("pag", R"({"value": "outside"})").status);

  // Writers add keys between the originals (odd numbers) during the walk.
  std::atomic<int> inserted{0};
  std::vector<std::jthread> writers;
  for (int t = 0; t < 3; t++) {
    writers.emplace_back([&, t](std::stop_token stop) {
      HttpClient c("127.0.0.1", s().port());
      for (int i = t; !stop.stop_requested() && i < 600; i += 3) {
        char k[16];
        std::snprintf(k, sizeof(k), "page:%04d", (i * 7919) % 600 | 1);
        Result<HttpResponse> r =
            c.Request("PUT", "/v1/keys/" + std::string(k), R"({"value": -1})",
                      {{"X-API-Key", kP1Key}, {"Content-Type", "application/json"}});
        if (r.ok() && (r->status == 201 || r->status == 200)) inserted++;
      }
    });
  }
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (;;) {
    std::string t = "/v1/keys?prefix=page%3A&limit=5&include_values=true";
    if (!cursor.empty()) t += "&cursor=" + UrlEncode(cursor);
    HttpResponse r = s().CallAs(kP1Key, "GET", t);
    ASSERT_EQ(200, r.status) << r.body;
    rapidjson::Document d = Json(r);
    pages++;
    ASSERT_LE(d["items"].Size(), 5u);
    for (const auto& item : d["items"].GetArray()) {
      const std::string k = item["key"].GetString();
      seen.push_back(k);
      auto o = originals.find(k);
      if (o != originals.end()) {
        EXPECT_EQ(o->second, item["value"].GetInt()) << k;
      }
      EXPECT_TRUE(item.HasMember("metadata"));
    }
    if (!d["has_more"].GetBool()) {
      EXPECT_TRUE(d["next_cursor"].IsNull()) << r.body;
      break;
    }
    EXPECT_EQ(5u, d["items"].Size());
    ASSERT_TRUE(d["next_cursor"].IsString()) << r.body;
    cursor = d["next_cursor"].GetString();
    ASSERT_LT(pages, 1000);
  }
  for (auto& w : writers) w.request_stop();
  writers.clear();
  std::printf("walked %d pages, %zu keys, %d inserted concurrently\n", pages, seen.size(),
              inserted.load());
  for (size_t i = 1; i < seen.size(); i++) {
    ASSERT_LT(seen[i - 1], seen[i]) << "repeated or out of order at " << i;
  }
  std::set<std::string> set(seen.begin(), seen.end());
  for (const auto& [k, v] : originals) EXPECT_EQ(1u, set.count(k)) << "skipped " << k;
  for (const std::string& k : seen) EXPECT_EQ(0u, k.rfind("page:", 0)) << k;

  // Without a limit: everything, values included on the seed-002 path.
  HttpResponse all = s().Call("GET", "/api/v1/projects/p1/keys?prefix=page:");
  ASSERT_EQ(200, all.status);
  rapidjson::Document a = Json(all);
  rapidjson::Document stats = Json(s().Call("GET", "/api/v1/projects/p1/stats"));
  EXPECT_EQ(stats["keys"].GetUint64(), a["items"].Size() + 2);  // + "pag", "pagf"
  EXPECT_GE(a["items"].Size(), 300u);
  EXPECT_FALSE(a["has_more"].GetBool());
  EXPECT_TRUE(a["next_cursor"].IsNull());
  EXPECT_TRUE(a["items"][0].HasMember("value"));
  // A limit past the end.
  HttpResponse big = s().CallAs(kP1Key, "GET", "/v1/keys?prefix=pag&limit=1000");
  rapidjson::Document b = Json(big);
  EXPECT_EQ(a["items"].Size() + 2, b["items"].Size());
  EXPECT_FALSE(b["has_more"].GetBool());
  EXPECT_TRUE(b["next_cursor"].IsNull());
  EXPECT_FALSE(b["items"][0].HasMember("value")) << "/v1 lists values only on request";
}

TEST_F(KvApiTest, ConditionalWritesWithIfMatchAndIfNoneMatch) {
  ASSERT_EQ(201, PutP1("c", R"({"value": 1})").status);
  HttpResponse r = PutP1("c", R"({"value": 2})", {{"If-Match", "1"}});
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_EQ(2u, Json(r)["version"].GetUint64());
  r = PutP1("c", R"({"value": 3})", {{"If-Match", "\"2\""}});
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_EQ(3u, Json(r)["version"].GetUint64());
  r = PutP1("c", R"({"value": 4})", {{"If-Match", "*"}});
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_EQ(4u, Json(r)["version"].GetUint64());
  const std::string before =
      s().Call("GET", "/api/v1/projects/p1/keys/c?include_metadata=true").body;

  HttpResponse stale = PutP1("c", R"({"value": 99})", {{"If-Match", "3"}});
  ExpectError(stale, 412, "VERSION_CONFLICT");
  EXPECT_TRUE(Contains(Json(stale)["details"].GetString(), "3")) << stale.body;
  ExpectError(PutP1("c", R"({"value": 99})", {{"If-None-Match", "*"}}), 412, "ALREADY_EXISTS");
  ExpectError(s().CallAs(kP1Key, "PUT", "/v1/keys/c", R"({"value": 99})", {{"If-Match", "\"1\""}}),
              412, "VERSION_CONFLICT");
  ExpectError(s().CallAs(kP1Key, "DELETE", "/v1/keys/c", {}, {{"If-Match", "2"}}), 412,
              "VERSION_CONFLICT");
  EXPECT_EQ(before, s().Call("GET", "/api/v1/projects/p1/keys/c?include_metadata=true").body);

  HttpResponse created = PutP1("fresh", R"({"value": 0})", {{"If-None-Match", "*"}});
  EXPECT_EQ(201, created.status) << created.body;
  EXPECT_EQ(1u, Json(created)["version"].GetUint64());
  ExpectError(PutP1("absent", R"({"value": 0})", {{"If-Match", "*"}}), 412, "PRECONDITION_FAILED");
  ExpectError(s().CallAs(kP1Key, "DELETE", "/v1/keys/absent", {}, {{"If-Match", "*"}}), 412,
              "PRECONDITION_FAILED");
  ExpectError(PutP1("absent", R"({"value": 0})", {{"If-Match", "1"}}), 412, "VERSION_CONFLICT");
  EXPECT_EQ(404, StatusP1("absent"));

  HttpResponse get = s().Call("GET", "/api/v1/projects/p1/keys/c");
  EXPECT_EQ("\"4\"", get.Header("etag"));
  HttpResponse del =
      s().CallAs(kP1Key, "DELETE", "/v1/keys/c", {}, {{"If-Match", get.Header("etag")}});
  EXPECT_EQ(200, del.status) << del.body;
  EXPECT_EQ(404, StatusP1("c"));
}

TEST_F(KvApiTest, TtlExpiresKeysAndStatsCountThem) {
  ASSERT_EQ(201, PutP1("a", R"({"value": "abc"})").status);
  HttpResponse t = PutP1("tmp", R"({"value": 7, "ttl_seconds": 1})");
  ASSERT_EQ(201, t.status) << t.body;
  const auto put_at = std::chrono::steady_clock::now();
  HttpResponse st = s().Call("GET", "/api/v1/projects/p1/stats");
  ASSERT_EQ(200, st.status) << st.body;
  rapidjson::Document d = Json(st);
  EXPECT_STREQ("p1", d["project_id"].GetString());
  EXPECT_EQ(2u, d["keys"].GetUint64());
  EXPECT_EQ(4u, d["key_bytes"].GetUint64());    // "a" + "tmp"
  EXPECT_EQ(6u, d["value_bytes"].GetUint64());  // "\"abc\"" + "7"
  EXPECT_EQ(2u, d["writes"].GetUint64());
  EXPECT_EQ(0u, d["expirations"].GetUint64());
  EXPECT_TRUE(d["on_disk"].GetBool());

  const auto deadline = put_at + std::chrono::seconds(10);
  int status = 200;
  while (status == 200 && std::chrono::steady_clock::now() < deadline) {
    status = StatusP1("tmp");
    if (status == 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(404, status) << "a 1 s TTL key still there after 10 s";
  EXPECT_GE(std::chrono::steady_clock::now() - put_at, std::chrono::milliseconds(900));
  uint64_t expirations = 0;
  while (expirations == 0 && std::chrono::steady_clock::now() < deadline) {
    d = Json(s().Call("GET", "/api/v1/projects/p1/stats"));
    expirations = d["expirations"].GetUint64();
    if (expirations == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(1u, expirations);
  EXPECT_EQ(1u, d["keys"].GetUint64());
  EXPECT_EQ(1u, d["key_bytes"].GetUint64());
  EXPECT_EQ(5u, d["value_bytes"].GetUint64());
  EXPECT_GE(d["writes"].GetUint64(), 2u);
  EXPECT_LE(d["writes"].GetUint64(), 3u);
  EXPECT_EQ(1u, Json(s().Call("GET", "/api/v1/projects/p1/keys"))["items"].Size());
  EXPECT_EQ(404, s().CallAs(kP1Key, "HEAD", "/v1/keys/tmp").status);
  // Expired keys stay expired across a restart.
  Restart();
  EXPECT_EQ(404, StatusP1("tmp"));
  EXPECT_EQ(200, StatusP1("a"));
}

TEST_F(KvApiTest, BatchPutGetDeleteAreAllOrNothing) {
  HttpResponse p = s().Call("POST", "/api/v1/projects/p1/batch/put", R"({"items": [
      {"key": "a", "value": "A"},
      {"key": "b", "value": {"n": 2}, "ttl_seconds": 3600},
      {"key": "c", "value": [3], "metadata": {"source": "batch"}}]})");
  ASSERT_EQ(200, p.status) << p.body;
  rapidjson::Document pd = Json(p);
  EXPECT_TRUE(pd["success"].GetBool());
  EXPECT_EQ(3u, pd["count"].GetUint64());
  ASSERT_EQ(3u, pd["results"].Size());
  EXPECT_STREQ("b", pd["results"][1]["key"].GetString());
  EXPECT_EQ(1u, pd["results"][1]["version"].GetUint64());

  HttpResponse g = s().CallAs(kP1Key, "POST", "/v1/batch/get",
                              R"({"keys": ["a", "missing", "b", "c"], "include_metadata": true})");
  ASSERT_EQ(200, g.status) << g.body;
  rapidjson::Document gd = Json(g);
  ASSERT_EQ(4u, gd["items"].Size());
  EXPECT_EQ(3u, gd["found"].GetUint64());
  EXPECT_STREQ("a", gd["items"][0]["key"].GetString());
  EXPECT_STREQ("A", gd["items"][0]["value"].GetString());
  EXPECT_STREQ("missing", gd["items"][1]["key"].GetString());
  EXPECT_FALSE(gd["items"][1]["found"].GetBool());
  EXPECT_FALSE(gd["items"][1].HasMember("value"));
  EXPECT_EQ(R"({"n":2})", Compact(gd["items"][2]["value"]));
  EXPECT_TRUE(gd["items"][2]["metadata"].HasMember("expires_at"));
  EXPECT_STREQ("batch", gd["items"][3]["metadata"]["tags"]["source"].GetString());
  HttpResponse g2 = s().Call("POST", "/api/v1/projects/p1/batch/get", R"({"keys": ["c"]})");
  EXPECT_FALSE(Json(g2)["items"][0].HasMember("metadata")) << g2.body;

  // One bad item: nothing of the batch is applied.
  const std::string before = s().Call("GET", "/api/v1/projects/p1/keys").body;
  const std::string bad_items[] = {R"({"key": "", "value": 1})",
                                   "{\"key\": \"ctl\\u0001\", \"value\": 1}",
                                   R"({"key": "x", "value": 1, "ttl_seconds": 0})",
                                   R"({"key": "x"})",
                                   R"({"key": "x", "value": 1, "extra": 1})",
                                   R"({"key": 5, "value": 1})"};
  for (const std::string& bad : bad_items) {
    HttpResponse r =
        s().Call("POST", "/api/v1/projects/p1/batch/put",
                 R"({"items": [{"key": "d", "value": "new"}, {"key": "a", "value": "changed"}, )" +
                     bad + "]}");
    ExpectError(r, 400, "INVALID_ARGUMENT");
    EXPECT_EQ(404, StatusP1("d")) << bad;
  }
  EXPECT_EQ(before, s().Call("GET", "/api/v1/projects/p1/keys").body);
  EXPECT_STREQ("A", GetP1("a")["value"].GetString());

  HttpResponse d =
      s().CallAs(kP1Key, "POST", "/v1/batch/delete", R"({"keys": ["a", "b", "nope"]})");
  ASSERT_EQ(200, d.status) << d.body;
  EXPECT_TRUE(Json(d)["success"].GetBool());
  EXPECT_EQ(2u, Json(d)["deleted"].GetUint64());
  EXPECT_EQ(404, StatusP1("a"));
  EXPECT_EQ(404, StatusP1("b"));
  EXPECT_EQ(200, StatusP1("c"));
}

const char kSeedTransaction[] = R"({
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

TEST_F(KvApiTest, TransactionsSeedExampleAndAtomicity) {
  ASSERT_EQ(201, PutP1("user:123:temp_data", R"({"value": "tmp"})").status);
  HttpResponse fail = s().CallAs(kP1Key, "POST", "/v1/transaction", kSeedTransaction);
  ExpectError(fail, 409, "VERSION_CONFLICT");
  EXPECT_EQ(404, StatusP1("user:123:profile"));
  EXPECT_EQ(404, StatusP1("user:123:last_login"));
  EXPECT_EQ(200, StatusP1("user:123:temp_data"));

  for (int i = 0; i < 5; i++) {
    ASSERT_LE(PutP1("user:123:profile", R"({"value": "old"})").status, 201);
  }
  HttpResponse ok = s().CallAs(kP1Key, "POST", "/v1/transaction", kSeedTransaction);
  ASSERT_EQ(200, ok.status) << ok.body;
  EXPECT_EQ(CompactText(R"({"success": true, "results": [
                {"type": "put", "key": "user:123:profile", "version": 6},
                {"type": "delete", "key": "user:123:temp_data", "deleted": true},
                {"type": "put", "key": "user:123:last_login", "version": 1}]})"),
            ok.body);
  EXPECT_STREQ("Updated profile", GetP1("user:123:profile")["value"].GetString());
  EXPECT_EQ(404, StatusP1("user:123:temp_data"));
  rapidjson::Document ll = GetP1("user:123:last_login");
  EXPECT_STREQ("2024-01-15T10:30:00Z", ll["value"].GetString());
  EXPECT_EQ(86400, IsoSeconds(ll["metadata"]["expires_at"].GetString()) -
                       IsoSeconds(ll["metadata"]["created_at"].GetString()));

  // A failing last condition: the earlier put and delete are not applied.
  ASSERT_EQ(201, PutP1("keep", R"({"value": "kept"})").status);
  const std::string before = s().Call("GET", "/api/v1/projects/p1/keys").body;
  HttpResponse atomic = s().Call("POST", "/api/v1/projects/p1/transaction", R"({"operations": [
      {"type": "put", "key": "x", "value": 1},
      {"type": "delete", "key": "keep"},
      {"type": "put", "key": "user:123:profile", "value": "no",
       "conditions": [{"type": "version_match", "value": 6}]},
      {"type": "put", "key": "y", "value": 2, "conditions": [{"type": "exists"}]}]})");
  ExpectError(atomic, 409, "CONDITION_FAILED");
  EXPECT_EQ(before, s().Call("GET", "/api/v1/projects/p1/keys").body);
  EXPECT_EQ(404, StatusP1("x"));
  EXPECT_EQ(404, StatusP1("y"));
  EXPECT_STREQ("kept", GetP1("keep")["value"].GetString());

  // Deleting a missing key inside a transaction is not an error.
  HttpResponse miss = s().Call("POST", "/api/v1/projects/p1/transaction", R"({"operations": [
      {"type": "delete", "key": "never-was"},
      {"type": "put", "key": "z", "value": 3, "conditions": [{"type": "not_exists"}]},
      {"type": "put", "key": "keep", "value": "again",
       "conditions": [{"type": "value_equals", "value": "kept"}]}]})");
  ASSERT_EQ(200, miss.status) << miss.body;
  rapidjson::Document md = Json(miss);
  EXPECT_FALSE(md["results"][0]["deleted"].GetBool());
  EXPECT_EQ(1u, md["results"][1]["version"].GetUint64());
  EXPECT_EQ(2u, md["results"][2]["version"].GetUint64());
  EXPECT_EQ(3, GetP1("z")["value"].GetInt());
  // Survives a restart as one unit.
  Restart();
  EXPECT_STREQ("again", GetP1("keep")["value"].GetString());
  EXPECT_EQ(6u, GetP1("user:123:profile")["metadata"]["version"].GetUint64());
}

// ---------------------------------------------------------------- persistence

TEST_F(KvApiTest, SigtermRestartKeepsEverythingAndTheSnapshotIsPlainJson) {
  ASSERT_EQ(201, PutP1("s", R"({"value": "text"})").status);
  ASSERT_EQ(201, PutP1("n", R"({"value": 42})").status);
  ASSERT_EQ(201, PutP1("o", R"({"value": {"k": [1, {"z": null}]}, "ttl_seconds": 7200,
                               "metadata": {"t": "v"}})")
                     .status);
  ASSERT_EQ(200, PutP1("n", R"({"value": 43})").status);
  ASSERT_EQ(200, PutP1("n", R"({"value": 44})").status);
  ASSERT_EQ(201, PutP1("gone", R"({"value": 0})").status);
  ASSERT_EQ(200, s().Call("DELETE", "/api/v1/projects/p1/keys/gone").status);
  ASSERT_EQ(200,
            s().Call("POST", "/api/v1/projects/p1/batch/put",
                     R"({"items": [{"key": "b1", "value": true}, {"key": "b2", "value": null}]})")
                .status);
  ASSERT_EQ(200, s().Call("POST", "/api/v1/projects/p1/transaction",
                          R"({"operations": [{"type": "put", "key": "t", "value": [1]},
                                             {"type": "delete", "key": "b1"}]})")
                     .status);
  ASSERT_EQ(201, s().CallAs(kP2Key, "PUT", "/v1/keys/other", R"({"value": "p2"})").status);
  // Keys and values that need escaping in the snapshot, and the deepest value.
  const std::string deep = std::string(32, '[') + std::string(32, ']');
  ASSERT_EQ(201, PutP1("quote\"key", R"({"value": "a \"quoted\" \\ value"})").status);
  ASSERT_EQ(201, PutP1("back\\slash/ключ", R"({"value": "日本語"})").status);
  ASSERT_EQ(201, PutP1("deep", "{\"value\": " + deep + "}").status);
  const std::map<std::string, std::string> live = {{"s", R"("text")"},
                                                   {"n", "44"},
                                                   {"o", R"({"k":[1,{"z":null}]})"},
                                                   {"b2", "null"},
                                                   {"t", "[1]"},
                                                   {"quote\"key", R"("a \"quoted\" \\ value")"},
                                                   {"back\\slash/ключ", R"("日本語")"},
                                                   {"deep", deep}};
  std::map<std::string, std::string> bodies;
  for (const auto& [k, v] : live) {
    const std::string t = "/api/v1/projects/p1/keys/" + UrlEncode(k);
    bodies[k] = s().Call("GET", t + "?include_metadata=true").body;
    EXPECT_EQ(v, Compact(Json(s().Call("GET", t))["value"])) << k;
  }
  const std::string list = s().Call("GET", "/api/v1/projects/p1/keys").body;

  ASSERT_EQ(0, s().Stop()) << s().stderr_text();
  const std::string snap = ReadFileText(kv_dir() + "/p1.json");
  rapidjson::Document d;
  d.Parse(snap.data(), snap.size());
  ASSERT_FALSE(d.HasParseError()) << snap;
  ASSERT_TRUE(d.IsObject()) << snap;
  std::map<std::string, std::string> in_file;
  for (const auto& m : d.GetObject()) in_file[m.name.GetString()] = Compact(m.value);
  EXPECT_EQ(live, in_file) << snap;
  rapidjson::Document d2;
  const std::string snap2 = ReadFileText(kv_dir() + "/p2.json");
  d2.Parse(snap2.data(), snap2.size());
  ASSERT_FALSE(d2.HasParseError()) << snap2;
  EXPECT_EQ(R"({"other":"p2"})", Compact(d2));

  ASSERT_TRUE(s().Start());
  for (const auto& [k, body] : bodies) {
    const std::string t = "/api/v1/projects/p1/keys/" + UrlEncode(k);
    EXPECT_EQ(body, s().Call("GET", t + "?include_metadata=true").body) << k;
  }
  EXPECT_EQ(list, s().Call("GET", "/api/v1/projects/p1/keys").body);
  EXPECT_EQ(404, StatusP1("gone"));
  EXPECT_EQ(404, StatusP1("b1"));
  HttpResponse next = PutP1("n", R"({"value": 45})");
  EXPECT_EQ(200, next.status);
  EXPECT_EQ(4u, Json(next)["version"].GetUint64());
  EXPECT_STREQ("p2", Json(s().CallAs(kP2Key, "GET", "/v1/keys/other"))["value"].GetString());
}

// ---------------------------------------------------------------- seed 000 examples

// Every REST example of seed 000, as curl sends it, through /v1 with `key`
// on a project that holds no user:* keys yet.
void RunSeedExamples(ServerProcess& s, const std::string& key) {
  SCOPED_TRACE(key);
  const HttpHeaders json = {{"Content-Type", "application/json"}};
  // Quick Start.
  HttpResponse r = s.CallAs(key, "PUT", "/v1/keys/hello", R"({"value": "world"})", json);
  ASSERT_EQ(201, r.status) << r.body;
  EXPECT_TRUE(Json(r)["success"].GetBool());
  EXPECT_EQ(1u, Json(r)["version"].GetUint64());
  r = s.CallAs(key, "GET", "/v1/keys/hello");
  ASSERT_EQ(200, r.status);
  EXPECT_TRUE(Json(r)["found"].GetBool());
  EXPECT_STREQ("world", Json(r)["value"].GetString());
  r = s.CallAs(key, "DELETE", "/v1/keys/hello");
  EXPECT_EQ(200, r.status);
  EXPECT_EQ(404, s.CallAs(key, "GET", "/v1/keys/hello").status);

  // Set a Key.
  r = s.CallAs(key, "PUT", "/v1/keys/user:123", R"({
    "value": "John Doe",
    "ttl_seconds": 3600,
    "metadata": {
      "content_type": "text/plain",
      "source": "user_service"
    }
  })",
               json);
  ASSERT_EQ(201, r.status) << r.body;
  rapidjson::Document set = Json(r);
  EXPECT_TRUE(set["success"].GetBool());
  EXPECT_EQ(1u, set["version"].GetUint64());

  // Get a Key.
  r = s.CallAs(key, "GET", "/v1/keys/user:123?include_metadata=true");
  ASSERT_EQ(200, r.status);
  rapidjson::Document got = Json(r);
  EXPECT_TRUE(got["found"].GetBool());
  EXPECT_STREQ("John Doe", got["value"].GetString());
  const rapidjson::Value& md = got["metadata"];
  ExpectIso(md["created_at"], "created_at");
  ExpectIso(md["updated_at"], "updated_at");
  EXPECT_EQ(md["created_at"], md["updated_at"]);
  EXPECT_EQ(3600,
            IsoSeconds(md["expires_at"].GetString()) - IsoSeconds(md["created_at"].GetString()));
  EXPECT_EQ(1u, md["version"].GetUint64());
  EXPECT_EQ(R"({"content_type":"text/plain","source":"user_service"})", Compact(md["tags"]));

  // List Keys.
  ASSERT_EQ(201, s.CallAs(key, "PUT", "/v1/keys/user:456", R"({"value": "Jane Smith"})").status);
  r = s.CallAs(key, "GET", "/v1/keys?prefix=user:&limit=10&include_values=true");
  ASSERT_EQ(200, r.status) << r.body;
  rapidjson::Document list = Json(r);
  ASSERT_EQ(2u, list["items"].Size()) << r.body;
  EXPECT_STREQ("user:123", list["items"][0]["key"].GetString());
  EXPECT_STREQ("John Doe", list["items"][0]["value"].GetString());
  ExpectIso(list["items"][0]["metadata"]["created_at"], "created_at");
  EXPECT_EQ(1u, list["items"][0]["metadata"]["version"].GetUint64());
  EXPECT_STREQ("user:456", list["items"][1]["key"].GetString());
  EXPECT_STREQ("Jane Smith", list["items"][1]["value"].GetString());
  EXPECT_FALSE(list["has_more"].GetBool());
  EXPECT_TRUE(list["next_cursor"].IsNull());

  // Batch Put.
  r = s.CallAs(key, "POST", "/v1/batch/put", R"({
    "items": [
      {
        "key": "user:1",
        "value": "Alice",
        "ttl_seconds": 3600
      },
      {
        "key": "user:2",
        "value": "Bob"
      },
      {
        "key": "user:3",
        "value": "Charlie",
        "metadata": {
          "source": "batch_import"
        }
      }
    ]
  })",
               json);
  ASSERT_EQ(200, r.status) << r.body;
  EXPECT_TRUE(Json(r)["success"].GetBool());

  // Batch Get.
  r = s.CallAs(key, "POST", "/v1/batch/get", R"({
    "keys": ["user:1", "user:2", "user:3"],
    "include_metadata": true
  })",
               json);
  ASSERT_EQ(200, r.status) << r.body;
  rapidjson::Document bg = Json(r);
  ASSERT_EQ(3u, bg["items"].Size());
  const char* names[] = {"Alice", "Bob", "Charlie"};
  for (rapidjson::SizeType i = 0; i < 3; i++) {
    EXPECT_TRUE(bg["items"][i]["found"].GetBool());
    EXPECT_STREQ(names[i], bg["items"][i]["value"].GetString());
    EXPECT_EQ(1u, bg["items"][i]["metadata"]["version"].GetUint64());
  }
  EXPECT_TRUE(bg["items"][0]["metadata"].HasMember("expires_at"));
  EXPECT_FALSE(bg["items"][1]["metadata"].HasMember("expires_at"));
  EXPECT_STREQ("batch_import", bg["items"][2]["metadata"]["tags"]["source"].GetString());

  // Transactions: user:123:profile is not at version 5 (it does not exist).
  r = s.CallAs(key, "POST", "/v1/transaction", kSeedTransaction, json);
  ExpectError(r, 409, "VERSION_CONFLICT");
  EXPECT_EQ(404, s.CallAs(key, "GET", "/v1/keys/user:123:last_login").status);
}

TEST_F(KvApiTest, SeedExamplesWithTheAdminKeyAndAProjectKeyActOnSeparateProjects) {
  RunSeedExamples(s(), kTestKey);
  // The admin key's /v1 project is the first one, p1.
  EXPECT_STREQ("John Doe", GetP1("user:123")["value"].GetString());
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/p2/keys"))["items"].Size());
  // p2's key sees none of it, and the same examples give the same answers there.
  EXPECT_EQ(404, s().CallAs(kP2Key, "GET", "/v1/keys/user:123").status);
  RunSeedExamples(s(), kP2Key);
  HttpResponse p2 = s().Call("GET", "/api/v1/projects/p2/keys?include_values=true");
  EXPECT_EQ(5u, Json(p2)["items"].Size()) << p2.body;
  EXPECT_EQ(5u, Json(s().Call("GET", "/api/v1/projects/p1/keys"))["items"].Size());
  ASSERT_EQ(200, s().CallAs(kP2Key, "PUT", "/v1/keys/user:1", R"({"value": "Changed"})").status);
  EXPECT_STREQ("Alice", GetP1("user:1")["value"].GetString());
  EXPECT_EQ(1u, GetP1("user:1")["metadata"]["version"].GetUint64());
}

TEST_F(KvApiTest, ErrorBodiesCarryTheSeedFields) {
  HttpResponse r =
      s().CallAs(kP1Key, "GET", "/v1/keys/nothing", {}, {{"X-Request-ID", "trace-abc-123"}});
  ExpectError(r, 404, "KEY_NOT_FOUND");
  rapidjson::Document e = Json(r);
  EXPECT_STREQ("Not Found", e["error"].GetString());
  EXPECT_STREQ("trace-abc-123", e["trace_id"].GetString());
  EXPECT_TRUE(Contains(e["details"].GetString(), "nothing")) << r.body;
  ASSERT_EQ(201, PutP1("v", R"({"value": 1})").status);
  HttpResponse c = PutP1("v", R"({"value": 2})", {{"If-Match", "5"}});
  ExpectError(c, 412, "VERSION_CONFLICT");
  EXPECT_TRUE(Contains(Json(c)["details"].GetString(), "Expected version 5")) << c.body;
  EXPECT_FALSE(Json(c)["trace_id"].GetStringLength() == 0);
  ExpectError(s().Call("GET", "/api/v1/projects/nope/keys"), 404, "NOT_FOUND");
}

// ---------------------------------------------------------------- auth matrix

enum class RouteKind { kAdmin, kProject, kSeed };

struct Caller {
  std::string name;
  std::string key;
  std::string project;             // the project the project routes act on
  int admin, project_route, seed;  // expected status class: 2 = success, or 401 / 403
};

class AuthMatrix {
 public:
  explicit AuthMatrix(ServerProcess& s) : s_(s) {}

  // Calls every route as `c` and checks the outcome.
  void Check(const Caller& c) {
    SCOPED_TRACE(c.name);
    // Admin-only routes.
    Expect(c, c.admin, "GET /api/v1/projects", s_.CallAs(c.key, "GET", "/api/v1/projects"), 200);
    const std::string id = "made" + std::to_string(n_++);
    HttpResponse create = s_.CallAs(c.key, "POST", "/api/v1/projects", "{\"id\": \"" + id + "\"}");
    Expect(c, c.admin, "POST /api/v1/projects", create, 201);
    if (c.admin != 2) {
      EXPECT_EQ(404, s_.Call("GET", "/api/v1/projects/" + id).status);
    }
    const std::string victim = Victim();
    Expect(c, c.admin, "regenerate",
           s_.CallAs(c.key, "POST", "/api/v1/projects/" + victim + "/api-key/regenerate"), 200);
    Expect(c, c.admin, "DELETE project", s_.CallAs(c.key, "DELETE", "/api/v1/projects/" + victim),
           204);
    if (c.admin != 2) {
      EXPECT_EQ(200, s_.Call("GET", "/api/v1/projects/" + victim).status);
    }
    Expect(c, c.admin, "GET /api/v1/volumes", s_.CallAs(c.key, "GET", "/api/v1/volumes"), 200);

    // Project routes.
    const std::string p = "/api/v1/projects/" + c.project;
    const int pr = c.project_route;
    Expect(c, pr, "GET project", s_.CallAs(c.key, "GET", p), 200);
    Expect(c, pr, "PUT project",
           s_.CallAs(c.key, "PUT", p, R"({"storage": {"cache_in_memory": true}})"), 200);
    Expect(c, pr, "GET keys", s_.CallAs(c.key, "GET", p + "/keys"), 200);
    const std::string fresh = "m" + std::to_string(n_++);
    Expect(c, pr, "PUT key", s_.CallAs(c.key, "PUT", p + "/keys/" + fresh, R"({"value": 1})"), 201);
    if (pr != 2) {
      EXPECT_EQ(404, s_.Call("GET", p + "/keys/" + fresh).status);
    }
    Expect(c, pr, "POST key",
           s_.CallAs(c.key, "POST", p + "/keys/" + fresh + "p", R"({"value": 1})"), 201);
    Expect(c, pr, "GET key", s_.CallAs(c.key, "GET", p + "/keys/fixed"), 200);
    Expect(c, pr, "HEAD key", s_.CallAs(c.key, "HEAD", p + "/keys/fixed"), 200);
    EXPECT_EQ(201, s_.Call("PUT", p + "/keys/d" + fresh, R"({"value": 1})").status);
    Expect(c, pr, "DELETE key", s_.CallAs(c.key, "DELETE", p + "/keys/d" + fresh), 200);
    if (pr != 2) {
      EXPECT_EQ(200, s_.Call("GET", p + "/keys/d" + fresh).status);
    }
    Expect(c, pr, "batch get", s_.CallAs(c.key, "POST", p + "/batch/get", R"({"keys": ["fixed"]})"),
           200);
    Expect(c, pr, "batch put",
           s_.CallAs(c.key, "POST", p + "/batch/put",
                     "{\"items\": [{\"key\": \"b" + fresh + "\", \"value\": 1}]}"),
           200);
    Expect(c, pr, "transaction",
           s_.CallAs(c.key, "POST", p + "/transaction",
                     "{\"operations\": [{\"type\": \"put\", \"key\": \"t" + fresh +
                         "\", \"value\": 1}]}"),
           200);
    Expect(c, pr, "stats", s_.CallAs(c.key, "GET", p + "/stats"), 200);
    ExpectStream(c, pr, "watch", p + "/watch/x");

    // Seed-000 routes.
    const int sd = c.seed;
    Expect(c, sd, "GET /v1/keys", s_.CallAs(c.key, "GET", "/v1/keys"), 200);
    Expect(c, sd, "PUT /v1/keys", s_.CallAs(c.key, "PUT", "/v1/keys/s" + fresh, R"({"value": 1})"),
           201);
    Expect(c, sd, "GET /v1/keys/fixed", s_.CallAs(c.key, "GET", "/v1/keys/fixed"), 200);
    Expect(c, sd, "/v1/batch/get", s_.CallAs(c.key, "POST", "/v1/batch/get", R"({"keys": ["a"]})"),
           200);
    Expect(c, sd, "/v1/transaction",
           s_.CallAs(c.key, "POST", "/v1/transaction",
                     R"({"operations": [{"type": "delete", "key": "nothing"}]})"),
           200);
    ExpectStream(c, sd, "/v1/watch", "/v1/watch/x");
  }

 private:
  std::string Victim() {
    const std::string id = "victim" + std::to_string(n_++);
    EXPECT_EQ(201, s_.Call("POST", "/api/v1/projects", "{\"id\": \"" + id + "\"}").status);
    return id;
  }

  void Expect(const Caller& c, int want, const char* what, const HttpResponse& r, int ok) {
    if (want == 2) {
      EXPECT_EQ(ok, r.status) << c.name << " " << what << ": " << r.body;
      return;
    }
    EXPECT_EQ(want, r.status) << c.name << " " << what << ": " << r.body;
    if (r.status == 401) {
      EXPECT_FALSE(r.Header("www-authenticate").empty()) << c.name << " " << what;
      if (!r.body.empty()) {
        EXPECT_STREQ("UNAUTHORIZED", Json(r)["code"].GetString());
      }
    }
    if (r.status == 403 && !r.body.empty()) {
      EXPECT_STREQ("FORBIDDEN", Json(r)["code"].GetString());
    }
  }

  void ExpectStream(const Caller& c, int want, const char* what, const std::string& target) {
    std::string head;
    const int status = StreamStatus(s_.port(), target, c.key, &head);
    EXPECT_EQ(want == 2 ? 200 : want, status) << c.name << " " << what << ": " << head;
    if (status == 401) {
      std::string lower = head;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      EXPECT_TRUE(Contains(lower, "www-authenticate:")) << head;
    }
  }

  ServerProcess& s_;
  int n_ = 0;
};

TEST_F(KvApiTest, AuthMatrixOfRouteKindsAndCallers) {
  for (const char* p : {"p1", "p2", "open"}) {
    ASSERT_EQ(201, s().Call("PUT", std::string("/api/v1/projects/") + p + "/keys/fixed",
                            R"({"value": "f"})")
                       .status);
  }
  AuthMatrix m(s());
  const Caller callers[] = {
      {"admin key", kTestKey, "p1", 2, 2, 2},
      {"own project key", kP1Key, "p1", 403, 2, 2},
      {"other project's key", kP2Key, "p1", 403, 403, 2},
      {"no key", "", "p1", 401, 401, 401},
      {"wrong key", kWrongKey, "p1", 401, 401, 401},
      {"no key, project with auth disabled", "", "open", 401, 2, 401},
      {"other key, project with auth disabled", kP1Key, "open", 403, 2, 2},
  };
  for (const Caller& c : callers) m.Check(c);
  // /v1 with p2's key wrote into p2, with p1's into p1: never into "open".
  EXPECT_EQ(3u, Json(s().Call("GET", "/api/v1/projects/p1/keys?prefix=sm"))["items"].Size());
  EXPECT_EQ(1u, Json(s().Call("GET", "/api/v1/projects/p2/keys?prefix=sm"))["items"].Size());
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/open/keys?prefix=sm"))["items"].Size());
  EXPECT_EQ(200, s().Call("GET", "/health", {}, {}, false).status);
}

TEST(KvAuthTest, GlobalAuthenticationDisabledOpensEveryRoute) {
  ServerOptions o = KvOptions();
  o.auth = false;
  ServerProcess server("kv-globaloff", o);
  ASSERT_TRUE(server.Start());
  for (const char* p : {"p1", "p2", "open"}) {
    ASSERT_EQ(201, server
                       .CallAs("", "PUT", std::string("/api/v1/projects/") + p + "/keys/fixed",
                               R"({"value": "f"})")
                       .status);
  }
  AuthMatrix m(server);
  m.Check({"global auth off, no key", "", "p1", 2, 2, 2});
  m.Check({"global auth off, no key, p2", "", "p2", 2, 2, 2});
  // Without a key, /v1 acts on the first project.
  HttpResponse r = server.CallAs("", "PUT", "/v1/keys/where", R"({"value": 1})");
  ASSERT_EQ(201, r.status);
  EXPECT_EQ(200, server.CallAs("", "GET", "/api/v1/projects/p1/keys/where").status);
  EXPECT_EQ(404, server.CallAs("", "GET", "/api/v1/projects/p2/keys/where").status);
  EXPECT_EQ(0, server.Stop());
}

// ---------------------------------------------------------------- concurrency

TEST_F(KvApiTest, EightClientsIncrementOneCounterWithIfMatch) {
  constexpr int kThreads = 8, kIncrements = 50;
  ASSERT_EQ(201, PutP1("counter", R"({"value": 0})").status);
  std::atomic<int> conflicts{0}, failures{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      HttpClient c("127.0.0.1", s().port());
      // Odd threads go through /v1 with p1's key, even ones through the project path.
      const std::string target = t % 2 ? "/v1/keys/counter" : "/api/v1/projects/p1/keys/counter";
      const std::string key = t % 2 ? kP1Key : kTestKey;
      for (int done = 0, attempts = 0; done < kIncrements && attempts < 20000; attempts++) {
        Result<HttpResponse> g =
            c.Request("GET", target + "?include_metadata=true", {}, {{"X-API-Key", key}});
        if (!g.ok() || g->status != 200) {
          failures++;
          return;
        }
        rapidjson::Document d;
        d.Parse(g->body.data(), g->body.size());
        const int64_t value = d["value"].GetInt64();
        const uint64_t version = d["metadata"]["version"].GetUint64();
        Result<HttpResponse> p =
            c.Request("PUT", target, "{\"value\": " + std::to_string(value + 1) + "}",
                      {{"X-API-Key", key},
                       {"Content-Type", "application/json"},
                       {"If-Match", std::to_string(version)}});
        if (p.ok() && p->status == 200) {
          done++;
        } else if (p.ok() && p->status == 412) {
          conflicts++;
        } else {
          failures++;
          return;
        }
      }
    });
  }
  threads.clear();  // joins
  EXPECT_EQ(0, failures.load());
  std::printf("%d conflicts retried\n", conflicts.load());
  rapidjson::Document d = GetP1("counter");
  EXPECT_EQ(kThreads * kIncrements, d["value"].GetInt());
  EXPECT_EQ(static_cast<uint64_t>(kThreads * kIncrements + 1),
            d["metadata"]["version"].GetUint64());
}

// Writes that race with a project's deletion get 2xx, 401 (key gone) or 404
// (project gone), never a 5xx; nothing of the project remains, on disk or
// in a project re-created with the same id.
TEST_F(KvApiTest, DeletingAProjectUnderConcurrentWritesLeavesNothing) {
  std::atomic<bool> deleted{false};
  std::atomic<int> ok{0}, after{0}, bad{0};
  std::vector<std::jthread> writers;
  for (int t = 0; t < 4; t++) {
    writers.emplace_back([&, t] {
      HttpClient c("127.0.0.1", s().port());
      for (int i = 0; i < 5000; i++) {
        const bool was_deleted = deleted.load();
        Result<HttpResponse> r = c.Request(
            "PUT", "/v1/keys/w" + std::to_string(t) + "-" + std::to_string(i), R"({"value": "x"})",
            {{"X-API-Key", kP2Key}, {"Content-Type", "application/json"}});
        if (r.ok() && r->status == 201) {
          ok++;
          if (was_deleted) after++;  // acknowledged after the delete returned
        } else if (r.ok() && (r->status == 401 || r->status == 404)) {
          return;
        } else {
          bad++;
          std::printf("unexpected: %s\n", r.ok() ? r->body.c_str() : r.status().ToString().c_str());
          return;
        }
      }
    });
  }
  EXPECT_TRUE(WaitUntil([&] { return ok.load() >= 100 || bad.load() > 0; }));
  ASSERT_EQ(204, s().Call("DELETE", "/api/v1/projects/p2").status);
  deleted = true;
  writers.clear();  // joins
  std::printf("%d writes acknowledged before the delete\n", ok.load());
  EXPECT_EQ(0, bad.load());
  EXPECT_EQ(0, after.load()) << "writes acknowledged after the project was deleted";
  EXPECT_TRUE(FilesOf(kv_dir(), "p2").empty()) << *FilesOf(kv_dir(), "p2").begin();
  HttpResponse again = s().Call("POST", "/api/v1/projects", R"({"id": "p2"})");
  ASSERT_EQ(201, again.status);
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/p2/keys"))["items"].Size());
  Restart();
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/p2/keys"))["items"].Size());
  EXPECT_TRUE(FilesOf(kv_dir(), "p2").size() <= 3);
}

// Turning disk storage on while writes go on: every write acknowledged
// before, during and after the switch survives a restart.
TEST_F(KvApiTest, SwitchingOnDiskUnderWritesLosesNothing) {
  ASSERT_EQ(201,
            s().Call("POST", "/api/v1/projects", R"({"id": "mem", "storage": {"on_disk": false}})")
                .status);
  std::atomic<int> acked{0};
  std::atomic<bool> failed{false};
  std::vector<std::string> keys;  // the writer's until it is joined
  std::jthread writer([&](std::stop_token stop) {
    HttpClient c("127.0.0.1", s().port());
    for (int i = 0; !stop.stop_requested(); i++) {
      const std::string k = "k" + std::to_string(i);
      Result<HttpResponse> r = c.Request(
          "PUT", "/api/v1/projects/mem/keys/" + k, "{\"value\": " + std::to_string(i) + "}",
          {{"X-API-Key", kTestKey}, {"Content-Type", "application/json"}});
      if (!r.ok() || r->status != 201) {
        ADD_FAILURE() << (r.ok() ? r->body : r.status().ToString());
        failed = true;
        return;
      }
      keys.push_back(k);
      acked++;
    }
  });
  EXPECT_TRUE(WaitUntil([&] { return acked.load() >= 200 || failed.load(); }));
  HttpResponse on = s().Call("PUT", "/api/v1/projects/mem", R"({"storage": {"on_disk": true}})");
  const int at_switch = acked.load();
  EXPECT_TRUE(WaitUntil([&] { return acked.load() >= at_switch + 200 || failed.load(); }));
  writer.request_stop();
  writer.join();
  ASSERT_EQ(200, on.status) << on.body;
  Restart();
  HttpResponse list = s().Call("GET", "/api/v1/projects/mem/keys");
  rapidjson::Document d = Json(list);
  std::set<std::string> held;
  for (const auto& item : d["items"].GetArray()) held.insert(item["key"].GetString());
  size_t missing = 0;
  for (const std::string& k : keys) missing += held.count(k) == 0;
  EXPECT_EQ(0u, missing) << "of " << keys.size() << " acknowledged writes";
  EXPECT_EQ(keys.size(), held.size());
}

TEST_F(KvApiTest, ConcurrentCreatesOfOneIdMakeOneProject) {
  std::atomic<int> created{0}, conflicts{0}, other{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&] {
      HttpClient c("127.0.0.1", s().port());
      Result<HttpResponse> r =
          c.Request("POST", "/api/v1/projects", R"({"id": "race"})",
                    {{"X-API-Key", kTestKey}, {"Content-Type", "application/json"}});
      if (r.ok() && r->status == 201) {
        created++;
      } else if (r.ok() && r->status == 409) {
        conflicts++;
      } else {
        other++;
      }
    });
  }
  threads.clear();  // joins
  EXPECT_EQ(1, created.load());
  EXPECT_EQ(7, conflicts.load());
  EXPECT_EQ(0, other.load());
  const std::string text = ReadFileText(s().config_path());
  EXPECT_EQ(text.find("\"race\""), text.rfind("\"race\"")) << text;
  EXPECT_EQ(4u, Json(s().Call("GET", "/api/v1/projects"))["total"].GetUint64());
}

// A key past its TTL is absent for every operation even before the
// background sweep removes it.
TEST(KvExpiryTest, ExpiredKeysAreAbsentBeforeTheSweep) {
  ServerOptions o = KvOptions();
  o.kv_expiry_interval_ms = 3600000;  // the sweep never runs in this test
  ServerProcess server("kv-expiry-nosweep", o);
  ASSERT_TRUE(server.Start());
  const std::string k = "/api/v1/projects/p1/keys/";
  ASSERT_EQ(201, server.Call("PUT", k + "e", R"({"value": 1, "ttl_seconds": 1})").status);
  ASSERT_EQ(201, server.Call("PUT", k + "keep", R"({"value": 2})").status);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server.Call("GET", k + "e").status == 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ExpectError(server.Call("GET", k + "e"), 404, "KEY_NOT_FOUND");
  EXPECT_EQ(404, server.Call("HEAD", k + "e").status);
  rapidjson::Document l = Json(server.Call("GET", "/api/v1/projects/p1/keys"));
  ASSERT_EQ(1u, l["items"].Size());
  EXPECT_STREQ("keep", l["items"][0]["key"].GetString());
  EXPECT_FALSE(Json(server.Call("POST", "/api/v1/projects/p1/batch/get",
                                R"({"keys": ["e"]})"))["items"][0]["found"]
                   .GetBool());
  EXPECT_EQ(404, server.Call("DELETE", k + "e").status);
  ExpectError(server.Call("POST", "/api/v1/projects/p1/transaction",
                          R"({"operations": [{"type": "put", "key": "e", "value": 3,
                                             "conditions": [{"type": "exists"}]}]})"),
              409, "CONDITION_FAILED");
  ExpectError(server.Call("PUT", k + "e", R"({"value": 3})", {{"If-Match", "1"}}), 412,
              "VERSION_CONFLICT");
  // A new write creates it afresh: version 1, 201.
  HttpResponse c = server.Call("PUT", k + "e", R"({"value": 4})", {{"If-None-Match", "*"}});
  EXPECT_EQ(201, c.status) << c.body;
  EXPECT_EQ(1u, Json(c)["version"].GetUint64());
  rapidjson::Document st = Json(server.Call("GET", "/api/v1/projects/p1/stats"));
  EXPECT_EQ(2u, st["keys"].GetUint64());
  EXPECT_EQ(1u, st["expirations"].GetUint64());
  EXPECT_EQ(0, server.Stop());
}

// Raw slashes name nested keys; a trailing one must not silently name
// another key.
TEST_F(KvApiTest, ATrailingSlashDoesNotWriteAnotherKey) {
  ASSERT_EQ(201, s().CallAs(kP1Key, "PUT", "/v1/keys/dir", R"({"value": "plain"})").status);
  HttpResponse r = s().CallAs(kP1Key, "PUT", "/v1/keys/dir/", R"({"value": "slash"})");
  rapidjson::Document d = GetP1("dir");
  EXPECT_STREQ("plain", d["value"].GetString())
      << "PUT /v1/keys/dir/ answered " << r.status << " " << r.body << " and overwrote key dir";
  EXPECT_EQ(1u, d["metadata"]["version"].GetUint64());
  if (r.status == 201) {
    EXPECT_STREQ("dir/", Json(r)["key"].GetString());
  } else {
    EXPECT_EQ(400, r.status) << r.body;
  }
}

// Stats agree with the keys and values actually held, through every kind of
// write (overwrites, batches with a key twice, transactions, deletes, clear)
// and across a restart, which rebuilds them from the files.
TEST_F(KvApiTest, StatsMatchTheHeldDataThroughEveryKindOfWrite) {
  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    rapidjson::Document l = Json(s().Call("GET", "/api/v1/projects/p1/keys?include_values=true"));
    uint64_t key_bytes = 0, value_bytes = 0;
    for (const auto& item : l["items"].GetArray()) {
      key_bytes += item["key"].GetStringLength();
      value_bytes += Compact(item["value"]).size();
    }
    rapidjson::Document st = Json(s().Call("GET", "/api/v1/projects/p1/stats"));
    EXPECT_EQ(l["items"].Size(), st["keys"].GetUint64());
    EXPECT_EQ(key_bytes, st["key_bytes"].GetUint64());
    EXPECT_EQ(value_bytes, st["value_bytes"].GetUint64());
    EXPECT_EQ(key_bytes + value_bytes, st["bytes"].GetUint64());
  };
  ASSERT_EQ(201, PutP1("a", R"({"value": "long value here"})").status);
  ASSERT_EQ(200, PutP1("a", R"({"value": 1})").status);
  check("after an overwrite");
  HttpResponse dup = s().Call("POST", "/api/v1/projects/p1/batch/put",
                              R"({"items": [{"key": "d", "value": "first"},
                                            {"key": "d", "value": "second!"}]})");
  ASSERT_EQ(200, dup.status) << dup.body;
  rapidjson::Document dd = GetP1("d");
  EXPECT_STREQ("second!", dd["value"].GetString());
  EXPECT_EQ(Json(dup)["results"][1]["version"].GetUint64(), dd["metadata"]["version"].GetUint64());
  check("after a batch with one key twice");
  HttpResponse del =
      s().Call("POST", "/api/v1/projects/p1/batch/delete", R"({"keys": ["d", "d"]})");
  ASSERT_EQ(200, del.status);
  EXPECT_EQ(1u, Json(del)["deleted"].GetUint64()) << del.body;
  check("after a batch delete of one key twice");
  ASSERT_EQ(200, s().Call("POST", "/api/v1/projects/p1/transaction", R"({"operations": [
      {"type": "put", "key": "t", "value": [1, 2, 3]},
      {"type": "put", "key": "t", "value": "x"},
      {"type": "put", "key": "u", "value": {"a": "b"}},
      {"type": "delete", "key": "u"},
      {"type": "delete", "key": "a"}]})")
                     .status);
  EXPECT_STREQ("x", GetP1("t")["value"].GetString());
  EXPECT_EQ(404, StatusP1("u"));
  EXPECT_EQ(404, StatusP1("a"));
  check("after a transaction writing keys twice");
  for (int i = 0; i < 20; i++) {
    ASSERT_LE(
        PutP1("k" + std::to_string(i % 7), "{\"value\": \"" + std::string(i, 'v') + "\"}").status,
        201);
  }
  check("after overwrites");
  Restart();
  check("after a restart");
  const std::string before = s().Call("GET", "/api/v1/projects/p1/keys").body;
  ASSERT_EQ(200, s().Call("DELETE", "/api/v1/projects/p1/keys").status);
  check("after deleting all");
  Restart();
  check("after deleting all and a restart");
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/p1/keys"))["items"].Size()) << before;
}

// Seed 002: with save_api_key_to_file the plain key is kept in config.json
// (and follows regeneration); turning it off removes it, the hash stays.
TEST_F(KvApiTest, SaveApiKeyToFileKeepsThePlainKeyInTheConfig) {
  auto entry = [&](const std::string& id) {
    rapidjson::Document cfg;
    const std::string text = ReadFileText(s().config_path());
    cfg.Parse(text.data(), text.size());
    for (auto& p : cfg["projects"].GetArray()) {
      if (id == p["id"].GetString()) {
        const rapidjson::Value& a = p["authentication"];
        return std::make_pair(a["api_key"].IsString() ? std::string(a["api_key"].GetString()) : "",
                              std::string(a["api_key_hash"].GetString()));
      }
    }
    ADD_FAILURE() << "no project " << id << " in " << text;
    return std::make_pair(std::string(), std::string());
  };
  HttpResponse c = s().Call("POST", "/api/v1/projects",
                            R"({"id": "saved", "authentication": {"save_api_key_to_file": true}})");
  ASSERT_EQ(201, c.status) << c.body;
  EXPECT_TRUE(Json(c)["authentication"]["save_api_key_to_file"].GetBool());
  const std::string k1 = Json(c)["api_key"].GetString();
  EXPECT_EQ(std::make_pair(k1, HashApiKey(k1)), entry("saved"));
  HttpResponse r = s().Call("POST", "/api/v1/projects/saved/api-key/regenerate");
  ASSERT_EQ(200, r.status);
  const std::string k2 = Json(r)["api_key"].GetString();
  EXPECT_EQ(std::make_pair(k2, HashApiKey(k2)), entry("saved"));
  HttpResponse off = s().CallAs(k2, "PUT", "/api/v1/projects/saved",
                                R"({"authentication": {"save_api_key_to_file": false}})");
  ASSERT_EQ(200, off.status) << off.body;
  EXPECT_EQ(std::make_pair(std::string(), HashApiKey(k2)), entry("saved"));
  EXPECT_FALSE(Contains(ReadFileText(s().config_path()), k2));
  Restart();
  EXPECT_EQ(200, s().CallAs(k2, "GET", "/api/v1/projects/saved").status);
  EXPECT_EQ(401, s().CallAs(k1, "GET", "/api/v1/projects/saved").status);
  // The listing never shows a key, saved or not.
  EXPECT_FALSE(Contains(s().Call("GET", "/api/v1/projects").body, "psk_"));
}

// The admin key's /v1 project is whichever project is first in the config;
// with none left, /v1 says so.
TEST_F(KvApiTest, AdminSeedRoutesFollowTheFirstProject) {
  ASSERT_EQ(201, s().Call("PUT", "/v1/keys/where", R"({"value": "p1"})").status);
  ASSERT_EQ(204, s().Call("DELETE", "/api/v1/projects/p1").status);
  HttpResponse r = s().Call("PUT", "/v1/keys/where", R"({"value": "p2"})");
  EXPECT_EQ(201, r.status) << r.body;
  EXPECT_STREQ("p2", Json(s().CallAs(kP2Key, "GET", "/v1/keys/where"))["value"].GetString());
  // Bearer works as well as X-API-Key.
  HttpResponse b = s().Call("GET", "/v1/keys/where", {}, {{"Authorization", "Bearer " + kP2Key}},
                            /*with_key=*/false);
  EXPECT_EQ(200, b.status) << b.body;
  ASSERT_EQ(204, s().Call("DELETE", "/api/v1/projects/p2").status);
  ASSERT_EQ(204, s().Call("DELETE", "/api/v1/projects/open").status);
  ExpectError(s().Call("GET", "/v1/keys/where"), 404, "NOT_FOUND");
  ExpectError(s().Call("PUT", "/v1/keys/where", R"({"value": 1})"), 404, "NOT_FOUND");
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects"))["total"].GetUint64());
  Restart();
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects"))["total"].GetUint64());
}

TEST_F(KvApiTest, ConcurrentCreatesWithIfNoneMatchHaveOneWinner) {
  for (int round = 0; round < 5; round++) {
    const std::string key = "once" + std::to_string(round);
    std::atomic<int> created{0}, exists{0}, other{0};
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; t++) {
      threads.emplace_back([&, t] {
        HttpClient c("127.0.0.1", s().port());
        Result<HttpResponse> r = c.Request(
            "PUT", "/v1/keys/" + key, "{\"value\": " + std::to_string(t) + "}",
            {{"X-API-Key", kP1Key}, {"Content-Type", "application/json"}, {"If-None-Match", "*"}});
        if (r.ok() && r->status == 201) {
          created++;
        } else if (r.ok() && r->status == 412 && Contains(r->body, "ALREADY_EXISTS")) {
          exists++;
        } else {
          other++;
        }
      });
    }
    threads.clear();  // joins
    EXPECT_EQ(1, created.load()) << key;
    EXPECT_EQ(7, exists.load()) << key;
    EXPECT_EQ(0, other.load()) << key;
    EXPECT_EQ(1u, GetP1(key)["metadata"]["version"].GetUint64());
  }
}

// Transfers between two keys by transactions guarded with version_match:
// whatever the interleaving, none is lost or applied twice.
TEST_F(KvApiTest, ConcurrentTransactionsWithVersionMatchLoseNothing) {
  constexpr int kThreads = 4, kTransfers = 25;
  ASSERT_EQ(201, PutP1("acct:a", R"({"value": 100})").status);
  ASSERT_EQ(201, PutP1("acct:b", R"({"value": 100})").status);
  std::atomic<int> conflicts{0}, failures{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&] {
      HttpClient c("127.0.0.1", s().port());
      const HttpHeaders h = {{"X-API-Key", kP1Key}, {"Content-Type", "application/json"}};
      for (int done = 0, tries = 0; done < kTransfers && tries < 10000; tries++) {
        Result<HttpResponse> g =
            c.Request("POST", "/v1/batch/get",
                      R"({"keys": ["acct:a", "acct:b"], "include_metadata": true})", h);
        if (!g.ok() || g->status != 200) {
          failures++;
          return;
        }
        rapidjson::Document d;
        d.Parse(g->body.data(), g->body.size());
        const rapidjson::Value& a = d["items"][0];
        const rapidjson::Value& b = d["items"][1];
        const std::string body =
            "{\"operations\": [{\"type\": \"put\", \"key\": \"acct:a\", \"value\": " +
            std::to_string(a["value"].GetInt() - 1) +
            ", \"conditions\": [{\"type\": \"version_match\", \"value\": \"" +
            std::to_string(a["metadata"]["version"].GetUint64()) +
            "\"}]}, {\"type\": \"put\", \"key\": \"acct:b\", \"value\": " +
            std::to_string(b["value"].GetInt() + 1) +
            ", \"conditions\": [{\"type\": \"version_match\", \"value\": " +
            std::to_string(b["metadata"]["version"].GetUint64()) + "}]}]}";
        Result<HttpResponse> r = c.Request("POST", "/v1/transaction", body, h);
        if (r.ok() && r->status == 200) {
          done++;
        } else if (r.ok() && r->status == 409) {
          conflicts++;
        } else {
          failures++;
          return;
        }
      }
    });
  }
  threads.clear();  // joins
  EXPECT_EQ(0, failures.load());
  std::printf("%d conflicts retried\n", conflicts.load());
  rapidjson::Document a = GetP1("acct:a"), b = GetP1("acct:b");
  EXPECT_EQ(100 - kThreads * kTransfers, a["value"].GetInt());
  EXPECT_EQ(100 + kThreads * kTransfers, b["value"].GetInt());
  EXPECT_EQ(1u + kThreads * kTransfers, a["metadata"]["version"].GetUint64());
  EXPECT_EQ(1u + kThreads * kTransfers, b["metadata"]["version"].GetUint64());
  Restart();
  EXPECT_EQ(100 + kThreads * kTransfers, GetP1("acct:b")["value"].GetInt());
}

// A key identifies one caller. Two projects given the same key in
// config.json (an entry copied with its key, say) would make that key open
// one of them and be refused by the other; a project key equal to the admin
// key would make the project's users admins. The server must refuse to
// start on such a file rather than guess.
TEST(KvConfigTest, AKeySharedByTwoCallersIsRefusedAtStart) {
  {
    ServerOptions o;
    o.projects_json =
        "[" + ProjectEntry("p1", "same-key-123") + ", " + ProjectEntry("p2", "same-key-123") + "]";
    ServerProcess server("kv-dupkey", o);
    EXPECT_FALSE(server.Start()) << "started with two projects sharing one key";
    if (server.Alive()) {
      // What its users then see: p1's configured key is refused by p1.
      HttpResponse r = server.CallAs("same-key-123", "GET", "/api/v1/projects/p1/keys");
      EXPECT_EQ(200, r.status) << r.body;
    }
  }
  {
    ServerOptions o;
    o.projects_json = "[" + ProjectEntry("p1", kTestKey) + "]";
    ServerProcess server("kv-adminkey", o);
    EXPECT_FALSE(server.Start()) << "started with a project key equal to the admin key";
  }
}

// Seed 002's listing returns every key with its value; a project holding
// more than one response's worth of data must still get an answer (all of
// it, or an error saying why), never a connection that hangs and closes.
// max_body_bytes is small here so that a few 60 KB values are enough.
TEST(KvLargeTest, ListingsLargerThanAResponseStillGetAnAnswer) {
  ServerOptions o = KvOptions();
  o.max_body_bytes = 64 << 10;
  ServerProcess server("kv-large", o);
  ASSERT_TRUE(server.Start());
  // Values may be as large as max_body_bytes; five of them make a listing
  // of about 300 KB.
  const std::string value(60000, 'v');
  for (int i = 0; i < 5; i++) {
    HttpResponse p =
        server.Call("PUT", "/v1/keys/big" + std::to_string(i), "{\"value\": \"" + value + "\"}");
    ASSERT_EQ(201, p.status) << p.body;
  }
  struct Ask {
    const char* method;
    const char* target;
    const char* body;
  };
  const Ask asks[] = {
      {"GET", "/api/v1/projects/p1/keys", ""},
      {"GET", "/v1/keys?include_values=true", ""},
      {"POST", "/v1/batch/get", R"({"keys": ["big0", "big1", "big2", "big3", "big4"]})"}};
  for (const Ask& a : asks) {
    HttpClient c("127.0.0.1", server.port());
    c.set_timeout(std::chrono::seconds(3));
    HttpHeaders h = {{"X-API-Key", kTestKey}};
    if (*a.body) h.emplace_back("Content-Type", "application/json");
    Result<HttpResponse> r = c.Request(a.method, a.target, a.body, h);
    if (!r.ok()) {
      ADD_FAILURE() << a.method << " " << a.target << ": no answer: " << r.status().ToString();
      continue;
    }
    if (std::string(a.method) == "POST") {
      // One batch reply cannot hold them all: a clear 413, not silence.
      EXPECT_EQ(413, r->status) << r->body.substr(0, 300);
      EXPECT_STREQ("RESPONSE_TOO_LARGE", Json(*r)["code"].GetString());
      continue;
    }
    // Listings end a page early (has_more + next_cursor) when the next
    // value would not fit; walking the cursors gives every key once.
    ASSERT_EQ(200, r->status) << r->body.substr(0, 300);
    size_t items = 0, pages = 0;
    for (;;) {
      rapidjson::Document d = Json(*r);
      items += d["items"].Size();
      pages++;
      if (d["next_cursor"].IsNull()) break;
      ASSERT_TRUE(d["has_more"].GetBool());
      const std::string sep = std::string(a.target).find('?') == std::string::npos ? "?" : "&";
      r = c.Request("GET", std::string(a.target) + sep + "cursor=" + d["next_cursor"].GetString(),
                    "", h);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(200, r->status) << r->body.substr(0, 300);
    }
    EXPECT_EQ(5u, items) << a.target;
    EXPECT_GT(pages, 1u) << a.target;
  }
  EXPECT_EQ(200, server.Call("GET", "/health", {}, {}, false).status);
  EXPECT_EQ(0, server.Stop());
}

}  // namespace
}  // namespace pstorage::api::testing
