// Single keys through the KV HTTP API on both path families
// (/api/v1/projects/{id}/keys/... and /v1/keys/...): create and update,
// values of every JSON type kept verbatim, metadata, HEAD and DELETE, keys
// that need escaping, conditional writes (If-Match, If-None-Match), and
// persistence across a SIGTERM restart with the {project}.json snapshot.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/api/kv_test_util.h"

namespace pstorage::api::testing {
namespace {

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

}  // namespace
}  // namespace pstorage::api::testing
