// Internal: the engine's state. engine.cc holds the catalog operations
// (volumes, snapshots), data_path.cc reads and writes, replay.cc the journal
// records' application (live and at recovery), checkpoint.cc checkpoints
// and opening, fsck.cc the checker.
//
// Every mutation is: validate -> build a journal record -> Append it
// (durable; the flash device is flushed first) -> Apply it to memory. Apply
// is the same code at recovery, so replay reproduces the live state.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "engine/block_map.h"
#include "engine/content_store.h"
#include "engine/engine.h"
#include "engine/engine_format.h"
#include "engine/journal.h"

namespace pstorage::engine {

struct Volume {
  uint64_t handle = 0;  // journal-internal number, never reused
  VolumeInfo info;      // used_bytes and reduction_ratio computed on read
  NodeId root = kNullNode;
  uint64_t mapped_blocks = 0;
  WriteCounters counters;  // this volume's writes
  uint32_t snapshots = 0;
  bool deleted = false;
  // Guards root, mapped_blocks, counters, info and deleted. Writers hold it
  // exclusively across journal append and apply, so a volume's records are
  // journaled in the order they are applied.
  mutable std::shared_mutex mu;
};

struct Snapshot {
  uint64_t handle = 0;
  uint64_t volume_handle = 0;
  SnapshotInfo info;
  NodeId root = kNullNode;  // constant after creation
  uint64_t mapped_blocks = 0;
  bool deleted = false;
  mutable std::shared_mutex mu;  // readers shared; delete exclusive
};

class Engine::Impl {
 public:
  explicit Impl(const EngineOptions& options);
  ~Impl();

  // checkpoint.cc
  Status Open();
  Status Checkpoint();
  void MaybeCheckpoint();
  Status Health() const { return CheckNotBroken(); }
  // Flash pages freed since the last checkpoint: unusable until the next.
  uint64_t PagesFreedPending() const { return contents_->Stats().pages_freed_pending; }
  std::vector<uint8_t> SerializeState(uint64_t generation) const;
  Status LoadCheckpoint(const uint8_t* data, size_t size);
  Status WriteCheckpointFile();

  // engine.cc
  Result<VolumeInfo> CreateVolume(const VolumeSpec& spec);
  std::vector<VolumeInfo> ListVolumes() const;
  Result<VolumeInfo> GetVolume(const std::string& id) const;
  Result<VolumeInfo> FindVolumeByName(const std::string& name) const;
  Result<VolumeInfo> UpdateVolume(const std::string& id, const VolumeUpdate& update);
  Status DeleteVolume(const std::string& id);
  Result<VolumeInfo> ResizeVolume(const std::string& id, uint64_t new_size);
  Result<VolumeInfo> CloneVolume(const std::string& id, const std::string& name,
                                 const std::string& description);
  Result<SnapshotInfo> CreateSnapshot(const std::string& volume_id, const std::string& name,
                                      const std::string& description, const Tags& tags);
  Result<std::vector<SnapshotInfo>> ListSnapshots(const std::string& volume_id) const;
  std::vector<SnapshotInfo> ListAllSnapshots() const;
  Result<SnapshotInfo> GetSnapshot(const std::string& id) const;
  Status DeleteSnapshot(const std::string& id);
  Result<VolumeInfo> RestoreSnapshot(const std::string& snapshot_id, const std::string& target,
                                     const std::string& new_name);
  ReductionStats Reduction() const;
  Result<ReductionStats> VolumeReduction(const std::string& id) const;

  // data_path.cc
  Result<WriteResult> Write(const std::string& volume_id, uint64_t offset,
                            std::span<const uint8_t> data);
  Status Read(const std::string& volume_id, uint64_t offset, std::span<uint8_t> out) const;
  Status ReadSnapshot(const std::string& id, uint64_t offset, std::span<uint8_t> out) const;
  Status Trim(const std::string& volume_id, uint64_t offset, uint64_t length);
  Status Flush();
  // extents.cc
  Result<std::vector<Extent>> Extents(const std::string& id, bool snapshot, uint64_t offset,
                                      uint64_t length) const;

  // fsck.cc
  Result<FsckReport> Fsck() const;
  Result<uint64_t> DeepReduce();

  flash::FlashDevice* flash() const { return flash_.get(); }

 private:
  friend class ReplayApplier;

  // replay.cc: applies one journal record to memory (live and recovery).
  Status Apply(std::span<const uint8_t> record, bool recovering);
  void ApplyCreateVolume(ByteReader& r);
  void ApplyWrite(ByteReader& r, bool recovering);
  void SetBlock(Volume& v, uint64_t lba, const MapEntry& entry);

  // Appends a record (durable) and applies it.
  Status Commit(const std::vector<uint8_t>& record);

  // Lookups; catalog_mu_ held (shared or exclusive).
  std::shared_ptr<Volume> VolumeById(const std::string& id) const;
  std::shared_ptr<Snapshot> SnapshotById(const std::string& id) const;
  // Validates a volume name and that no other volume (but `except_id`) has it.
  Status CheckName(const std::string& name, const std::string& except_id) const;
  Status ValidSize(uint64_t size) const;
  std::vector<uint8_t> EncodeCreateVolume(uint64_t handle, const VolumeInfo& info,
                                          SourceKind source, uint64_t source_handle) const;
  VolumeInfo Describe(const Volume& v) const;
  SnapshotInfo DescribeSnapshot(const Snapshot& s) const;

  // data_path.cc helpers
  Status ReadRoot(NodeId root, uint64_t size, uint64_t offset, std::span<uint8_t> out) const;
  // A write batch submitted to the journal and applied, not yet durable.
  struct PendingCommit {
    std::shared_ptr<Journal> journal;  // the journal it went to (checkpoints swap journal_)
    std::unique_ptr<Journal::Ticket> ticket;
  };
  Status WriteBatch(Volume& v, uint64_t first_lba, std::span<const uint8_t* const> blocks,
                    uint64_t logical_bytes, WriteResult* result,
                    std::vector<PendingCommit>* pending);
  Status WriteLocked(Volume& v, uint64_t offset, std::span<const uint8_t> data,
                     WriteResult* result, std::vector<PendingCommit>* pending);
  Status TrimLocked(Volume& v, uint64_t offset, uint64_t length,
                    std::vector<PendingCommit>* pending);
  Status WaitDurable(std::vector<PendingCommit>& pending);
  Status UnmapBlocks(Volume& v, std::span<const uint64_t> lbas);
  Status MergeBlock(const Volume& v, uint64_t lba, uint32_t from, uint32_t to,
                    const uint8_t* src, uint8_t* out) const;

  const EngineOptions opts_;
  flash::FlashOptions flash_options_;  // as the device was created
  uint32_t height_ = 0;                // block map tree height
  Env* env_ = nullptr;
  std::unique_ptr<Env> owned_env_;
  std::unique_ptr<flash::FlashDevice> flash_;
  std::unique_ptr<NodeStore> nodes_;
  std::unique_ptr<ContentStore> contents_;

  // Journal and checkpoints. checkpoint_mu_ serializes checkpoints; the
  // journal pointer changes only with catalog_mu_ and every volume locked.
  std::mutex checkpoint_mu_;
  std::shared_ptr<Journal> journal_;
  // Set when a write was applied in memory but its journal record did not
  // become durable: memory is ahead of the journal and of any checkpoint it
  // could write, so every later change (and checkpoint) is refused until the
  // engine is reopened, which recovers the durable, acknowledged state.
  std::atomic<bool> broken_{false};
  Status CheckNotBroken() const {
    if (!broken_.load()) return Status::Ok();
    return Status::IoError("a journal commit failed after its write was applied; the engine "
                           "refuses changes until it is reopened");
  }
  uint64_t journal_generation_ = 0;

  mutable std::shared_mutex catalog_mu_;  // guards the maps and next_handle_
  std::map<std::string, std::shared_ptr<Volume>> volumes_;      // by id
  std::map<std::string, std::shared_ptr<Snapshot>> snapshots_;  // by id
  std::map<uint64_t, std::shared_ptr<Volume>> volumes_by_handle_;
  std::map<uint64_t, std::shared_ptr<Snapshot>> snapshots_by_handle_;
  uint64_t next_handle_ = 1;

  mutable std::mutex counters_mu_;
  WriteCounters counters_;
};

// Helpers shared by the engine's files.
std::string NewUuid();
int64_t NowMs();
// Fills the counter-derived fields of *r (provisioned and live set by caller).
void FillReduction(const WriteCounters& c, uint64_t physical_bytes, ReductionStats* r);

}  // namespace pstorage::engine
