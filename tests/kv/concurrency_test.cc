// KvStore under concurrent writers: conditional increments with retries.
#include <thread>
#include <vector>

#include "tests/kv/kv_test_util.h"

namespace pstorage::kv::testing {
namespace {

// Reads key, then writes value+1 with if_version; retries on conflict.
void Increment(KvStore* store, const std::string& key) {
  for (;;) {
    auto cur = store->Get(key);
    ASSERT_OK(cur.status());
    int64_t v = std::stoll(cur->value);
    auto r = store->Put(key, std::to_string(v + 1), {.if_version = cur->version});
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

}  // namespace
}  // namespace pstorage::kv::testing
