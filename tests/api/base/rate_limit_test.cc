// RateLimiter: a bucket's life (burst, refusal, refill) on injected time, the
// numbers behind the X-RateLimit-* and Retry-After headers, isolation between
// keys, exactness under concurrent takes, and the memory bound.
#include "api/rate_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

namespace pstorage::api {
namespace {

using Clock = RateLimiter::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

int64_t UnixNow() {
  return std::chrono::duration_cast<seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(RateLimitTest, BurstThenRefusalThenRefill) {
  RateLimiter limiter(/*rate_per_second=*/2, /*burst=*/5);
  const Clock::time_point t0 = Clock::now();
  for (uint64_t i = 0; i < 5; ++i) {
    const RateLimitDecision d = limiter.Take("k", t0);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 5u);
    EXPECT_EQ(d.remaining, 4 - i);
    EXPECT_EQ(d.retry_after_s, 0u);
  }
  RateLimitDecision d = limiter.Take("k", t0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(d.retry_after_s, 1u);  // half a second, rounded up

  // Half a second brings back exactly one token at 2 per second.
  EXPECT_FALSE(limiter.Take("k", t0 + milliseconds(499)).allowed);
  d = limiter.Take("k", t0 + milliseconds(500));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_FALSE(limiter.Take("k", t0 + milliseconds(500)).allowed);

  // Long idle: the bucket is full again but never holds more than the burst.
  d = limiter.Take("k", t0 + seconds(3600));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 4u);
}

TEST(RateLimitTest, RetryAfterIsTheWaitForOneTokenRoundedUp) {
  RateLimiter slow(/*rate_per_second=*/0.25, /*burst=*/1);  // one token per 4 s
  const Clock::time_point t0 = Clock::now();
  ASSERT_TRUE(slow.Take("k", t0).allowed);
  EXPECT_EQ(slow.Take("k", t0).retry_after_s, 4u);
  EXPECT_EQ(slow.Take("k", t0 + seconds(1)).retry_after_s, 3u);
  EXPECT_EQ(slow.Take("k", t0 + milliseconds(3500)).retry_after_s, 1u);
  EXPECT_TRUE(slow.Take("k", t0 + seconds(4)).allowed);

  // A wait far below a second is still reported as 1: Retry-After has whole seconds.
  RateLimiter fast(/*rate_per_second=*/1000, /*burst=*/1);
  ASSERT_TRUE(fast.Take("k", t0).allowed);
  const RateLimitDecision d = fast.Take("k", t0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1u);
}

TEST(RateLimitTest, ResetIsTheWallClockTimeOfAFullBucket) {
  RateLimiter limiter(/*rate_per_second=*/2, /*burst=*/10);
  const int64_t before = UnixNow();
  const Clock::time_point t0 = Clock::now();
  RateLimitDecision d;
  for (int i = 0; i < 4; ++i) d = limiter.Take("k", t0);
  const int64_t after = UnixNow();
  // 4 tokens missing at 2 per second: full 2 s after t0.
  EXPECT_GE(d.reset_unix_s, before + 2);
  EXPECT_LE(d.reset_unix_s, after + 3);

  // An injected time an hour ahead maps to the wall clock an hour ahead; one
  // token missing is half a second more.
  const RateLimitDecision later = limiter.Take("other", t0 + seconds(3600));
  EXPECT_GE(later.reset_unix_s, before + 3601);
  EXPECT_LE(later.reset_unix_s, after + 3602);
}

TEST(RateLimitTest, KeysHaveTheirOwnBuckets) {
  RateLimiter limiter(/*rate_per_second=*/1, /*burst=*/3);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.Take("alice", t0).allowed);
  EXPECT_FALSE(limiter.Take("alice", t0).allowed);
  const RateLimitDecision bob = limiter.Take("bob", t0);
  EXPECT_TRUE(bob.allowed);
  EXPECT_EQ(bob.remaining, 2u);
  EXPECT_FALSE(limiter.Take("alice", t0).allowed);
}

TEST(RateLimitTest, TimeGoingBackwardsAddsNoTokens) {
  // Threads read the clock before taking the shard lock, so a later request
  // can carry an earlier time.
  RateLimiter limiter(/*rate_per_second=*/1, /*burst=*/2);
  const Clock::time_point t0 = Clock::now();
  ASSERT_TRUE(limiter.Take("k", t0 + seconds(10)).allowed);
  ASSERT_TRUE(limiter.Take("k", t0 + seconds(10)).allowed);
  EXPECT_FALSE(limiter.Take("k", t0).allowed);
  EXPECT_FALSE(limiter.Take("k", t0 + seconds(10)).allowed);
  EXPECT_TRUE(limiter.Take("k", t0 + seconds(11)).allowed);
}

TEST(RateLimitTest, ConcurrentTakesAllowExactlyTheBurst) {
  constexpr uint64_t kBurst = 1000;
  constexpr int kThreads = 4;
  constexpr int kTakesPerThread = 1000;
  RateLimiter limiter(/*rate_per_second=*/1, kBurst);
  const Clock::time_point t0 = Clock::now();  // no time passes: no refill
  std::atomic<uint64_t> allowed{0};
  std::atomic<uint64_t> allowed_other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kTakesPerThread; ++i) {
        if (limiter.Take("shared", t0).allowed) allowed.fetch_add(1);
        if (limiter.Take("key-" + std::to_string(i % 64), t0).allowed) allowed_other.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(allowed.load(), kBurst);
  // 64 keys, 4000 takes in all, each key far below its burst.
  EXPECT_EQ(allowed_other.load(), uint64_t{kThreads} * kTakesPerThread);
}

TEST(RateLimitTest, MemoryIsBoundedUnderAFloodOfNewKeys) {
  constexpr size_t kMaxKeys = 160;  // 10 per shard
  RateLimiter limiter(/*rate_per_second=*/1, /*burst=*/10, kMaxKeys);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(limiter.Take("flood-" + std::to_string(i), t0).allowed) << i;
    ASSERT_LE(limiter.TrackedKeys(), kMaxKeys) << i;
  }
}

TEST(RateLimitTest, EvictionKeepsTheBucketsThatMatter) {
  constexpr size_t kMaxKeys = 160;
  RateLimiter limiter(/*rate_per_second=*/1, /*burst=*/10, kMaxKeys);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Take("cold-" + std::to_string(i), t0).allowed);

  // A minute later every cold bucket is full (idle); "hot" empties its bucket.
  const Clock::time_point t1 = t0 + seconds(60);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.Take("hot", t1).allowed);
  ASSERT_FALSE(limiter.Take("hot", t1).allowed);

  // New keys push out the idle buckets first, then the fullest busy ones:
  // "hot", with no tokens, is the last candidate and keeps its empty bucket.
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Take("new-" + std::to_string(i), t1).allowed);
  EXPECT_LE(limiter.TrackedKeys(), kMaxKeys);
  EXPECT_FALSE(limiter.Take("hot", t1).allowed);
}

TEST(RateLimitTest, SmallMaxKeysStillHoldsOneBucketPerShard) {
  RateLimiter limiter(/*rate_per_second=*/1, /*burst=*/1, /*max_keys=*/1);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 100; ++i) limiter.Take("k" + std::to_string(i), t0);
  EXPECT_LE(limiter.TrackedKeys(), 16u);
  ASSERT_TRUE(limiter.Take("x", t0).allowed);
  EXPECT_FALSE(limiter.Take("x", t0).allowed);  // its own bucket survives its own next request
}

#ifdef NDEBUG
TEST(RateLimitTest, BadArgumentsFailClosedInReleaseBuilds) {
  const Clock::time_point t0 = Clock::now();
  for (double rate : {0.0, -5.0, std::nan("")}) {
    RateLimiter limiter(rate, /*burst=*/0);
    const RateLimitDecision first = limiter.Take("k", t0);
    EXPECT_TRUE(first.allowed) << rate;
    EXPECT_EQ(first.limit, 1u) << rate;
    const RateLimitDecision second = limiter.Take("k", t0 + seconds(60));
    EXPECT_FALSE(second.allowed) << "never unlimited; rate " << rate;
    // 1 / kMinRatePerSecond = 1000 s for a token, 60 of them gone.
    EXPECT_GE(second.retry_after_s, 940u) << rate;
    EXPECT_LE(second.retry_after_s, 941u) << rate;  // 0.94 / 0.001 may round either way
  }
}
#else
TEST(RateLimitDeathTest, BadArgumentsAssertInDebugBuilds) {
  EXPECT_DEATH(RateLimiter(0.0, 10), "rate_per_second");
  EXPECT_DEATH(RateLimiter(1.0, 0), "burst");
}
#endif

}  // namespace
}  // namespace pstorage::api
