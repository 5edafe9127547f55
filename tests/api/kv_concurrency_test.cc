// Concurrent clients of the KV HTTP API: counters incremented with
// If-Match, creates with If-None-Match, transfers by transactions with
// version_match, concurrent project creates, and deletes and storage
// switches racing with writes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/kv_test_util.h"

namespace pstorage::api::testing {
namespace {

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

}  // namespace
}  // namespace pstorage::api::testing
