// Shared helpers for the medium tests (medium_test.cc, faulty_medium_test.cc):
// a small geometry, printed seeds, scratch directories and one-slot I/O.
#pragma once

#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "flash_sim/flash.h"
#include "flash_sim/medium_internal.h"
#include "gtest/gtest.h"

namespace pstorage::flash::testing {

using internal::AlignedBuffer;
using internal::NewAlignedBuffer;
using Bytes = std::vector<uint8_t>;

inline constexpr MediumGeometry kGeometry{.pages_per_block = 8, .block_count = 16};

// Seeds come from PSTORAGE_TEST_SEED when set, so a failure can be replayed.
inline uint64_t TestSeed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("PSTORAGE_TEST_SEED");
    const uint64_t s = env != nullptr ? std::strtoull(env, nullptr, 0) : 0x5eed;
    std::cout << "PSTORAGE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

// Backing files live on disk under /var/tmp (not /tmp, which may be tmpfs
// elsewhere) unless PSTORAGE_TEST_DIR says otherwise; buffered ones on tmpfs.
inline std::filesystem::path NewTestDir(const char* root) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  std::filesystem::path dir =
      std::filesystem::path(root) / ("pstorage_medium_test." + std::to_string(getpid())) / name;
  std::filesystem::create_directories(dir);
  return dir;
}

inline const char* DiskRoot() {
  const char* env = std::getenv("PSTORAGE_TEST_DIR");
  return env != nullptr ? env : "/var/tmp";
}

inline Bytes RandomBytes(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

inline AlignedBuffer SlotBuffer(const Bytes& content) {
  AlignedBuffer buf = NewAlignedBuffer(kSlotBytes);
  std::memcpy(buf.get(), content.data(), kSlotBytes);
  return buf;
}

// Reads one slot; returns its bytes (empty on error).
inline Bytes ReadSlot(Medium* m, uint64_t slot) {
  AlignedBuffer buf = NewAlignedBuffer(kSlotBytes);
  SlotIo io{.slot = slot, .buf = buf.get()};
  if (!m->Read(std::span(&io, 1)).ok()) return {};
  return Bytes(buf.get(), buf.get() + kSlotBytes);
}

inline Status ProgramSlot(Medium* m, uint64_t slot, const Bytes& content) {
  AlignedBuffer buf = SlotBuffer(content);
  SlotIo io{.slot = slot, .buf = buf.get()};
  return m->Program(std::span(&io, 1));
}

inline std::array<uint8_t, kPageBytes> ReadLabel(Medium* m) {
  std::array<uint8_t, kPageBytes> label{};
  EXPECT_TRUE(m->ReadLabel(label).ok());
  return label;
}

}  // namespace pstorage::flash::testing
