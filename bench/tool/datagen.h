// Deterministic block contents for benchmarks, with the data reduction of
// the data a user describes (as vdbench's dedupratio/compratio and fio's
// dedupe_percentage/buffer_compress_percentage):
//   zero_percent    share of blocks that are all zeros;
//   dedupe_ratio    non-zero blocks / distinct non-zero blocks;
//   compress_ratio  4096 / LZ4 size of a distinct block.
// Block n of the stream is a pure function of (seed, n): any contiguous run
// of N >= 2000 block numbers hits all three within 5 % (tested), so workers
// sharing one atomic counter produce the same data set as one writer.
//
// How: block n is zero when the Beatty sequence floor((n+1)z) steps (an even
// spread, exact share). The k-th non-zero block starts distinct content
// number ceil(k/d) when that steps, else repeats one of the 2 most recent
// contents, picked at random: duplicates stay near their originals, so a
// window sees at most two contents from before it. A distinct block is 64
// runs of 64 bytes, each random for its first r_i bytes and then repeating
// them with period r_i; the total of the r_i is calibrated once against LZ4
// itself (binary search, well under a millisecond) to hit the compression
// ratio. The first 16 bytes name (seed, content), so distinct contents differ
// and no block is a repeated 8-byte pattern.
// Thread-safety: Fill and ContentOf are const and touch no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace pstorage::bench {

struct DataSpec {
  double dedupe_ratio = 1;    // >= 1
  double compress_ratio = 1;  // >= 1 (1 = incompressible)
  double zero_percent = 0;    // 0..100
  uint64_t seed = 1;
};

class DataGenerator {
 public:
  explicit DataGenerator(const DataSpec& spec);  // calibrates (a few ms)
  // Fills `out` (a multiple of 4096 bytes) with blocks first_block, first_block+1, ...
  void Fill(uint64_t first_block, std::span<uint8_t> out) const;
  // Which distinct content block n carries; -1 for a zero block (for tests).
  int64_t ContentOf(uint64_t block) const;
  const DataSpec& spec() const { return spec_; }

 private:
  void FillContent(uint64_t content, uint32_t random_bytes, uint8_t* block) const;
  uint32_t Calibrate(double compress_ratio) const;
  double SampleSize(uint32_t random_bytes) const;

  // All constant after construction.
  DataSpec spec_;
  uint64_t zero_rate_ = 0;         // zero_percent / 100, 32.32 fixed point
  uint64_t new_content_rate_ = 0;  // 1 / dedupe_ratio, 32.32 fixed point
  uint32_t random_bytes_ = 4096;   // random bytes per block, over all runs
};

}  // namespace pstorage::bench
