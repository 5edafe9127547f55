// flash_sim: a simulated SSD.
//
// The device exposes what a real SSD exposes: numbered 4 KiB logical pages
// that can be written, read and trimmed in batches, and a flush that makes
// everything written so far durable. Inside, a page-mapped flash translation
// layer (FTL) places logical pages on physical pages of erase blocks, runs
// garbage collection (GC) and wear leveling, and retires worn-out blocks.
//
// The bytes live on a Medium: a backing file driven through io_uring in
// production, memory in tests. Every physical page slot is 4096 data bytes
// plus a 512-byte spare area (out-of-band metadata: logical page, sequence
// number, checksums), so the FTL table can be rebuilt by scanning after a
// crash. The on-medium layout is in docs/formats.md and page_format.h.
//
// Contract in brief:
//   * Write acknowledges when the pages are on the medium. They are durable
//     (survive power loss) once a later Flush() returns OK.
//   * Read of a never-written or trimmed page returns zeros.
//   * A page whose checksum fails is reported as kCorruption, never returned.
//   * Trim and flush are durable the same way writes are.
//   * When no space can be reclaimed, Write returns kNoSpace and every page
//     already written stays readable.
//
// Thread safety: every FlashDevice method may be called from any thread at
// any time. Writes, trims, flushes and GC steps are serialized by one
// internal mutex (like a real FTL, the device has one write frontier). Reads
// look the mapping up under that mutex and then do their I/O outside it,
// checking the page's spare area to detect a concurrent relocation and
// retrying; so reads proceed in parallel with each other and with writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace pstorage::flash {

inline constexpr uint32_t kPageBytes = 4096;   // logical and physical data page
inline constexpr uint32_t kSpareBytes = 512;   // out-of-band area after each page
inline constexpr uint32_t kSlotBytes = kPageBytes + kSpareBytes;
inline constexpr uint32_t kSlotAlignBytes = 512;

// ---------------------------------------------------------------------------
// Medium: where page slots live. One slot = kSlotBytes. Slots are grouped in
// erase blocks of `pages_per_block`. The medium also keeps, per block, the
// erase count and a retired flag, and a 4 KiB label (the device superblock).
// ---------------------------------------------------------------------------

struct MediumGeometry {
  uint32_t pages_per_block = 0;
  uint32_t block_count = 0;
  uint64_t slot_count() const { return uint64_t{pages_per_block} * block_count; }
};

struct BlockInfo {
  uint32_t erase_count = 0;
  bool retired = false;
};

// One slot transfer. `buf` holds kSlotBytes and must be kSlotAlignBytes
// aligned (a disk sector, so O_DIRECT accepts slots packed back to back). The medium sets `error` to 0 on success or to a
// positive errno value for this slot alone.
struct SlotIo {
  uint64_t slot = 0;
  uint8_t* buf = nullptr;
  int error = 0;
};

// Thread safety: implementations are safe for concurrent calls.
// Batches: a call may carry many slots; the medium submits them together.
class Medium {
 public:
  virtual ~Medium() = default;
  virtual const MediumGeometry& geometry() const = 0;

  // Programs each slot. Returns OK iff every slot succeeded; on failure the
  // per-slot `error` says which ones did not.
  virtual Status Program(std::span<SlotIo> ios) = 0;
  // Reads each slot into `buf`. Same error reporting as Program.
  virtual Status Read(std::span<SlotIo> ios) = 0;
  // Erases a block: increments its erase count. The slots' old contents may
  // remain; the FTL tells them apart by the erase count stamped in each
  // page's spare area.
  virtual Status Erase(uint32_t block) = 0;
  // Marks a block as unusable, persistently.
  virtual Status Retire(uint32_t block) = 0;
  virtual std::vector<BlockInfo> Blocks() const = 0;
  // The label is one 4096-byte buffer; all zeros on a new medium.
  virtual Status ReadLabel(std::span<uint8_t, kPageBytes> out) = 0;
  virtual Status WriteLabel(std::span<const uint8_t, kPageBytes> label) = 0;
  // Makes every completed Program/Erase/Retire/WriteLabel durable.
  virtual Status Sync() = 0;
};

// A medium in memory. Contents survive as long as the object.
std::unique_ptr<Medium> NewMemoryMedium(const MediumGeometry& geometry);

struct FileMediumInfo {
  bool direct_io = false;  // true when O_DIRECT was accepted by the file system
};

// A backing file driven through io_uring (one ring, whole batches per
// io_uring_submit, adjacent slots coalesced into one vectored I/O). Opens
// the file with O_DIRECT when the file system allows it, buffered otherwise.
// Creates the file if missing; an existing file must have this geometry.
Result<std::unique_ptr<Medium>> OpenFileMedium(const std::string& path,
                                               const MediumGeometry& geometry,
                                               FileMediumInfo* info = nullptr);

// Reads the geometry recorded in an existing backing file.
Result<MediumGeometry> ReadFileMediumGeometry(const std::string& path);

// ---------------------------------------------------------------------------
// Fault injection: a Medium that wraps another and injects faults. Used by
// tests on the memory medium, and by FlashOptions::faults on the file medium.
// ---------------------------------------------------------------------------

struct FaultOptions {
  uint64_t seed = 1;
  double program_fail_rate = 0;  // probability that one slot's program fails
  double erase_fail_rate = 0;    // probability that one erase fails
  double read_bitflip_rate = 0;  // probability that one slot read comes back with a flipped bit
  bool any() const { return program_fail_rate > 0 || erase_fail_rate > 0 || read_bitflip_rate > 0; }
};

class FaultyMedium final : public Medium {
 public:
  // Borrows `base`, which must outlive this object.
  FaultyMedium(Medium* base, const FaultOptions& options);
  ~FaultyMedium() override;

  const MediumGeometry& geometry() const override;
  Status Program(std::span<SlotIo> ios) override;
  Status Read(std::span<SlotIo> ios) override;
  Status Erase(uint32_t block) override;
  Status Retire(uint32_t block) override;
  std::vector<BlockInfo> Blocks() const override;
  Status ReadLabel(std::span<uint8_t, kPageBytes> out) override;
  Status WriteLabel(std::span<const uint8_t, kPageBytes> label) override;
  Status Sync() override;

  // Deterministic one-shot faults, for tests.
  void FailNextPrograms(int n);
  void FailNextErases(int n);
  void FlipBitOnNextReads(int n);
  void set_options(const FaultOptions& options);

  // Power loss: undoes a random suffix of what was programmed, erased or
  // retired since the last Sync (everything unsynced may be lost) and tears
  // the last surviving unsynced page (part new bytes, part old). The device
  // on top must be discarded; reopen a FlashDevice on the same medium.
  // Returns how many unsynced operations were dropped.
  size_t PowerLoss();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// ---------------------------------------------------------------------------
// The device.
// ---------------------------------------------------------------------------

enum class GcPolicy {
  kGreedy,       // victim = full block with the fewest valid pages
  kCostBenefit,  // victim maximizes age * (1 - u) / (2u), u = valid fraction
};

struct FlashOptions {
  uint64_t logical_capacity_bytes = 256ull << 20;  // multiple of kPageBytes
  uint32_t pages_per_block = 256;
  double over_provisioning = 0.10;      // physical = logical * (1 + op), in whole blocks
  // When nonzero, the exact number of physical blocks (over_provisioning is
  // then ignored); ReadDeviceFileOptions fills it in for an existing file.
  uint32_t physical_blocks = 0;
  uint32_t pe_cycle_limit = 3000;       // a block erased this many times is retired
  // Foreground GC keeps at least this many blocks free; the host gets
  // kNoSpace rather than take the last free block (GC's relocation target),
  // and the ones between are slack for program-failure retries.
  uint32_t gc_low_watermark_blocks = 3;
  uint32_t gc_high_watermark_blocks = 8;  // background GC tops free blocks up to this
  GcPolicy gc_policy = GcPolicy::kGreedy;
  // Static wear leveling runs when max - min erase count exceeds this.
  uint32_t static_wl_threshold = 64;
  // Background GC: a thread that reclaims one block at a time when the
  // device has been idle this long. 0 disables the thread.
  uint32_t background_gc_idle_ms = 50;
  // File medium only: faults injected under the FTL (FaultyMedium).
  FaultOptions faults;
};

// The counters behind GET /api/v1/metrics/flash; names follow that API.
struct FlashMetrics {
  // capacity (logical, as the host sees it)
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;       // mapped logical pages * kPageBytes
  uint64_t free_bytes = 0;
  double utilization = 0;        // used / total
  // physical
  uint64_t physical_bytes = 0;   // data bytes of all non-retired blocks
  uint32_t block_count = 0;
  uint32_t free_blocks = 0;
  // health
  double health_percentage = 100;  // 100 * (1 - avg_erase_count / pe_cycle_limit)
  double avg_erase_count = 0;
  uint32_t max_erase_count = 0;
  uint32_t min_erase_count = 0;
  double wear_variance = 0;        // variance of erase counts over non-retired blocks
  // traffic
  uint64_t host_pages_written = 0;
  uint64_t nand_pages_written = 0;  // host + GC + wear-leveling + trim records
  double write_amplification = 1;  // nand / host (1 before any write)
  uint64_t host_pages_read = 0;
  uint64_t host_pages_trimmed = 0;
  // garbage collection and wear leveling
  bool gc_active = false;           // "state": "collecting" / "idle"
  uint64_t gc_runs = 0;             // victim blocks reclaimed by GC
  uint64_t blocks_reclaimed = 0;    // erases that returned a block to the free pool
  uint64_t gc_pages_moved = 0;
  uint64_t blocks_moved = 0;        // blocks relocated by static wear leveling
  uint64_t blocks_retired = 0;
  uint64_t program_failures = 0;
  uint64_t erase_failures = 0;
  uint64_t read_errors = 0;         // checksum failures seen by reads
};

// The medium geometry a device with these options needs (validates them).
Result<MediumGeometry> GeometryFor(const FlashOptions& options);

// The geometry an existing device file was created with, as options
// (logical capacity, pages per block, physical blocks; the rest default).
// kNotFound when the file does not exist, kCorruption when it is not a
// formatted device.
Result<FlashOptions> ReadDeviceFileOptions(const std::string& path);

class FlashDevice {
 public:
  // Opens a device on `medium`, which it borrows (it must outlive the
  // device). A medium with an empty label is formatted for `options`; one
  // with a label is recovered by scanning, and must match the geometry in
  // `options` (kInvalidArgument otherwise).
  static Result<std::unique_ptr<FlashDevice>> Open(const FlashOptions& options, Medium* medium);

  // Opens or creates a device backed by the file at `path` (io_uring medium,
  // wrapped in a FaultyMedium when options.faults has any fault set).
  // Traffic counters (host/NAND pages, GC runs) start from zero at every
  // open; erase counts and retirements are persistent.
  static Result<std::unique_ptr<FlashDevice>> OpenFile(const FlashOptions& options,
                                                       const std::string& path);

  ~FlashDevice();
  FlashDevice(const FlashDevice&) = delete;
  FlashDevice& operator=(const FlashDevice&) = delete;

  uint64_t logical_pages() const;
  bool direct_io() const;  // file medium opened with O_DIRECT

  // Writes pages[i] (kPageBytes each, any alignment) to logical page lpns[i].
  // A later entry for the same page wins. Errors: kInvalidArgument (page out
  // of range, size mismatch), kNoSpace, kIoError. On error some pages of the
  // batch may be written; each page holds either its old or its new content.
  Status Write(std::span<const uint64_t> lpns, std::span<const uint8_t* const> pages);

  // Reads logical pages into out[i] (kPageBytes each). Errors: kInvalidArgument,
  // kCorruption (a checksum failed; that page's buffer is zeroed), kIoError.
  // A page found corrupt by the recovery scan (its data checksum fails but
  // later pages of its block are intact, so it was not torn by a crash)
  // stays mapped and keeps reporting kCorruption.
  Status Read(std::span<const uint64_t> lpns, std::span<uint8_t* const> out);

  // Unmaps logical pages; they read as zeros afterwards.
  Status Trim(std::span<const uint64_t> lpns);

  // Makes every acknowledged write and trim durable.
  Status Flush();

  // Runs up to `max_blocks` GC steps now, regardless of watermarks (the
  // background thread calls this too). Returns how many blocks were freed.
  Result<uint32_t> CollectGarbage(uint32_t max_blocks);

  FlashMetrics Metrics() const;

  // Checks the FTL's internal invariants (map <-> reverse map, valid counts,
  // block states). For tests and fsck; takes the mutex.
  Status CheckInvariants() const;

  class Impl;

 private:
  explicit FlashDevice(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstorage::flash
