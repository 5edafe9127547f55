// Internal: the content store -- inline data reduction and where reduced
// blocks live on flash.
//
// Put() takes whole 4 KiB blocks and, per block:
//   1. pattern removal: a block that is one 8-byte pattern repeated
//      (all-zero included) becomes a kPattern MapEntry; nothing is stored;
//   2. XXH3-128 hash;
//   3. dedupe: the sharded index maps hash -> content id; on a hit the bytes
//      are compared with the stored block (options.dedupe_verify, on by
//      default: a hash match alone never decides) and a reference is added;
//   4. compression: new blocks are LZ4-compressed, kept raw when that does
//      not save at least kMinSavedBytes; fragments are packed back to back
//      into 4 KiB flash pages (the open page is rewritten as it fills). A
//      fragment that does not fit the open page's remaining bytes starts at
//      its tail and continues at the start of a new page, which becomes the
//      open page: no page loses its tail. A raw block takes a page of its
//      own;
//   5. the batch's pages go to the flash device in one Write call.
// Every content has a reference count (one per map entry pointing at it).
// When it drops to zero the content is freed: its fragment, its content id
// and, once a page holds no live fragment (nor part of one), the flash page
// -- both pages of a fragment that spans two. Freed ids and pages are
// recycled only by RecycleFreed() (called after a checkpoint has made the
// frees durable), so that a crash before that point can never find a page
// reused under a content the journal still references.
//
// Thread safety: all methods may be called concurrently (the dedupe index
// is sharded, reference counts are atomic, the packer and allocators take
// short internal locks; LZ4 and hashing run outside any lock).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/block_map.h"
#include "flash_sim/flash.h"

namespace pstorage::engine {

inline constexpr uint32_t kBlockBytes = 4096;

enum class Codec : uint8_t { kRaw = 0, kLz4 = 1, kZstd = 2 };

using Hash128 = std::array<uint8_t, 16>;

// ContentRecord::next_page of a fragment that fits in its page. Page 0 is
// a valid flash page; no device has this many.
inline constexpr uint32_t kNoNextPage = UINT32_MAX;

// A stored content, as journaled and checkpointed. A fragment occupies
// bytes [offset, offset + length) of `page` when that fits in the page;
// otherwise it spans two pages: [offset, 4096) of `page`, then the
// remaining offset + length - 4096 bytes from the start of `next_page`.
// Invariant: next_page != kNoNextPage iff offset + length > 4096; a raw
// fragment (length 4096, offset 0) never spans.
struct ContentRecord {
  uint32_t id = 0;
  Hash128 hash{};
  uint32_t page = 0;    // flash logical page holding the fragment (its head, if it spans)
  uint16_t offset = 0;  // byte offset of the fragment in `page`, < 4096
  uint16_t length = 0;  // fragment bytes, both pages together (4096 for a raw block)
  Codec codec = Codec::kRaw;
  uint32_t next_page = kNoNextPage;  // the page holding the fragment's rest, if it spans
};

// What happened to one block in Put().
struct BlockOutcome {
  bool pattern = false;       // includes zero blocks
  bool zero = false;
  bool deduplicated = false;
  bool compressed = false;
  uint32_t stored_bytes = 0;  // fragment bytes added to flash (0 for pattern/dedupe)
};

struct ContentStoreOptions {
  bool dedupe_verify = true;
  uint32_t dedupe_shards = 16;
  size_t cache_bytes = 64ull << 20;  // DRAM cache of whole blocks (verify + hot reads)
  int zstd_level = 3;                // deep reduction
  // Test hook: every block hashes to the same value (forces collisions).
  bool constant_hash_for_tests = false;
};

struct ContentStats {
  uint64_t unique_blocks = 0;         // live contents
  uint64_t stored_fragment_bytes = 0; // sum of live fragment lengths
  uint64_t pages_used = 0;            // flash pages holding live fragment bytes
  uint64_t pages_freed_pending = 0;   // freed, waiting for RecycleFreed()
  uint64_t index_memory_bytes = 0;    // dedupe index + content table, resident
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
};

class ContentStore {
 public:
  // Uses flash logical pages [0, flash->logical_pages()).
  ContentStore(const ContentStoreOptions& options, flash::FlashDevice* flash);
  ~ContentStore();

  // Reduces and stores blocks (kBlockBytes each). entries[i] receives the
  // block's MapEntry holding one new reference for the caller; outcomes[i]
  // says what happened; new contents are appended to *stored (for the
  // journal). Errors: kNoSpace (no free flash page), kIoError. On error no
  // reference is left taken.
  Status Put(std::span<const uint8_t* const> blocks, std::span<MapEntry> entries,
             std::span<BlockOutcome> outcomes, std::vector<ContentRecord>* stored);

  // Reads the block behind an entry (zeros for kUnmapped, the pattern for
  // kPattern). A fragment that spans two pages is read with one flash Read
  // of both. kCorruption when the fragment cannot be decoded or its hash
  // does not match.
  Status Get(const MapEntry& entry, uint8_t* out);

  void Ref(uint32_t id);
  void Unref(uint32_t id);

  // --- recovery and checkpoints ---
  // Adds a content with reference count zero (journal replay). kCorruption
  // for a record outside the device or breaking ContentRecord's invariant;
  // kAlreadyExists for a different content under an id already inserted.
  Status Insert(const ContentRecord& record);
  // After replay: frees contents nobody references, rebuilds the page
  // allocator from live fragments and trims every unused flash page.
  Status FinishRecovery();
  void Serialize(std::vector<uint8_t>* out) const;  // contents + counts
  Status Load(const uint8_t* data, size_t size);
  // Recycles freed ids and pages (trimming the pages on flash).
  Status RecycleFreed();

  // --- maintenance ---
  // Recompresses fragments with Zstandard and repacks sparse pages (through
  // the same packer as Put, so repacked fragments may span); returns
  // flash bytes reclaimed. New locations take effect at once; old pages are
  // freed pending like any other free.
  Result<uint64_t> DeepReduce();
  // fsck: calls fn(id, refcount) for every live content.
  void ForEachContent(const std::function<void(uint32_t id, uint32_t refcount)>& fn) const;
  // Reads and decodes one content and checks its hash.
  Status Verify(uint32_t id);

  ContentStats Stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when `block` is one 8-byte pattern repeated; sets *pattern.
bool IsPatternBlock(const uint8_t* block, uint64_t* pattern);

}  // namespace pstorage::engine
