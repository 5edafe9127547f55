// Listings, TTL and stats through the KV HTTP API: cursor pagination while
// keys are inserted, listings larger than one reply, keys that expire (and
// are absent before the sweep removes them), and stats that match the held
// data through every kind of write and across a restart.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/kv_test_util.h"

namespace pstorage::api::testing {
namespace {

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
