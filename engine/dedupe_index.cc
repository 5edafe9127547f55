#include "engine/dedupe_index.h"

#include <cassert>
#include <cstring>

namespace pstorage::engine {
namespace {

constexpr uint32_t kInitialSlots = 16;  // power of two

// The two halves of the hash: one picks the shard, the other the slot, so
// a shard's slots stay uniformly used.
uint64_t ShardBits(const Hash128& h) {
  uint64_t v;
  std::memcpy(&v, h.data(), 8);
  return v;
}
uint64_t SlotBits(const Hash128& h) {
  uint64_t v;
  std::memcpy(&v, h.data() + 8, 8);
  return v;
}

}  // namespace

struct alignas(64) DedupeIndex::Shard {
  mutable std::mutex mu;
  std::vector<uint32_t> slots;  // ContentTable::kNoId = empty; size is a power of two
  uint64_t used = 0;

  uint64_t mask() const { return slots.size() - 1; }
};

DedupeIndex::DedupeIndex(uint32_t shards, const ContentTable* table)
    : table_(table),
      shard_count_(shards == 0 ? 1 : shards),
      shards_(std::make_unique<Shard[]>(shard_count_)) {
  for (uint32_t i = 0; i < shard_count_; i++) shards_[i].slots.assign(kInitialSlots, 0);
}

DedupeIndex::~DedupeIndex() = default;

DedupeIndex::Shard& DedupeIndex::ShardOf(const Hash128& hash) const {
  return shards_[ShardBits(hash) % shard_count_];
}

void DedupeIndex::Insert(uint32_t id) {
  assert(id != ContentTable::kNoId);
  const Hash128& hash = table_->At(id).hash;
  Shard& s = ShardOf(hash);
  std::lock_guard lock(s.mu);
  // Grow at 3/4 load: probe runs stay short, and memory per id stays
  // between 5.3 and 10.7 bytes.
  if ((s.used + 1) * 4 > s.slots.size() * 3) {
    std::vector<uint32_t> old(s.slots.size() * 2, 0);
    old.swap(s.slots);
    for (uint32_t other : old) {
      if (other == ContentTable::kNoId) continue;
      uint64_t i = SlotBits(table_->At(other).hash) & s.mask();
      while (s.slots[i] != ContentTable::kNoId) i = (i + 1) & s.mask();
      s.slots[i] = other;
    }
  }
  uint64_t i = SlotBits(hash) & s.mask();
  while (s.slots[i] != ContentTable::kNoId) i = (i + 1) & s.mask();
  s.slots[i] = id;
  s.used++;
}

void DedupeIndex::Remove(uint32_t id) {
  const Hash128& hash = table_->At(id).hash;
  Shard& s = ShardOf(hash);
  std::lock_guard lock(s.mu);
  const uint64_t mask = s.mask();
  uint64_t hole = SlotBits(hash) & mask;
  while (s.slots[hole] != id) {
    if (s.slots[hole] == ContentTable::kNoId) return;  // not indexed
    hole = (hole + 1) & mask;
  }
  // Backward shift: move later members of the run into the hole when their
  // home slot does not lie cyclically in (hole, j].
  for (uint64_t j = (hole + 1) & mask; s.slots[j] != ContentTable::kNoId; j = (j + 1) & mask) {
    const uint64_t home = SlotBits(table_->At(s.slots[j]).hash) & mask;
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    s.slots[hole] = s.slots[j];
    hole = j;
  }
  s.slots[hole] = ContentTable::kNoId;
  s.used--;
}

void DedupeIndex::Candidates(const Hash128& hash, std::vector<uint32_t>* out) const {
  out->clear();
  const Shard& s = ShardOf(hash);
  std::lock_guard lock(s.mu);
  for (uint64_t i = SlotBits(hash) & s.mask(); s.slots[i] != ContentTable::kNoId;
       i = (i + 1) & s.mask()) {
    if (table_->At(s.slots[i]).hash == hash) out->push_back(s.slots[i]);
  }
}

void DedupeIndex::Clear() {
  for (uint32_t i = 0; i < shard_count_; i++) {
    std::lock_guard lock(shards_[i].mu);
    shards_[i].slots.assign(kInitialSlots, 0);
    shards_[i].slots.shrink_to_fit();
    shards_[i].used = 0;
  }
}

uint64_t DedupeIndex::size() const {
  uint64_t n = 0;
  for (uint32_t i = 0; i < shard_count_; i++) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].used;
  }
  return n;
}

uint64_t DedupeIndex::memory_bytes() const {
  uint64_t bytes = sizeof(*this) + uint64_t{shard_count_} * sizeof(Shard);
  for (uint32_t i = 0; i < shard_count_; i++) {
    std::lock_guard lock(shards_[i].mu);
    bytes += shards_[i].slots.capacity() * sizeof(uint32_t);
  }
  return bytes;
}

}  // namespace pstorage::engine
