// Journal under injected faults and simulated power loss (MemoryEnv): a
// failed write or sync fails the journal for good, and after a crash the
// journal replays exactly the acknowledged records.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "engine/journal.h"
#include "engine/journal_format.h"
#include "engine/memory_env.h"

namespace pstorage::engine {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr char kPath[] = "/mem/journal";

::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}

Bytes Payload(uint64_t id, size_t size) {
  Bytes b(std::max<size_t>(size, 8), uint8_t(id * 7 + 1));
  journal_format::PutU64(b.data(), id);
  return b;
}

std::unique_ptr<Journal> Open(MemoryEnv& env) {
  Result<std::unique_ptr<Journal>> j = Journal::Open(&env, kPath, {});
  EXPECT_TRUE(IsOk(j.status()));
  return j.ok() ? std::move(*j) : nullptr;
}

std::vector<uint64_t> ReplayIds(Journal& j) {
  std::vector<uint64_t> ids;
  EXPECT_TRUE(IsOk(j.Replay([&](std::span<const uint8_t> p) {
    ids.push_back(journal_format::GetU64(p.data()));
    return Status::Ok();
  })));
  return ids;
}

// Replayed ids are exactly `acked`, and each appender's (ids in blocks of
// 50) in increasing order.
void ExpectOracle(const std::vector<uint64_t>& replayed, const std::set<uint64_t>& acked) {
  EXPECT_EQ(std::set<uint64_t>(replayed.begin(), replayed.end()), acked);
  EXPECT_EQ(replayed.size(), acked.size());
  std::map<uint64_t, uint64_t> last;  // block -> last id + 1
  for (uint64_t id : replayed) {
    EXPECT_LE(last[id / 50], id);
    last[id / 50] = id + 1;
  }
}

uint64_t FileSize(MemoryEnv& env) { return env.ReadFile(kPath)->size(); }

TEST(JournalFaultTest, WriteFailureFailsTheJournalUntilReopened) {
  MemoryEnv env;
  auto j = Open(env);
  for (uint64_t id = 0; id < 3; id++) ASSERT_TRUE(IsOk(j->Append(Payload(id, 100))));
  const uint64_t good_bytes = FileSize(env);

  env.FailNextWrites(1);  // stores half of the record, then fails
  EXPECT_EQ(j->Append(Payload(3, 100)).code(), Code::kIoError);
  const uint64_t torn_bytes = FileSize(env);
  EXPECT_GT(torn_bytes, good_bytes);
  EXPECT_EQ(j->Append(Payload(4, 100)).code(), Code::kIoError);  // failed state
  EXPECT_EQ(j->Reset().code(), Code::kIoError);
  EXPECT_EQ(FileSize(env), torn_bytes);  // nothing more was tried
  EXPECT_EQ(j->records_appended(), 3u);

  j = Open(env);  // reopening cuts the torn record
  EXPECT_EQ(FileSize(env), good_bytes);
  ASSERT_TRUE(IsOk(j->Append(Payload(5, 100))));
  EXPECT_EQ(ReplayIds(*j), (std::vector<uint64_t>{0, 1, 2, 5}));
}

// A record whose sync failed was not acknowledged: it may survive a crash
// or not. In the memory model it is lost.
TEST(JournalFaultTest, SyncFailureFailsTheJournalAndTheRecordIsNotDurable) {
  MemoryEnv env;
  auto j = Open(env);
  ASSERT_TRUE(IsOk(j->Append(Payload(0, 10))));
  env.FailNextSyncs(1);
  EXPECT_EQ(j->Append(Payload(1, 10)).code(), Code::kIoError);
  EXPECT_EQ(j->Append(Payload(2, 10)).code(), Code::kIoError);
  EXPECT_EQ(j->syncs(), 1u);
  env.DropUnsynced();
  EXPECT_EQ(ReplayIds(*Open(env)), (std::vector<uint64_t>{0}));
}

// Crash harness. Appenders run while the test injects write and sync
// failures at random points; then power is lost. The oracle is the set of
// acknowledged records: replay must return exactly those, each appender's
// in its order. Every round continues the same journal.
TEST(JournalFaultTest, CrashReplaysExactlyTheAcknowledgedRecords) {
  constexpr uint64_t kSeed = 20240611;
  std::printf("seed %llu\n", (unsigned long long)kSeed);
  std::mt19937_64 rng(kSeed);
  MemoryEnv env;
  std::set<uint64_t> acked;
  uint64_t next_id = 0;
  for (int round = 0; round < 20; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto j = Open(env);
    ExpectOracle(ReplayIds(*j), acked);

    std::mutex mu;  // guards acked
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
      const uint64_t first = next_id;
      next_id += 50;
      const size_t size = 8 + rng() % 200;
      threads.emplace_back([&, first, size] {
        for (uint64_t id = first; id < first + 50; id++) {
          if (!j->Append(Payload(id, size)).ok()) return;  // failed journal
          std::lock_guard lock(mu);
          acked.insert(id);
        }
      });
    }
    const uint64_t fault = rng() % 4;
    if (fault == 1) env.FailNextWrites(1);
    if (fault == 2) env.FailNextSyncs(1);  // fault 0 and 3: a clean run
    for (std::thread& t : threads) t.join();
    j.reset();
    env.DropUnsynced();
    env.FailNextWrites(0);
    env.FailNextSyncs(0);
  }
  ExpectOracle(ReplayIds(*Open(env)), acked);
  std::printf("%zu records acknowledged over 20 crashes\n", acked.size());
}

TEST(JournalFaultTest, ResetIsDurable) {
  MemoryEnv env;
  auto j = Open(env);
  ASSERT_TRUE(IsOk(j->Append(Payload(0, 10))));
  ASSERT_TRUE(IsOk(j->Reset()));
  ASSERT_TRUE(IsOk(j->Append(Payload(1, 10))));
  env.DropUnsynced();
  EXPECT_EQ(ReplayIds(*Open(env)), (std::vector<uint64_t>{1}));
}

}  // namespace
}  // namespace pstorage::engine
