#include "bench/tool/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace pstorage::bench {
namespace {

const double kPercentiles[] = {0, 50, 90, 99, 99.9, 100};

// The exact nearest-rank percentile of sorted samples: the smallest value
// with at least p % of the samples <= it.
uint64_t NearestRank(const std::vector<uint64_t>& sorted, double p) {
  const double exact = p / 100.0 * sorted.size();
  uint64_t rank = static_cast<uint64_t>(std::ceil(exact - 1e-9 * std::max(1.0, exact)));
  rank = std::clamp<uint64_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// splitmix64, so the samples are the same on every run.
uint64_t Next(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void ExpectPercentilesMatch(const std::vector<uint64_t>& samples) {
  LatencyHistogram h;
  for (uint64_t v : samples) h.Record(v);
  std::vector<uint64_t> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(h.count(), sorted.size());
  EXPECT_EQ(h.min(), sorted.front());
  EXPECT_EQ(h.max(), sorted.back());
  for (double p : kPercentiles) {
    const uint64_t exact = NearestRank(sorted, p);
    const uint64_t got = h.Percentile(p);
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(static_cast<double>(got - exact), exact / 128.0) << "p" << p;
  }
  EXPECT_EQ(h.Percentile(100), sorted.back());
}

TEST(LatencyHistogramTest, EmptyReturnsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0);
  for (double p : kPercentiles) EXPECT_EQ(h.Percentile(p), 0u);
  EXPECT_TRUE(h.Buckets().empty());
}

TEST(LatencyHistogramTest, SingleValue) {
  ExpectPercentilesMatch({123456789});
  LatencyHistogram h;
  h.Record(70000);
  // Clipped to max: the bucket's highest value would overshoot.
  for (double p : kPercentiles) EXPECT_EQ(h.Percentile(p), 70000u);
  EXPECT_EQ(h.mean(), 70000);
}

TEST(LatencyHistogramTest, Constant) {
  ExpectPercentilesMatch(std::vector<uint64_t>(1000, 5555));
  ExpectPercentilesMatch(std::vector<uint64_t>(1000, 0));
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 0; v < 256; v++) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 127u);
  EXPECT_EQ(h.Percentile(0), 0u);
  EXPECT_EQ(h.Percentile(100), 255u);
}

TEST(LatencyHistogramTest, Uniform) {
  uint64_t state = 1;
  std::vector<uint64_t> samples;
  for (int i = 0; i < 100000; i++) samples.push_back(1000 + Next(state) % 1000000);
  ExpectPercentilesMatch(samples);
}

TEST(LatencyHistogramTest, ExponentialIsh) {
  uint64_t state = 2;
  std::vector<uint64_t> samples;
  for (int i = 0; i < 100000; i++) {
    const double u = (Next(state) >> 11) * 0x1.0p-53;
    samples.push_back(static_cast<uint64_t>(-std::log1p(-u) * 200000.0));
  }
  ExpectPercentilesMatch(samples);
}

// 1 ns to about 100 s, log-uniform: every power of two gets samples.
TEST(LatencyHistogramTest, NanosecondsToSeconds) {
  uint64_t state = 3;
  std::vector<uint64_t> samples;
  for (int i = 0; i < 100000; i++) {
    const int shift = static_cast<int>(Next(state) % 37);
    samples.push_back((uint64_t{1} << shift) + Next(state) % (uint64_t{1} << shift));
  }
  samples.push_back(UINT64_MAX);  // the top bucket must not overflow
  ExpectPercentilesMatch(samples);
}

TEST(LatencyHistogramTest, OneThousandSamplesAtEveryPercentile) {
  std::vector<uint64_t> samples;
  for (uint64_t v = 1; v <= 1000; v++) samples.push_back(v * 1000);
  ExpectPercentilesMatch(samples);
  LatencyHistogram h;
  for (uint64_t v : samples) h.Record(v);
  EXPECT_GE(h.Percentile(99.9), 999000u);  // rank 999, not 1000
  EXPECT_LT(h.Percentile(99.9), 1000000u);
}

TEST(LatencyHistogramTest, MeanIsExact) {
  LatencyHistogram h;
  h.Record(1);
  h.Record(2);
  h.Record(1000000006);
  EXPECT_DOUBLE_EQ(h.mean(), 1000000009 / 3.0);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingAll) {
  uint64_t state = 4;
  LatencyHistogram a, b, all;
  for (int i = 0; i < 5000; i++) {
    const uint64_t v = Next(state) % 10000000;
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  LatencyHistogram empty;
  a.Merge(b);
  a.Merge(empty);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  EXPECT_EQ(a.Buckets(), all.Buckets());
  for (double p : kPercentiles) EXPECT_EQ(a.Percentile(p), all.Percentile(p));

  empty.Merge(all);  // into an empty one: min comes from the other
  EXPECT_EQ(empty.min(), all.min());
  EXPECT_EQ(empty.Buckets(), all.Buckets());
}

TEST(LatencyHistogramTest, ResetEmpties) {
  LatencyHistogram h;
  h.Record(500);
  h.Record(7);
  h.Reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_TRUE(h.Buckets().empty());
  h.Record(9);
  EXPECT_EQ(h.min(), 9u);
  EXPECT_EQ(h.max(), 9u);
}

TEST(LatencyHistogramTest, BucketsAreAscendingAndCoverTheCount) {
  uint64_t state = 5;
  LatencyHistogram h;
  for (int i = 0; i < 10000; i++) h.Record(Next(state) % 100000000);
  const auto buckets = h.Buckets();
  uint64_t total = 0;
  for (size_t i = 0; i < buckets.size(); i++) {
    EXPECT_GT(buckets[i].second, 0u);
    if (i > 0) {
      EXPECT_LT(buckets[i - 1].first, buckets[i].first);
    }
    total += buckets[i].second;
  }
  EXPECT_EQ(total, h.count());
}

TEST(LatencyHistogramTest, FromBucketsRoundTrip) {
  uint64_t state = 6;
  LatencyHistogram h;
  for (int i = 0; i < 20000; i++) h.Record(100 + Next(state) % 50000000);
  const LatencyHistogram back = LatencyHistogram::FromBuckets(h.Buckets(), h.min(), h.max());
  EXPECT_EQ(back.count(), h.count());
  EXPECT_EQ(back.min(), h.min());
  EXPECT_EQ(back.max(), h.max());
  EXPECT_EQ(back.Buckets(), h.Buckets());
  EXPECT_NEAR(back.mean(), h.mean(), h.mean() / 128);
  for (double p : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    EXPECT_EQ(back.Percentile(p), h.Percentile(p)) << "p" << p;
  }
}

TEST(LatencyHistogramTest, FromBucketsWithoutMinMaxUsesBucketBounds) {
  LatencyHistogram h;
  h.Record(1000);
  h.Record(2000);
  const LatencyHistogram back = LatencyHistogram::FromBuckets(h.Buckets(), 0, 0);
  EXPECT_EQ(back.count(), 2u);
  EXPECT_LE(back.min(), 1000u);
  EXPECT_GE(back.max(), 2000u);
  EXPECT_LE(back.max(), 2000u + 2000u / 128);
  EXPECT_TRUE(LatencyHistogram::FromBuckets({}, 0, 0).Buckets().empty());
}

}  // namespace
}  // namespace pstorage::bench
