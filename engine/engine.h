// The block engine: thin-provisioned volumes, O(1) snapshots and clones,
// and inline data reduction onto the simulated flash device.
//
// Contract in brief:
//   * Every mutating call returns only when its effect is durable: the data
//     on flash (flushed) and a checksummed journal record (group commit).
//     After a crash, Open() recovers exactly the acknowledged state.
//   * Reads of never-written or trimmed ranges return zeros. Byte ranges may
//     have any offset and length inside the volume; partial blocks are
//     read-modify-write.
//   * Snapshots are read-only. Snapshot, clone and restore cost O(1) in the
//     volume size: block maps are shared copy-on-write trees.
//   * Errors are values: kInvalidArgument (bad name/size/range),
//     kNotFound, kAlreadyExists (duplicate name), kFailedPrecondition
//     (shrink, deleting a volume that still has snapshots), kNoSpace (flash
//     full even after a checkpoint has given back the pages freed since the
//     last one: nothing acknowledged is harmed), kCorruption, kIoError.
//     Deleting a volume or snapshot that frees 1 MiB or more checkpoints at
//     once, so its space is usable when the call returns.
//   * A write is applied in memory before its journal record is durable (a
//     concurrent read may see it first; it is acknowledged only once
//     durable). If that record then fails to commit, the write returns
//     kIoError and the engine refuses every later change and checkpoint
//     with kIoError until it is reopened, which recovers exactly the
//     acknowledged state: nothing reported failed becomes durable.
//
// Thread safety: every method may be called from any thread. Writes to
// different volumes and all reads run in parallel; each volume has its own
// reader/writer lock. A write holds its volume's lock while it stores,
// journals (submits) and applies its blocks, and waits for the group commit
// after releasing it, so concurrent writes to one volume share journal
// syncs. Catalog changes (create, delete, snapshot, clone) take a catalog
// lock briefly. There is no engine-wide lock on the data path; the dedupe
// index is sharded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "flash_sim/flash.h"

namespace pstorage::engine {

class Env;

struct EngineOptions {
  std::string data_dir = "./pstorage-data";  // flash.img, journal-*, checkpoint
  flash::FlashOptions flash;                 // device geometry (capacity 1 GiB by default)
  uint64_t max_volume_bytes = 1ull << 40;    // 1 TiB
  bool dedupe_verify = true;                 // compare bytes before sharing a block
  size_t cache_bytes = 64ull << 20;          // DRAM block cache
  int zstd_level = 3;                        // deep reduction
  uint64_t checkpoint_journal_bytes = 64ull << 20;  // checkpoint when the journal passes this
  // For tests: run on these instead of files under data_dir (borrowed).
  Env* env = nullptr;
  flash::Medium* medium = nullptr;
  bool constant_hash_for_tests = false;  // every block hashes alike (collision test)
  EngineOptions() { flash.logical_capacity_bytes = 1ull << 30; }
};

using Tags = std::map<std::string, std::string>;

// Accounting; exact definitions in docs/architecture.md ("Space accounting").
struct ReductionStats {
  uint64_t provisioned_bytes = 0;
  uint64_t logical_bytes_written = 0;  // cumulative bytes accepted by Write
  uint64_t logical_bytes_live = 0;     // mapped (non-zero) blocks of all volumes * 4096
  uint64_t physical_bytes_used = 0;    // flash pages holding live fragments * 4096
  uint64_t unique_blocks = 0;
  uint64_t duplicate_blocks = 0;       // dedupe hits (cumulative)
  uint64_t zero_blocks_found = 0;
  uint64_t pattern_blocks_found = 0;   // non-zero patterns
  uint64_t bytes_saved_pattern = 0;
  uint64_t bytes_saved_dedupe = 0;
  uint64_t bytes_saved_compression = 0;
  uint64_t stored_bytes_before_compression = 0;
  uint64_t stored_bytes_after_compression = 0;
  double dedupe_ratio = 1;
  double compression_ratio = 1;
  double data_reduction_ratio = 1;   // logical live / physical used
  double total_reduction_ratio = 1;  // provisioned / physical used
};

struct VolumeInfo {
  std::string id;  // UUID
  std::string name;
  std::string description;
  Tags tags;
  uint64_t size_bytes = 0;
  uint64_t used_bytes = 0;  // mapped (non-zero) blocks * 4096
  std::string state = "available";
  int64_t created_at_ms = 0;  // Unix time
  int64_t updated_at_ms = 0;
  double reduction_ratio = 1;  // this volume's logical written / physical it added
  std::string source_snapshot_id;  // set for clones of / restores from a snapshot
};

struct SnapshotInfo {
  std::string id;
  std::string name;
  std::string description;
  Tags tags;
  std::string volume_id;
  std::string volume_name;
  uint64_t size_bytes = 0;
  uint64_t used_bytes = 0;
  std::string state = "available";
  int64_t created_at_ms = 0;
};

struct VolumeSpec {
  std::string name;
  uint64_t size_bytes = 0;  // multiple of 4096, <= max_volume_bytes
  std::string description;
  Tags tags;
};

struct VolumeUpdate {
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::optional<Tags> tags;  // replaces all tags
};

struct WriteResult {
  uint64_t bytes = 0;
  bool was_deduplicated = false;  // every whole block written was a dedupe hit
  bool was_compressed = false;    // some block was stored compressed
  double reduction_ratio = 1;     // bytes / physical bytes this write added
};

// One run of blocks with the same allocation state (Engine::Extents).
struct Extent {
  uint64_t offset = 0;  // bytes
  uint64_t length = 0;  // bytes
  bool hole = false;    // nothing mapped: never written or trimmed
  bool zero = false;    // reads as zeros (every hole; written zero blocks are unmapped)
  bool operator==(const Extent&) const = default;
};

struct FsckReport {
  uint64_t volumes = 0;
  uint64_t snapshots = 0;
  uint64_t mapped_blocks = 0;     // content references (entries of distinct leaves)
  uint64_t contents_checked = 0;
  uint64_t leaked_contents = 0;   // refcount > references
  uint64_t dangling_references = 0;  // references to contents that do not exist
  uint64_t refcount_mismatches = 0;
  uint64_t node_refcount_mismatches = 0;
  uint64_t corrupt_blocks = 0;    // hash or decode failures
  std::vector<std::string> errors;  // first few, human readable
  bool clean() const {
    return leaked_contents + dangling_references + refcount_mismatches +
               node_refcount_mismatches + corrupt_blocks == 0;
  }
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // --- volumes ---
  Result<VolumeInfo> CreateVolume(const VolumeSpec& spec);
  std::vector<VolumeInfo> ListVolumes() const;
  Result<VolumeInfo> GetVolume(const std::string& id) const;
  Result<VolumeInfo> FindVolumeByName(const std::string& name) const;
  Result<VolumeInfo> UpdateVolume(const std::string& id, const VolumeUpdate& update);
  Status DeleteVolume(const std::string& id);
  Result<VolumeInfo> ResizeVolume(const std::string& id, uint64_t new_size_bytes);
  Result<VolumeInfo> CloneVolume(const std::string& id, const std::string& name,
                                 const std::string& description);

  // --- snapshots ---
  Result<SnapshotInfo> CreateSnapshot(const std::string& volume_id, const std::string& name,
                                      const std::string& description, const Tags& tags = {});
  Result<std::vector<SnapshotInfo>> ListSnapshots(const std::string& volume_id) const;
  std::vector<SnapshotInfo> ListAllSnapshots() const;
  Result<SnapshotInfo> GetSnapshot(const std::string& snapshot_id) const;
  Status DeleteSnapshot(const std::string& snapshot_id);
  // Restores into a new volume named `new_name` (target empty) or onto the
  // existing volume `target_volume_id` (its current contents are replaced;
  // it takes the snapshot's size if that is larger).
  Result<VolumeInfo> RestoreSnapshot(const std::string& snapshot_id,
                                     const std::string& target_volume_id,
                                     const std::string& new_name = "");

  // --- data ---
  Result<WriteResult> Write(const std::string& volume_id, uint64_t offset,
                            std::span<const uint8_t> data);
  Status Read(const std::string& volume_id, uint64_t offset, std::span<uint8_t> out) const;
  Status ReadSnapshot(const std::string& snapshot_id, uint64_t offset, std::span<uint8_t> out) const;
  // Unmaps a range: it reads as zeros afterwards. Partial blocks at the ends
  // are zero-filled in place.
  Status Trim(const std::string& volume_id, uint64_t offset, uint64_t length);
  Status WriteZeroes(const std::string& volume_id, uint64_t offset, uint64_t length) {
    return Trim(volume_id, offset, length);
  }
  // The allocation map of [offset, offset + length) of a volume (or of a
  // snapshot when `snapshot`), from the block map alone (no data is read):
  // consecutive extents, merged when their state is equal, covering the
  // range exactly. Offsets need not be aligned; the first and last extents
  // are clipped to the range. Errors: kNotFound, kInvalidArgument (range
  // outside the volume). Cost: one map lookup per 4 KiB block.
  Result<std::vector<Extent>> Extents(const std::string& id, bool snapshot, uint64_t offset,
                                      uint64_t length) const;
  // Every acknowledged call is already durable; Flush exists for callers
  // (NBD) that ask for it, and syncs the flash device.
  Status Flush();

  // --- accounting, maintenance ---
  ReductionStats Reduction() const;
  Result<ReductionStats> VolumeReduction(const std::string& volume_id) const;
  flash::FlashMetrics FlashMetrics() const;
  Result<FsckReport> Fsck() const;
  // Recompresses fragments with Zstandard and repacks sparse flash pages;
  // returns flash bytes reclaimed. Ends with a checkpoint.
  Result<uint64_t> DeepReduce();
  // Writes a checkpoint and empties the journal.
  Status Checkpoint();
  // OK, or the kIoError that makes the engine refuse changes until it is
  // reopened (a journal commit failed after its write was applied).
  Status Health() const;

  class Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Offline check of a data directory (the `pstorage fsck` command): opens
// the engine (recovering it) and runs Fsck.
Result<FsckReport> FsckDataDir(const std::string& data_dir);

}  // namespace pstorage::engine
