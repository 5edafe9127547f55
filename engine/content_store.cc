// The content store's write and read paths. See content_store.h for the
// contract and content_store_impl.h for the locking.
#include "engine/content_store.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

#include "engine/content_store_impl.h"

namespace pstorage::engine {
namespace {

constexpr uint32_t kNone = UINT32_MAX;

// Per-thread buffers, so that no read allocates: a block for decodes and
// comparisons, then two adjacent pages for ReadFlash, where a fragment that
// spans two pages lands in one piece.
uint8_t* ThreadBuffers() {
  thread_local std::vector<uint8_t> buffers(3 * kBlockBytes);
  return buffers.data();
}
uint8_t* ThreadBlock() { return ThreadBuffers(); }
uint8_t* ThreadPages() { return ThreadBuffers() + kBlockBytes; }

}  // namespace

// Per-thread Put state, grown to the largest batch seen and then reused:
// nothing is allocated per block.
struct PutScratch {
  std::vector<Hash128> hash;
  std::vector<uint32_t> slot;   // block -> index among the batch's new contents, or kNone
  std::vector<uint32_t> block;  // new content -> block index
  std::vector<uint32_t> users;  // new content -> references the batch takes
  std::vector<uint32_t> ids;
  std::vector<Packer::Fragment> fragments;
  std::vector<Packer::Location> locations;
  std::vector<uint8_t> compressed;  // kMaxFragmentBytes per block

  void Prepare(size_t n) {
    if (hash.size() >= n) return;
    hash.resize(n), slot.resize(n), block.resize(n), users.resize(n), ids.resize(n);
    fragments.resize(n), locations.resize(n), compressed.resize(n * kMaxFragmentBytes);
  }
};

ContentStore::Impl::Impl(const ContentStoreOptions& o, flash::FlashDevice* f)
    : options(o),
      flash(f),
      index(o.dedupe_shards, &table),
      cache(o.cache_bytes, o.dedupe_shards),
      packer(f, uint32_t(std::min<uint64_t>(f->logical_pages(), Packer::kNoPage))) {}

bool ContentStore::Impl::InUse(uint32_t id) const {
  return id != ContentTable::kNoId && id < table.id_limit() &&
         Loc::InUse(table.At(id).loc.load(std::memory_order_acquire));
}

Status ContentStore::Impl::ReadFlash(uint32_t id, uint8_t* out) const {
  const ContentEntry& e = table.At(id);
  const uint32_t loc = e.loc.load(std::memory_order_acquire);
  const Packer::Location at = LocationOf(e, loc);
  const uint64_t lpns[2] = {at.page, at.next_page};
  uint8_t* const bufs[2] = {ThreadPages(), ThreadPages() + kBlockBytes};
  const size_t pages = at.next_page == Packer::kNoPage ? 1 : 2;
  PS_RETURN_IF_ERROR(flash->Read({lpns, pages}, {bufs, pages}));
  return DecodeFragment(Loc::CodecOf(loc), bufs[0] + at.offset, Loc::Length(loc), e.hash,
                        options.constant_hash_for_tests, out);
}

Status ContentStore::Impl::ReadContent(uint32_t id, uint8_t* out) {
  if (cache.Lookup(id, out)) return Status::Ok();
  PS_RETURN_IF_ERROR(ReadFlash(id, out));
  cache.Insert(id, out);
  return Status::Ok();
}

bool ContentStore::Impl::TryRef(uint32_t id) {
  std::atomic<uint32_t>& refs = table.At(id).refs;
  uint32_t n = refs.load(std::memory_order_relaxed);
  while (n > 0) {
    // Acquire: pairs with the release that published the entry, so its
    // hash and location are visible even if the id was recycled.
    if (refs.compare_exchange_weak(n, n + 1, std::memory_order_acquire)) return true;
  }
  return false;
}

uint32_t ContentStore::Impl::FindDuplicate(const Hash128& hash, const uint8_t* block) {
  thread_local std::vector<uint32_t> candidates;
  index.Candidates(hash, &candidates);
  for (uint32_t id : candidates) {
    if (!TryRef(id)) continue;              // being freed: never revive it
    bool same = table.At(id).hash == hash;  // the id may have been recycled since
    if (same && options.dedupe_verify) {
      std::optional<bool> cached = cache.Matches(id, block);
      if (cached.has_value()) {
        same = *cached;
      } else {
        uint8_t* stored = ThreadBlock();
        same = ReadContent(id, stored).ok() && std::memcmp(stored, block, kBlockBytes) == 0;
      }
    }
    if (same) return id;
    UnrefLocked(id);
  }
  return ContentTable::kNoId;
}

void ContentStore::Impl::UnrefLocked(uint32_t id) {
  const uint32_t before = table.At(id).refs.fetch_sub(1, std::memory_order_acq_rel);
  assert(before > 0);
  if (before == 1 && !recovering.load(std::memory_order_relaxed)) FreeLocked(id);
}

void ContentStore::Impl::FreeLocked(uint32_t id) {
  ContentEntry& e = table.At(id);
  const uint32_t loc = e.loc.load(std::memory_order_relaxed);
  index.Remove(id);
  cache.Erase(id);
  packer.Release(LocationOf(e, loc), Loc::Length(loc));
  e.loc.store(0, std::memory_order_release);
  table.Release(id);
  unique_blocks.fetch_sub(1, std::memory_order_relaxed);
  stored_bytes.fetch_sub(Loc::Length(loc), std::memory_order_relaxed);
}

ContentStore::ContentStore(const ContentStoreOptions& options, flash::FlashDevice* flash)
    : impl_(std::make_unique<Impl>(options, flash)) {}

ContentStore::~ContentStore() = default;

// Pass 1, per block and without store-wide work: pattern, hash, dedupe
// (against this batch, then the index), LZ4. Returns the new contents.
size_t ContentStore::Impl::ReduceBatch(std::span<const uint8_t* const> blocks,
                                       std::span<MapEntry> entries,
                                       std::span<BlockOutcome> outcomes, PutScratch& t) {
  size_t fresh = 0;
  for (size_t i = 0; i < blocks.size(); i++) {
    const uint8_t* block = blocks[i];
    BlockOutcome& out = outcomes[i] = {};
    t.slot[i] = kNone;
    uint64_t pattern;
    if (IsPatternBlock(block, &pattern)) {
      entries[i] = {MapEntry::Kind::kPattern, pattern};
      out.pattern = true, out.zero = pattern == 0;
      continue;
    }
    const Hash128 hash = t.hash[i] = HashBlock(block, options.constant_hash_for_tests);
    // A block seen earlier in this batch is not indexed yet: look here first.
    for (size_t j = 0; j < fresh && t.slot[i] == kNone; j++) {
      const size_t other = t.block[j];
      if (t.hash[other] == hash &&
          (!options.dedupe_verify || std::memcmp(blocks[other], block, kBlockBytes) == 0)) {
        t.slot[i] = uint32_t(j);
        t.users[j]++;
      }
    }
    if (t.slot[i] != kNone) {
      out.deduplicated = true;
      continue;
    }
    if (const uint32_t id = FindDuplicate(hash, block); id != ContentTable::kNoId) {
      entries[i] = {MapEntry::Kind::kContent, id};
      out.deduplicated = true;
      continue;
    }
    uint8_t* buf = &t.compressed[fresh * kMaxFragmentBytes];
    const uint32_t length = CompressLz4(block, buf);
    t.fragments[fresh] =
        length > 0 ? Packer::Fragment{buf, length} : Packer::Fragment{block, kBlockBytes};
    t.slot[i] = uint32_t(fresh);
    t.block[fresh] = uint32_t(i);
    t.users[fresh] = 1;
    fresh++;
  }
  return fresh;
}

// Pass 3: publishes the new contents, whose bytes are on flash -- only from
// now on can other writers dedupe against them.
void ContentStore::Impl::PublishBatch(std::span<const uint8_t* const> blocks,
                                      std::span<MapEntry> entries, std::span<BlockOutcome> outcomes,
                                      size_t fresh, const PutScratch& t,
                                      std::vector<ContentRecord>* stored) {
  uint64_t new_bytes = 0;
  for (size_t j = 0; j < fresh; j++) {
    const uint32_t id = t.ids[j];
    const size_t i = t.block[j];
    const Packer::Fragment& f = t.fragments[j];
    const Packer::Location& at = t.locations[j];
    const Codec codec = f.length == kBlockBytes ? Codec::kRaw : Codec::kLz4;
    ContentEntry& e = table.At(id);
    e.hash = t.hash[i];
    e.page.store(at.page, std::memory_order_relaxed);
    e.next_page.store(at.next_page, std::memory_order_relaxed);
    e.loc.store(Loc::Pack(at.offset, f.length, codec), std::memory_order_release);
    e.refs.store(t.users[j], std::memory_order_release);  // TryRef's acquire pairs here
    index.Insert(id);
    cache.Insert(id, blocks[i]);
    outcomes[i].compressed = codec != Codec::kRaw;
    outcomes[i].stored_bytes = f.length;
    new_bytes += f.length;
    if (stored != nullptr) {
      stored->push_back(
          {id, e.hash, at.page, uint16_t(at.offset), uint16_t(f.length), codec, at.next_page});
    }
  }
  for (size_t i = 0; i < blocks.size(); i++) {
    if (t.slot[i] != kNone) entries[i] = {MapEntry::Kind::kContent, t.ids[t.slot[i]]};
  }
  unique_blocks.fetch_add(fresh, std::memory_order_relaxed);
  stored_bytes.fetch_add(new_bytes, std::memory_order_relaxed);
}

Status ContentStore::Put(std::span<const uint8_t* const> blocks, std::span<MapEntry> entries,
                         std::span<BlockOutcome> outcomes, std::vector<ContentRecord>* stored) {
  Impl& s = *impl_;
  const size_t n = blocks.size();
  if (entries.size() != n || outcomes.size() != n) {
    return Status::InvalidArgument("Put: blocks, entries and outcomes differ in size");
  }
  if (s.recovering.load()) return Status::FailedPrecondition("Put during recovery");
  thread_local PutScratch t;
  t.Prepare(n);
  std::shared_lock lock(s.store_mu);
  const size_t fresh = s.ReduceBatch(blocks, entries, outcomes, t);

  // Pass 2: ids, placement and one flash write for the new contents.
  Status status;
  if (fresh > 0) {
    if (!s.table.Allocate({t.ids.data(), fresh})) {
      status = Status::NoSpace("content store: content ids exhausted");
    } else {
      status = s.packer.Write({t.fragments.data(), fresh}, {t.locations.data(), fresh});
      if (!status.ok()) s.table.Unallocate({t.ids.data(), fresh});
    }
  }
  if (!status.ok()) {  // give back the references the dedupe hits took
    for (size_t i = 0; i < n; i++) {
      if (outcomes[i].deduplicated && t.slot[i] == kNone) s.UnrefLocked(uint32_t(entries[i].value));
    }
    return status;
  }
  s.PublishBatch(blocks, entries, outcomes, fresh, t, stored);
  return Status::Ok();
}

Status ContentStore::Get(const MapEntry& entry, uint8_t* out) {
  switch (entry.kind) {
    case MapEntry::Kind::kUnmapped:
      std::memset(out, 0, kBlockBytes);
      return Status::Ok();
    case MapEntry::Kind::kPattern:
      FillPattern(entry.value, out);
      return Status::Ok();
    case MapEntry::Kind::kContent:
      break;
  }
  std::shared_lock lock(impl_->store_mu);
  if (entry.value > UINT32_MAX || !impl_->InUse(uint32_t(entry.value))) {
    return Status::NotFound("content " + std::to_string(entry.value) + " is not stored");
  }
  return impl_->ReadContent(uint32_t(entry.value), out);
}

void ContentStore::Ref(uint32_t id) {
  assert(id != ContentTable::kNoId && id < impl_->table.id_limit());
  impl_->table.At(id).refs.fetch_add(1, std::memory_order_relaxed);
}

void ContentStore::Unref(uint32_t id) {
  assert(id != ContentTable::kNoId && id < impl_->table.id_limit());
  std::atomic<uint32_t>& refs = impl_->table.At(id).refs;
  uint32_t n = refs.load(std::memory_order_relaxed);
  while (n > 1) {
    if (refs.compare_exchange_weak(n, n - 1, std::memory_order_release)) return;
  }
  // Possibly the last reference: the free needs the store lock.
  std::shared_lock lock(impl_->store_mu);
  impl_->UnrefLocked(id);
}

Status ContentStore::Verify(uint32_t id) {
  std::shared_lock lock(impl_->store_mu);
  if (!impl_->InUse(id)) {
    return Status::NotFound("content " + std::to_string(id) + " is not stored");
  }
  return impl_->ReadFlash(id, ThreadBlock());  // flash, never the cache: fsck checks the medium
}

ContentStats ContentStore::Stats() const {
  const Impl& s = *impl_;
  ContentStats st;
  st.unique_blocks = s.unique_blocks.load(std::memory_order_relaxed);
  st.stored_fragment_bytes = s.stored_bytes.load(std::memory_order_relaxed);
  st.pages_used = s.packer.pages_used();
  st.pages_freed_pending = s.packer.pages_pending();
  st.index_memory_bytes = s.table.memory_bytes() + s.index.memory_bytes();
  st.cache_hits = s.cache.hits();
  st.cache_misses = s.cache.misses();
  return st;
}

}  // namespace pstorage::engine
