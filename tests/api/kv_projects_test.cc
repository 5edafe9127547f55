// Projects through the KV HTTP API (seed 002): the list without keys or
// hashes, create (its key shown once, only the hash in config.json),
// regenerate, delete, settings (authentication, on_disk, cache_in_memory,
// save_api_key_to_file) and projects added to the config file by hand.
#include <gtest/gtest.h>
#include <rapidjson/prettywriter.h>

#include <fstream>
#include <string>
#include <utility>

#include "api/auth.h"
#include "tests/api/kv_test_util.h"

namespace pstorage::api::testing {
namespace {

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

}  // namespace
}  // namespace pstorage::api::testing
