// Garbage collection and wear leveling.
//
// Free blocks are kept ordered by erase count. The host write frontier takes
// the least-worn free block (dynamic wear leveling); the GC frontier, which
// receives data that has already survived at least one block lifetime and so
// tends to be colder, takes the most-worn one. When the spread between the
// most- and least-worn blocks passes static_wl_threshold, the full block with
// the fewest erases (cold data parked on a young block) is relocated and
// erased so that it rejoins the pool (static wear leveling).
#include <algorithm>
#include <string>

#include "flash_sim/ftl.h"

namespace pstorage::flash {

namespace {
// A page that fails its checksum while GC reads it is read again this many
// times (read disturb is transient) before GC gives up on the block.
constexpr int kRelocationReadRetries = 3;
}  // namespace

Result<uint32_t> FlashDevice::Impl::TakeFreeBlock() {
  if (free_blocks_.empty()) return Status::NoSpace("flash device full: no free erase block");
  bool most_worn = in_gc_;
  auto it = most_worn ? std::prev(free_blocks_.end()) : free_blocks_.begin();
  uint32_t b = it->second;
  free_blocks_.erase(it);
  return b;
}

// Returns the next victim among full blocks with at most `max_valid` valid
// pages, or kNone.
uint32_t FlashDevice::Impl::PickVictim(uint32_t max_valid) const {
  uint32_t best = kNone;
  double best_score = -1;
  for (uint32_t b = 0; b < block_count_; b++) {
    const BlockMeta& m = blocks_[b];
    if (m.state != BlockState::kFull || m.valid > max_valid) continue;
    double score;
    if (opts_.gc_policy == GcPolicy::kGreedy || m.valid == 0) {
      score = double(ppb_ - m.valid);  // fewest valid pages wins
      if (m.valid == 0) score = 1e300;
    } else {
      double u = double(m.valid) / ppb_;
      double age = double(next_seq_ - m.last_write_seq);
      score = age * (1 - u) / (2 * u);
    }
    if (score > best_score) {
      best_score = score;
      best = b;
    }
  }
  return best;
}

Status FlashDevice::Impl::CollectOne(uint32_t max_valid, bool* freed) {
  *freed = false;
  // Only a victim whose live pages fit in the room GC has left can be
  // collected; program-failure retries may have eaten into the reserve.
  uint64_t room = uint64_t{free_blocks_.size()} * ppb_;
  uint32_t gc_open = open_[int(Frontier::kGc)];
  if (gc_open != kNone && !blocks_[gc_open].failing) room += ppb_ - blocks_[gc_open].write_ptr;
  uint32_t victim = PickVictim(uint32_t(std::min<uint64_t>(max_valid, room)));
  if (victim == kNone) return Status::Ok();
  PS_RETURN_IF_ERROR(RelocateAndErase(victim));
  counters_.gc_runs++;
  *freed = true;
  return MaybeLevelWear();
}

// Reads every slot of `ios` and checks its checksums, re-reading a slot that
// fails (read disturb is transient). A page that stays bad is rotten: it is
// flagged so that GC moves it as is and it keeps reporting kCorruption,
// rather than one bad page pinning its block forever.
Status FlashDevice::Impl::ReadForRelocation(std::span<SlotIo> ios, std::vector<bool>& rotten) {
  PS_RETURN_IF_ERROR(medium_->Read(ios));
  rotten.assign(ios.size(), false);
  for (size_t k = 0; k < ios.size(); k++) {
    SlotIo& io = ios[k];
    for (int attempt = 0;; attempt++) {
      std::optional<SpareArea> spare = DecodeSpare(io.buf);
      if (spare && DataChecksumMatches(*spare, io.buf)) break;
      if (attempt == kRelocationReadRetries) {
        counters_.read_errors++;
        rotten[k] = true;
        break;
      }
      PS_RETURN_IF_ERROR(medium_->Read(std::span(&io, 1)));
    }
  }
  return Status::Ok();
}

// Moves every live page of `block` to the GC frontier, makes the copies
// durable, then erases (or retires) the block.
Status FlashDevice::Impl::RelocateAndErase(uint32_t block) {
  PS_RETURN_IF_ERROR(SubmitPending());
  bool was_in_gc = in_gc_;
  in_gc_ = true;
  struct Restore {
    bool& flag;
    bool value;
    ~Restore() { flag = value; }
  } restore{in_gc_, was_in_gc};

  uint64_t base = uint64_t{block} * ppb_;
  std::vector<SlotIo>& reads = gc_ios_;
  reads.clear();
  for (uint32_t i = 0; i < ppb_; i++) {
    SlotState st = slot_state_[base + i];
    if (st == SlotState::kValid || st == SlotState::kTrim) {
      reads.push_back({base + i, gc_buf_.slot(reads.size()), 0});
    }
  }
  std::vector<bool>& rotten = gc_rotten_;
  PS_RETURN_IF_ERROR(ReadForRelocation(reads, rotten));

  std::vector<uint32_t> still_trimmed;
  size_t trim_records = 0;
  for (size_t k = 0; k < reads.size(); k++) {
    const SlotIo& io = reads[k];
    std::optional<SpareArea> spare = rotten[k] ? DecodeSpare(io.buf) : std::nullopt;
    if (slot_state_[io.slot] == SlotState::kValid) {
      const uint64_t* keep = spare ? &spare->data_checksum : nullptr;
      if (rotten[k] && !spare) {
        static constexpr uint64_t kNeverMatches = 0;  // spare area itself is unreadable
        keep = &kNeverMatches;
      }
      PS_RETURN_IF_ERROR(Stage(Frontier::kGc, PageKind::kData, slot_lpn_[io.slot], io.buf, keep));
      counters_.gc_pages_moved++;
      continue;
    }
    trim_records++;
    if (rotten[k]) continue;  // an unreadable trim record: its entries are lost
    // A trim record stays needed for pages still unmapped that have an old
    // copy somewhere on flash; the rest of its entries are dropped.
    uint32_t n = std::min(GetU32(io.buf), kTrimRecordMaxEntries);
    for (uint32_t e = 0; e < n; e++) {
      uint64_t lpn = GetU64(io.buf + 8 + 8 * e);
      if (lpn < logical_pages_ && l2p_[lpn] == kUnmapped && stale_copies_[lpn] > 0) {
        still_trimmed.push_back(uint32_t(lpn));
      }
    }
  }
  PS_RETURN_IF_ERROR(StageTrimRecords(still_trimmed, Frontier::kGc));
  PS_RETURN_IF_ERROR(SubmitPending());
  // Only now that their surviving entries are on flash do the old records die.
  for (size_t k = 0; k < reads.size() && trim_records > 0; k++) {
    if (slot_state_[reads[k].slot] != SlotState::kTrim) continue;
    slot_state_[reads[k].slot] = SlotState::kDead;
    blocks_[block].valid--;
    trim_records--;
  }
  // Invariant: every live page of the victim now has a newer copy elsewhere.
  if (blocks_[block].valid != 0) return Status::Internal("GC left valid pages in its victim");
  // The copies must be durable before the erase is, or a crash could lose both.
  if (!reads.empty()) PS_RETURN_IF_ERROR(medium_->Sync());
  return EraseBlock(block);
}

Status FlashDevice::Impl::EraseBlock(uint32_t block) {
  BlockMeta& m = blocks_[block];
  uint64_t base = uint64_t{block} * ppb_;
  for (uint32_t i = 0; i < ppb_; i++) {
    if (slot_state_[base + i] == SlotState::kStaleData) stale_copies_[slot_lpn_[base + i]]--;
    slot_state_[base + i] = SlotState::kFree;
  }
  for (uint32_t& open : open_) {
    if (open == block) open = kNone;
  }
  m.write_ptr = 0;
  m.valid = 0;
  bool retire = m.failing;
  if (!retire) {
    Status s = medium_->Erase(block);
    if (s.ok()) {
      m.erase_count++;
      retire = m.erase_count >= opts_.pe_cycle_limit;
    } else {
      counters_.erase_failures++;
      retire = true;
    }
  }
  if (retire) {
    m.state = BlockState::kRetired;
    counters_.blocks_retired++;
    return medium_->Retire(block);
  }
  m.state = BlockState::kFree;
  m.failing = false;
  free_blocks_.insert({m.erase_count, block});
  counters_.blocks_reclaimed++;
  return Status::Ok();
}

// Static wear leveling: when the erase-count spread passes the threshold,
// free the least-worn full block so it takes new (hotter) writes.
Status FlashDevice::Impl::MaybeLevelWear() {
  uint32_t min_count = ~0u, max_count = 0, coldest = kNone;
  for (uint32_t b = 0; b < block_count_; b++) {
    const BlockMeta& m = blocks_[b];
    if (m.state == BlockState::kRetired) continue;
    min_count = std::min(min_count, m.erase_count);
    max_count = std::max(max_count, m.erase_count);
    if (m.state == BlockState::kFull &&
        (coldest == kNone || m.erase_count < blocks_[coldest].erase_count)) {
      coldest = b;
    }
  }
  if (coldest == kNone || max_count - min_count <= opts_.static_wl_threshold) return Status::Ok();
  if (blocks_[coldest].erase_count + opts_.static_wl_threshold / 2 > max_count) return Status::Ok();
  PS_RETURN_IF_ERROR(RelocateAndErase(coldest));
  counters_.blocks_moved++;
  return Status::Ok();
}

Result<uint32_t> FlashDevice::Impl::CollectGarbage(uint32_t max_blocks) {
  std::lock_guard lock(mu_);
  PS_RETURN_IF_ERROR(DropPendingOnError(SubmitPending()));
  uint32_t freed_count = 0;
  for (uint32_t i = 0; i < max_blocks; i++) {
    bool freed = false;
    PS_RETURN_IF_ERROR(DropPendingOnError(CollectOne(ppb_ - 1, &freed)));
    if (!freed) break;
    freed_count++;
  }
  return freed_count;
}

void FlashDevice::Impl::StartBackgroundGc() {
  if (opts_.background_gc_idle_ms == 0) return;
  bg_thread_ = std::thread([this] { BackgroundLoop(); });
}

// Background GC: when the host has been idle for background_gc_idle_ms and
// free blocks are below the high watermark, reclaim one block at a time,
// only from blocks at most three-quarters valid (cheap to collect).
void FlashDevice::Impl::BackgroundLoop() {
  const auto idle = std::chrono::milliseconds(opts_.background_gc_idle_ms);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    bg_cv_.wait_for(lock, idle);
    if (stopping_) break;
    if (std::chrono::steady_clock::now() - last_io_ < idle) continue;
    while (!stopping_ && free_blocks_.size() < opts_.gc_high_watermark_blocks) {
      bool freed = false;
      if (!DropPendingOnError(SubmitPending()).ok()) break;
      if (!DropPendingOnError(CollectOne(ppb_ * 3 / 4, &freed)).ok() || !freed) break;
      // Let host I/O in between blocks.
      lock.unlock();
      lock.lock();
      if (std::chrono::steady_clock::now() - last_io_ < idle) break;
    }
  }
}

}  // namespace pstorage::flash
