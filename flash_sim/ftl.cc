// The host paths of the FTL: write, read, trim, flush, metrics, invariants.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "flash_sim/ftl.h"

namespace pstorage::flash {

namespace {

// Programs are submitted to the medium in batches of at most this many slots.
constexpr size_t kStagingSlots = 256;
// A read that keeps racing with relocation takes the mutex after this many tries.
constexpr int kOptimisticReadAttempts = 4;
// Reads are submitted to the medium in batches of at most this many slots.
constexpr size_t kReadBatchSlots = 64;

std::string LpnRange(uint64_t lpn, uint64_t pages) {
  return "logical page " + std::to_string(lpn) + " is outside the device (0.." +
         std::to_string(pages - 1) + ")";
}

}  // namespace

void SlotBuffer::Free::operator()(uint8_t* p) const { std::free(p); }

SlotBuffer::SlotBuffer(size_t slots) : slots_(slots) {
  // aligned_alloc wants a size that is a multiple of the alignment.
  size_t bytes = (slots * kSlotBytes + 4095) / 4096 * 4096;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  if (p == nullptr) std::abort();
  std::memset(p, 0, slots * kSlotBytes);  // pre-touch: first touch is slow here
  data_.reset(p);
}

FlashDevice::Impl::Impl(const FlashOptions& options, Medium* medium, uint64_t logical_pages,
                        const MediumGeometry& geometry)
    : opts_(options),
      medium_(medium),
      logical_pages_(logical_pages),
      ppb_(geometry.pages_per_block),
      block_count_(geometry.block_count),
      l2p_(logical_pages, kUnmapped),
      slot_lpn_(geometry.slot_count(), 0),
      slot_state_(geometry.slot_count(), SlotState::kFree),
      stale_copies_(logical_pages, 0),
      blocks_(geometry.block_count),
      staging_(std::max<size_t>(kStagingSlots, geometry.pages_per_block)),
      gc_buf_(geometry.pages_per_block),
      last_io_(std::chrono::steady_clock::now()) {
  pending_.reserve(kStagingSlots);
  ios_.reserve(std::max<size_t>(kStagingSlots, ppb_));
}

FlashDevice::Impl::~Impl() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (bg_thread_.joinable()) bg_thread_.join();
}

// --- write ---------------------------------------------------------------------

Status FlashDevice::Impl::Write(std::span<const uint64_t> lpns,
                                std::span<const uint8_t* const> pages) {
  if (lpns.size() != pages.size()) {
    return Status::InvalidArgument("write: " + std::to_string(lpns.size()) + " pages numbers but " +
                                   std::to_string(pages.size()) + " buffers");
  }
  for (size_t i = 0; i < lpns.size(); i++) {
    if (lpns[i] >= logical_pages_) return Status::InvalidArgument(LpnRange(lpns[i], logical_pages_));
    if (pages[i] == nullptr) return Status::InvalidArgument("write: null page buffer");
  }
  std::lock_guard lock(mu_);
  last_io_ = std::chrono::steady_clock::now();
  return DropPendingOnError(WriteLocked(lpns, pages));
}

Status FlashDevice::Impl::WriteLocked(std::span<const uint64_t> lpns,
                                      std::span<const uint8_t* const> pages) {
  for (size_t i = 0; i < lpns.size(); i++) {
    PS_RETURN_IF_ERROR(Stage(Frontier::kHost, PageKind::kData, uint32_t(lpns[i]), pages[i]));
    counters_.host_pages_written++;
    if (pending_.size() == staging_.slots()) PS_RETURN_IF_ERROR(SubmitPending());
  }
  return SubmitPending();
}

// After a failed operation, pages staged but not programmed are abandoned:
// their slots were allocated, so they become dead slots, and nothing of
// theirs reaches the map. Returns `s`.
Status FlashDevice::Impl::DropPendingOnError(Status s) {
  if (s.ok()) return s;
  for (const Pending& p : pending_) slot_state_[p.slot] = SlotState::kDead;
  pending_.clear();
  return s;
}

// Copies one page into the staging buffer with its spare area and assigns it
// a slot on the frontier. May run GC (host frontier) after submitting what
// is already staged.
Status FlashDevice::Impl::Stage(Frontier f, PageKind kind, uint32_t lpn, const uint8_t* data,
                                const uint64_t* keep_checksum) {
  if (f == Frontier::kHost) PS_RETURN_IF_ERROR(EnsureHostBlock());
  Result<uint64_t> slot = AllocSlot(f);
  if (!slot.ok()) return slot.status();
  uint8_t* buf = staging_.slot(pending_.size());
  std::memcpy(buf, data, kPageBytes);
  SpareArea spare;
  spare.kind = kind;
  spare.lpn = kind == PageKind::kData ? lpn : 0;
  spare.seq = next_seq_++;
  spare.erase_epoch = blocks_[*slot / ppb_].erase_count;
  spare.data_checksum = keep_checksum ? *keep_checksum : Checksum(buf, kPageBytes);
  EncodeSpare(spare, buf);
  pending_.push_back({*slot, lpn, kind});
  return Status::Ok();
}

// Makes sure the host frontier has a slot, running foreground GC when free
// blocks fall below the low watermark. Never takes the last free block: GC
// needs it to relocate into.
Status FlashDevice::Impl::EnsureHostBlock() {
  uint32_t b = open_[int(Frontier::kHost)];
  if (b != kNone && blocks_[b].write_ptr < ppb_ && !blocks_[b].failing) return Status::Ok();
  if (!in_gc_ && free_blocks_.size() < opts_.gc_low_watermark_blocks) {
    PS_RETURN_IF_ERROR(SubmitPending());
    while (free_blocks_.size() < opts_.gc_low_watermark_blocks) {
      bool freed = false;
      Status s = CollectOne(ppb_ - 1, &freed);
      if (!s.ok() && s.code() != Code::kNoSpace) return s;
      if (!freed) break;
    }
  }
  if (free_blocks_.size() <= 1) {
    return Status::NoSpace("flash device full: no erase block can be reclaimed (" +
                           std::to_string(mapped_pages_) + " logical pages mapped)");
  }
  return Status::Ok();
}

Result<uint64_t> FlashDevice::Impl::AllocSlot(Frontier f) {
  uint32_t& b = open_[int(f)];
  if (b == kNone || blocks_[b].write_ptr == ppb_ || blocks_[b].failing) {
    if (b != kNone && blocks_[b].state == BlockState::kOpen) blocks_[b].state = BlockState::kFull;
    b = kNone;
    Result<uint32_t> fresh = TakeFreeBlock();
    if (!fresh.ok()) return fresh.status();
    b = *fresh;
    blocks_[b].state = BlockState::kOpen;
  }
  BlockMeta& m = blocks_[b];
  uint64_t slot = uint64_t{b} * ppb_ + m.write_ptr++;
  m.last_write_seq = next_seq_;
  return slot;
}

// Programs everything staged. A slot whose program fails is marked dead,
// its block is closed and later retired, and the page is staged again on a
// fresh slot (without GC: the low watermark leaves room for this).
Status FlashDevice::Impl::SubmitPending() {
  while (!pending_.empty()) {
    ios_.clear();
    for (size_t i = 0; i < pending_.size(); i++) ios_.push_back({pending_[i].slot, staging_.slot(i), 0});
    Status s = medium_->Program(ios_);
    if (s.ok()) {
      for (const Pending& p : pending_) Commit(p);
      pending_.clear();
      break;
    }
    size_t kept = 0;
    for (size_t i = 0; i < pending_.size(); i++) {
      if (ios_[i].error == 0) {
        Commit(pending_[i]);
        continue;
      }
      if (ios_[i].error != EIO) return Status::IoError("program failed: " + s.message());
      counters_.program_failures++;
      uint64_t slot = pending_[i].slot;
      slot_state_[slot] = SlotState::kDead;
      blocks_[slot / ppb_].failing = true;
      // A later version of the same page in this batch supersedes this one;
      // retrying it would give it a newer sequence number than its successor.
      bool superseded = false;
      for (size_t j = i + 1; j < pending_.size() && !superseded; j++) {
        superseded = pending_[j].kind == PageKind::kData && pending_[i].kind == PageKind::kData &&
                     pending_[j].lpn == pending_[i].lpn;
      }
      if (superseded) continue;
      if (kept != i) std::memcpy(staging_.slot(kept), staging_.slot(i), kSlotBytes);
      pending_[kept++] = pending_[i];
    }
    pending_.resize(kept);
    for (size_t i = 0; i < kept; i++) {
      Frontier f = in_gc_ ? Frontier::kGc : Frontier::kHost;
      Result<uint64_t> slot = AllocSlot(f);
      if (!slot.ok()) return slot.status();
      pending_[i].slot = *slot;
      uint8_t* buf = staging_.slot(i);
      SpareArea spare = *DecodeSpare(buf);
      spare.seq = next_seq_++;
      spare.erase_epoch = blocks_[*slot / ppb_].erase_count;
      EncodeSpare(spare, buf);
    }
  }
  return Status::Ok();
}

void FlashDevice::Impl::Commit(const Pending& p) {
  counters_.nand_pages_written++;
  BlockMeta& blk = blocks_[p.slot / ppb_];
  blk.valid++;
  if (p.kind == PageKind::kTrimRecord) {
    slot_state_[p.slot] = SlotState::kTrim;
    return;
  }
  uint32_t old = l2p_[p.lpn];
  if (old != kUnmapped) {
    slot_state_[old] = SlotState::kStaleData;
    blocks_[old / ppb_].valid--;
    stale_copies_[p.lpn]++;
  } else {
    mapped_pages_++;
  }
  l2p_[p.lpn] = uint32_t(p.slot);
  slot_lpn_[p.slot] = p.lpn;
  slot_state_[p.slot] = SlotState::kValid;
}

void FlashDevice::Impl::Unmap(uint32_t lpn) {
  uint32_t old = l2p_[lpn];
  slot_state_[old] = SlotState::kStaleData;
  blocks_[old / ppb_].valid--;
  stale_copies_[lpn]++;
  l2p_[lpn] = kUnmapped;
  mapped_pages_--;
}

// --- trim and flush ------------------------------------------------------------

Status FlashDevice::Impl::Trim(std::span<const uint64_t> lpns) {
  for (uint64_t lpn : lpns) {
    if (lpn >= logical_pages_) return Status::InvalidArgument(LpnRange(lpn, logical_pages_));
  }
  std::lock_guard lock(mu_);
  last_io_ = std::chrono::steady_clock::now();
  std::vector<uint32_t> unmapped;
  unmapped.reserve(lpns.size());
  for (uint64_t lpn : lpns) {
    counters_.host_pages_trimmed++;
    if (l2p_[lpn] == kUnmapped) continue;
    Unmap(uint32_t(lpn));
    unmapped.push_back(uint32_t(lpn));
  }
  // The trim record keeps the old copies from coming back after a crash.
  Status s = StageTrimRecords(unmapped, Frontier::kHost);
  return DropPendingOnError(s.ok() ? SubmitPending() : s);
}

Status FlashDevice::Impl::StageTrimRecords(std::span<const uint32_t> lpns, Frontier f) {
  uint8_t page[kPageBytes];
  for (size_t first = 0; first < lpns.size(); first += kTrimRecordMaxEntries) {
    size_t n = std::min<size_t>(kTrimRecordMaxEntries, lpns.size() - first);
    std::memset(page, 0, sizeof(page));
    PutU32(page, uint32_t(n));
    for (size_t i = 0; i < n; i++) PutU64(page + 8 + 8 * i, lpns[first + i]);
    if (pending_.size() == staging_.slots()) PS_RETURN_IF_ERROR(SubmitPending());
    PS_RETURN_IF_ERROR(Stage(f, PageKind::kTrimRecord, 0, page));
  }
  return Status::Ok();
}

Status FlashDevice::Impl::Flush() {
  std::lock_guard lock(mu_);
  PS_RETURN_IF_ERROR(DropPendingOnError(SubmitPending()));
  return medium_->Sync();
}

// --- read ----------------------------------------------------------------------

// Reads a batch of pages with one medium submission and without the mutex
// held during I/O. A page whose slot was relocated and reprogrammed while it
// was being read is noticed by its spare area (wrong page or erase epoch)
// and is left in `retry`.
Status FlashDevice::Impl::ReadBatch(std::span<const uint64_t> lpns, std::span<uint8_t* const> out,
                                    SlotBuffer& scratch, std::vector<size_t>& todo,
                                    std::vector<size_t>& retry, Status& first_error) {
  thread_local std::vector<SlotIo> ios;
  thread_local std::vector<uint32_t> epochs;
  thread_local std::vector<size_t> owners;  // owners[k]: the index in `lpns` of ios[k]
  ios.clear();
  epochs.clear();
  owners.clear();
  {
    std::lock_guard lock(mu_);
    for (size_t i : todo) {
      uint32_t slot = l2p_[lpns[i]];
      if (slot == kUnmapped) {
        std::memset(out[i], 0, kPageBytes);
        continue;
      }
      ios.push_back({slot, scratch.slot(ios.size()), 0});
      epochs.push_back(blocks_[slot / ppb_].erase_count);
      owners.push_back(i);
    }
  }
  if (ios.empty()) return Status::Ok();
  Status s = medium_->Read(ios);
  if (!s.ok()) return s;
  for (size_t k = 0; k < ios.size(); k++) {
    size_t i = owners[k];
    const uint8_t* buf = ios[k].buf;
    std::optional<SpareArea> spare = DecodeSpare(buf);
    if (!spare || spare->kind != PageKind::kData || spare->lpn != lpns[i] ||
        spare->erase_epoch != epochs[k]) {
      retry.push_back(i);
      continue;
    }
    if (DataChecksumMatches(*spare, buf)) {
      std::memcpy(out[i], buf, kPageBytes);
      continue;
    }
    std::lock_guard lock(mu_);
    // A concurrent reprogram can tear what we read; only a page still mapped
    // to the same slot and epoch is really corrupt.
    if (l2p_[lpns[i]] != ios[k].slot || blocks_[ios[k].slot / ppb_].erase_count != epochs[k]) {
      retry.push_back(i);
      continue;
    }
    counters_.read_errors++;
    std::memset(out[i], 0, kPageBytes);
    if (first_error.ok()) {
      first_error = Status::Corruption("logical page " + std::to_string(lpns[i]) +
                                       " failed its checksum (physical slot " +
                                       std::to_string(ios[k].slot) + ")");
    }
  }
  return Status::Ok();
}

Status FlashDevice::Impl::Read(std::span<const uint64_t> lpns, std::span<uint8_t* const> out) {
  if (lpns.size() != out.size()) return Status::InvalidArgument("read: page and buffer counts differ");
  for (size_t i = 0; i < lpns.size(); i++) {
    if (lpns[i] >= logical_pages_) return Status::InvalidArgument(LpnRange(lpns[i], logical_pages_));
    if (out[i] == nullptr) return Status::InvalidArgument("read: null page buffer");
  }
  thread_local SlotBuffer scratch(kReadBatchSlots);
  thread_local std::vector<size_t> todo, retry;
  Status first_error;
  for (size_t first = 0; first < lpns.size(); first += kReadBatchSlots) {
    size_t n = std::min(kReadBatchSlots, lpns.size() - first);
    todo.clear();
    for (size_t i = first; i < first + n; i++) todo.push_back(i);
    for (int attempt = 0; !todo.empty(); attempt++) {
      retry.clear();
      if (attempt == kOptimisticReadAttempts) {
        // Pathological racing: hold the mutex so nothing can move.
        std::lock_guard lock(mu_);
        PS_RETURN_IF_ERROR(ReadLocked(lpns, out, scratch, todo, first_error));
        break;
      }
      PS_RETURN_IF_ERROR(ReadBatch(lpns, out, scratch, todo, retry, first_error));
      todo.swap(retry);
    }
  }
  std::lock_guard lock(mu_);
  counters_.host_pages_read += lpns.size();
  return first_error;
}

// Reads with mu_ held: the mapping cannot change, so any mismatch is corruption.
Status FlashDevice::Impl::ReadLocked(std::span<const uint64_t> lpns, std::span<uint8_t* const> out,
                                     SlotBuffer& scratch, std::span<const size_t> todo,
                                     Status& first_error) {
  for (size_t i : todo) {
    uint32_t slot = l2p_[lpns[i]];
    if (slot == kUnmapped) {
      std::memset(out[i], 0, kPageBytes);
      continue;
    }
    SlotIo io{slot, scratch.slot(0), 0};
    PS_RETURN_IF_ERROR(medium_->Read(std::span(&io, 1)));
    std::optional<SpareArea> spare = DecodeSpare(io.buf);
    if (spare && spare->lpn == lpns[i] && DataChecksumMatches(*spare, io.buf)) {
      std::memcpy(out[i], io.buf, kPageBytes);
      continue;
    }
    counters_.read_errors++;
    std::memset(out[i], 0, kPageBytes);
    if (first_error.ok()) {
      first_error = Status::Corruption("logical page " + std::to_string(lpns[i]) + " failed its checksum");
    }
  }
  return Status::Ok();
}

// --- metrics and invariants ---------------------------------------------------------

FlashMetrics FlashDevice::Impl::Metrics() const {
  std::lock_guard lock(mu_);
  FlashMetrics m = counters_;
  m.total_bytes = logical_pages_ * kPageBytes;
  m.used_bytes = mapped_pages_ * kPageBytes;
  m.free_bytes = m.total_bytes - m.used_bytes;
  m.utilization = m.total_bytes ? double(m.used_bytes) / double(m.total_bytes) : 0;
  m.block_count = block_count_;
  m.free_blocks = uint32_t(free_blocks_.size());
  m.gc_active = in_gc_;
  double sum = 0, sum_sq = 0;
  uint32_t live = 0;
  m.min_erase_count = ~0u;
  for (const BlockMeta& b : blocks_) {
    if (b.state == BlockState::kRetired) continue;
    live++;
    sum += b.erase_count;
    sum_sq += double(b.erase_count) * b.erase_count;
    m.max_erase_count = std::max(m.max_erase_count, b.erase_count);
    m.min_erase_count = std::min(m.min_erase_count, b.erase_count);
  }
  if (live == 0) m.min_erase_count = 0;
  m.physical_bytes = uint64_t{live} * ppb_ * kPageBytes;
  m.avg_erase_count = live ? sum / live : 0;
  m.wear_variance = live ? sum_sq / live - m.avg_erase_count * m.avg_erase_count : 0;
  if (m.wear_variance < 0) m.wear_variance = 0;
  m.health_percentage = std::max(0.0, 100.0 * (1.0 - m.avg_erase_count / opts_.pe_cycle_limit));
  m.write_amplification =
      m.host_pages_written ? double(m.nand_pages_written) / double(m.host_pages_written) : 1.0;
  return m;
}

Status FlashDevice::Impl::CheckInvariants() const {
  std::lock_guard lock(mu_);
  auto fail = [](std::string what) { return Status::Internal("FTL invariant: " + what); };
  uint64_t mapped = 0;
  for (uint64_t lpn = 0; lpn < logical_pages_; lpn++) {
    uint32_t s = l2p_[lpn];
    if (s == kUnmapped) continue;
    mapped++;
    if (slot_state_[s] != SlotState::kValid || slot_lpn_[s] != lpn) {
      return fail("lpn " + std::to_string(lpn) + " maps to slot " + std::to_string(s) +
                  " which does not map back");
    }
  }
  if (mapped != mapped_pages_) return fail("mapped page count");
  uint64_t valid_total = 0, trim_total = 0;
  for (uint32_t b = 0; b < block_count_; b++) {
    uint32_t valid = 0;
    for (uint32_t i = 0; i < ppb_; i++) {
      SlotState st = slot_state_[uint64_t{b} * ppb_ + i];
      if (st == SlotState::kValid || st == SlotState::kTrim) valid++;
      if (st == SlotState::kTrim) trim_total++;
      if (st != SlotState::kFree && i >= blocks_[b].write_ptr) return fail("slot past write pointer");
      if (st == SlotState::kValid && l2p_[slot_lpn_[uint64_t{b} * ppb_ + i]] != uint64_t{b} * ppb_ + i) {
        return fail("valid slot is not the mapping of its page");
      }
    }
    if (valid != blocks_[b].valid) return fail("valid count of block " + std::to_string(b));
    bool listed = free_blocks_.count({blocks_[b].erase_count, b}) > 0;
    if (listed != (blocks_[b].state == BlockState::kFree)) return fail("free list of block " + std::to_string(b));
    if (blocks_[b].state == BlockState::kFree && blocks_[b].write_ptr != 0) return fail("free block written");
    valid_total += valid;
  }
  if (valid_total != mapped_pages_ + trim_total) return fail("sum of valid counts");
  return Status::Ok();
}

}  // namespace pstorage::flash
