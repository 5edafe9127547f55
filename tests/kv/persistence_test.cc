// KvStore persistence: log replay, compaction, torn tails, corruption.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "tests/kv/kv_test_util.h"

namespace pstorage::kv::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

TEST_F(KvTest, ReopenReplaysTheLog) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->Put("a", "[1]", {.ttl_seconds = 60, .tags = {{"t", "v"}}}).status());
    ASSERT_OK(store->Put("a", "[2]", {.ttl_seconds = 60, .tags = {{"t", "v"}}}).status());
    ASSERT_OK(store->PutBatch({{"b", "1"}, {"c", "2"}}).status());
    ASSERT_OK(store->Delete("b"));
  }
  auto store = OpenStore();
  auto a = store->Get("a");
  ASSERT_OK(a.status());
  EXPECT_EQ(a->value, "[2]");
  EXPECT_EQ(a->version, 2u);
  EXPECT_EQ(a->expires_at_ms, 1'000'000 + 60'000);
  EXPECT_EQ(a->tags.at("t"), "v");
  EXPECT_EQ(store->Get("b").status().code(), Code::kNotFound);
  EXPECT_EQ(store->Get("c")->value, "2");
  EXPECT_EQ(store->GetStats().value_bytes, 4u);
  EXPECT_EQ(store->GetStats().key_bytes, 2u);
}

TEST_F(KvTest, CompactionThenReopen) {
  KvOptions o = Options();
  o.compact_log_bytes = 200;  // compacts every few writes
  {
    auto store = OpenStore(o);
    for (int i = 0; i < 50; i++) {
      ASSERT_OK(store->Put("k" + std::to_string(i % 7), std::to_string(i)).status());
    }
    ASSERT_OK(store->Delete("k0"));
    ASSERT_OK(store->Put("obj", R"({"nested":{"list":[true,null,1.5,"s"]}})").status());
  }
  EXPECT_LT(std::filesystem::file_size(LogPath()), 200u);
  // The seed's plain form: {"key": value, ...}.
  std::string data = ReadFile(dir_ + "/proj.json");
  EXPECT_NE(data.find(R"("k1":)"), std::string::npos) << data;
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/proj.meta.json"));
  auto store = OpenStore(o);
  EXPECT_EQ(store->Get("k0").status().code(), Code::kNotFound);
  auto k6 = store->Get("k6");
  ASSERT_OK(k6.status());
  EXPECT_EQ(k6->value, "48");
  EXPECT_EQ(k6->version, 7u);
  EXPECT_EQ(store->Get("obj")->value, R"({"nested":{"list":[true,null,1.5,"s"]}})");
  EXPECT_EQ(store->GetStats().keys, 7u);
  EXPECT_EQ(store->GetStats().key_bytes, 6 * 2 + 3u);  // k1..k6 from the snapshot, obj
}

TEST_F(KvTest, ReplayOverSnapshotIsIdempotent) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->Put("a", "1").status());
    ASSERT_OK(store->Put("b", "1").status());
    ASSERT_OK(store->Put("a", "2").status());
    ASSERT_OK(store->Delete("b"));
    ASSERT_OK(store->Put("c", "1").status());
  }
  const std::string log = ReadFile(LogPath());
  ASSERT_OK(OpenStore()->Compact());
  EXPECT_EQ(std::filesystem::file_size(LogPath()), 0u);
  // A crash after the snapshot renames but before the log truncation: the
  // whole log replays over the snapshot that already holds its effects.
  WriteFile(LogPath(), log);
  auto store = OpenStore();
  EXPECT_EQ(store->Get("a")->value, "2");
  EXPECT_EQ(store->Get("a")->version, 2u);
  EXPECT_EQ(store->Get("b").status().code(), Code::kNotFound);
  EXPECT_EQ(store->Get("c")->version, 1u);
  EXPECT_EQ(store->GetStats().keys, 2u);
}

TEST_F(KvTest, TornTailAtEveryOffsetKeepsEarlierRecords) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->Put("a", "1").status());
    ASSERT_OK(store->Put("b", "2").status());
  }
  const uint64_t good = std::filesystem::file_size(LogPath());
  {
    auto store = OpenStore();
    ASSERT_OK(store->PutBatch({{"c", "3"}, {"a", "4"}}).status());
  }
  const std::string full = ReadFile(LogPath());
  for (uint64_t cut = good; cut < full.size(); cut++) {
    WriteFile(LogPath(), full.substr(0, cut));
    auto store = OpenStore();
    ASSERT_NE(store, nullptr) << "cut at " << cut;
    EXPECT_EQ(std::filesystem::file_size(LogPath()), good) << "cut at " << cut;
    EXPECT_EQ(store->Get("a")->value, "1") << "cut at " << cut;
    EXPECT_EQ(store->Get("b")->value, "2");
    EXPECT_EQ(store->Get("c").status().code(), Code::kNotFound);
    // New records continue after the last good one.
    ASSERT_OK(store->Put("d", "5").status());
    store.reset();
    EXPECT_EQ(OpenStore()->Get("d")->value, "5");
  }
}

TEST_F(KvTest, CorruptedChecksum) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->Put("a", "1").status());
    ASSERT_OK(store->Put("b", "2").status());
  }
  std::string log = ReadFile(LogPath());
  // Bit rot in the last record: cut away like a torn append.
  std::string tail_rot = log;
  tail_rot[tail_rot.size() - 2] ^= 0x40;
  WriteFile(LogPath(), tail_rot);
  {
    auto store = OpenStore();
    EXPECT_OK(store->Get("a").status());
    EXPECT_EQ(store->Get("b").status().code(), Code::kNotFound);
  }
  // Bit rot in a record followed by good ones: an error, never data.
  std::string mid_rot = log;
  mid_rot[10] ^= 0x01;
  WriteFile(LogPath(), mid_rot);
  EXPECT_EQ(KvStore::Open(Options()).status().code(), Code::kCorruption);
  EXPECT_EQ(ReadFile(LogPath()), mid_rot);  // nothing cut away
}

TEST_F(KvTest, CorruptSnapshotRefused) {
  {
    auto store = OpenStore();
    ASSERT_OK(store->Put("a", "1").status());
    ASSERT_OK(store->Compact());
  }
  WriteFile(dir_ + "/proj.json", "{\"a\": ");
  EXPECT_EQ(KvStore::Open(Options()).status().code(), Code::kCorruption);
}

TEST_F(KvTest, HandWrittenSnapshotWithoutMeta) {
  std::filesystem::create_directories(dir_);
  WriteFile(dir_ + "/proj.json", R"({"x": {"y": 1}, "z": "s"})");
  auto store = OpenStore();
  auto x = store->Get("x");
  ASSERT_OK(x.status());
  EXPECT_EQ(x->value, R"({"y":1})");
  EXPECT_EQ(x->version, 1u);
  EXPECT_EQ(store->Put("z", "2")->version, 2u);
}

}  // namespace
}  // namespace pstorage::kv::testing

namespace pstorage::kv::testing {
namespace {

TEST_F(KvTest, SetOnDiskMovesEveryKeyBothWays) {
  KvOptions mem = Options();
  mem.on_disk = false;
  {
    auto store = OpenStore(mem);
    ASSERT_OK(store->Put("a", "{\"x\":1}", {.ttl_seconds = 60}).status());
    ASSERT_OK(store->Put("a", "{\"x\":2}", {.ttl_seconds = 60}).status());
    ASSERT_OK(store->Put("b", "true").status());
    EXPECT_FALSE(std::filesystem::exists(Options().dir + "/" + Options().project_id + ".log"));
    ASSERT_OK(store->SetOnDisk(true));
    ASSERT_OK(store->Put("c", "3").status());  // logged from now on
  }
  {
    auto store = OpenStore();  // on disk: snapshot + log
    auto a = store->Get("a");
    ASSERT_OK(a.status());
    EXPECT_EQ(a->value, "{\"x\":2}");
    EXPECT_EQ(a->version, 2u) << "versions and times survive the move";
    EXPECT_EQ(a->expires_at_ms, 1'000'000 + 60'000);
    EXPECT_EQ(store->Get("b")->value, "true");
    EXPECT_EQ(store->Get("c")->value, "3");
    ASSERT_OK(store->SetOnDisk(false));
    EXPECT_EQ(store->Get("c")->value, "3") << "memory keeps every key";
    ASSERT_OK(store->Put("d", "4").status());
  }
  for (const char* ext : {".log", ".json", ".meta.json"}) {
    EXPECT_FALSE(std::filesystem::exists(Options().dir + "/" + Options().project_id + ext)) << ext;
  }
  auto store = OpenStore();
  EXPECT_EQ(store->GetStats().keys, 0u) << "nothing on disk after moving to memory";
}

}  // namespace
}  // namespace pstorage::kv::testing
