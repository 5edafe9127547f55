// Internal to the content store: the content table (content id -> hash,
// flash location, reference count) and the content id allocator.
//
// Entries live in fixed chunks of kChunkEntries reached through a two-level
// directory that is never reallocated, so a reader holding an id reads its
// entry without any lock while the table grows. 32 bytes per entry.
//
// Concurrency:
//   * `hash` is written while the id is unpublished (refs == 0, not in use)
//     and is constant while the content is in use.
//   * `loc`'s kInUse bit publishes an entry (release store after filling
//     it); scans load it with acquire. `page`, `next_page` and `loc` change
//     only under the store's exclusive lock (deep reduction) or while
//     unpublished.
//   * `refs` is atomic; see ContentStore for who may move it from zero.
//   * The id allocator (free / pending lists) has its own mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "engine/content_store.h"

namespace pstorage::engine {

// Packed fragment location: offset 12 bits, length 13 bits, codec 2 bits.
struct Loc {
  static constexpr uint32_t kInUse = 1u << 31;
  static uint32_t Pack(uint32_t offset, uint32_t length, Codec codec) {
    return (offset & 0xfff) | (length & 0x1fff) << 12 | (uint32_t(codec) & 3) << 25 | kInUse;
  }
  static uint32_t Offset(uint32_t loc) { return loc & 0xfff; }
  static uint32_t Length(uint32_t loc) { return (loc >> 12) & 0x1fff; }
  static Codec CodecOf(uint32_t loc) { return Codec((loc >> 25) & 3); }
  static bool InUse(uint32_t loc) { return (loc & kInUse) != 0; }
};

struct ContentEntry {
  Hash128 hash;
  std::atomic<uint32_t> page{0};
  // The page holding the fragment's rest when offset + length > 4096,
  // otherwise kNoNextPage (see ContentRecord).
  std::atomic<uint32_t> next_page{kNoNextPage};
  std::atomic<uint32_t> loc{0};  // Loc-packed; 0 = free
  std::atomic<uint32_t> refs{0};
};
static_assert(sizeof(ContentEntry) == 32, "the memory budget counts 32 bytes per content");

class ContentTable {
 public:
  static constexpr uint32_t kChunkBits = 12;
  static constexpr uint32_t kChunkEntries = 1u << kChunkBits;
  static constexpr uint32_t kMidBits = 10;
  static constexpr uint32_t kNoId = 0;  // never allocated: the index's empty slot

  ContentTable();
  ~ContentTable();
  ContentTable(const ContentTable&) = delete;
  ContentTable& operator=(const ContentTable&) = delete;

  // The entry of an id below id_limit(). Lock-free.
  ContentEntry& At(uint32_t id) const {
    Mid* mid = top_[id >> (kChunkBits + kMidBits)].load(std::memory_order_acquire);
    ContentEntry* chunk =
        (*mid)[(id >> kChunkBits) & ((1u << kMidBits) - 1)].load(std::memory_order_acquire);
    return chunk[id & (kChunkEntries - 1)];
  }
  // One past the highest id ever allocated or inserted.
  uint32_t id_limit() const { return limit_.load(std::memory_order_acquire); }

  // Allocates `out.size()` unused ids (their entries are zero). False, with
  // nothing allocated, when the id space is exhausted.
  bool Allocate(std::span<uint32_t> out);
  // Returns ids allocated but never published (a failed write).
  void Unallocate(std::span<const uint32_t> ids);
  // A freed content's id: pending, reusable only after RecyclePending().
  void Release(uint32_t id);
  // A checkpoint now covers every id pending so far.
  void MarkCheckpoint();
  // Moves the ids pending at the last MarkCheckpoint() to the free list.
  void RecyclePending();
  size_t pending() const;

  // Recovery: makes `id` addressable (a journaled or checkpointed id).
  void Reserve(uint32_t id);
  // Recovery: every id < id_limit() not in use becomes pending. A journal
  // not yet checkpointed may still name such an id (as a dead content), so
  // none is reused before the next checkpoint.
  void RebuildFreeLists();

  // Resident bytes: allocated chunks, directory and id lists.
  uint64_t memory_bytes() const;

 private:
  using Mid = std::array<std::atomic<ContentEntry*>, 1u << kMidBits>;
  void EnsureChunkLocked(uint32_t id);

  std::array<std::atomic<Mid*>, 1u << (32 - kChunkBits - kMidBits)> top_{};
  std::atomic<uint32_t> limit_{1};  // id 0 is kNoId

  mutable std::mutex mu_;  // guards the lists below and chunk allocation
  std::vector<uint32_t> free_;
  std::vector<uint32_t> pending_;  // in the order freed
  size_t checkpointed_ = 0;        // pending_[0, checkpointed_) predate the last checkpoint
  uint64_t chunks_ = 0;
  uint64_t mids_ = 0;
};

}  // namespace pstorage::engine
