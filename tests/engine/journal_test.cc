// Journal: round trips, torn tails, group commit, before_sync, failures.
// Every TEST_P runs on the memory Env and on POSIX files in /var/tmp; the
// fault and crash tests use MemoryEnv's hooks.
#include "engine/journal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "engine/journal_format.h"
#include "engine/memory_env.h"

namespace pstorage::engine {
namespace {

namespace fmt = journal_format;
using Bytes = std::vector<uint8_t>;

::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}

// `size` bytes: the id in the first 8 (when they fit), then a pattern of it.
Bytes Payload(uint64_t id, size_t size) {
  Bytes b(size);
  uint64_t x = id * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < size; i++) {
    if (i % 8 == 0) x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b[i] = i < 8 ? uint8_t(id >> (8 * i)) : uint8_t(x >> (8 * (i % 8)));
  }
  return b;
}

uint64_t IdOf(std::span<const uint8_t> p) { return fmt::GetU64(p.data()); }

enum class EnvKind { kMemory, kPosix };

class JournalTest : public ::testing::TestWithParam<EnvKind> {
 protected:
  void SetUp() override {
    if (GetParam() == EnvKind::kPosix) {
      char dir[] = "/var/tmp/pstorage-journal-test-XXXXXX";
      ASSERT_NE(mkdtemp(dir), nullptr);
      dir_ = dir;
      env_ = DefaultEnv();
    } else {
      mem_ = std::make_unique<MemoryEnv>();
      env_ = mem_.get();
      dir_ = "/mem";
    }
    path_ = dir_ + "/journal";
  }
  void TearDown() override {
    if (GetParam() == EnvKind::kPosix) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Journal> Open(const JournalOptions& options = {}) {
    Result<std::unique_ptr<Journal>> j = Journal::Open(env_, path_, options);
    EXPECT_TRUE(IsOk(j.status()));
    return j.ok() ? std::move(*j) : nullptr;
  }

  static std::vector<Bytes> ReplayAll(Journal& j) {
    std::vector<Bytes> out;
    EXPECT_TRUE(IsOk(j.Replay([&](std::span<const uint8_t> p) {
      out.emplace_back(p.begin(), p.end());
      return Status::Ok();
    })));
    return out;
  }

  Bytes FileBytes() {
    Result<Bytes> b = env_->ReadFile(path_);
    EXPECT_TRUE(IsOk(b.status()));
    return b.ok() ? *b : Bytes{};
  }
  void SetFileBytes(const Bytes& b) { ASSERT_TRUE(IsOk(env_->WriteFileAtomic(path_, b))); }

  // Appends `n` records with ids first.. of sizes 0..99 and returns them.
  std::vector<Bytes> AppendSome(Journal& j, uint64_t first, int n) {
    std::vector<Bytes> written;
    for (int i = 0; i < n; i++) {
      written.push_back(Payload(first + i, size_t((first + i) * 37 % 100)));
      EXPECT_TRUE(IsOk(j.Append(written.back())));
    }
    return written;
  }

  std::string dir_, path_;
  Env* env_ = nullptr;
  std::unique_ptr<MemoryEnv> mem_;
};

INSTANTIATE_TEST_SUITE_P(Envs, JournalTest,
                         ::testing::Values(EnvKind::kMemory, EnvKind::kPosix),
                         [](const ::testing::TestParamInfo<EnvKind>& p) {
                           return p.param == EnvKind::kPosix ? "posix" : "memory";
                         });

TEST_P(JournalTest, NewJournalIsEmpty) {
  auto j = Open();
  EXPECT_TRUE(ReplayAll(*j).empty());
  EXPECT_EQ(j->size_bytes(), 0u);
  EXPECT_EQ(j->records_appended(), 0u);
  EXPECT_EQ(j->syncs(), 0u);
}

TEST_P(JournalTest, RoundTripOfManySizes) {
  const std::vector<size_t> sizes = {0, 1, 7, 23, 24, 4095, 4096, 4097, 65536, 1 << 20};
  std::vector<Bytes> written;
  uint64_t bytes = 0;
  auto j = Open();
  for (size_t i = 0; i < sizes.size(); i++) {
    written.push_back(Payload(i, sizes[i]));
    ASSERT_TRUE(IsOk(j->Append(written.back())));
    bytes += fmt::kHeaderBytes + sizes[i];
  }
  EXPECT_EQ(ReplayAll(*j), written);
  EXPECT_EQ(j->size_bytes(), bytes);
  EXPECT_EQ(FileBytes().size(), bytes);
  EXPECT_EQ(j->records_appended(), sizes.size());
  EXPECT_EQ(j->syncs(), sizes.size());  // one appender: every Append is its own group
}

TEST_P(JournalTest, ReplayAfterReopenAndAppendContinues) {
  std::vector<Bytes> written = AppendSome(*Open(), 0, 100);
  auto j = Open();
  EXPECT_EQ(ReplayAll(*j), written);
  std::vector<Bytes> more = AppendSome(*j, 100, 10);
  written.insert(written.end(), more.begin(), more.end());
  j.reset();
  j = Open();
  EXPECT_EQ(ReplayAll(*j), written);
}

TEST_P(JournalTest, AppendWithoutReplayContinuesAfterLastRecord) {
  std::vector<Bytes> written = AppendSome(*Open(), 0, 5);
  std::vector<Bytes> more = AppendSome(*Open(), 5, 5);  // no Replay before Append
  written.insert(written.end(), more.begin(), more.end());
  EXPECT_EQ(ReplayAll(*Open()), written);
}

TEST_P(JournalTest, PayloadLimitIs64MiB) {
  auto j = Open();
  Bytes big(fmt::kMaxPayloadBytes + 1, 0xab);
  EXPECT_EQ(j->Append(big).code(), Code::kInvalidArgument);
  EXPECT_EQ(j->size_bytes(), 0u);
  big.pop_back();
  ASSERT_TRUE(IsOk(j->Append(big)));
  big.clear();
  j.reset();
  j = Open();
  size_t replayed = 0;
  ASSERT_TRUE(IsOk(j->Replay([&](std::span<const uint8_t> p) {
    replayed = p.size();
    return Status::Ok();
  })));
  EXPECT_EQ(replayed, fmt::kMaxPayloadBytes);
}

// Cuts the file inside the last record (header or payload): replay keeps
// the good prefix, cuts the file after it, and new records follow in order.
TEST_P(JournalTest, TornTailIsDroppedAndAppendingContinues) {
  const uint64_t last_record_bytes = fmt::kHeaderBytes + 100;
  for (uint64_t keep : {uint64_t{1}, uint64_t{fmt::kHeaderBytes - 1},
                        uint64_t{fmt::kHeaderBytes}, last_record_bytes - 1}) {
    SCOPED_TRACE("bytes of the last record kept: " + std::to_string(keep));
    ASSERT_TRUE(IsOk(Open()->Reset()));
    auto j = Open();
    std::vector<Bytes> written = AppendSome(*j, 0, 9);
    ASSERT_TRUE(IsOk(j->Append(Payload(9, 100))));
    const uint64_t good_bytes = j->size_bytes() - last_record_bytes;
    j.reset();
    Bytes file = FileBytes();
    file.resize(good_bytes + keep);
    SetFileBytes(file);

    j = Open();
    EXPECT_EQ(ReplayAll(*j), written);
    EXPECT_EQ(j->size_bytes(), good_bytes);
    EXPECT_EQ(FileBytes().size(), good_bytes);
    std::vector<Bytes> more = AppendSome(*j, 100, 2);
    written.insert(written.end(), more.begin(), more.end());
    j.reset();
    EXPECT_EQ(ReplayAll(*Open()), written);
  }
}

// A flipped bit anywhere in the last record (magic, length, seq, checksum,
// payload) makes it fail its checks.
TEST_P(JournalTest, CorruptLastRecordIsDropped) {
  for (size_t at : {size_t{0}, size_t{5}, size_t{8}, size_t{20}, size_t{24}, size_t{60}}) {
    SCOPED_TRACE("byte flipped in the last record: " + std::to_string(at));
    ASSERT_TRUE(IsOk(Open()->Reset()));
    std::vector<Bytes> written = AppendSome(*Open(), 0, 5);
    const uint64_t good_bytes = FileBytes().size();
    ASSERT_TRUE(IsOk(Open()->Append(Payload(5, 50))));
    Bytes file = FileBytes();
    file[good_bytes + at] ^= 0x10;
    SetFileBytes(file);
    auto j = Open();
    EXPECT_EQ(ReplayAll(*j), written);
    EXPECT_EQ(j->size_bytes(), good_bytes);
    written.push_back(Payload(6, 3));
    ASSERT_TRUE(IsOk(j->Append(written.back())));
    EXPECT_EQ(ReplayAll(*Open()), written);
  }
}

TEST_P(JournalTest, GarbageAfterGoodRecordsIsCut) {
  std::mt19937_64 rng(42);
  std::printf("seed 42\n");
  Bytes zeros(4096, 0);
  Bytes random(1000);
  for (uint8_t& b : random) b = uint8_t(rng());
  Bytes huge_header(fmt::kHeaderBytes, 0);  // good magic and seq, length over the limit
  fmt::PutU32(huge_header.data(), fmt::kRecordMagic);
  fmt::PutU32(huge_header.data() + fmt::kLengthOffset, fmt::kMaxPayloadBytes + 1);
  fmt::PutU64(huge_header.data() + fmt::kSeqOffset, 6);
  for (const Bytes* garbage : {&zeros, &random, &huge_header}) {
    ASSERT_TRUE(IsOk(Open()->Reset()));
    std::vector<Bytes> written = AppendSome(*Open(), 0, 5);
    Bytes file = FileBytes();
    const uint64_t good_bytes = file.size();
    file.insert(file.end(), garbage->begin(), garbage->end());
    SetFileBytes(file);
    auto j = Open();
    EXPECT_EQ(ReplayAll(*j), written);
    EXPECT_EQ(FileBytes().size(), good_bytes);
    std::vector<Bytes> more = AppendSome(*j, 5, 3);
    written.insert(written.end(), more.begin(), more.end());
    EXPECT_EQ(ReplayAll(*Open()), written);
  }
}

// A valid record whose sequence number is not the previous + 1 (here: a
// second copy of the last record) ends the journal.
TEST_P(JournalTest, RecordOutOfSequenceEndsReplay) {
  std::vector<Bytes> written = AppendSome(*Open(), 0, 4);
  const uint64_t before_last = FileBytes().size();
  written.push_back(Payload(4, 30));
  ASSERT_TRUE(IsOk(Open()->Append(written.back())));
  Bytes file = FileBytes();
  file.insert(file.end(), file.begin() + ptrdiff_t(before_last), file.end());
  SetFileBytes(file);
  EXPECT_EQ(ReplayAll(*Open()), written);
}

TEST_P(JournalTest, ReplayStopsAtCallbackError) {
  AppendSome(*Open(), 0, 5);
  auto j = Open();
  int calls = 0;
  const Status s = j->Replay([&](std::span<const uint8_t>) {
    return ++calls == 3 ? Status::Corruption("bad record") : Status::Ok();
  });
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(ReplayAll(*j).size(), 5u);  // nothing was cut
}

TEST_P(JournalTest, ResetEmptiesTheJournalAndRestartsSequence) {
  auto j = Open();
  AppendSome(*j, 0, 10);
  ASSERT_TRUE(IsOk(j->Reset()));
  EXPECT_EQ(j->size_bytes(), 0u);
  EXPECT_EQ(FileBytes().size(), 0u);
  std::vector<Bytes> written = AppendSome(*j, 10, 3);
  EXPECT_EQ(fmt::GetU64(FileBytes().data() + fmt::kSeqOffset), fmt::kFirstSeq);
  j.reset();
  EXPECT_EQ(ReplayAll(*Open()), written);
}

TEST_P(JournalTest, ConcurrentAppendersAreGroupedAndReplayedOnce) {
  constexpr int kThreads = 8, kPerThread = 500;
  auto j = Open();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; i++) {
        const uint64_t id = uint64_t(t) << 32 | uint64_t(i);
        ASSERT_TRUE(IsOk(j->Append(Payload(id, 8 + size_t(i % 300)))));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const uint64_t records = j->records_appended(), syncs = j->syncs();
  EXPECT_EQ(records, uint64_t{kThreads * kPerThread});
  EXPECT_GT(syncs, 0u);
  // A memory sync is instant, so groups there form only by scheduling luck;
  // a real fdatasync (~250 us) always has appenders queued behind it.
  if (GetParam() == EnvKind::kPosix) {
    EXPECT_LT(syncs, records);
  }
  EXPECT_LE(syncs, records);
  std::printf("%llu records in %llu group commits: %.1f records per sync\n",
              (unsigned long long)records, (unsigned long long)syncs, double(records) / syncs);

  j.reset();
  std::map<uint64_t, int> next_index;  // per thread: each thread's records in its order
  size_t count = 0;
  ASSERT_TRUE(IsOk(Open()->Replay([&](std::span<const uint8_t> p) {
    const uint64_t id = IdOf(p);
    EXPECT_EQ(Bytes(p.begin(), p.end()), Payload(id, 8 + (id & 0xffffffff) % 300));
    EXPECT_EQ(next_index[id >> 32]++, int(id & 0xffffffff));
    count++;
    return Status::Ok();
  })));
  EXPECT_EQ(count, size_t{kThreads * kPerThread});
}

TEST_P(JournalTest, BeforeSyncRunsBeforeEveryGroupIsWritten) {
  Journal* journal = nullptr;
  std::atomic<int> calls{0};
  JournalOptions options;
  options.before_sync = [&] {
    calls++;
    // Nothing of this group is in the file yet, and its sync is not counted.
    Result<std::unique_ptr<File>> f = env_->OpenFile(path_);
    EXPECT_TRUE(IsOk(f.status()));
    EXPECT_EQ((*f)->Size().value(), journal->size_bytes());
    EXPECT_EQ(journal->syncs(), uint64_t(calls - 1));
    return Status::Ok();
  };
  auto j = Open(options);
  journal = j.get();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) threads.emplace_back([&, t] { AppendSome(*j, t * 1000, 50); });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(uint64_t(calls), j->syncs());
  EXPECT_EQ(j->records_appended(), 200u);
}

// Submit fixes a record's place; Wait (or Drain) makes it durable. Records
// submitted together commit as one group, in submission order.
TEST_P(JournalTest, SubmitThenWaitCommitsInSubmissionOrder) {
  auto j = Open();
  std::vector<Bytes> written;
  std::vector<Journal::Ticket> tickets(5);
  for (int i = 0; i < 5; i++) {
    written.push_back(Payload(i, 10 + i));
    ASSERT_TRUE(IsOk(j->Submit(written.back(), &tickets[i])));
  }
  EXPECT_FALSE(tickets[0].done);
  EXPECT_EQ(0u, j->records_appended());
  // Waiting for the last one commits all five in one group.
  ASSERT_TRUE(IsOk(j->Wait(&tickets[4])));
  for (Journal::Ticket& t : tickets) {
    EXPECT_TRUE(t.done);
    EXPECT_TRUE(IsOk(j->Wait(&t)));
  }
  EXPECT_EQ(5u, j->records_appended());
  EXPECT_EQ(1u, j->syncs());
  // Drain commits what is queued without a ticket of its own.
  Journal::Ticket last;
  written.push_back(Payload(5, 3));
  ASSERT_TRUE(IsOk(j->Submit(written.back(), &last)));
  ASSERT_TRUE(IsOk(j->Drain()));
  EXPECT_TRUE(last.done);
  EXPECT_TRUE(IsOk(j->Drain()));  // nothing queued: returns at once
  j.reset();
  EXPECT_EQ(ReplayAll(*Open()), written);
}

// A group that fails while Drain runs makes Drain fail, even when the
// failure is not sticky (a failed before_sync hook).
TEST_P(JournalTest, DrainReportsAGroupThatFailed) {
  bool fail = true;
  JournalOptions options;
  options.before_sync = [&] { return fail ? Status::NoSpace("flash full") : Status::Ok(); };
  auto j = Open(options);
  Journal::Ticket t;
  ASSERT_TRUE(IsOk(j->Submit(Payload(1, 5), &t)));
  EXPECT_FALSE(IsOk(j->Drain()));
  EXPECT_TRUE(t.done);
  EXPECT_EQ(Code::kNoSpace, t.status.code());
  fail = false;
  ASSERT_TRUE(IsOk(j->Submit(Payload(2, 5), &t)));
  EXPECT_TRUE(IsOk(j->Drain()));
}

TEST_P(JournalTest, BeforeSyncFailureFailsTheGroupAndWritesNothing) {
  std::atomic<bool> fail{true};
  JournalOptions options;
  options.before_sync = [&] { return fail ? Status::NoSpace("flash full") : Status::Ok(); };
  std::vector<Bytes> written = AppendSome(*Open(), 0, 3);  // without the hook
  auto j = Open(options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; i++) EXPECT_EQ(j->Append(Payload(t, 10)).code(), Code::kNoSpace);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(j->records_appended(), 0u);
  EXPECT_EQ(j->syncs(), 0u);
  EXPECT_EQ(FileBytes().size(), j->size_bytes());
  fail = false;  // not a failed state: the next group goes through, in sequence
  std::vector<Bytes> more = AppendSome(*j, 3, 2);
  written.insert(written.end(), more.begin(), more.end());
  j.reset();
  EXPECT_EQ(ReplayAll(*Open()), written);
}

}  // namespace
}  // namespace pstorage::engine
