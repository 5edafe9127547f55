#include "bench/tool/datagen.h"

#include <gtest/gtest.h>
#include <lz4.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace pstorage::bench {
namespace {

constexpr size_t kBlockBytes = 4096;

struct Measured {
  double zero_percent = 0;
  double dedupe_ratio = 0;
  double compress_ratio = 0;
  uint64_t zero_blocks = 0;
};

std::pair<uint64_t, uint64_t> Hash128(const uint8_t* block) {
  const XXH128_hash_t h = XXH3_128bits(block, kBlockBytes);
  return {h.high64, h.low64};
}

bool AllZero(const uint8_t* block) {
  return std::all_of(block, block + kBlockBytes, [](uint8_t b) { return b == 0; });
}

// The three ratios exactly as datagen.h defines them, over blocks
// [first, first + count).
Measured Measure(const DataGenerator& gen, uint64_t first, uint64_t count) {
  std::vector<uint8_t> data(count * kBlockBytes);
  gen.Fill(first, data);
  std::set<std::pair<uint64_t, uint64_t>> distinct;
  std::vector<char> compressed(LZ4_compressBound(kBlockBytes));
  uint64_t zeros = 0;
  double lz4_bytes = 0;
  for (uint64_t i = 0; i < count; i++) {
    const uint8_t* block = data.data() + i * kBlockBytes;
    if (AllZero(block)) {
      zeros++;
      continue;
    }
    if (!distinct.insert(Hash128(block)).second) continue;
    lz4_bytes += LZ4_compress_default(reinterpret_cast<const char*>(block), compressed.data(),
                                      kBlockBytes, static_cast<int>(compressed.size()));
  }
  Measured m;
  m.zero_blocks = zeros;
  m.zero_percent = 100.0 * zeros / count;
  m.dedupe_ratio = distinct.empty() ? 0 : double(count - zeros) / distinct.size();
  m.compress_ratio = lz4_bytes == 0 ? 0 : distinct.size() * kBlockBytes / lz4_bytes;
  return m;
}

double RelativeError(double got, double want) { return std::fabs(got - want) / want; }

void ExpectMatches(const DataSpec& spec, const Measured& m) {
  if (spec.zero_percent == 0) {
    EXPECT_EQ(m.zero_blocks, 0u);
  } else {
    EXPECT_LE(std::fabs(m.zero_percent - spec.zero_percent),
              std::max(0.05 * spec.zero_percent, 0.5));
  }
  EXPECT_LE(RelativeError(m.dedupe_ratio, spec.dedupe_ratio), 0.05);
  EXPECT_LE(RelativeError(m.compress_ratio, spec.compress_ratio), 0.05);
}

// {dedupe ratio, compress ratio, zero %, seed}.
const DataSpec kGrid[] = {
    {1, 1, 0, 7},  {2, 2, 10, 7}, {3, 1.5, 0, 7},   {1, 4, 50, 7},    {5, 3, 20, 7},
    {10, 8, 0, 7}, {1, 1, 90, 7}, {1.3, 6.5, 5, 7}, {7.5, 1.1, 1, 7},
};

TEST(DataGeneratorTest, RatiosOverLongRunsHitTheSpec) {
  for (const DataSpec& spec : kGrid) {
    const DataGenerator gen(spec);
    for (uint64_t first : {uint64_t{0}, uint64_t{123456789012}}) {
      const Measured m = Measure(gen, first, 20000);
      std::printf("spec d=%.2f c=%.2f z=%.1f first=%llu: d=%.4f c=%.4f z=%.3f\n", spec.dedupe_ratio,
                  spec.compress_ratio, spec.zero_percent, static_cast<unsigned long long>(first),
                  m.dedupe_ratio, m.compress_ratio, m.zero_percent);
      SCOPED_TRACE(testing::Message()
                   << "dedupe " << spec.dedupe_ratio << " compress " << spec.compress_ratio
                   << " zero " << spec.zero_percent << " first " << first);
      ExpectMatches(spec, m);
    }
  }
}

// Workers take block numbers from a shared counter, so any window counts.
TEST(DataGeneratorTest, RatiosHoldOverShortWindowsAnywhere) {
  for (const DataSpec& spec : kGrid) {
    if (spec.zero_percent > 50) continue;  // too few non-zero blocks in 2000 for 5 %
    const DataGenerator gen(spec);
    for (uint64_t first : {uint64_t{1}, uint64_t{4999}, uint64_t{987654321}}) {
      SCOPED_TRACE(testing::Message() << "dedupe " << spec.dedupe_ratio << " compress "
                                      << spec.compress_ratio << " first " << first);
      ExpectMatches(spec, Measure(gen, first, 2000));
    }
  }
}

TEST(DataGeneratorTest, SameSeedSameBytesOtherSeedOtherBytes) {
  const DataSpec spec{2, 2, 10, 42};
  DataSpec other = spec;
  other.seed = 43;
  std::vector<uint8_t> a(256 * kBlockBytes), b(a.size()), c(a.size());
  DataGenerator(spec).Fill(1000, a);
  DataGenerator(spec).Fill(1000, b);
  DataGenerator(other).Fill(1000, c);
  EXPECT_EQ(a, b);
  for (size_t i = 0; i < 256; i++) {
    const uint8_t* x = a.data() + i * kBlockBytes;
    if (AllZero(x)) continue;
    EXPECT_NE(std::memcmp(x, c.data() + i * kBlockBytes, kBlockBytes), 0) << "block " << i;
  }
}

TEST(DataGeneratorTest, OneCallEqualsBlockByBlockFromAnyOffset) {
  const DataGenerator gen({3, 2.5, 15, 9});
  const uint64_t first = 77777;
  std::vector<uint8_t> whole(300 * kBlockBytes);
  gen.Fill(first, whole);
  std::vector<uint8_t> one(kBlockBytes);
  for (size_t i = 0; i < 300; i++) {
    gen.Fill(first + i, one);
    EXPECT_EQ(std::memcmp(one.data(), whole.data() + i * kBlockBytes, kBlockBytes), 0)
        << "block " << first + i;
  }
  std::vector<uint8_t> part(17 * kBlockBytes);
  gen.Fill(first + 101, part);
  EXPECT_EQ(std::memcmp(part.data(), whole.data() + 101 * kBlockBytes, part.size()), 0);
}

// Workers share one generator and take interleaved block numbers.
TEST(DataGeneratorTest, ThreadsSharingOneGeneratorMatchOneWriter) {
  const DataGenerator gen({2, 3, 10, 5});
  const size_t count = 512;
  std::vector<uint8_t> serial(count * kBlockBytes), shared(count * kBlockBytes);
  gen.Fill(0, serial);
  auto worker = [&](size_t parity) {
    for (size_t i = parity; i < count; i += 2) {
      gen.Fill(i, std::span<uint8_t>(shared.data() + i * kBlockBytes, kBlockBytes));
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  EXPECT_EQ(serial, shared);
}

TEST(DataGeneratorTest, NoNonZeroBlockIsARepeatedEightBytePattern) {
  for (const DataSpec& spec : kGrid) {
    const DataGenerator gen(spec);
    std::vector<uint8_t> data(3000 * kBlockBytes);
    gen.Fill(5, data);
    for (size_t i = 0; i < 3000; i++) {
      const uint8_t* block = data.data() + i * kBlockBytes;
      if (AllZero(block)) continue;
      bool repeated = true;
      for (size_t off = 8; off < kBlockBytes && repeated; off += 8) {
        repeated = std::memcmp(block, block + off, 8) == 0;
      }
      EXPECT_FALSE(repeated) << "block " << 5 + i;
    }
  }
}

TEST(DataGeneratorTest, ContentOfMatchesTheBytes) {
  const DataGenerator gen({4, 3, 25, 11});
  const uint64_t first = 1u << 20;
  const size_t count = 4000;
  std::vector<uint8_t> data(count * kBlockBytes);
  gen.Fill(first, data);
  std::vector<std::pair<int64_t, std::pair<uint64_t, uint64_t>>> seen;
  int64_t highest = -1;
  for (size_t i = 0; i < count; i++) {
    const uint8_t* block = data.data() + i * kBlockBytes;
    const int64_t content = gen.ContentOf(first + i);
    EXPECT_EQ(content < 0, AllZero(block)) << "block " << first + i;
    if (content < 0) continue;
    // Contents start in order; a duplicate references an earlier one.
    if (highest >= 0) {
      EXPECT_LE(content, highest + 1) << "block " << first + i;
    }
    highest = std::max(highest, content);
    seen.push_back({content, Hash128(block)});
  }
  std::sort(seen.begin(), seen.end());
  for (size_t i = 1; i < seen.size(); i++) {
    if (seen[i].first == seen[i - 1].first) {
      EXPECT_EQ(seen[i].second, seen[i - 1].second) << "content " << seen[i].first;
    } else {
      EXPECT_NE(seen[i].second, seen[i - 1].second) << "content " << seen[i].first;
    }
  }
}

TEST(DataGeneratorTest, ExtremesZeroShares) {
  std::vector<uint8_t> data(100 * kBlockBytes);
  DataGenerator({1, 1, 100, 1}).Fill(0, data);
  EXPECT_TRUE(std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0; }));
  DataGenerator({1, 1, 0, 1}).Fill(0, data);
  for (size_t i = 0; i < 100; i++) EXPECT_FALSE(AllZero(data.data() + i * kBlockBytes));
}

}  // namespace
}  // namespace pstorage::bench
