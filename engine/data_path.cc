// The data path: byte-range writes (whole blocks fast, partial blocks
// read-modify-write), reads, trims.
#include <algorithm>
#include <cstring>

#include "engine/engine_impl.h"

namespace pstorage::engine {

namespace {

// Blocks per Put() and per journal record.
constexpr uint64_t kBatchBlocks = 64;
// Unmapped entries per trim record.
constexpr uint64_t kTrimBatchBlocks = 4096;

Status CheckRange(uint64_t offset, uint64_t length, uint64_t size) {
  if (offset > size || length > size - offset) {
    return Status::InvalidArgument("range [" + std::to_string(offset) + ", +" +
                                   std::to_string(length) + ") is outside the volume (" +
                                   std::to_string(size) + " bytes)");
  }
  return Status::Ok();
}

// Thread-local scratch: batch arrays and two blocks for partial ends.
struct Scratch {
  std::vector<MapEntry> entries = std::vector<MapEntry>(kBatchBlocks);
  std::vector<BlockOutcome> outcomes = std::vector<BlockOutcome>(kBatchBlocks);
  std::vector<const uint8_t*> blocks = std::vector<const uint8_t*>(kBatchBlocks);
  std::vector<ContentRecord> stored;
  std::vector<uint8_t> partial = std::vector<uint8_t>(2 * kBlockBytes);
  std::vector<uint8_t> record;
  std::vector<MapEntry> read_entries = std::vector<MapEntry>(256);
  std::vector<uint8_t> read_block = std::vector<uint8_t>(kBlockBytes);
};
Scratch& Tls() {
  thread_local Scratch s;
  return s;
}

}  // namespace

// Stores one batch of whole blocks for `v` (exclusive lock held), submits
// its journal record and applies it. The record's place in the journal is
// fixed here, under the volume lock, so records of one volume replay in the
// order they were applied; durability is waited for after the lock is
// released (Write), so writers to one volume share group commits.
// `logical_bytes` is what the host wrote in the batch.
Status Engine::Impl::WriteBatch(Volume& v, uint64_t first_lba, std::span<const uint8_t* const> blocks,
                                uint64_t logical_bytes, WriteResult* result,
                                std::vector<PendingCommit>* pending) {
  Scratch& t = Tls();
  size_t n = blocks.size();
  std::span<MapEntry> entries(t.entries.data(), n);
  std::span<BlockOutcome> outcomes(t.outcomes.data(), n);
  t.stored.clear();
  PS_RETURN_IF_ERROR(contents_->Put(blocks, entries, outcomes, &t.stored));
  WriteCounters c;
  c.logical_bytes = logical_bytes;
  bool all_dedupe = true;
  for (size_t i = 0; i < n; i++) {
    const BlockOutcome& o = outcomes[i];
    if (o.zero) {
      c.zero_blocks++;
      entries[i] = MapEntry{};  // a zero block is simply unmapped
    } else if (o.pattern) {
      c.pattern_blocks++;
    } else if (o.deduplicated) {
      c.duplicate_blocks++;
    } else {
      c.stored_blocks++;
      c.stored_bytes += o.stored_bytes;
    }
    all_dedupe = all_dedupe && o.deduplicated;
    result->was_compressed = result->was_compressed || o.compressed;
  }
  result->was_deduplicated = result->was_deduplicated && all_dedupe;

  t.record.clear();
  ByteWriter w(&t.record);
  w.U8(uint8_t(RecordType::kWrite));
  w.U64(v.handle);
  w.Counters(c);
  w.U32(uint32_t(t.stored.size()));
  for (const ContentRecord& rec : t.stored) w.Content(rec);
  w.U32(uint32_t(n));
  for (size_t i = 0; i < n; i++) {
    w.U64(first_lba + i);
    w.U8(uint8_t(entries[i].kind));
    w.U64(entries[i].value);
  }
  PendingCommit p{journal_, std::make_unique<Journal::Ticket>()};
  Status s = journal_->Submit(t.record, p.ticket.get());
  if (!s.ok()) {
    // Not queued, not applied: give back the references Put took.
    for (const MapEntry& e : entries) {
      if (e.kind == MapEntry::Kind::kContent) contents_->Unref(uint32_t(e.value));
    }
    return s;
  }
  pending->push_back(std::move(p));
  return Apply(t.record, /*recovering=*/false);
}

// Journals and applies unmapping of `lbas` (exclusive lock held).
Status Engine::Impl::UnmapBlocks(Volume& v, std::span<const uint64_t> lbas) {
  Scratch& t = Tls();
  t.record.clear();
  ByteWriter w(&t.record);
  w.U8(uint8_t(RecordType::kWrite));
  w.U64(v.handle);
  w.Counters(WriteCounters{});  // a trim writes nothing
  w.U32(0);
  w.U32(uint32_t(lbas.size()));
  for (uint64_t lba : lbas) {
    w.U64(lba);
    w.U8(uint8_t(MapEntry::Kind::kUnmapped));
    w.U64(0);
  }
  return Commit(t.record);
}

// Builds the full block `lba` of `v` with [from, to) (offsets inside the
// block) taken from `src` (or zeros when src is null) and the rest kept.
Status Engine::Impl::MergeBlock(const Volume& v, uint64_t lba, uint32_t from, uint32_t to,
                                const uint8_t* src, uint8_t* out) const {
  PS_RETURN_IF_ERROR(contents_->Get(nodes_->Get(v.root, lba), out));
  if (src) {
    std::memcpy(out + from, src, to - from);
  } else {
    std::memset(out + from, 0, to - from);
  }
  return Status::Ok();
}

// The body of Write, under the volume's exclusive lock.
Status Engine::Impl::WriteLocked(Volume& v, uint64_t offset, std::span<const uint8_t> data,
                                 WriteResult* result, std::vector<PendingCommit>* pending) {
  PS_RETURN_IF_ERROR(CheckRange(offset, data.size(), v.info.size_bytes));
  Scratch& t = Tls();
  uint64_t end = offset + data.size();
  uint64_t lba = offset / kBlockBytes;
  while (lba * kBlockBytes < end) {
    uint64_t first_lba = lba;
    size_t n = 0;
    uint64_t logical = 0;
    for (; n < kBatchBlocks && lba * kBlockBytes < end; n++, lba++) {
      uint64_t block_start = lba * kBlockBytes;
      uint64_t from = std::max(offset, block_start), to = std::min(end, block_start + kBlockBytes);
      logical += to - from;
      if (to - from == kBlockBytes) {
        t.blocks[n] = data.data() + (from - offset);
        continue;
      }
      // A partial block (only the first and last of the write can be).
      uint8_t* buf = t.partial.data() + (from == offset ? 0 : kBlockBytes);
      PS_RETURN_IF_ERROR(MergeBlock(v, lba, uint32_t(from - block_start),
                                    uint32_t(to - block_start), data.data() + (from - offset), buf));
      t.blocks[n] = buf;
    }
    PS_RETURN_IF_ERROR(
        WriteBatch(v, first_lba, std::span(t.blocks.data(), n), logical, result, pending));
  }
  result->reduction_ratio = Describe(v).reduction_ratio;
  return Status::Ok();
}

Result<WriteResult> Engine::Impl::Write(const std::string& volume_id, uint64_t offset,
                                        std::span<const uint8_t> data) {
  std::shared_ptr<Volume> vp;
  {
    std::shared_lock lock(catalog_mu_);
    vp = VolumeById(volume_id);
  }
  if (!vp) return Status::NotFound("Volume " + volume_id + " not found");
  PS_RETURN_IF_ERROR(CheckNotBroken());
  WriteResult result;
  result.bytes = data.size();
  result.was_deduplicated = !data.empty();
  std::vector<PendingCommit> pending;
  Status status;
  {
    std::unique_lock vl(vp->mu);
    status = vp->deleted ? Status::NotFound("Volume " + volume_id + " not found")
                         : WriteLocked(*vp, offset, data, &result, &pending);
  }
  Status durable = WaitDurable(pending);
  if (!durable.ok()) return durable;
  if (!status.ok()) return status;
  MaybeCheckpoint();
  return result;
}

// Waits for every submitted record (no lock held), even after an error.
Status Engine::Impl::WaitDurable(std::vector<PendingCommit>& pending) {
  Status durable;
  for (PendingCommit& p : pending) {
    Status s = p.journal->Wait(p.ticket.get());
    if (durable.ok()) durable = s;
  }
  // Applied in memory but not durable: the journal now lacks records that
  // the in-memory state (and later records) build on. Stop making anything
  // durable; reopening recovers exactly the acknowledged state.
  if (!durable.ok()) broken_.store(true);
  return durable;
}

Status Engine::Impl::ReadRoot(NodeId root, uint64_t size, uint64_t offset,
                              std::span<uint8_t> out) const {
  PS_RETURN_IF_ERROR(CheckRange(offset, out.size(), size));
  Scratch& t = Tls();
  uint64_t end = offset + out.size();
  uint64_t lba = offset / kBlockBytes;
  while (lba * kBlockBytes < end) {
    uint64_t count = std::min<uint64_t>(t.read_entries.size(), (end - 1) / kBlockBytes + 1 - lba);
    nodes_->GetRange(root, lba, count, t.read_entries.data());
    for (uint64_t i = 0; i < count; i++, lba++) {
      uint64_t block_start = lba * kBlockBytes;
      uint64_t from = std::max(offset, block_start), to = std::min(end, block_start + kBlockBytes);
      uint8_t* dst = out.data() + (from - offset);
      if (to - from == kBlockBytes) {
        PS_RETURN_IF_ERROR(contents_->Get(t.read_entries[i], dst));
      } else {
        PS_RETURN_IF_ERROR(contents_->Get(t.read_entries[i], t.read_block.data()));
        std::memcpy(dst, t.read_block.data() + (from - block_start), to - from);
      }
    }
  }
  return Status::Ok();
}

Status Engine::Impl::Read(const std::string& volume_id, uint64_t offset,
                          std::span<uint8_t> out) const {
  std::shared_ptr<Volume> v;
  {
    std::shared_lock lock(catalog_mu_);
    v = VolumeById(volume_id);
  }
  if (!v) return Status::NotFound("Volume " + volume_id + " not found");
  std::shared_lock vl(v->mu);
  if (v->deleted) return Status::NotFound("Volume " + volume_id + " not found");
  return ReadRoot(v->root, v->info.size_bytes, offset, out);
}

Status Engine::Impl::ReadSnapshot(const std::string& id, uint64_t offset,
                                  std::span<uint8_t> out) const {
  std::shared_ptr<Snapshot> s;
  {
    std::shared_lock lock(catalog_mu_);
    s = SnapshotById(id);
  }
  if (!s) return Status::NotFound("Snapshot " + id + " not found");
  std::shared_lock sl(s->mu);
  if (s->deleted) return Status::NotFound("Snapshot " + id + " not found");
  return ReadRoot(s->root, s->info.size_bytes, offset, out);
}

Status Engine::Impl::Trim(const std::string& volume_id, uint64_t offset, uint64_t length) {
  std::shared_ptr<Volume> vp;
  {
    std::shared_lock lock(catalog_mu_);
    vp = VolumeById(volume_id);
  }
  if (!vp) return Status::NotFound("Volume " + volume_id + " not found");
  PS_RETURN_IF_ERROR(CheckNotBroken());
  std::vector<PendingCommit> pending;
  Status status;
  {
    std::unique_lock vl(vp->mu);
    status = vp->deleted ? Status::NotFound("Volume " + volume_id + " not found")
                         : TrimLocked(*vp, offset, length, &pending);
  }
  Status durable = WaitDurable(pending);
  if (!durable.ok()) return durable;
  if (!status.ok()) return status;
  MaybeCheckpoint();
  return Status::Ok();
}

// The body of Trim, under the volume's exclusive lock.
Status Engine::Impl::TrimLocked(Volume& v, uint64_t offset, uint64_t length,
                                std::vector<PendingCommit>* pending) {
  {
    PS_RETURN_IF_ERROR(CheckRange(offset, length, v.info.size_bytes));
    Scratch& t = Tls();
    uint64_t end = offset + length;
    std::vector<uint64_t> lbas;
    for (uint64_t lba = offset / kBlockBytes; lba * kBlockBytes < end; lba++) {
      uint64_t block_start = lba * kBlockBytes;
      uint64_t from = std::max(offset, block_start), to = std::min(end, block_start + kBlockBytes);
      if (to - from < kBlockBytes) {  // partial: zero-fill in place
        uint8_t* buf = t.partial.data();
        PS_RETURN_IF_ERROR(MergeBlock(v, lba, uint32_t(from - block_start),
                                      uint32_t(to - block_start), nullptr, buf));
        const uint8_t* one[1] = {buf};
        WriteResult ignored;
        PS_RETURN_IF_ERROR(WriteBatch(v, lba, one, 0, &ignored, pending));
        continue;
      }
      if (nodes_->Get(v.root, lba).kind == MapEntry::Kind::kUnmapped) continue;
      lbas.push_back(lba);
      if (lbas.size() == kTrimBatchBlocks) {
        PS_RETURN_IF_ERROR(UnmapBlocks(v, lbas));
        lbas.clear();
      }
    }
    if (!lbas.empty()) PS_RETURN_IF_ERROR(UnmapBlocks(v, lbas));
  }
  return Status::Ok();
}

Status Engine::Impl::Flush() { return flash_->Flush(); }

}  // namespace pstorage::engine
