// Internal: the flash translation layer behind FlashDevice. ftl.cc holds the
// host paths (write, read, trim, flush), gc.cc garbage collection and wear
// leveling, recovery.cc formatting and the recovery scan.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "flash_sim/flash.h"
#include "flash_sim/page_format.h"

namespace pstorage::flash {

// A buffer of kSlotBytes-sized slots, 4096-byte aligned, pre-touched.
class SlotBuffer {
 public:
  SlotBuffer() = default;
  explicit SlotBuffer(size_t slots);
  uint8_t* slot(size_t i) { return data_.get() + i * kSlotBytes; }
  size_t slots() const { return slots_; }

 private:
  struct Free { void operator()(uint8_t* p) const; };
  std::unique_ptr<uint8_t, Free> data_;
  size_t slots_ = 0;
};

enum class SlotState : uint8_t {
  kFree,       // not programmed since the block's last erase
  kValid,      // the current copy of slot_lpn_[slot]
  kStaleData,  // an older copy of slot_lpn_[slot]
  kTrim,       // a trim record still considered live
  kDead,       // a failed program, torn page, or dropped trim record
};

enum class BlockState : uint8_t { kFree, kOpen, kFull, kRetired };

struct BlockMeta {
  uint32_t erase_count = 0;
  uint32_t valid = 0;         // slots in state kValid or kTrim
  uint32_t write_ptr = 0;     // next slot index to program inside the block
  uint64_t last_write_seq = 0;  // for cost-benefit's age
  BlockState state = BlockState::kFree;
  bool failing = false;       // a program failed: retire instead of erasing
};

enum class Frontier { kHost, kGc };

class FlashDevice::Impl {
 public:
  Impl(const FlashOptions& options, Medium* medium, uint64_t logical_pages,
       const MediumGeometry& geometry);
  ~Impl();

  // recovery.cc
  Status FormatOrRecover();

  // ftl.cc
  Status Write(std::span<const uint64_t> lpns, std::span<const uint8_t* const> pages);
  Status Read(std::span<const uint64_t> lpns, std::span<uint8_t* const> out);
  Status Trim(std::span<const uint64_t> lpns);
  Status Flush();
  FlashMetrics Metrics() const;
  Status CheckInvariants() const;
  uint64_t logical_pages() const { return logical_pages_; }

  // gc.cc
  Result<uint32_t> CollectGarbage(uint32_t max_blocks);
  void StartBackgroundGc();

  std::unique_ptr<Medium> owned_base;    // set by OpenFile
  std::unique_ptr<Medium> owned_faulty;  // set by OpenFile when faults are on
  bool direct_io = false;                // set by OpenFile

 private:
  static constexpr uint32_t kNone = ~0u;
  static constexpr uint32_t kUnmapped = ~0u;

  struct Pending {
    uint64_t slot;
    uint32_t lpn;   // data pages
    PageKind kind;
  };

  // ftl.cc (all with mu_ held)
  Status WriteLocked(std::span<const uint64_t> lpns, std::span<const uint8_t* const> pages);
  Status DropPendingOnError(Status s);
  Result<uint64_t> AllocSlot(Frontier f);
  Status EnsureHostBlock();
  // keep_checksum: relocate a rotten page as is, still failing its checksum.
  Status Stage(Frontier f, PageKind kind, uint32_t lpn, const uint8_t* data,
               const uint64_t* keep_checksum = nullptr);
  Status StageTrimRecords(std::span<const uint32_t> lpns, Frontier f);
  Status SubmitPending();
  void Commit(const Pending& p);
  void Unmap(uint32_t lpn);
  Status ReadBatch(std::span<const uint64_t> lpns, std::span<uint8_t* const> out,
                   SlotBuffer& scratch, std::vector<size_t>& todo, std::vector<size_t>& retry,
                   Status& first_error);
  Status ReadLocked(std::span<const uint64_t> lpns, std::span<uint8_t* const> out,
                    SlotBuffer& scratch, std::span<const size_t> todo, Status& first_error);

  // gc.cc (all with mu_ held)
  Result<uint32_t> TakeFreeBlock();
  uint32_t PickVictim(uint32_t max_valid) const;
  Status RelocateAndErase(uint32_t block);
  Status ReadForRelocation(std::span<SlotIo> ios, std::vector<bool>& rotten);
  Status EraseBlock(uint32_t block);
  Status MaybeLevelWear();
  Status CollectOne(uint32_t max_valid, bool* freed);
  void BackgroundLoop();

  // recovery.cc
  Status Format();
  Status Recover();
  Status ScanBlock(uint32_t block, std::vector<uint64_t>& best_seq,
                   std::vector<uint64_t>& trim_seq, uint64_t& max_seq);
  void AdoptPage(uint64_t slot, const uint8_t* buf, const SpareArea& spare,
                 std::vector<uint64_t>& best_seq, std::vector<uint64_t>& trim_seq,
                 uint64_t& max_seq);

  // Constant after construction.
  const FlashOptions opts_;
  Medium* const medium_;
  const uint64_t logical_pages_;
  const uint32_t ppb_;
  const uint32_t block_count_;

  mutable std::mutex mu_;  // guards everything below
  std::vector<uint32_t> l2p_;          // lpn -> slot, kUnmapped
  std::vector<uint32_t> slot_lpn_;     // slot -> lpn (data pages)
  std::vector<SlotState> slot_state_;
  std::vector<uint32_t> stale_copies_;  // lpn -> stale data pages still on flash
  std::vector<BlockMeta> blocks_;
  std::set<std::pair<uint32_t, uint32_t>> free_blocks_;  // (erase_count, block)
  uint32_t open_[2] = {kNone, kNone};  // indexed by Frontier
  uint64_t next_seq_ = 1;
  uint64_t mapped_pages_ = 0;
  bool in_gc_ = false;
  SlotBuffer staging_;           // kStagingSlots slots for programs
  std::vector<Pending> pending_;
  std::vector<SlotIo> ios_;
  SlotBuffer gc_buf_;            // one block of slots for relocation reads
  std::vector<SlotIo> gc_ios_;
  std::vector<bool> gc_rotten_;
  FlashMetrics counters_;        // traffic/GC counters; the rest computed in Metrics()

  // Background GC.
  std::thread bg_thread_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_io_;
};

}  // namespace pstorage::flash
