// Shared helpers for flash_sim tests: deterministic page contents and an
// oracle of what every logical page should hold.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "flash_sim/flash.h"
#include "tests/status_matchers.h"

namespace pstorage::flash::testing {

// Page contents derived from (lpn, generation); generation 0 means zeros.
// The first 16 bytes carry lpn and generation so a reader can name them.
inline void FillPage(uint8_t* page, uint64_t lpn, uint64_t gen) {
  if (gen == 0) {
    std::memset(page, 0, kPageBytes);
    return;
  }
  std::memcpy(page, &lpn, 8);
  std::memcpy(page + 8, &gen, 8);
  uint64_t x = lpn * 0x9E3779B97F4A7C15ull ^ gen * 0xC2B2AE3D27D4EB4Full;
  for (uint32_t i = 16; i < kPageBytes; i += 8) {
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    uint64_t v = x * 0x2545F4914F6CDD1Dull;
    std::memcpy(page + i, &v, 8);
  }
}

inline uint64_t GenerationOf(const uint8_t* page) {
  uint64_t gen;
  std::memcpy(&gen, page + 8, 8);
  return gen;
}

// The oracle: the generation each logical page should hold (0 = zeros).
class Oracle {
 public:
  explicit Oracle(uint64_t pages) : gen_(pages, 0) {}
  uint64_t& operator[](uint64_t lpn) { return gen_[lpn]; }
  uint64_t size() const { return gen_.size(); }

  // Reads every page and compares with the oracle. Reads that hit a
  // checksum error are retried (faults may be injected on reads); wrong
  // bytes are never acceptable.
  ::testing::AssertionResult Verify(FlashDevice& dev, int read_retries = 0) const {
    std::vector<uint8_t> got(kPageBytes), want(kPageBytes);
    for (uint64_t lpn = 0; lpn < gen_.size(); lpn++) {
      const uint64_t lpns[1] = {lpn};
      uint8_t* out[1] = {got.data()};
      Status s;
      for (int attempt = 0; attempt <= read_retries; attempt++) {
        s = dev.Read(lpns, out);
        if (s.code() != Code::kCorruption) break;
      }
      if (!s.ok()) return ::testing::AssertionFailure() << "lpn " << lpn << ": " << s.ToString();
      FillPage(want.data(), lpn, gen_[lpn]);
      if (got != want) {
        return ::testing::AssertionFailure() << "lpn " << lpn << " differs from generation " << gen_[lpn];
      }
    }
    return ::testing::AssertionSuccess();
  }

 private:
  std::vector<uint64_t> gen_;
};

// Writes `lpns` with generation `gen` in one batch and records them.
inline Status WriteGen(FlashDevice& dev, Oracle* oracle, std::span<const uint64_t> lpns, uint64_t gen) {
  std::vector<uint8_t> bufs(lpns.size() * kPageBytes);
  std::vector<const uint8_t*> ptrs(lpns.size());
  for (size_t i = 0; i < lpns.size(); i++) {
    FillPage(&bufs[i * kPageBytes], lpns[i], gen);
    ptrs[i] = &bufs[i * kPageBytes];
  }
  Status s = dev.Write(lpns, ptrs);
  if (s.ok() && oracle != nullptr) {
    for (uint64_t lpn : lpns) (*oracle)[lpn] = gen;
  }
  return s;
}

// Small device options for tests: no background thread unless asked.
inline FlashOptions SmallOptions(uint64_t capacity_mib = 4, uint32_t ppb = 32) {
  FlashOptions o;
  o.logical_capacity_bytes = capacity_mib << 20;
  o.pages_per_block = ppb;
  o.background_gc_idle_ms = 0;
  return o;
}

inline MediumGeometry GeometryOf(const FlashOptions& o) {
  Result<MediumGeometry> g = GeometryFor(o);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : MediumGeometry{};
}

// A fresh directory for file-medium tests, on a file system that accepts
// O_DIRECT when possible (not tmpfs).
inline std::string ScratchDir(const std::string& name) {
  std::filesystem::path p = std::filesystem::temp_directory_path();
  if (std::filesystem::exists("/var/tmp")) p = "/var/tmp";
  p /= "pstorage-test-" + std::to_string(::getpid()) + "-" + name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

inline uint64_t SeedFromEnv(uint64_t fallback) {
  const char* s = std::getenv("PSTORAGE_TEST_SEED");
  uint64_t seed = s ? std::strtoull(s, nullptr, 10) : fallback;
  std::printf("seed %llu (set PSTORAGE_TEST_SEED to repeat)\n", static_cast<unsigned long long>(seed));
  return seed;
}

}  // namespace pstorage::flash::testing
