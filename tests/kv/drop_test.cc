// KvStore::Drop: files removed, every later call refused, watchers closed,
// a reopen starts empty; also with writers racing the drop.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "tests/kv/kv_test_util.h"

namespace pstorage::kv::testing {
namespace {

bool IsDeleted(const Status& s) {
  return s.code() == Code::kNotFound && s.message() == "project proj was deleted";
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    names.push_back(f.path().filename().string());
  }
  return names;
}

// Records every event; fails the test if anything follows kClosed.
struct Recorder {
  void operator()(const Event& e) {
    EXPECT_EQ(closes, 0) << "event after kClosed for key " << e.key;
    if (e.type == Event::Type::kClosed) {
      EXPECT_TRUE(e.key.empty() && e.value.empty() && e.version == 0);
      closes++;
    } else {
      events++;
    }
  }
  int events = 0;
  int closes = 0;
};

TEST_F(KvTest, DropRemovesFilesRefusesEveryCallAndClosesWatchers) {
  auto store = OpenStore();
  ASSERT_OK(store->Put("a", "1").status());
  ASSERT_OK(store->Compact());                    // a snapshot on disk
  ASSERT_OK(store->Put("b", "2").status());       // and a record in the log
  std::ofstream(dir_ + "/proj.json.tmp") << "{";  // as a failed compaction leaves it
  std::ofstream(dir_ + "/other.log") << "";       // another project's file stays
  Recorder matching, other;
  store->Watch("", std::ref(matching));
  uint64_t other_id = store->Watch("zzz/", std::ref(other));
  ASSERT_OK(store->Put("c", "3").status());

  ASSERT_OK(store->Drop());
  EXPECT_EQ(FilesIn(dir_), std::vector<std::string>{"other.log"});
  EXPECT_EQ(matching.events, 1);  // "c"
  EXPECT_EQ(matching.closes, 1);
  EXPECT_EQ(other.events, 0);  // kClosed reaches watchers of every prefix
  EXPECT_EQ(other.closes, 1);

  EXPECT_TRUE(IsDeleted(store->Get("a").status()));
  EXPECT_TRUE(IsDeleted(store->Put("a", "1").status()));
  EXPECT_TRUE(IsDeleted(store->Put("new", "1", {.if_version = 0}).status()));
  EXPECT_TRUE(IsDeleted(store->Delete("a")));
  EXPECT_TRUE(IsDeleted(store->DeleteAll()));
  EXPECT_TRUE(IsDeleted(store->List("", "", 10).status()));
  EXPECT_TRUE(IsDeleted(store->Transact({.conditions = {{.key = "a"}}}).status()));
  EXPECT_TRUE(IsDeleted(store->PutBatch({{"x", "1"}}).status()));
  auto got = store->GetBatch({"a", "b"});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(IsDeleted(got[0].status()) && IsDeleted(got[1].status()));
  EXPECT_TRUE(IsDeleted(store->DeleteBatch({"a"}).status()));
  EXPECT_TRUE(IsDeleted(store->ExpireNow().status()));
  EXPECT_TRUE(IsDeleted(store->Compact()));
  EXPECT_TRUE(IsDeleted(store->Drop()));
  Stats s = store->GetStats();
  EXPECT_EQ(s.keys, 0u);
  EXPECT_EQ(s.key_bytes, 0u);
  EXPECT_EQ(s.value_bytes, 0u);
  EXPECT_EQ(FilesIn(dir_), std::vector<std::string>{"other.log"});  // nothing recreated

  // A watcher registered afterwards hears kClosed at once, and only that.
  Recorder late;
  uint64_t late_id = store->Watch("", std::ref(late));
  EXPECT_NE(late_id, 0u);
  EXPECT_EQ(late.closes, 1);
  store->Unwatch(late_id);
  store->Unwatch(other_id);
  EXPECT_EQ(matching.closes + other.closes + late.closes, 3);

  store.reset();
  auto reopened = OpenStore();
  EXPECT_EQ(reopened->GetStats().keys, 0u);
  EXPECT_EQ(reopened->Get("a").status().code(), Code::kNotFound);
  EXPECT_EQ(reopened->Put("a", "9")->version, 1u);
}

TEST_F(KvTest, DropInMemory) {
  auto store = OpenStore(Options(/*on_disk=*/false));
  Recorder r;
  store->Watch("", std::ref(r));
  ASSERT_OK(store->Put("a", "1").status());
  ASSERT_OK(store->Drop());
  EXPECT_EQ(r.events, 1);
  EXPECT_EQ(r.closes, 1);
  EXPECT_TRUE(IsDeleted(store->Get("a").status()));
  EXPECT_TRUE(IsDeleted(store->Put("a", "2").status()));
}

// Writers keep writing until the drop refuses them: each write either
// succeeds or gets kNotFound, no callback runs after Drop returns, and
// nothing survives on disk.
TEST_F(KvTest, DropRacingWriters) {
  auto store = OpenStore();
  std::atomic<bool> dropped{false};
  std::atomic<int> writes{0};
  Recorder r;  // callbacks run one at a time
  std::atomic<int> calls_after_drop{0};
  store->Watch("", [&](const Event& e) {
    if (dropped) calls_after_drop++;
    r(e);
  });
  std::atomic<int> stopped{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; t++) {
    writers.emplace_back([&, t] {
      for (int n = 0;; n++) {
        auto put = store->Put("t" + std::to_string(t) + "/" + std::to_string(n % 8), "1");
        if (!put.ok()) {
          EXPECT_TRUE(IsDeleted(put.status())) << put.status().ToString();
          stopped++;
          return;
        }
        writes++;
      }
    });
  }
  while (writes < 400 && stopped == 0) std::this_thread::yield();  // drop mid-stream
  ASSERT_OK(store->Drop());
  dropped = true;
  for (auto& th : writers) th.join();
  EXPECT_EQ(calls_after_drop, 0);
  EXPECT_EQ(r.closes, 1);
  EXPECT_LE(r.events, writes.load());
  store.reset();
  EXPECT_EQ(OpenStore()->GetStats().keys, 0u);
}

}  // namespace
}  // namespace pstorage::kv::testing
