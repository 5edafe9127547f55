// Batches and transactions through the KV HTTP API: batch put, get and
// delete are all or nothing; seed 000's transaction example, conditions and
// atomicity, and a transaction surviving a restart as one unit.
#include <gtest/gtest.h>

#include <string>

#include "tests/api/kv_test_util.h"

namespace pstorage::api::testing {
namespace {

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

}  // namespace
}  // namespace pstorage::api::testing
