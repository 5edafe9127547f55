// Internal to the content store: the dedupe index, hash -> content ids.
//
// Sharded by hash; each shard is an open-addressing table (linear probing,
// backward-shift deletion) of u32 content ids, 4 bytes a slot. The hash is
// not stored twice: a probe reads it from the content table. Several ids may
// carry the same hash (a collision, or a duplicate stored twice by racing
// writers); Candidates() returns them all and the caller decides.
//
// Thread safety: every method may be called concurrently; each shard has its
// own mutex, held only while probing. The hash of an indexed id must not
// change while the id is indexed (Remove() it first).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/content_table.h"

namespace pstorage::engine {

class DedupeIndex {
 public:
  // Borrows `table`, which must outlive the index. `shards` >= 1.
  DedupeIndex(uint32_t shards, const ContentTable* table);
  ~DedupeIndex();

  void Insert(uint32_t id);
  // Removes `id` if indexed.
  void Remove(uint32_t id);
  // Replaces *out with every indexed id whose hash is `hash`.
  void Candidates(const Hash128& hash, std::vector<uint32_t>* out) const;
  void Clear();

  uint64_t size() const;
  uint64_t memory_bytes() const;

 private:
  struct Shard;
  Shard& ShardOf(const Hash128& hash) const;

  const ContentTable* const table_;
  const uint32_t shard_count_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace pstorage::engine
