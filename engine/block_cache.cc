#include "engine/block_cache.h"

#include <algorithm>
#include <cstring>

namespace pstorage::engine {

BlockCache::BlockCache(size_t capacity_bytes, uint32_t stripes)
    : sets_(uint32_t(std::min<uint64_t>(capacity_bytes / (uint64_t{kWays} * 4096), UINT32_MAX))),
      stripe_count_(stripes == 0 ? 1 : stripes),
      set_meta_(std::make_unique<Set[]>(sets_)),
      data_(new uint8_t[uint64_t{sets_} * kWays * 4096]),
      stripes_(std::make_unique<Stripe[]>(stripe_count_)) {}

BlockCache::~BlockCache() = default;

uint32_t BlockCache::SetOf(uint32_t id) const {
  // Fibonacci hashing, then a multiply-shift range reduction, which uses the
  // hash's high bits (a modulo of its low bits left most sets unused once
  // the cache had thousands of them).
  uint64_t h = (uint64_t{id} * 0x9E3779B97F4A7C15ull) >> 32;
  return uint32_t((h * sets_) >> 32);
}

uint32_t BlockCache::FindLocked(Set& s, uint32_t id) {
  for (uint32_t way = 0; way < kWays; way++) {
    if (s.ids[way] == id) {
      s.referenced |= uint8_t(1u << way);
      hits_.fetch_add(1, std::memory_order_relaxed);
      return way;
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  return kWays;
}

bool BlockCache::Lookup(uint32_t id, uint8_t* out) {
  if (sets_ == 0) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const uint32_t set = SetOf(id);
  std::lock_guard lock(StripeOf(set));
  const uint32_t way = FindLocked(set_meta_[set], id);
  if (way == kWays) return false;
  std::memcpy(out, Data(set, way), 4096);
  return true;
}

std::optional<bool> BlockCache::Matches(uint32_t id, const uint8_t* block) {
  if (sets_ == 0) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  const uint32_t set = SetOf(id);
  std::lock_guard lock(StripeOf(set));
  const uint32_t way = FindLocked(set_meta_[set], id);
  if (way == kWays) return std::nullopt;
  return std::memcmp(Data(set, way), block, 4096) == 0;
}

void BlockCache::Insert(uint32_t id, const uint8_t* block) {
  if (sets_ == 0) return;
  const uint32_t set = SetOf(id);
  std::lock_guard lock(StripeOf(set));
  Set& s = set_meta_[set];
  uint32_t victim = kWays;
  for (uint32_t way = 0; way < kWays && victim == kWays; way++) {
    if (s.ids[way] == id || s.ids[way] == 0) victim = way;
  }
  // CLOCK: skip (and clear) referenced ways; at most one full turn.
  while (victim == kWays) {
    const uint32_t way = s.hand;
    s.hand = uint8_t((s.hand + 1) % kWays);
    if ((s.referenced & (1u << way)) != 0) {
      s.referenced &= uint8_t(~(1u << way));
    } else {
      victim = way;
    }
  }
  s.ids[victim] = id;
  s.referenced &= uint8_t(~(1u << victim));  // a new block earns its bit on a hit
  std::memcpy(Data(set, victim), block, 4096);
}

void BlockCache::Erase(uint32_t id) {
  if (sets_ == 0) return;
  const uint32_t set = SetOf(id);
  std::lock_guard lock(StripeOf(set));
  Set& s = set_meta_[set];
  for (uint32_t way = 0; way < kWays; way++) {
    if (s.ids[way] == id) {
      s.ids[way] = 0;
      s.referenced &= uint8_t(~(1u << way));
    }
  }
}

}  // namespace pstorage::engine
