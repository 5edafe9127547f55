// Malformed KV and project requests: each gets its exact 4xx status and
// error code, in the one JSON error shape, and changes nothing: the keys
// (values, versions, times), the project list, the write counter and the
// config file's bytes are identical afterwards.
#include <gtest/gtest.h>

#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

const std::string kP1Key = "p1-key-0123456789abcdefABCDEF";

struct BadCase {
  std::string what;
  std::string method;
  std::string target;
  std::string body;
  int status;
  std::string code;
  HttpHeaders headers = {};
  bool with_key = true;  // the admin key; false sends none
};

// Limits of this server: small, so that the cases stay small.
constexpr int kMaxKeyBytes = 64;
constexpr int kMaxValueBytes = 1024;
constexpr int kMaxBatchItems = 10;

ServerOptions Options() {
  ServerOptions o;
  o.projects_json = "[" + ProjectEntry("p1", kP1Key) + ", " +
                    ProjectEntry("open", "", /*on_disk=*/true, /*auth=*/false) + "]";
  o.kv_max_key_bytes = kMaxKeyBytes;
  o.kv_max_value_bytes = kMaxValueBytes;
  o.kv_max_batch_items = kMaxBatchItems;
  return o;
}

std::string Nested(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

std::string Items(int n) {
  std::string s;
  for (int i = 0; i < n; i++) {
    s += std::string(i ? ", " : "") + "{\"key\": \"n" + std::to_string(i) + "\", \"value\": 1}";
  }
  return "{\"items\": [" + s + "]}";
}

std::string Ops(const std::string& one) {
  return R"({"operations": [{"type": "delete", "key": "victim"}, )" + one + "]}";
}

std::vector<BadCase> Cases() {
  const std::string K = "/api/v1/projects/p1/keys/victim";
  const std::string V = "/v1/keys/victim";
  const std::string P = "/api/v1/projects/p1";
  const std::string big(kMaxValueBytes, 'x');
  const std::string long_key(kMaxKeyBytes + 1, 'k');
  const char* kInvalid = "INVALID_ARGUMENT";
  return {
      // Bodies that are not one JSON object.
      {"empty body", "PUT", K, "", 400, kInvalid},
      {"not JSON", "PUT", K, "value=1", 400, kInvalid},
      {"truncated JSON", "PUT", K, R"({"value": 1)", 400, kInvalid},
      {"missing value after colon", "PUT", K, R"({"value": })", 400, kInvalid},
      {"trailing garbage", "PUT", K, R"({"value": 1} x)", 400, kInvalid},
      {"two documents", "POST", V, R"({"value": 1}{"value": 2})", 400, kInvalid},
      {"array root", "PUT", V, R"([{"value": 1}])", 400, kInvalid},
      {"invalid UTF-8", "PUT", K, "{\"value\": \"\xff\xfe\"}", 400, kInvalid},
      {"wrong Content-Type",
       "PUT",
       K,
       R"({"value": 1})",
       400,
       kInvalid,
       {{"Content-Type", "text/plain"}}},
      {"form Content-Type",
       "POST",
       "/v1/batch/put",
       Items(1),
       400,
       kInvalid,
       {{"Content-Type", "application/x-www-form-urlencoded"}}},
      // Fields.
      {"missing value", "PUT", K, R"({"ttl_seconds": 5})", 400, kInvalid},
      {"unknown field", "PUT", K, R"({"value": 1, "valeu": 2})", 400, kInvalid},
      {"duplicate field", "PUT", K, R"({"value": 1, "value": 2})", 400, kInvalid},
      {"ttl 0", "PUT", K, R"({"value": 1, "ttl_seconds": 0})", 400, kInvalid},
      {"ttl negative", "PUT", K, R"({"value": 1, "ttl_seconds": -5})", 400, kInvalid},
      {"ttl float", "PUT", K, R"({"value": 1, "ttl_seconds": 1.5})", 400, kInvalid},
      {"ttl whole float", "PUT", K, R"({"value": 1, "ttl_seconds": 60.0})", 400, kInvalid},
      {"ttl string", "PUT", K, R"({"value": 1, "ttl_seconds": "60"})", 400, kInvalid},
      {"ttl huge", "PUT", K, R"({"value": 1, "ttl_seconds": 99999999999999999999})", 400, kInvalid},
      {"ttl past the limit", "PUT", K, R"({"value": 1, "ttl_seconds": 1000000001})", 400, kInvalid},
      {"ttl bool", "PUT", V, R"({"value": 1, "ttl_seconds": true})", 400, kInvalid},
      {"metadata string", "PUT", K, R"({"value": 1, "metadata": "x"})", 400, kInvalid},
      {"metadata array", "PUT", K, R"({"value": 1, "metadata": ["a"]})", 400, kInvalid},
      {"metadata number value", "PUT", K, R"({"value": 1, "metadata": {"a": 1}})", 400, kInvalid},
      {"metadata object value", "PUT", V, R"({"value": 1, "metadata": {"a": {"b": "c"}}})", 400,
       kInvalid},
      {"metadata null value", "PUT", K, R"({"value": 1, "metadata": {"a": null}})", 400, kInvalid},
      {"metadata name past 256 bytes", "PUT", K,
       "{\"value\": 1, \"metadata\": {\"" + std::string(257, 'n') + "\": \"v\"}}", 400, kInvalid},
      {"metadata value past 256 bytes", "PUT", V,
       "{\"value\": 1, \"metadata\": {\"n\": \"" + std::string(257, 'v') + "\"}}", 400, kInvalid},
      {"65 metadata entries", "PUT", K,
       [] {
         std::string m;
         for (int i = 0; i < 65; i++)
           m += std::string(i ? ", " : "") + "\"t" + std::to_string(i) + "\": \"v\"";
         return "{\"value\": 1, \"metadata\": {" + m + "}}";
       }(),
       400, kInvalid},
      // Limits.
      {"value over max_value_bytes", "PUT", K, "{\"value\": \"" + big + "\"}", 413,
       "VALUE_TOO_LARGE"},
      {"value over max_value_bytes in a batch", "POST", "/v1/batch/put",
       R"({"items": [{"key": "victim", "value": 2}, {"key": "b", "value": ")" + big + "\"}]}", 413,
       "VALUE_TOO_LARGE"},
      {"value over max_value_bytes in a transaction", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b", "value": ")" + big + "\"}"), 413, "VALUE_TOO_LARGE"},
      {"key over max_key_bytes", "PUT", "/api/v1/projects/p1/keys/" + long_key, R"({"value": 1})",
       400, kInvalid},
      {"key over max_key_bytes in a batch", "POST", "/v1/batch/put",
       R"({"items": [{"key": "victim", "value": 2}, {"key": ")" + long_key + R"(", "value": 1}]})",
       400, kInvalid},
      {"value nested past 32", "PUT", K, "{\"value\": " + Nested(33) + "}", 400, kInvalid},
      {"body nested 100 deep", "PUT", K, "{\"value\": " + Nested(100) + "}", 400, kInvalid},
      {"nested past 32 in a batch", "POST", "/v1/batch/put",
       R"({"items": [{"key": "victim", "value": 2}, {"key": "d", "value": )" + Nested(33) + "}]}",
       400, kInvalid},
      {"batch over max_batch_items", "POST", "/v1/batch/put", Items(kMaxBatchItems + 1), 413,
       "BATCH_TOO_LARGE"},
      {"batch get over max_batch_items", "POST", "/v1/batch/get",
       R"({"keys": ["a","b","c","d","e","f","g","h","i","j","k"]})", 413, "BATCH_TOO_LARGE"},
      {"transaction over max_batch_items", "POST", "/v1/transaction",
       R"({"operations": [)" +
           [] {
             std::string s;
             for (int i = 0; i <= kMaxBatchItems; i++) {
               s += std::string(i ? ", " : "") + R"({"type": "delete", "key": "victim"})";
             }
             return s;
           }() +
           "]}",
       413, "BATCH_TOO_LARGE"},
      // Keys in the path.
      {"control byte in key", "PUT", "/v1/keys/a%01b", R"({"value": 1})", 400, kInvalid},
      {"NUL in key", "PUT", "/v1/keys/a%00b", R"({"value": 1})", 400, kInvalid},
      {"invalid UTF-8 key", "PUT", "/v1/keys/%FF%FE", R"({"value": 1})", 400, kInvalid},
      {"malformed percent-escape in key", "PUT", "/v1/keys/a%zzb", R"({"value": 1})", 400,
       kInvalid},
      {"truncated percent-escape in key", "GET", "/v1/keys/victim%2", "", 400, kInvalid},
      {"malformed percent-escape in query", "GET", "/v1/keys?prefix=%zz", "", 400, kInvalid},
      // Batches.
      {"empty batch put", "POST", "/v1/batch/put", R"({"items": []})", 400, kInvalid},
      {"empty batch get", "POST", "/v1/batch/get", R"({"keys": []})", 400, kInvalid},
      {"empty batch delete", "POST", "/v1/batch/delete", R"({"keys": []})", 400, kInvalid},
      {"batch items not an array", "POST", "/v1/batch/put", R"({"items": {"key": "a"}})", 400,
       kInvalid},
      {"batch item not an object", "POST", "/v1/batch/put",
       R"({"items": [{"key": "victim", "value": 2}, "x"]})", 400, kInvalid},
      {"batch put empty key", "POST", "/v1/batch/put",
       R"({"items": [{"key": "victim", "value": 2}, {"key": "", "value": 1}]})", 400, kInvalid},
      {"batch put missing key", "POST", "/api/v1/projects/p1/batch/put",
       R"({"items": [{"key": "victim", "value": 2}, {"value": 1}]})", 400, kInvalid},
      {"batch put unknown top-level field", "POST", "/v1/batch/put",
       R"({"items": [{"key": "victim", "value": 2}], "atomic": false})", 400, kInvalid},
      {"batch get keys with a number", "POST", "/v1/batch/get", R"({"keys": ["victim", 1]})", 400,
       kInvalid},
      {"batch delete keys with a null", "POST", "/v1/batch/delete", R"({"keys": ["victim", null]})",
       400, kInvalid},
      {"batch delete keys not an array", "POST", "/v1/batch/delete", R"({"keys": "victim"})", 400,
       kInvalid},
      {"batch get include_metadata string", "POST", "/v1/batch/get",
       R"({"keys": ["victim"], "include_metadata": "yes"})", 400, kInvalid},
      {"batch get missing keys", "POST", "/v1/batch/get", R"({})", 400, kInvalid},
      // Transactions.
      {"transaction unknown op type", "POST", "/v1/transaction",
       Ops(R"({"type": "upsert", "key": "victim", "value": 1})"), 400, kInvalid},
      {"transaction op without type", "POST", "/v1/transaction",
       Ops(R"({"key": "victim", "value": 1})"), 400, kInvalid},
      {"transaction op without key", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "value": 1})"), 400, kInvalid},
      {"transaction put without value", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b"})"), 400, kInvalid},
      {"transaction delete with value", "POST", "/v1/transaction",
       Ops(R"({"type": "delete", "key": "b", "value": 1})"), 400, kInvalid},
      {"transaction unknown condition type", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b", "value": 1, "conditions": [{"type": "newer_than"}]})"),
       400, kInvalid},
      {"version_match not a number", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b", "value": 1,
               "conditions": [{"type": "version_match", "value": "abc"}]})"),
       400, kInvalid},
      {"version_match bool", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b", "value": 1,
               "conditions": [{"type": "version_match", "value": true}]})"),
       400, kInvalid},
      {"version_match negative", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b", "value": 1,
               "conditions": [{"type": "version_match", "value": -1}]})"),
       400, kInvalid},
      {"version_match float", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b", "value": 1,
               "conditions": [{"type": "version_match", "value": 1.5}]})"),
       400, kInvalid},
      {"version_match without value", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b", "value": 1, "conditions": [{"type": "version_match"}]})"),
       400, kInvalid},
      {"conditions not an array", "POST", "/v1/transaction",
       Ops(R"({"type": "put", "key": "b", "value": 1, "conditions": {"type": "exists"}})"), 400,
       kInvalid},
      {"empty transaction", "POST", "/v1/transaction", R"({"operations": []})", 400, kInvalid},
      {"operations missing", "POST", "/v1/transaction", R"({"ops": []})", 400, kInvalid},
      // Conditional headers.
      {"If-Match garbage", "PUT", K, R"({"value": 2})", 400, kInvalid, {{"If-Match", "abc"}}},
      {"If-Match weak tag", "PUT", K, R"({"value": 2})", 400, kInvalid, {{"If-Match", "W/\"1\""}}},
      {"If-Match negative", "PUT", K, R"({"value": 2})", 400, kInvalid, {{"If-Match", "-1"}}},
      {"If-Match huge",
       "PUT",
       K,
       R"({"value": 2})",
       400,
       kInvalid,
       {{"If-Match", "99999999999999999999999"}}},
      {"If-Match half-quoted", "PUT", V, R"({"value": 2})", 400, kInvalid, {{"If-Match", "\"1"}}},
      {"If-None-Match not *", "PUT", K, R"({"value": 2})", 400, kInvalid, {{"If-None-Match", "1"}}},
      {"If-Match and If-None-Match",
       "PUT",
       K,
       R"({"value": 2})",
       400,
       kInvalid,
       {{"If-Match", "1"}, {"If-None-Match", "*"}}},
      {"If-Match garbage on DELETE", "DELETE", V, "", 400, kInvalid, {{"If-Match", "one"}}},
      {"If-None-Match on DELETE", "DELETE", V, "", 400, kInvalid, {{"If-None-Match", "*"}}},
      // Query parameters.
      {"cursor garbage", "GET", "/v1/keys?cursor=%2A%2A%2A", "", 400, kInvalid},
      {"limit 0", "GET", "/v1/keys?limit=0", "", 400, kInvalid},
      {"limit 1001", "GET", "/v1/keys?limit=1001", "", 400, kInvalid},
      {"limit abc", "GET", "/api/v1/projects/p1/keys?limit=abc", "", 400, kInvalid},
      {"limit negative", "GET", "/v1/keys?limit=-1", "", 400, kInvalid},
      {"limit past 2^64", "GET", "/v1/keys?limit=99999999999999999999999", "", 400, kInvalid},
      {"include_metadata=maybe", "GET", K + "?include_metadata=maybe", "", 400, kInvalid},
      {"include_values=yes", "GET", "/v1/keys?include_values=yes", "", 400, kInvalid},
      {"watch events unknown", "GET", "/v1/watch/x?events=update", "", 400, kInvalid},
      {"watch include_values=2", "GET", "/v1/watch/x?include_values=2", "", 400, kInvalid},
      // Projects.
      {"project id ../x", "POST", "/api/v1/projects", R"({"id": "../x"})", 400, kInvalid},
      {"project id a/b", "POST", "/api/v1/projects", R"({"id": "a/b"})", 400, kInvalid},
      {"project id empty", "POST", "/api/v1/projects", R"({"id": ""})", 400, kInvalid},
      {"project id 65 chars", "POST", "/api/v1/projects",
       "{\"id\": \"" + std::string(65, 'p') + "\"}", 400, kInvalid},
      {"project id .", "POST", "/api/v1/projects", R"({"id": "."})", 400, kInvalid},
      {"project id ..", "POST", "/api/v1/projects", R"({"id": ".."})", 400, kInvalid},
      {"project id with space", "POST", "/api/v1/projects", R"({"id": "a b"})", 400, kInvalid},
      {"project id number", "POST", "/api/v1/projects", R"({"id": 5})", 400, kInvalid},
      {"project id missing", "POST", "/api/v1/projects", R"({"storage": {"on_disk": true}})", 400,
       kInvalid},
      {"project id NUL", "POST", "/api/v1/projects", R"({"id": "a\u0000b"})", 400, kInvalid},
      {"duplicate project", "POST", "/api/v1/projects", R"({"id": "p1"})", 409, "ALREADY_EXISTS"},
      {"create with api_key", "POST", "/api/v1/projects",
       R"({"id": "k1", "authentication": {"enabled": true, "api_key": "mine-123456"}})", 400,
       kInvalid},
      {"create with api_key_hash", "POST", "/api/v1/projects",
       R"({"id": "k2", "authentication": {"api_key_hash": null}})", 400, kInvalid},
      {"create with top-level api_key", "POST", "/api/v1/projects",
       R"({"id": "k3", "api_key": "mine-123456"})", 400, kInvalid},
      {"create with unknown field", "POST", "/api/v1/projects", R"({"id": "k4", "owner": "me"})",
       400, kInvalid},
      {"create with on_disk string", "POST", "/api/v1/projects",
       R"({"id": "k5", "storage": {"on_disk": "yes"}})", 400, kInvalid},
      {"create with unknown storage field", "POST", "/api/v1/projects",
       R"({"id": "k6", "storage": {"path": "/etc"}})", 400, kInvalid},
      {"create with storage not an object", "POST", "/api/v1/projects",
       R"({"id": "k7", "storage": true})", 400, kInvalid},
      {"PUT project unknown field", "PUT", P, R"({"name": "x"})", 400, kInvalid},
      {"PUT project new id", "PUT", P, R"({"id": "p9"})", 400, kInvalid},
      {"PUT project api_key", "PUT", P, R"({"authentication": {"api_key": "mine-123456"}})", 400,
       kInvalid},
      {"PUT project enabled string", "PUT", P, R"({"authentication": {"enabled": "no"}})", 400,
       kInvalid},
      {"PUT project not JSON", "PUT", P, "on_disk=false", 400, kInvalid},
      {"PUT unknown project", "PUT", "/api/v1/projects/nope", R"({"storage": {"on_disk": true}})",
       404, "NOT_FOUND"},
      {"GET unknown project", "GET", "/api/v1/projects/nope", "", 404, "NOT_FOUND"},
      {"keys of unknown project", "PUT", "/api/v1/projects/nope/keys/victim", R"({"value": 1})",
       404, "NOT_FOUND"},
      {"stats of unknown project", "GET", "/api/v1/projects/nope/stats", "", 404, "NOT_FOUND"},
      {"delete unknown project", "DELETE", "/api/v1/projects/nope", "", 404, "NOT_FOUND"},
      {"regenerate unknown project", "POST", "/api/v1/projects/nope/api-key/regenerate", "", 404,
       "NOT_FOUND"},
      {"path trick project", "GET", "/api/v1/projects/..%2Fp1/keys", "", 404, "NOT_FOUND"},
      {"wrong method on keys", "PATCH", K, R"({"value": 1})", 405, "METHOD_NOT_ALLOWED"},
      // An open project takes requests without a key, but not changes to who may use it.
      {"turn on auth of an open project without a key",
       "PUT",
       "/api/v1/projects/open",
       R"({"authentication": {"enabled": true}})",
       403,
       "FORBIDDEN",
       {},
       false},
      {"save the key of an open project without a key",
       "PUT",
       "/api/v1/projects/open",
       R"({"authentication": {"save_api_key_to_file": true}})",
       403,
       "FORBIDDEN",
       {},
       false},
      {"admin route without a key",
       "POST",
       "/api/v1/projects",
       R"({"id": "sneaky"})",
       401,
       "UNAUTHORIZED",
       {},
       false},
      {"admin route with a project key",
       "DELETE",
       "/api/v1/projects/p1",
       "",
       403,
       "FORBIDDEN",
       {{"X-API-Key", kP1Key}},
       false},
      {"keys of p1 without a key", "PUT", K, R"({"value": 3})", 401, "UNAUTHORIZED", {}, false},
  };
}

class KvBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start());
    ASSERT_EQ(201, server_
                       .Call("PUT", "/v1/keys/victim",
                             R"({"value": {"v": 1}, "metadata": {"t": "x"}, "ttl_seconds": 86400})")
                       .status);
    ASSERT_EQ(200, server_.Call("PUT", "/v1/keys/victim", R"({"value": {"v": 2}})").status);
    ASSERT_EQ(201, server_.Call("PUT", "/v1/keys/other", R"({"value": "o"})").status);
  }
  void TearDown() override { EXPECT_EQ(0, server_.Stop()) << server_.stderr_text(); }

  // Everything a bad request could have changed.
  std::string State() {
    std::string s = server_.Call("GET", "/api/v1/projects").body + "\n";
    s += server_.Call("GET", "/api/v1/projects/p1/keys?include_values=true").body + "\n";
    s += server_.Call("GET", "/v1/keys/victim?include_metadata=true").body + "\n";
    s += server_.Call("GET", "/api/v1/projects/p1/stats").body + "\n";
    s += ReadFileText(server_.config_path());
    return s;
  }

  ServerProcess server_{"kvbad", Options()};
};

TEST_F(KvBadInputTest, EveryCaseGetsItsStatusAndCodeAndChangesNothing) {
  const std::vector<BadCase> cases = Cases();
  ASSERT_GE(cases.size(), 40u);
  std::printf("%zu cases\n", cases.size());
  const std::string before = State();
  EXPECT_TRUE(before.find("\"version\":2") != std::string::npos) << before;
  for (const BadCase& c : cases) {
    HttpHeaders h = c.headers;
    bool typed = false;
    for (const auto& [k, v] : h) typed = typed || k == "Content-Type";
    if (!c.body.empty() && !typed) h.emplace_back("Content-Type", "application/json");
    HttpResponse r = server_.Call(c.method, c.target, c.body, h, c.with_key);
    EXPECT_EQ(c.status, r.status) << c.what << ": " << r.body;
    rapidjson::Document e;
    e.Parse<rapidjson::kParseValidateEncodingFlag>(r.body.data(), r.body.size());
    ASSERT_FALSE(e.HasParseError()) << c.what << ": not valid JSON: " << r.body;
    ASSERT_TRUE(e.IsObject()) << c.what;
    for (const char* k : {"error", "details", "code", "timestamp", "trace_id"}) {
      EXPECT_TRUE(e.HasMember(k) && e[k].IsString()) << c.what << " lacks " << k << ": " << r.body;
    }
    if (e.HasMember("code") && e["code"].IsString()) {
      EXPECT_EQ(c.code, e["code"].GetString()) << c.what << ": " << r.body;
    }
    EXPECT_EQ(r.Header("x-request-id"), e["trace_id"].GetString()) << c.what;
    const std::string after = State();
    EXPECT_EQ(before, after) << "state changed by: " << c.what;
    if (before != after) break;
  }
  EXPECT_EQ(200, server_.Call("GET", "/health", {}, {}, false).status);
}

// The limits are inclusive: exactly at the limit is accepted, one past is not.
TEST_F(KvBadInputTest, LimitsAreInclusive) {
  const std::string at_key(kMaxKeyBytes, 'k');
  EXPECT_EQ(201, server_.Call("PUT", "/v1/keys/" + at_key, R"({"value": 1})").status);
  EXPECT_EQ(400, server_.Call("PUT", "/v1/keys/" + at_key + "k", R"({"value": 1})").status);
  // A string value of n characters is n + 2 bytes of JSON.
  const std::string at_value(kMaxValueBytes - 2, 'v');
  HttpResponse ok = server_.Call("PUT", "/v1/keys/big", "{\"value\": \"" + at_value + "\"}");
  EXPECT_EQ(201, ok.status) << ok.body;
  HttpResponse over = server_.Call("PUT", "/v1/keys/big", "{\"value\": \"" + at_value + "v\"}");
  EXPECT_EQ(413, over.status) << over.body;
  EXPECT_EQ(1u,
            Json(server_.Call("GET", "/v1/keys/big?include_metadata=true"))["metadata"]["version"]
                .GetUint64());
  // Whitespace does not count: the compact form is what is stored.
  HttpResponse spaced =
      server_.Call("PUT", "/v1/keys/spaced", "{\"value\": [" + std::string(2000, ' ') + "1]}");
  EXPECT_EQ(201, spaced.status) << spaced.body;
  EXPECT_EQ(200, server_.Call("POST", "/v1/batch/put", Items(kMaxBatchItems)).status);
  EXPECT_EQ(201, server_.Call("PUT", "/v1/keys/deep", "{\"value\": " + Nested(32) + "}").status);
  HttpResponse deep = server_.Call("GET", "/v1/keys/deep");
  EXPECT_EQ("{\"found\":true,\"key\":\"deep\",\"value\":" + Nested(32) + "}", deep.body);
}

}  // namespace
}  // namespace pstorage::api::testing
