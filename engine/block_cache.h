// Internal to the content store: a bounded DRAM cache of decoded blocks,
// keyed by content id. It serves dedupe verification and hot reads without
// a flash read and decode.
//
// Set-associative: an id maps to one set of kWays blocks; within a set,
// CLOCK (a reference bit per way and a hand) picks the victim. Sets are
// guarded by striped mutexes. All memory is allocated at construction
// (capacity_bytes rounded down to whole sets; 0 disables the cache).
//
// Thread safety: every method may be called concurrently. The caller keeps
// an id's cached bytes right: Insert only the block the id decodes to, and
// Erase the id before it can be reused.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

namespace pstorage::engine {

class BlockCache {
 public:
  static constexpr uint32_t kWays = 8;

  BlockCache(size_t capacity_bytes, uint32_t stripes);
  ~BlockCache();

  // Copies the block of `id` into `out` (4096 bytes) when cached.
  bool Lookup(uint32_t id, uint8_t* out);
  // Compares `block` with the cached block of `id` without copying it:
  // nullopt when not cached, else whether the bytes are equal.
  std::optional<bool> Matches(uint32_t id, const uint8_t* block);
  // Caches a copy of `block`, replacing the id's old copy if any.
  void Insert(uint32_t id, const uint8_t* block);
  void Erase(uint32_t id);

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  uint64_t capacity_blocks() const { return uint64_t{sets_} * kWays; }

 private:
  struct Set {
    uint32_t ids[kWays] = {};  // 0 = empty (content id 0 is never used)
    uint8_t referenced = 0;    // CLOCK bit per way
    uint8_t hand = 0;
  };
  uint32_t SetOf(uint32_t id) const;
  // The way holding `id` (marked referenced, counted as a hit) or kWays.
  uint32_t FindLocked(Set& s, uint32_t id);
  std::mutex& StripeOf(uint32_t set) { return stripes_[set % stripe_count_].mu; }
  uint8_t* Data(uint32_t set, uint32_t way) {
    return data_.get() + (uint64_t{set} * kWays + way) * 4096;
  }

  struct alignas(64) Stripe {
    std::mutex mu;
  };
  const uint32_t sets_;
  const uint32_t stripe_count_;
  std::unique_ptr<Set[]> set_meta_;
  std::unique_ptr<uint8_t[]> data_;  // not value-initialized: untouched until used
  std::unique_ptr<Stripe[]> stripes_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace pstorage::engine
