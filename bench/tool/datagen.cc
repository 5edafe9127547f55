// See datagen.h for the scheme. All arithmetic on block numbers is exact
// (block number times a 32.32 fixed-point rate, in 128-bit integers), so
// Fill and ContentOf agree for every block number and every thread.
#include "bench/tool/datagen.h"

#include <lz4.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace pstorage::bench {

namespace {

constexpr size_t kBlockBytes = 4096;
constexpr size_t kRunBytes = 64;
constexpr size_t kRuns = kBlockBytes / kRunBytes;
constexpr size_t kHeaderBytes = 16;  // names the content: distinct contents differ
// Duplicates reference one of the last kRecentContents contents, so a window
// of blocks sees at most kRecentContents distinct contents from before it.
constexpr uint64_t kRecentContents = 2;
constexpr int kCalibrationSamples = 8;

__extension__ typedef unsigned __int128 u128;  // GCC and clang; exact n * rate

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer: a bijection
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// splitmix64: one add and three multiplies per 8 bytes; good enough to be
// incompressible to LZ4.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// A rate in [0, 1] as a 32.32 fixed-point fraction.
uint64_t Rate(double fraction) {
  if (!(fraction > 0)) return 0;  // also NaN
  fraction = std::min(fraction, 1.0);
  return static_cast<uint64_t>(fraction * 4294967296.0 + 0.5);
}

// floor(n * rate), exact.
uint64_t FloorTimes(uint64_t n, uint64_t rate) {
  return static_cast<uint64_t>((static_cast<u128>(n) * rate) >> 32);
}

// ceil(n * rate), exact.
uint64_t CeilTimes(uint64_t n, uint64_t rate) {
  return static_cast<uint64_t>((static_cast<u128>(n) * rate + 0xffffffffULL) >> 32);
}

}  // namespace

DataGenerator::DataGenerator(const DataSpec& spec) : spec_(spec) {
  zero_rate_ = Rate(spec_.zero_percent / 100.0);
  new_content_rate_ = Rate(1.0 / std::max(1.0, spec_.dedupe_ratio));
  if (new_content_rate_ == 0) new_content_rate_ = 1;  // dedupe ratio beyond 2^32
  random_bytes_ = Calibrate(std::max(1.0, spec_.compress_ratio));
}

int64_t DataGenerator::ContentOf(uint64_t block) const {
  // Block n is zero when floor((n+1)z) steps: over any window the zero count
  // is within one of the exact share.
  const uint64_t zeros_before = FloorTimes(block, zero_rate_);
  if (FloorTimes(block + 1, zero_rate_) != zeros_before) return -1;
  const uint64_t k = block - zeros_before;  // index among non-zero blocks
  // Contents started before non-zero block k: ceil(k / d). Block k starts
  // the next one when that steps (always for k = 0).
  const uint64_t started = CeilTimes(k, new_content_rate_);
  if (CeilTimes(k + 1, new_content_rate_) != started) return static_cast<int64_t>(started);
  const uint64_t back = Mix(spec_.seed ^ Mix(k)) % std::min(kRecentContents, started);
  return static_cast<int64_t>(started - 1 - back);
}

void DataGenerator::Fill(uint64_t first_block, std::span<uint8_t> out) const {
  assert(out.size() % kBlockBytes == 0);
  for (size_t off = 0; off + kBlockBytes <= out.size(); off += kBlockBytes) {
    const int64_t content = ContentOf(first_block + off / kBlockBytes);
    if (content < 0) {
      std::memset(out.data() + off, 0, kBlockBytes);
    } else {
      FillContent(static_cast<uint64_t>(content), random_bytes_, out.data() + off);
    }
  }
}

// Run i holds r_i fresh random bytes then repeats them with period r_i,
// which LZ4 encodes as one match; the r_i spread random_bytes evenly over the
// runs. Run 0 keeps at least the header random so the header is not
// repeated inside the run.
void DataGenerator::FillContent(uint64_t content, uint32_t random_bytes, uint8_t* block) const {
  Rng rng(Mix(spec_.seed) ^ Mix(content ^ 0x5851f42d4c957f2dULL));
  for (size_t i = 0; i < kRuns; i++) {
    uint8_t* run = block + i * kRunBytes;
    size_t r = (uint64_t{i + 1} * random_bytes) / kRuns - (uint64_t{i} * random_bytes) / kRuns;
    if (i == 0) r = std::max(r, kHeaderBytes);
    r = std::clamp<size_t>(r, 1, kRunBytes);
    // Whole words: at most kRunBytes bytes since r <= kRunBytes; bytes past
    // r are overwritten by the repeat below.
    for (size_t w = 0; w * 8 < r; w++) {
      const uint64_t x = rng.Next();
      std::memcpy(run + w * 8, &x, 8);
    }
    if (i == 0) {
      // (content + Mix(seed), Mix(seed)) is distinct for distinct
      // (seed, content) since Mix is a bijection.
      const uint64_t header[2] = {content + Mix(spec_.seed ^ 1), Mix(spec_.seed)};
      std::memcpy(run, header, kHeaderBytes);
    }
    for (size_t j = r; j < kRunBytes; j++) run[j] = run[j - r];
  }
}

// LZ4's output is close to linear in the random bytes (each run costs its
// literals plus a 4-byte sequence overhead), so a binary search on the
// summed size of a few sample contents hits the target within a byte or so.
uint32_t DataGenerator::Calibrate(double compress_ratio) const {
  const double target = kCalibrationSamples * kBlockBytes / compress_ratio;
  uint32_t lo = kRuns;  // at least one random byte per run
  uint32_t hi = kBlockBytes;
  if (SampleSize(hi) <= target) return hi;
  // Invariant: SampleSize(hi) > target; find the smallest such hi.
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (SampleSize(mid) > target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  if (hi > kRuns && target - SampleSize(hi - 1) < SampleSize(hi) - target) return hi - 1;
  return hi;
}

double DataGenerator::SampleSize(uint32_t random_bytes) const {
  alignas(8) uint8_t block[kBlockBytes];
  char compressed[LZ4_COMPRESSBOUND(kBlockBytes)];
  double total = 0;
  for (int s = 0; s < kCalibrationSamples; s++) {
    FillContent(uint64_t{1} << 40 | static_cast<uint64_t>(s), random_bytes, block);
    total += LZ4_compress_default(reinterpret_cast<const char*>(block), compressed, kBlockBytes,
                                  sizeof(compressed));
  }
  return total;
}

}  // namespace pstorage::bench
