#include "engine/content_table.h"

#include <algorithm>
#include <cassert>

namespace pstorage::engine {

ContentTable::ContentTable() = default;

ContentTable::~ContentTable() {
  for (auto& slot : top_) {
    Mid* mid = slot.load(std::memory_order_relaxed);
    if (mid == nullptr) continue;
    for (auto& chunk : *mid) delete[] chunk.load(std::memory_order_relaxed);
    delete mid;
  }
}

void ContentTable::EnsureChunkLocked(uint32_t id) {
  auto& top_slot = top_[id >> (kChunkBits + kMidBits)];
  Mid* mid = top_slot.load(std::memory_order_relaxed);
  if (mid == nullptr) {
    mid = new Mid{};
    mids_++;
    top_slot.store(mid, std::memory_order_release);
  }
  auto& mid_slot = (*mid)[(id >> kChunkBits) & ((1u << kMidBits) - 1)];
  if (mid_slot.load(std::memory_order_relaxed) == nullptr) {
    mid_slot.store(new ContentEntry[kChunkEntries], std::memory_order_release);
    chunks_++;
  }
}

bool ContentTable::Allocate(std::span<uint32_t> out) {
  std::lock_guard lock(mu_);
  const uint32_t limit = limit_.load(std::memory_order_relaxed);
  const size_t from_free = std::min(out.size(), free_.size());
  if (out.size() - from_free > UINT32_MAX - limit) return false;
  for (size_t i = 0; i < from_free; i++) {
    out[i] = free_.back();
    free_.pop_back();
  }
  uint32_t next = limit;
  for (size_t i = from_free; i < out.size(); i++) {
    EnsureChunkLocked(next);
    out[i] = next++;
  }
  limit_.store(next, std::memory_order_release);
  return true;
}

void ContentTable::Unallocate(std::span<const uint32_t> ids) {
  std::lock_guard lock(mu_);
  free_.insert(free_.end(), ids.begin(), ids.end());
}

void ContentTable::Release(uint32_t id) {
  std::lock_guard lock(mu_);
  pending_.push_back(id);
}

void ContentTable::MarkCheckpoint() {
  std::lock_guard lock(mu_);
  checkpointed_ = pending_.size();
}

void ContentTable::RecyclePending() {
  std::lock_guard lock(mu_);
  free_.insert(free_.end(), pending_.begin(), pending_.begin() + long(checkpointed_));
  pending_.erase(pending_.begin(), pending_.begin() + long(checkpointed_));
  checkpointed_ = 0;
}

size_t ContentTable::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

void ContentTable::Reserve(uint32_t id) {
  assert(id != kNoId && id != UINT32_MAX);
  std::lock_guard lock(mu_);
  const uint32_t limit = limit_.load(std::memory_order_relaxed);
  if (id < limit) return;
  for (uint64_t next = limit; next <= id; next = (next | (kChunkEntries - 1)) + 1) {
    EnsureChunkLocked(uint32_t(next));
  }
  limit_.store(id + 1, std::memory_order_release);
}

void ContentTable::RebuildFreeLists() {
  std::lock_guard lock(mu_);
  free_.clear();
  pending_.clear();
  checkpointed_ = 0;
  const uint32_t limit = limit_.load(std::memory_order_relaxed);
  // Highest first, so Allocate() hands out low ids first once recycled.
  for (uint32_t id = limit - 1; id >= 1; id--) {
    if (!Loc::InUse(At(id).loc.load(std::memory_order_relaxed))) pending_.push_back(id);
  }
}

uint64_t ContentTable::memory_bytes() const {
  std::lock_guard lock(mu_);
  return sizeof(*this) + chunks_ * kChunkEntries * sizeof(ContentEntry) + mids_ * sizeof(Mid) +
         (free_.capacity() + pending_.capacity()) * sizeof(uint32_t);
}

}  // namespace pstorage::engine
