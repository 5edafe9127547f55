// Token-bucket rate limiting per client key.
//
// Each key has a bucket of `burst` tokens refilled at `rate_per_second`; a
// request takes one token or is refused. Thread-safe (sharded mutexes).
// Memory is bounded: buckets idle long enough to be full again are dropped
// when the table passes `max_keys`.
//
// The table is split in 16 shards of max(1, max_keys / 16) buckets each. A
// new key arriving at a full shard first drops that shard's full (idle)
// buckets; if none is idle, the bucket with the most tokens is dropped, so
// the bound holds under any load and an evicted key gains back at most the
// tokens it was missing. Buckets that are full are indistinguishable from
// new ones, so dropping them never changes a decision.
//
// Arguments: `rate_per_second` must be > 0 and `burst` >= 1 (asserted in
// debug builds; the config loader enforces both). Release builds never turn
// a bad value into "unlimited": a rate that is not > 0 becomes
// kMinRatePerSecond (about one token per 17 minutes), burst 0 becomes 1.
// Bursts above 2^53 are clamped to 2^53 (tokens are doubles).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace pstorage::api {

struct RateLimitDecision {
  bool allowed = true;
  uint64_t limit = 0;         // burst size (X-RateLimit-Limit)
  uint64_t remaining = 0;     // whole tokens left after this request (X-RateLimit-Remaining)
  int64_t reset_unix_s = 0;   // when the bucket is full again (X-RateLimit-Reset, Unix seconds)
  uint64_t retry_after_s = 0; // when refused: seconds until one token is back (>= 1)
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // The floor for a non-positive rate in release builds (fail closed).
  static constexpr double kMinRatePerSecond = 0.001;

  RateLimiter(double rate_per_second, uint64_t burst, size_t max_keys = 100000);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  RateLimitDecision Take(const std::string& key) { return Take(key, Clock::now()); }
  // With an explicit time, for tests.
  RateLimitDecision Take(const std::string& key, Clock::time_point now);

  // Buckets currently held (for tests and a metrics gauge).
  size_t TrackedKeys() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstorage::api
