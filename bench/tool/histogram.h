// An HDR-style latency histogram: log-linear buckets, 128 sub-buckets per
// power of two, so any recorded value is reported within 1/128 (< 0.8 %)
// of itself; fixed memory, O(1) Record, exact count/min/max/sum.
// Values are nanoseconds (any uint64_t). Not thread-safe: one per worker,
// merged at the end of each interval.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace pstorage::bench {

class LatencyHistogram {
 public:
  LatencyHistogram();
  void Record(uint64_t value);
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const;
  // The smallest recorded-bucket value v such that at least p % of the
  // samples are <= v (nearest-rank), reported as the bucket's highest
  // equivalent value clipped to max(); p in [0, 100]. 0 when empty.
  uint64_t Percentile(double p) const;
  // Non-empty buckets, ascending: (highest value of the bucket, count).
  std::vector<std::pair<uint64_t, uint64_t>> Buckets() const;
  // Rebuilds from Buckets() output (JSON round trip); min/max/sum approximate
  // from the buckets unless given.
  static LatencyHistogram FromBuckets(const std::vector<std::pair<uint64_t, uint64_t>>& buckets,
                                      uint64_t min, uint64_t max);

 private:
  static size_t IndexOf(uint64_t value);
  static uint64_t HighestOf(size_t index);
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace pstorage::bench
