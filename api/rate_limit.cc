#include "api/rate_limit.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <functional>
#include <mutex>
#include <unordered_map>

namespace pstorage::api {
namespace {

constexpr size_t kShards = 16;
// Tokens are doubles; past 2^53 whole tokens stop being exact.
constexpr uint64_t kMaxBurst = uint64_t{1} << 53;
// Refills are sums of products of doubles; a bucket refilled to 0.9999999999
// after exactly one token's worth of time must still allow the request.
constexpr double kEpsilon = 1e-9;
// Caps the wait reported in headers (about 31 years) so that huge bursts over
// tiny rates cannot overflow the integer conversions.
constexpr double kMaxWaitSeconds = 1e9;

struct Bucket {
  double tokens;             // in [0, burst]
  RateLimiter::Clock::time_point updated;  // when `tokens` was last brought up to date
};

uint64_t CeilSeconds(double seconds) {
  return static_cast<uint64_t>(std::ceil(std::min(seconds, kMaxWaitSeconds)));
}

}  // namespace

class RateLimiter::Impl {
 public:
  Impl(double rate_per_second, uint64_t burst, size_t max_keys)
      : rate_(rate_per_second > 0 ? rate_per_second : kMinRatePerSecond),
        burst_(std::clamp<uint64_t>(burst, 1, kMaxBurst)),
        burst_tokens_(static_cast<double>(burst_)),
        shard_cap_(std::max<size_t>(1, max_keys / kShards)) {
    // Written as `> 0` so that NaN fails too.
    assert(rate_per_second > 0 && "RateLimiter: rate_per_second must be > 0");
    assert(burst >= 1 && "RateLimiter: burst must be >= 1");
  }

  RateLimitDecision Take(const std::string& key, Clock::time_point now) {
    Shard& shard = shards_[std::hash<std::string>{}(key) % kShards];
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.buckets.find(key);
    if (it == shard.buckets.end()) {
      if (shard.buckets.size() >= shard_cap_) MakeRoom(shard, now);
      it = shard.buckets.emplace(key, Bucket{burst_tokens_, now}).first;
    }
    Bucket& b = it->second;
    b.tokens = TokensAt(b, now);
    if (now > b.updated) b.updated = now;

    RateLimitDecision d;
    d.limit = burst_;
    d.allowed = b.tokens >= 1 - kEpsilon;
    if (d.allowed) {
      b.tokens = std::max(0.0, b.tokens - 1);
    } else {
      d.retry_after_s = std::max<uint64_t>(1, CeilSeconds((1 - b.tokens) / rate_));
    }
    d.remaining = static_cast<uint64_t>(std::floor(b.tokens + kEpsilon));
    d.reset_unix_s = ResetUnixSeconds(b.tokens, now);
    return d;
  }

  size_t TrackedKeys() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mu);
      n += s.buckets.size();
    }
    return n;
  }

 private:
  struct alignas(64) Shard {  // one cache line apart: shards are locked by different threads
    mutable std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;  // guarded by mu; size <= shard_cap_
  };

  // The bucket's tokens at `now`, without changing it. A `now` older than the
  // last update (threads read the clock before taking the lock) adds nothing.
  double TokensAt(const Bucket& b, Clock::time_point now) const {
    if (now <= b.updated) return b.tokens;
    const double elapsed_s = std::chrono::duration<double>(now - b.updated).count();
    return std::min(burst_tokens_, b.tokens + elapsed_s * rate_);
  }

  // Brings the shard below its cap. Full buckets go first: they hold nothing a
  // new bucket would not. If every bucket is in use, the one with the most
  // tokens goes, so its key gains back the least.
  void MakeRoom(Shard& shard, Clock::time_point now) const {
    auto fullest = shard.buckets.end();
    double most = -1;
    for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
      const double tokens = TokensAt(it->second, now);
      if (tokens >= burst_tokens_ - kEpsilon) {
        it = shard.buckets.erase(it);
        continue;
      }
      if (tokens > most) {
        most = tokens;
        fullest = it;
      }
      ++it;
    }
    if (shard.buckets.size() >= shard_cap_) shard.buckets.erase(fullest);
    assert(shard.buckets.size() < shard_cap_);
  }

  // Wall-clock time at which `tokens` will have refilled to `burst`, rounded
  // up. The steady `now` (maybe injected) is mapped onto the system clock by
  // the current offset between the two clocks.
  int64_t ResetUnixSeconds(double tokens, Clock::time_point now) const {
    const auto sys_now = std::chrono::system_clock::now() +
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(
                             now - Clock::now());
    const double now_s = std::chrono::duration<double>(sys_now.time_since_epoch()).count();
    const double to_full_s = std::min((burst_tokens_ - tokens) / rate_, kMaxWaitSeconds);
    return static_cast<int64_t>(std::ceil(now_s + to_full_s));
  }

  // Constant after construction.
  const double rate_;  // tokens per second, > 0
  const uint64_t burst_;
  const double burst_tokens_;
  const size_t shard_cap_;

  std::array<Shard, kShards> shards_;
};

RateLimiter::RateLimiter(double rate_per_second, uint64_t burst, size_t max_keys)
    : impl_(std::make_unique<Impl>(rate_per_second, burst, max_keys)) {}

RateLimiter::~RateLimiter() = default;

RateLimitDecision RateLimiter::Take(const std::string& key, Clock::time_point now) {
  return impl_->Take(key, now);
}

size_t RateLimiter::TrackedKeys() const { return impl_->TrackedKeys(); }

}  // namespace pstorage::api
