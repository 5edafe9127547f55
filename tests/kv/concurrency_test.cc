// KvStore under concurrent writers: conditional increments with retries,
// group commit (shared syncs), event order, compaction racing writers.
#include <atomic>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "tests/kv/kv_test_util.h"

namespace pstorage::kv::testing {
namespace {

// Reads key (absent = 0 at version 0), then writes value+1 with
// if_version; retries on conflict.
void Increment(KvStore* store, const std::string& key) {
  for (;;) {
    auto cur = store->Get(key);
    int64_t v = 0;
    uint64_t version = 0;
    if (cur.ok()) {
      v = std::stoll(cur->value);
      version = cur->version;
    } else {
      ASSERT_EQ(cur.status().code(), Code::kNotFound) << cur.status().ToString();
    }
    auto r = store->Put(key, std::to_string(v + 1), {.if_version = version});
    if (r.ok()) return;
    ASSERT_EQ(r.status().code(), Code::kFailedPrecondition) << r.status().ToString();
  }
}

void RunCounters(KvTest* t, KvStore* store) {
  constexpr int kThreads = 4, kIncrements = 100;
  ASSERT_OK(store->Put("shared", "0").status());
  for (int i = 0; i < kThreads; i++) {
    ASSERT_OK(store->Put("own/" + std::to_string(i), "0").status());
  }
  uint64_t events = 0;  // written only by callbacks, which run one at a time
  uint64_t id = store->Watch("shared", [&](const Event&) { events++; });
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([store, i] {
      for (int n = 0; n < kIncrements; n++) {
        Increment(store, "own/" + std::to_string(i));
        Increment(store, "shared");
      }
    });
  }
  for (auto& th : threads) th.join();
  store->Unwatch(id);
  auto shared = store->Get("shared");
  ASSERT_OK(shared.status());
  EXPECT_EQ(shared->value, std::to_string(kThreads * kIncrements));
  EXPECT_EQ(shared->version, uint64_t{kThreads * kIncrements} + 1);
  EXPECT_EQ(events, uint64_t{kThreads * kIncrements});
  for (int i = 0; i < kThreads; i++) {
    EXPECT_EQ(store->Get("own/" + std::to_string(i))->version, uint64_t{kIncrements} + 1);
  }
  (void)t;
}

TEST_F(KvTest, FourThreadCountersInMemory) {
  auto store = OpenStore(Options(/*on_disk=*/false));
  RunCounters(this, store.get());
}

TEST_F(KvTest, FourThreadCountersOnDiskThenReopen) {
  KvOptions o = Options();
  o.compact_log_bytes = 16 << 10;  // several compactions while threads write
  {
    auto store = OpenStore(o);
    RunCounters(this, store.get());
  }
  auto store = OpenStore(o);
  EXPECT_EQ(store->Get("shared")->version, 401u);
}

constexpr int kThreads = 8;
constexpr int kWritesPerThread = 200;
constexpr uint64_t kTotalWrites = uint64_t{kThreads} * kWritesPerThread;

// kThreads threads each call body(thread index) and are joined.
template <typename Body>
void RunThreads(Body body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) threads.emplace_back(body, t);
  for (auto& th : threads) th.join();
}

// One counter, created by the first increment: no update is lost, each
// version is +1, and the watcher sees every version once, in order.
void RunOneCounter(KvStore* store) {
  std::vector<uint64_t> versions;  // written only by callbacks, which run one at a time
  uint64_t id = store->Watch("counter", [&](const Event& e) { versions.push_back(e.version); });
  RunThreads([store](int) {
    for (int n = 0; n < kWritesPerThread; n++) Increment(store, "counter");
  });
  store->Unwatch(id);
  auto counter = store->Get("counter");
  ASSERT_OK(counter.status());
  EXPECT_EQ(counter->value, std::to_string(kTotalWrites));
  EXPECT_EQ(counter->version, kTotalWrites);
  EXPECT_EQ(store->GetStats().writes, kTotalWrites);
  ASSERT_EQ(versions.size(), kTotalWrites);
  for (size_t i = 0; i < versions.size(); i++) ASSERT_EQ(versions[i], i + 1) << "event " << i;
}

TEST_F(KvTest, EightThreadsOneCounterInMemory) {
  auto store = OpenStore(Options(/*on_disk=*/false));
  RunOneCounter(store.get());
  EXPECT_EQ(store->GetStats().syncs, 0u);
}

TEST_F(KvTest, EightThreadsOneCounterOnDiskThenReopen) {
  {
    auto store = OpenStore();
    RunOneCounter(store.get());
  }
  auto counter = OpenStore()->Get("counter");
  ASSERT_OK(counter.status());
  EXPECT_EQ(counter->value, std::to_string(kTotalWrites));
  EXPECT_EQ(counter->version, kTotalWrites);
}

// Every thread writes its own keys t<i>/<0..15> and remembers each write
// acknowledged; a watcher on "" checks that each key's versions arrive +1
// at a time. Returns the acknowledged value of every key.
std::map<std::string, std::string> WriteFromEightThreads(KvStore* store) {
  std::map<std::string, uint64_t> last_version;  // callbacks run one at a time
  uint64_t events = 0;
  uint64_t id = store->Watch("", [&](const Event& e) {
    EXPECT_EQ(e.version, last_version[e.key] + 1) << e.key;
    last_version[e.key] = e.version;
    events++;
  });
  std::vector<std::map<std::string, std::string>> acked(kThreads);
  RunThreads([&](int t) {
    for (int n = 0; n < kWritesPerThread; n++) {
      std::string key = "t" + std::to_string(t) + "/" + std::to_string(n % 16);
      std::string value = "[" + std::to_string(t) + "," + std::to_string(n) + "]";
      auto r = store->Put(key, value);
      ASSERT_OK(r.status());
      acked[t][key] = value;
    }
  });
  store->Unwatch(id);
  EXPECT_EQ(events, kTotalWrites);
  std::map<std::string, std::string> all;
  for (const auto& m : acked) all.insert(m.begin(), m.end());
  return all;
}

void ExpectAcknowledged(KvStore* store, const std::map<std::string, std::string>& acked) {
  EXPECT_EQ(store->GetStats().keys, acked.size());
  for (const auto& [key, value] : acked) {
    auto e = store->Get(key);
    ASSERT_OK(e.status());
    EXPECT_EQ(e->value, value) << key;
    // Keys t<i>/<k> get 200 / 16 writes, one more for k < 200 % 16.
    int k = std::stoi(key.substr(key.find('/') + 1));
    int writes = kWritesPerThread / 16 + (k < kWritesPerThread % 16 ? 1 : 0);
    EXPECT_EQ(e->version, static_cast<uint64_t>(writes)) << key;
  }
}

TEST_F(KvTest, ConcurrentWritersShareSyncsAndSurviveReopen) {
  std::map<std::string, std::string> acked;
  {
    auto store = OpenStore();
    acked = WriteFromEightThreads(store.get());
    Stats s = store->GetStats();
    EXPECT_EQ(s.writes, kTotalWrites);
    // Group commit: a writer whose record another writer's fdatasync
    // covered does not sync again. Any one shared sync makes this hold.
    EXPECT_GE(s.syncs, 1u);
    EXPECT_LT(s.syncs, s.writes);
    std::printf("%llu writes, %llu syncs\n", static_cast<unsigned long long>(s.writes),
                static_cast<unsigned long long>(s.syncs));
  }
  auto store = OpenStore();
  ExpectAcknowledged(store.get(), acked);
}

TEST_F(KvTest, CompactionRacingWritersLosesNothing) {
  KvOptions o = Options();
  o.compact_log_bytes = 2 << 10;  // a compaction every few dozen records
  std::map<std::string, std::string> acked;
  {
    auto store = OpenStore(o);
    std::atomic<bool> done{false};
    std::thread compactor([&] {
      while (!done) ASSERT_OK(store->Compact());
    });
    acked = WriteFromEightThreads(store.get());
    done = true;
    compactor.join();
    ExpectAcknowledged(store.get(), acked);
  }
  auto store = OpenStore(o);
  ExpectAcknowledged(store.get(), acked);
}

}  // namespace
}  // namespace pstorage::kv::testing
