// Every REST example of seed 000 as curl sends it, through /v1 with the
// admin key and with a project key; the seed's error body fields; and the
// project /v1 acts on for the admin key.
#include <gtest/gtest.h>

#include <string>

#include "tests/api/kv_test_util.h"

namespace pstorage::api::testing {
namespace {

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

}  // namespace
}  // namespace pstorage::api::testing
