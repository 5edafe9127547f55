// Every endpoint of the seed API reference, with its example payloads,
// against the real server: status codes and every documented field.
#include <gtest/gtest.h>

#include <set>

#include "api/base64.h"
#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

const char kCreate[] = R"({
    "name": "production-db",
    "size_gb": 100,
    "description": "PostgreSQL data volume",
    "tags": {"env": "production", "app": "postgres"}
  })";

void ExpectVolumeFields(const rapidjson::Value& v) {
  for (const char* f : {"id", "name", "state", "description", "created_at", "updated_at"}) {
    ASSERT_TRUE(v.HasMember(f) && v[f].IsString()) << f;
  }
  for (const char* f : {"size_bytes", "used_bytes"}) {
    ASSERT_TRUE(v.HasMember(f) && v[f].IsUint64()) << f;
  }
  ASSERT_TRUE(v.HasMember("tags") && v["tags"].IsObject());
  ASSERT_TRUE(v.HasMember("reduction_ratio") && v["reduction_ratio"].IsNumber());
  // "2024-01-15T10:30:00Z"
  EXPECT_EQ(20u, v["created_at"].GetStringLength());
  EXPECT_EQ('Z', v["created_at"].GetString()[19]);
}

class SeedApiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()); }
  void TearDown() override { EXPECT_EQ(0, server_.Stop()); }

  std::string CreateVolume(const std::string& body) {
    HttpResponse r = server_.Call("POST", "/api/v1/volumes", body);
    EXPECT_EQ(201, r.status) << r.body;
    return Json(r)["id"].GetString();
  }

  ServerProcess server_{"seed"};
};

TEST_F(SeedApiTest, HealthAndArrays) {
  HttpResponse h = server_.Call("GET", "/health", {}, {}, /*with_key=*/false);
  ASSERT_EQ(200, h.status) << h.body;
  EXPECT_EQ("application/json", h.Header("content-type"));
  rapidjson::Document d = Json(h);
  EXPECT_STREQ("healthy", d["status"].GetString());
  EXPECT_TRUE(d["reduction_ratio"].IsNumber());
  EXPECT_FALSE(d["cluster_enabled"].GetBool());
  EXPECT_STREQ("0.1.0", d["version"].GetString());
  EXPECT_TRUE(d["timestamp"].IsString());
  EXPECT_FALSE(h.Header("x-request-id").empty());

  HttpResponse a = server_.Call("GET", "/api/v1/arrays");
  ASSERT_EQ(200, a.status) << a.body;
  rapidjson::Document arr = Json(a);
  ASSERT_EQ(1u, arr["arrays"].Size());
  const rapidjson::Value& node = arr["arrays"][0];
  EXPECT_STREQ("node-1", node["id"].GetString());
  EXPECT_STREQ("PStorage", node["name"].GetString());
  EXPECT_STREQ("PStorage Virtual Array", node["model"].GetString());
  EXPECT_STREQ("0.1.0", node["version"].GetString());
  EXPECT_EQ(64ull << 20, node["capacity"]["total_bytes"].GetUint64());
  EXPECT_EQ(0u, node["capacity"]["used_bytes"].GetUint64());
  EXPECT_TRUE(node["capacity"]["reduction_ratio"].IsNumber());
}

TEST_F(SeedApiTest, VolumeLifecycle) {
  HttpResponse c = server_.Call("POST", "/api/v1/volumes", kCreate);
  ASSERT_EQ(201, c.status) << c.body;
  rapidjson::Document v = Json(c);
  ExpectVolumeFields(v);
  std::string id = v["id"].GetString();
  EXPECT_EQ(36u, id.size());
  EXPECT_STREQ("production-db", v["name"].GetString());
  EXPECT_EQ(107374182400ull, v["size_bytes"].GetUint64());
  EXPECT_EQ(0u, v["used_bytes"].GetUint64());
  EXPECT_STREQ("available", v["state"].GetString());
  EXPECT_STREQ("PostgreSQL data volume", v["description"].GetString());
  EXPECT_STREQ("production", v["tags"]["env"].GetString());
  EXPECT_STREQ("postgres", v["tags"]["app"].GetString());
  EXPECT_EQ(1.0, v["reduction_ratio"].GetDouble());

  HttpResponse l = server_.Call("GET", "/api/v1/volumes");
  ASSERT_EQ(200, l.status);
  rapidjson::Document list = Json(l);
  ASSERT_EQ(1u, list["volumes"].Size());
  EXPECT_EQ(1u, list["total"].GetUint64());
  ExpectVolumeFields(list["volumes"][0]);

  HttpResponse g = server_.Call("GET", "/api/v1/volumes/" + id);
  ASSERT_EQ(200, g.status);
  EXPECT_EQ(id, Json(g)["id"].GetString());

  HttpResponse u = server_.Call("PUT", "/api/v1/volumes/" + id,
                                R"({"description": "primary", "tags": {"env": "staging"}})");
  ASSERT_EQ(200, u.status) << u.body;
  rapidjson::Document uv = Json(u);
  EXPECT_STREQ("production-db", uv["name"].GetString());  // untouched
  EXPECT_STREQ("primary", uv["description"].GetString());
  EXPECT_EQ(1u, uv["tags"].MemberCount());  // replaced, not merged
  EXPECT_STREQ("staging", uv["tags"]["env"].GetString());

  HttpResponse rs = server_.Call("POST", "/api/v1/volumes/" + id + "/resize", R"({"size_gb": 200})");
  ASSERT_EQ(200, rs.status) << rs.body;
  EXPECT_EQ(214748364800ull, Json(rs)["size_bytes"].GetUint64());
  HttpResponse shrink =
      server_.Call("POST", "/api/v1/volumes/" + id + "/resize", R"({"size_gb": 50})");
  EXPECT_EQ(409, shrink.status) << shrink.body;

  HttpResponse cl = server_.Call("POST", "/api/v1/volumes/" + id + "/clone",
                                 R"({"name": "production-db-clone", "description": "Clone for testing"})");
  ASSERT_EQ(201, cl.status) << cl.body;
  rapidjson::Document clone = Json(cl);
  ExpectVolumeFields(clone);
  EXPECT_STREQ("production-db-clone", clone["name"].GetString());
  EXPECT_STREQ("Clone for testing", clone["description"].GetString());
  EXPECT_EQ(214748364800ull, clone["size_bytes"].GetUint64());
  EXPECT_NE(id, clone["id"].GetString());

  HttpResponse d = server_.Call("DELETE", "/api/v1/volumes/" + id);
  EXPECT_EQ(204, d.status);
  EXPECT_TRUE(d.body.empty());
  EXPECT_EQ(404, server_.Call("GET", "/api/v1/volumes/" + id).status);
  HttpResponse again = server_.Call("DELETE", "/api/v1/volumes/" + id);
  EXPECT_EQ(404, again.status);
  rapidjson::Document err = Json(again);
  EXPECT_NE(std::string::npos, std::string(err["detail"].GetString()).find(id)) << again.body;
}

TEST_F(SeedApiTest, WriteAndReadSeedExample) {
  std::string id = CreateVolume(R"({"name": "data", "size_gb": 1})");
  HttpResponse w = server_.Call("POST", "/api/v1/volumes/" + id + "/write",
                                R"({"offset": 0, "data": "SGVsbG8gV29ybGQh"})");
  ASSERT_EQ(200, w.status) << w.body;
  rapidjson::Document wr = Json(w);
  EXPECT_EQ(id, wr["volume_id"].GetString());
  EXPECT_EQ(0u, wr["offset"].GetUint64());
  EXPECT_EQ(12u, wr["size"].GetUint64());
  EXPECT_TRUE(wr["reduction_ratio"].IsNumber());
  EXPECT_TRUE(wr["was_deduplicated"].IsBool());
  EXPECT_TRUE(wr["was_compressed"].IsBool());

  HttpResponse r = server_.Call("GET", "/api/v1/volumes/" + id + "/read?offset=0&length=12");
  ASSERT_EQ(200, r.status) << r.body;
  rapidjson::Document rd = Json(r);
  EXPECT_EQ(id, rd["volume_id"].GetString());
  EXPECT_EQ(0u, rd["offset"].GetUint64());
  EXPECT_EQ(12u, rd["size"].GetUint64());
  EXPECT_STREQ("SGVsbG8gV29ybGQh", rd["data"].GetString());

  // Default length is one block: the 12 bytes then zeros.
  HttpResponse full = server_.Call("GET", "/api/v1/volumes/" + id + "/read?offset=0");
  ASSERT_EQ(200, full.status);
  rapidjson::Document fd = Json(full);
  EXPECT_EQ(4096u, fd["size"].GetUint64());
  Result<std::string> bytes = Base64Decode(fd["data"].GetString());
  ASSERT_OK(bytes.status());
  EXPECT_EQ("Hello World!", bytes->substr(0, 12));
  EXPECT_EQ(std::string(4084, '\0'), bytes->substr(12));

  // The same block written again dedupes.
  std::string block(4096, 'x');
  for (size_t i = 0; i < block.size(); i++) block[i] = static_cast<char>(i * 7 + i / 13);
  std::string body = R"({"offset": 8192, "data": ")" + Base64Encode(block) + "\"}";
  ASSERT_EQ(200, server_.Call("POST", "/api/v1/volumes/" + id + "/write", body).status);
  body = R"({"offset": 12288, "data": ")" + Base64Encode(block) + "\"}";
  HttpResponse dup = server_.Call("POST", "/api/v1/volumes/" + id + "/write", body);
  ASSERT_EQ(200, dup.status);
  EXPECT_TRUE(Json(dup)["was_deduplicated"].GetBool()) << dup.body;
}

TEST_F(SeedApiTest, Snapshots) {
  std::string id = CreateVolume(kCreate);
  std::string block(4096, 'a');
  ASSERT_EQ(200, server_.Call("PUT", "/api/v1/volumes/" + id + "/data?offset=0", block,
                              {{"Content-Type", "application/octet-stream"}})
                     .status);
  HttpResponse c = server_.Call("POST", "/api/v1/volumes/" + id + "/snapshots",
                                R"({"name": "daily-backup-2024-01-15", "description": "Automated daily backup"})");
  ASSERT_EQ(201, c.status) << c.body;
  rapidjson::Document s = Json(c);
  std::string sid = s["id"].GetString();
  EXPECT_STREQ("daily-backup-2024-01-15", s["name"].GetString());
  EXPECT_EQ(id, s["volume_id"].GetString());
  EXPECT_STREQ("production-db", s["volume_name"].GetString());
  EXPECT_EQ(107374182400ull, s["size_bytes"].GetUint64());
  EXPECT_EQ(4096u, s["used_bytes"].GetUint64());
  EXPECT_STREQ("available", s["state"].GetString());
  EXPECT_STREQ("Automated daily backup", s["description"].GetString());
  EXPECT_TRUE(s["created_at"].IsString());
  EXPECT_TRUE(s["tags"].IsObject());

  HttpResponse lv = server_.Call("GET", "/api/v1/volumes/" + id + "/snapshots");
  ASSERT_EQ(200, lv.status);
  EXPECT_EQ(1u, Json(lv)["total"].GetUint64());
  EXPECT_EQ(1u, Json(lv)["snapshots"].Size());
  HttpResponse la = server_.Call("GET", "/api/v1/snapshots");
  ASSERT_EQ(200, la.status);
  EXPECT_EQ(1u, Json(la)["total"].GetUint64());
  HttpResponse g = server_.Call("GET", "/api/v1/volumes/" + id + "/snapshots/" + sid);
  ASSERT_EQ(200, g.status);
  EXPECT_EQ(sid, Json(g)["id"].GetString());

  // Overwrite, then restore into a new volume (seed body: null target).
  std::string other(4096, 'b');
  ASSERT_EQ(200, server_.Call("PUT", "/api/v1/volumes/" + id + "/data?offset=0", other,
                              {{"Content-Type", "application/octet-stream"}})
                     .status);
  HttpResponse rn = server_.Call("POST", "/api/v1/volumes/" + id + "/snapshots/" + sid + "/restore",
                                 R"({"target_volume_id": null})");
  ASSERT_EQ(201, rn.status) << rn.body;
  std::string restored = Json(rn)["id"].GetString();
  HttpResponse rd = server_.Call("GET", "/api/v1/volumes/" + restored + "/data?offset=0&length=4096");
  EXPECT_EQ(block, rd.body);

  // Restore onto the existing volume.
  HttpResponse ro = server_.Call("POST", "/api/v1/volumes/" + id + "/snapshots/" + sid + "/restore",
                                 "{\"target_volume_id\": \"" + id + "\"}");
  ASSERT_EQ(200, ro.status) << ro.body;
  EXPECT_EQ(block, server_.Call("GET", "/api/v1/volumes/" + id + "/data?offset=0").body);

  // A volume with snapshots cannot be deleted; the snapshot can.
  EXPECT_EQ(409, server_.Call("DELETE", "/api/v1/volumes/" + id).status);
  EXPECT_EQ(204, server_.Call("DELETE", "/api/v1/volumes/" + id + "/snapshots/" + sid).status);
  EXPECT_EQ(404, server_.Call("GET", "/api/v1/volumes/" + id + "/snapshots/" + sid).status);
  EXPECT_EQ(204, server_.Call("DELETE", "/api/v1/volumes/" + id).status);
}

TEST_F(SeedApiTest, Metrics) {
  std::string id = CreateVolume(R"({"name": "m", "size_gb": 1})");
  std::string zeros(8192, '\0'), pattern;
  for (int i = 0; i < 512; i++) pattern += "ABCDEFGH";
  std::string text;
  while (text.size() < 8192) text += "the quick brown fox jumps over the lazy dog ";
  text.resize(8192);
  std::string data = zeros + pattern + text + text;
  ASSERT_EQ(200, server_.Call("PUT", "/api/v1/volumes/" + id + "/data?offset=0", data,
                              {{"Content-Type", "application/octet-stream"}})
                     .status);
  ASSERT_EQ(201, server_.Call("POST", "/api/v1/volumes/" + id + "/snapshots", R"({"name": "s1"})")
                     .status);

  rapidjson::Document r = Json(server_.Call("GET", "/api/v1/metrics/reduction"));
  EXPECT_GE(r["overall_reduction_ratio"].GetDouble(), 1.0);
  EXPECT_TRUE(r["deduplication"]["ratio"].IsNumber());
  // text + text: two distinct blocks, each written twice.
  EXPECT_EQ(2u, r["deduplication"]["unique_blocks"].GetUint64());
  EXPECT_EQ(2u, r["deduplication"]["duplicate_blocks"].GetUint64());
  EXPECT_TRUE(r["compression"]["ratio"].IsNumber());
  EXPECT_STREQ("lz4", r["compression"]["algorithm"].GetString());
  EXPECT_EQ(2u, r["pattern_removal"]["zero_blocks_found"].GetUint64());
  EXPECT_EQ(1u, r["pattern_removal"]["pattern_blocks_found"].GetUint64());
  EXPECT_EQ(3u * 4096, r["bytes_saved"]["pattern"].GetUint64());
  EXPECT_EQ(8192u, r["bytes_saved"]["dedupe"].GetUint64());
  EXPECT_GT(r["bytes_saved"]["compression"].GetUint64(), 0u);

  rapidjson::Document f = Json(server_.Call("GET", "/api/v1/metrics/flash"));
  EXPECT_EQ(64ull << 20, f["capacity"]["total_bytes"].GetUint64());
  for (const char* k : {"used_bytes", "free_bytes"}) EXPECT_TRUE(f["capacity"][k].IsUint64());
  EXPECT_TRUE(f["capacity"]["utilization"].IsNumber());
  EXPECT_LE(f["health"]["health_percentage"].GetDouble(), 100.0);
  EXPECT_TRUE(f["health"]["avg_erase_count"].IsNumber());
  EXPECT_TRUE(f["health"]["max_erase_count"].IsUint());
  EXPECT_TRUE(f["wear_leveling"]["blocks_moved"].IsUint64());
  EXPECT_TRUE(f["wear_leveling"]["wear_variance"].IsNumber());
  EXPECT_TRUE(f["garbage_collection"]["state"].IsString());
  EXPECT_TRUE(f["garbage_collection"]["blocks_reclaimed"].IsUint64());
  EXPECT_TRUE(f["garbage_collection"]["gc_runs"].IsUint64());

  rapidjson::Document v = Json(server_.Call("GET", "/api/v1/metrics/volumes"));
  EXPECT_EQ(1u, v["volumes"]["total"].GetUint64());
  EXPECT_EQ(1ull << 30, v["volumes"]["provisioned_bytes"].GetUint64());
  EXPECT_EQ(5u * 4096, v["volumes"]["used_bytes"].GetUint64());  // zeros unmapped
  EXPECT_EQ(1u, v["snapshots"]["total"].GetUint64());
  EXPECT_EQ(1u, v["snapshots"]["by_volume"]["m"].GetUint64());

  rapidjson::Document rep = Json(server_.Call("GET", "/api/v1/metrics/replication"));
  EXPECT_FALSE(rep["enabled"].GetBool());
  EXPECT_STREQ("Clustering is not enabled", rep["message"].GetString());

  rapidjson::Document all = Json(server_.Call("GET", "/api/v1/metrics"));
  for (const char* k : {"reduction", "flash", "volumes", "replication", "cluster"}) {
    EXPECT_TRUE(all.HasMember(k) && all[k].IsObject()) << k;
  }

  HttpResponse p = server_.Call("GET", "/metrics", {}, {}, false);
  ASSERT_EQ(200, p.status);
  EXPECT_NE(std::string::npos, p.Header("content-type").find("text/plain"));
  EXPECT_NE(std::string::npos,
            p.body.find("pstorage_http_requests_total{method=\"GET\",route=\"/api/v1/metrics/flash\",status=\"200\"} 1"))
      << p.body.substr(0, 2000);
  EXPECT_NE(std::string::npos,
            p.body.find("pstorage_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/volumes\",le=\"+Inf\"} 1"));
  EXPECT_NE(std::string::npos, p.body.find("pstorage_volumes 1\n"));
  EXPECT_NE(std::string::npos, p.body.find("pstorage_snapshots 1\n"));
}

TEST_F(SeedApiTest, Cluster) {
  rapidjson::Document s = Json(server_.Call("GET", "/api/v1/cluster/status"));
  EXPECT_STREQ("node-1", s["node_id"].GetString());
  EXPECT_STREQ("healthy", s["state"].GetString());
  EXPECT_STREQ("node-1", s["current_primary"].GetString());
  EXPECT_TRUE(s["has_quorum"].GetBool());
  EXPECT_EQ(1, s["node_count"].GetInt());
  EXPECT_EQ(1, s["healthy_nodes"].GetInt());
  EXPECT_TRUE(s["replication_lag_ms"].IsNumber());

  rapidjson::Document r = Json(server_.Call("GET", "/api/v1/cluster/replication"));
  EXPECT_STREQ("node-1", r["node_id"].GetString());
  EXPECT_TRUE(r["is_primary"].GetBool());
  EXPECT_EQ(0u, r["peers"].Size());
  EXPECT_TRUE(r["mode"].IsString());

  EXPECT_EQ(409, server_.Call("POST", "/api/v1/cluster/peers",
                              R"({"node_id": "node-2", "url": "http://node-2:8000"})").status);
  EXPECT_EQ(400, server_.Call("POST", "/api/v1/cluster/peers", R"({"node_id": 2})").status);
  EXPECT_EQ(404, server_.Call("DELETE", "/api/v1/cluster/peers/node-2").status);
  EXPECT_EQ(409, server_.Call("POST", "/api/v1/cluster/failover", R"({"target_node": "node-2"})").status);
  EXPECT_EQ(409, server_.Call("POST", "/api/v1/cluster/failover", R"({"target_node": null})").status);
  EXPECT_EQ(409, server_.Call("POST", "/api/v1/cluster/failback", "").status);
}

TEST_F(SeedApiTest, Pagination) {
  std::set<std::string> ids;
  for (int i = 0; i < 7; i++) {
    ids.insert(CreateVolume("{\"name\": \"v" + std::to_string(i) + "\", \"size_gb\": 0.01}"));
  }
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    std::string target = "/api/v1/volumes?limit=3" + (cursor.empty() ? "" : "&cursor=" + UrlEncode(cursor));
    HttpResponse r = server_.Call("GET", target);
    ASSERT_EQ(200, r.status) << r.body;
    rapidjson::Document d = Json(r);
    EXPECT_EQ(7u, d["total"].GetUint64());
    for (const auto& v : d["volumes"].GetArray()) EXPECT_TRUE(seen.insert(v["id"].GetString()).second);
    cursor = d["next_cursor"].IsNull() ? "" : d["next_cursor"].GetString();
    pages++;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(3, pages);
  EXPECT_EQ(ids, seen);
  EXPECT_EQ(400, server_.Call("GET", "/api/v1/volumes?limit=0").status);
  EXPECT_EQ(400, server_.Call("GET", "/api/v1/volumes?cursor=garbage").status);
}

TEST_F(SeedApiTest, OpenApiServed) {
  HttpResponse r = server_.Call("GET", "/openapi.json", {}, {}, false);
  ASSERT_EQ(200, r.status);
  rapidjson::Document d = Json(r);
  EXPECT_TRUE(d.HasMember("openapi"));
  EXPECT_TRUE(d.HasMember("paths"));
}

}  // namespace
}  // namespace pstorage::api::testing
