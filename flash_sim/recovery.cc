// Formatting a new medium, and rebuilding the FTL from an existing one by
// scanning every page's spare area.
#include <algorithm>
#include <string>

#include "flash_sim/ftl.h"

namespace pstorage::flash {

namespace {

constexpr int kScanReadRetries = 3;

bool SpareIsBlank(const uint8_t* slot) {
  const uint8_t* spare = slot + kPageBytes;
  return std::all_of(spare, spare + kSpareUsedBytes, [](uint8_t b) { return b == 0; });
}

}  // namespace

Status FlashDevice::Impl::FormatOrRecover() {
  std::lock_guard lock(mu_);
  std::vector<BlockInfo> infos = medium_->Blocks();
  for (uint32_t b = 0; b < block_count_; b++) {
    blocks_[b].erase_count = infos[b].erase_count;
    blocks_[b].state = infos[b].retired ? BlockState::kRetired : BlockState::kFree;
  }
  uint8_t label_buf[kPageBytes];
  PS_RETURN_IF_ERROR(medium_->ReadLabel(std::span<uint8_t, kPageBytes>(label_buf, kPageBytes)));
  Result<std::optional<DeviceLabel>> label = DecodeLabel(label_buf);
  if (!label.ok()) return label.status();
  Status s = label->has_value() ? Recover() : Format();
  if (!s.ok()) return s;
  for (uint32_t b = 0; b < block_count_; b++) {
    if (blocks_[b].state == BlockState::kFree) free_blocks_.insert({blocks_[b].erase_count, b});
  }
  return Status::Ok();
}

Status FlashDevice::Impl::Format() {
  DeviceLabel label{ppb_, block_count_, logical_pages_};
  uint8_t buf[kPageBytes];
  EncodeLabel(label, buf);
  PS_RETURN_IF_ERROR(medium_->WriteLabel(std::span<const uint8_t, kPageBytes>(buf, kPageBytes)));
  return medium_->Sync();
}

// Reads one block and classifies each slot: a page of the block's current
// erase epoch with good checksums is a candidate (data or trim record);
// leftovers of an earlier epoch and never-written slots are free; anything
// else (a torn or corrupt page) is dead. Picks, per logical page, the data
// copy with the highest sequence number and the newest trim.
Status FlashDevice::Impl::ScanBlock(uint32_t block, std::vector<uint64_t>& best_seq,
                                    std::vector<uint64_t>& trim_seq, uint64_t& max_seq) {
  BlockMeta& m = blocks_[block];
  uint64_t base = uint64_t{block} * ppb_;
  gc_ios_.clear();
  for (uint32_t i = 0; i < ppb_; i++) gc_ios_.push_back({base + i, gc_buf_.slot(i), 0});
  PS_RETURN_IF_ERROR(medium_->Read(gc_ios_));
  bool programmed = false;
  int64_t last_good = -1;  // index of the last intact page of this epoch
  std::vector<std::pair<uint32_t, SpareArea>> suspects;
  for (uint32_t i = 0; i < ppb_; i++) {
    SlotIo& io = gc_ios_[i];
    std::optional<SpareArea> spare = DecodeSpare(io.buf);
    if (!spare) {
      if (!SpareIsBlank(io.buf)) {
        slot_state_[io.slot] = SlotState::kDead;  // torn spare area
        programmed = true;
      }
      continue;
    }
    if (spare->erase_epoch < m.erase_count) continue;  // from before the last erase
    programmed = true;
    if (spare->erase_epoch != m.erase_count) {
      slot_state_[io.slot] = SlotState::kDead;  // from the future: never acknowledged
      continue;
    }
    bool data_ok = DataChecksumMatches(*spare, io.buf);
    for (int attempt = 0; !data_ok && attempt < kScanReadRetries; attempt++) {
      PS_RETURN_IF_ERROR(medium_->Read(std::span(&io, 1)));  // a transient flip?
      std::optional<SpareArea> again = DecodeSpare(io.buf);
      data_ok = again && again->seq == spare->seq && DataChecksumMatches(*again, io.buf);
    }
    if (!data_ok) {
      // Torn (the last page programmed before a crash) or rotten; decided
      // below, once we know whether later pages of the block are intact.
      suspects.push_back({i, *spare});
      continue;
    }
    last_good = int64_t(i);
    AdoptPage(io.slot, io.buf, *spare, best_seq, trim_seq, max_seq);
  }
  for (const auto& [i, spare] : suspects) {
    uint64_t slot = base + i;
    if (int64_t(i) > last_good || spare.kind != PageKind::kData) {
      // A torn page was never acknowledged as flushed: it never existed. (A
      // rotten trim record cannot be read; its pages may come back.)
      slot_state_[slot] = SlotState::kDead;
      continue;
    }
    // Pages programmed after it are intact, so it was flushed and then
    // rotted: keep it, so that reading it reports kCorruption.
    counters_.read_errors++;
    AdoptPage(slot, gc_buf_.slot(i), spare, best_seq, trim_seq, max_seq);
  }
  if (programmed) {
    // A partly written block is closed: its remaining slots wait for GC.
    m.state = BlockState::kFull;
    m.write_ptr = ppb_;
  }
  return Status::Ok();
}

// Records one readable page found by the scan as a mapping candidate.
void FlashDevice::Impl::AdoptPage(uint64_t slot, const uint8_t* buf, const SpareArea& spare,
                                  std::vector<uint64_t>& best_seq, std::vector<uint64_t>& trim_seq,
                                  uint64_t& max_seq) {
  BlockMeta& m = blocks_[slot / ppb_];
  {
    max_seq = std::max(max_seq, spare.seq);
    m.last_write_seq = std::max(m.last_write_seq, spare.seq);
    if (spare.kind == PageKind::kTrimRecord) {
      slot_state_[slot] = SlotState::kTrim;
      uint32_t n = std::min(GetU32(buf), kTrimRecordMaxEntries);
      for (uint32_t e = 0; e < n; e++) {
        uint64_t lpn = GetU64(buf + 8 + 8 * e);
        if (lpn < logical_pages_) trim_seq[lpn] = std::max(trim_seq[lpn], spare.seq);
      }
      return;
    }
    if (spare.lpn >= logical_pages_) {
      slot_state_[slot] = SlotState::kDead;
      return;
    }
    slot_state_[slot] = SlotState::kValid;  // candidate, resolved in Recover
    slot_lpn_[slot] = uint32_t(spare.lpn);
    if (spare.seq > best_seq[spare.lpn]) {
      best_seq[spare.lpn] = spare.seq;
      l2p_[spare.lpn] = uint32_t(slot);
    }
  }
}

Status FlashDevice::Impl::Recover() {
  std::vector<uint64_t> best_seq(logical_pages_, 0);
  std::vector<uint64_t> trim_seq(logical_pages_, 0);
  uint64_t max_seq = 0;
  for (uint32_t b = 0; b < block_count_; b++) {
    if (blocks_[b].state == BlockState::kRetired) continue;
    PS_RETURN_IF_ERROR(ScanBlock(b, best_seq, trim_seq, max_seq));
  }
  for (uint64_t lpn = 0; lpn < logical_pages_; lpn++) {
    if (l2p_[lpn] != kUnmapped && best_seq[lpn] < trim_seq[lpn]) l2p_[lpn] = kUnmapped;
    if (l2p_[lpn] != kUnmapped) mapped_pages_++;
  }
  for (uint64_t slot = 0; slot < slot_state_.size(); slot++) {
    SlotState& st = slot_state_[slot];
    if (st == SlotState::kTrim) blocks_[slot / ppb_].valid++;
    if (st != SlotState::kValid) continue;
    uint32_t lpn = slot_lpn_[slot];
    if (l2p_[lpn] == slot) {
      blocks_[slot / ppb_].valid++;
    } else {
      st = SlotState::kStaleData;
      stale_copies_[lpn]++;
    }
  }
  next_seq_ = max_seq + 1;
  return Status::Ok();
}

}  // namespace pstorage::flash
