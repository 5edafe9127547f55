// Bucket layout: values below 256 have one bucket each (exact). Above, each
// power of two [2^m, 2^(m+1)), m >= 8, is split into 128 equal sub-buckets of
// width 2^(m-7), so a bucket's width is at most 1/128 of its lowest value.
// 256 + 56 * 128 = 7424 buckets cover all of uint64_t (58 KiB per histogram).
#include "bench/tool/histogram.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace pstorage::bench {

namespace {

constexpr size_t kExactValues = 256;
constexpr size_t kSubBuckets = 128;
constexpr size_t kBucketCount = kExactValues + (64 - 8) * kSubBuckets;

uint64_t LowestOf(size_t index) {
  if (index < kExactValues) return index;
  const size_t k = index - kExactValues;
  const unsigned shift = static_cast<unsigned>(k / kSubBuckets) + 1;
  return static_cast<uint64_t>(kSubBuckets + k % kSubBuckets) << shift;
}

// The 1-based rank of the nearest-rank p-th percentile of `count` samples.
// The small slack keeps p = 99.9 of 1000 samples at rank 999 despite
// 99.9 / 100 * 1000 rounding up to 999.0000000000001.
uint64_t NearestRank(double p, uint64_t count) {
  const double exact = p / 100.0 * static_cast<double>(count);
  const double rank = std::ceil(exact - 1e-9 * std::max(1.0, exact));
  return std::clamp<uint64_t>(rank < 1 ? 1 : static_cast<uint64_t>(rank), 1, count);
}

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

size_t LatencyHistogram::IndexOf(uint64_t value) {
  if (value < kExactValues) return value;
  const unsigned msb = std::bit_width(value) - 1;  // >= 8
  const unsigned shift = msb - 7;
  const size_t sub = (value >> shift) - kSubBuckets;  // 0..127
  return kExactValues + (msb - 8) * kSubBuckets + sub;
}

uint64_t LatencyHistogram::HighestOf(size_t index) {
  if (index < kExactValues) return index;
  const unsigned shift = static_cast<unsigned>((index - kExactValues) / kSubBuckets) + 1;
  // The top bucket ends at exactly UINT64_MAX; no overflow.
  return LowestOf(index) + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::Record(uint64_t value) {
  counts_[IndexOf(value)]++;
  if (count_ == 0 || value < min_) min_ = value;
  if (value > max_) max_ = value;
  count_++;
  sum_ += value;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBucketCount; i++) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0 : static_cast<double>(sum_ / count_);
}

uint64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  const uint64_t rank = NearestRank(std::isnan(p) ? 0 : std::clamp(p, 0.0, 100.0), count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; i++) {
    seen += counts_[i];
    // Clipping keeps the answer a value that was seen: every sample in the
    // bucket lies in [min, max], so the clipped value is still >= the exact
    // nearest-rank sample.
    if (seen >= rank) return std::clamp(HighestOf(i), min(), max_);
  }
  assert(false && "counts_ sum to count_");
  return max_;
}

std::vector<std::pair<uint64_t, uint64_t>> LatencyHistogram::Buckets() const {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (size_t i = 0; i < kBucketCount; i++) {
    if (counts_[i] != 0) out.emplace_back(HighestOf(i), counts_[i]);
  }
  return out;
}

LatencyHistogram LatencyHistogram::FromBuckets(
    const std::vector<std::pair<uint64_t, uint64_t>>& buckets, uint64_t min, uint64_t max) {
  LatencyHistogram h;
  size_t first = kBucketCount;
  size_t last = 0;
  for (const auto& [highest, count] : buckets) {
    if (count == 0) continue;
    const size_t i = IndexOf(highest);
    h.counts_[i] += count;
    h.count_ += count;
    // The sum is unknown; the bucket midpoint is within 1/256 of each sample.
    h.sum_ += (static_cast<long double>(LowestOf(i)) + HighestOf(i)) / 2 * count;
    first = std::min(first, i);
    last = std::max(last, i);
  }
  if (h.count_ == 0) return h;
  // A min or max that does not fall in the first or last bucket was not
  // given (or is inconsistent); fall back to the bucket bounds.
  h.min_ = IndexOf(min) == first ? min : LowestOf(first);
  h.max_ = IndexOf(max) == last ? max : HighestOf(last);
  return h;
}

}  // namespace pstorage::bench
