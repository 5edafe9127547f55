// Internal to the content store: ContentStore::Impl, shared by
// content_store.cc (write and read paths), content_recovery.cc (recovery,
// checkpoints, recycling) and deep_reduce.cc.
//
// Locking, outermost first (never taken in the other order):
//   maintenance_mu  DeepReduce() and RecycleFreed(): no id or page is
//                   recycled while DeepReduce runs.
//   store_mu        shared: Put, Get, Verify, the free of a content,
//                   DeepReduce's read phase; exclusive: DeepReduce's switch
//                   of locations, Serialize, ForEachContent, recovery. A
//                   content's location changes only under it exclusively.
//   Packer, then the leaves: index shards, cache stripes, the id lists.
// Reference counts move without store_mu except the last Unref (to zero),
// which frees under it shared. A count moves up from zero only through
// Ref() on a content the caller knows (journal replay) -- a dedupe hit
// takes a reference only when the count is above zero.
//
// Recycling: RecycleFreed() reuses only the ids and pages freed before the
// last Serialize() -- the checkpoint that makes those frees durable. A free
// after it may still be undone by a crash (its journal record not yet
// durable), so its page must keep its bytes until the next checkpoint.
//
// Known, accepted races: two Puts of the same new block at the same time
// may both store it (a content is indexed only once its bytes are on
// flash); both copies are correct, only space is lost. Serialize sees the
// counts as they are during the call: Ref/Unref above zero take no lock,
// so a consistent checkpoint needs the caller to hold them still.
#pragma once

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <utility>

#include "engine/block_cache.h"
#include "engine/codec.h"
#include "engine/content_store.h"
#include "engine/content_table.h"
#include "engine/dedupe_index.h"
#include "engine/packer.h"

namespace pstorage::engine {

struct DeepRound;   // deep_reduce.cc
struct PutScratch;  // content_store.cc

static_assert(Packer::kNoPage == kNoNextPage, "one sentinel for a fragment that does not span");

// Where the fragment of a published entry lives; `loc` is its Loc word.
inline Packer::Location LocationOf(const ContentEntry& e, uint32_t loc) {
  return {e.page.load(std::memory_order_relaxed), Loc::Offset(loc),
          e.next_page.load(std::memory_order_relaxed)};
}

// A reader-writer lock that prefers writers: std::shared_mutex on glibc
// prefers readers, and overlapping Puts on several threads would then
// starve DeepReduce and Serialize forever. Not recursive: a thread holding
// it shared never takes it again.
class WriterPreferringMutex {
 public:
  WriterPreferringMutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&rw_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~WriterPreferringMutex() { pthread_rwlock_destroy(&rw_); }
  WriterPreferringMutex(const WriterPreferringMutex&) = delete;
  WriterPreferringMutex& operator=(const WriterPreferringMutex&) = delete;

  void lock() { pthread_rwlock_wrlock(&rw_); }
  void unlock() { pthread_rwlock_unlock(&rw_); }
  void lock_shared() { pthread_rwlock_rdlock(&rw_); }
  void unlock_shared() { pthread_rwlock_unlock(&rw_); }

 private:
  pthread_rwlock_t rw_;
};

struct ContentStore::Impl {
  Impl(const ContentStoreOptions& o, flash::FlashDevice* f);

  // Put's first and last passes (content_store.cc).
  size_t ReduceBatch(std::span<const uint8_t* const> blocks, std::span<MapEntry> entries,
                     std::span<BlockOutcome> outcomes, PutScratch& t);
  void PublishBatch(std::span<const uint8_t* const> blocks, std::span<MapEntry> entries,
                    std::span<BlockOutcome> outcomes, size_t fresh, const PutScratch& t,
                    std::vector<ContentRecord>* stored);
  // Reads the fragment of `id` from flash (both pages in one Read when it
  // spans) and decodes and checks it into `out`. store_mu held (either way).
  Status ReadFlash(uint32_t id, uint8_t* out) const;
  // The cache, else ReadFlash (which then fills the cache).
  Status ReadContent(uint32_t id, uint8_t* out);
  // A stored content byte-identical to `block` (hash `hash`; with verify
  // off, a hash match decides), with one reference taken; 0 when none.
  uint32_t FindDuplicate(const Hash128& hash, const uint8_t* block);
  // Takes a reference unless the count is zero.
  bool TryRef(uint32_t id);
  // Drops a reference with store_mu held; frees at zero (not in recovery).
  void UnrefLocked(uint32_t id);
  void FreeLocked(uint32_t id);
  // Validates and adds a recovered content; store_mu held exclusively.
  Status InsertLocked(const ContentRecord& r, uint32_t refs);
  // DeepReduce's two phases for one round of `contents` ((page, id) pairs
  // sorted by page): store_mu shared, then exclusive. Switch returns the
  // number of pages it saved.
  void StageRound(std::span<const std::pair<uint32_t, uint32_t>> contents, DeepRound* r);
  Result<uint64_t> SwitchRound(DeepRound* r);
  // True when `id` names a content in use (acquire: its fields are visible).
  bool InUse(uint32_t id) const;

  const ContentStoreOptions options;
  flash::FlashDevice* const flash;
  ContentTable table;
  DedupeIndex index;
  BlockCache cache;
  Packer packer;

  std::mutex maintenance_mu;
  mutable WriterPreferringMutex store_mu;
  std::atomic<bool> recovering{false};  // between Insert/Load and FinishRecovery
  std::atomic<uint64_t> unique_blocks{0};
  std::atomic<uint64_t> stored_bytes{0};
};

}  // namespace pstorage::engine
