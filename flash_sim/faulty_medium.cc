// FaultyMedium: injects program, erase and read faults into a borrowed
// Medium, and simulates power loss by undoing unsynced operations.
//
// Power loss model: every Program (per slot), Erase, Retire and WriteLabel
// since the last successful Sync is logged with what it replaced. PowerLoss
// keeps a random prefix of that log, undoes the rest newest first, and tears
// the last kept operation when it is a Program. The log holds at most
// kMaxUndoOps operations; older ones count as having reached the medium (a
// real drive's volatile cache is bounded too), which bounds memory when the
// layer above rarely syncs.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <vector>

#include "flash_sim/medium_internal.h"

namespace pstorage::flash {
namespace {

constexpr size_t kMaxUndoOps = 16384;  // x kSlotBytes: at most ~72 MiB of saved slots
constexpr uint32_t kSectorBytes = 512;
constexpr uint32_t kSectorsPerSlot = kSlotBytes / kSectorBytes;
static_assert(kSlotBytes % kSectorBytes == 0);

enum class OpKind { kProgram, kBlock, kLabel };

// One logged operation and what it replaced.
struct UndoRecord {
  OpKind kind = OpKind::kProgram;
  uint64_t slot = 0;            // kProgram
  uint32_t block = 0;           // kBlock (Erase or Retire)
  BlockInfo old_block;          // kBlock
  internal::AlignedBuffer old;  // kProgram: old slot bytes; kLabel: old label
};

// Undo runs inside PowerLoss, which has no way to report an error; a base
// that fails to take back its own bytes leaves the test harness broken.
void CheckUndo(const Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "FaultyMedium::PowerLoss: undo failed: %s\n", status.ToString().c_str());
  std::abort();
}

// The status of a whole batch from its per-slot errors: EINVAL means the
// caller asked for a bad slot, anything else is the medium failing.
Status ProgramStatus(std::span<const SlotIo> ios) {
  for (const SlotIo& io : ios) {
    if (io.error == 0) continue;
    std::string message = "program of slot " + std::to_string(io.slot) + " failed: ";
    message += std::strerror(io.error);
    if (io.error == EINVAL) return Status::InvalidArgument(std::move(message));
    return Status::IoError(std::move(message));
  }
  return Status::Ok();
}

}  // namespace

struct FaultyMedium::State {
  Medium* const base;

  // Faults. Lock order: op_mu, then fault_mu.
  std::mutex fault_mu;
  FaultOptions options;   // guarded by fault_mu
  std::mt19937_64 rng;    // guarded by fault_mu
  int fail_programs = 0;  // guarded by fault_mu
  int fail_erases = 0;    // guarded by fault_mu
  int flip_reads = 0;     // guarded by fault_mu

  // Serializes the operations that change the medium, so the log's order is
  // the order in which the base applied them.
  std::mutex op_mu;
  std::deque<UndoRecord> log;                       // guarded by op_mu; oldest first
  std::vector<internal::AlignedBuffer> free_bufs;   // guarded by op_mu; kSlotBytes each
  std::vector<SlotIo> pending;                      // guarded by op_mu; slots sent to base
  std::vector<uint32_t> pending_index;              // guarded by op_mu; caller index of each
  std::vector<SlotIo> saved;                        // guarded by op_mu; old contents
  std::vector<internal::AlignedBuffer> saved_bufs;  // guarded by op_mu; owns saved[i].buf
  std::vector<uint32_t> order;                      // guarded by op_mu; sort scratch

  State(Medium* b, const FaultOptions& o) : base(b), options(o), rng(o.seed) {}

  // Deterministic across standard libraries, unlike <random> distributions.
  uint64_t Below(uint64_t n) { return rng() % n; }
  bool Chance(double p) { return p > 0 && static_cast<double>(rng() >> 11) * 0x1p-53 < p; }

  bool TakeOneShot(int& count) {
    if (count <= 0) return false;
    count--;
    return true;
  }

  internal::AlignedBuffer TakeBuffer() {
    if (free_bufs.empty()) return internal::NewAlignedBuffer(kSlotBytes);
    internal::AlignedBuffer buf = std::move(free_bufs.back());
    free_bufs.pop_back();
    return buf;
  }

  void Log(UndoRecord record) {
    log.push_back(std::move(record));
    if (log.size() > kMaxUndoOps) {
      if (log.front().old) free_bufs.push_back(std::move(log.front().old));
      log.pop_front();
    }
  }

  void LogBlock(uint32_t block, const BlockInfo& old_block) {
    UndoRecord record;
    record.kind = OpKind::kBlock;
    record.block = block;
    record.old_block = old_block;
    Log(std::move(record));
  }

  void ClearLog() {
    for (UndoRecord& r : log) {
      if (r.old) free_bufs.push_back(std::move(r.old));
    }
    log.clear();
  }

  void ChooseProgramFaults(std::span<SlotIo> ios);
  void SaveOldContents(std::span<SlotIo> ios);
  void ChainRepeatedSlots();
  void LogPrograms(std::span<SlotIo> ios);
  void Undo(UndoRecord& record);
  void Tear(UndoRecord& record);
};

FaultyMedium::FaultyMedium(Medium* base, const FaultOptions& options)
    : s_(std::make_unique<State>(base, options)) {}

FaultyMedium::~FaultyMedium() = default;

const MediumGeometry& FaultyMedium::geometry() const { return s_->base->geometry(); }

// Slots chosen to fail get EIO and are left out of `pending`.
void FaultyMedium::State::ChooseProgramFaults(std::span<SlotIo> ios) {
  std::lock_guard lock(fault_mu);
  pending.clear();
  pending_index.clear();
  for (uint32_t i = 0; i < ios.size(); i++) {
    if (TakeOneShot(fail_programs) || Chance(options.program_fail_rate)) {
      ios[i].error = EIO;
      continue;
    }
    pending.push_back({.slot = ios[i].slot, .buf = ios[i].buf});
    pending_index.push_back(i);
  }
}

// Reads what each pending slot holds now into `saved`. A slot the base
// cannot read is dropped from `pending` with that error: it could not be undone.
void FaultyMedium::State::SaveOldContents(std::span<SlotIo> ios) {
  saved.clear();
  saved_bufs.clear();
  for (const SlotIo& io : pending) {
    saved_bufs.push_back(TakeBuffer());
    saved.push_back({.slot = io.slot, .buf = saved_bufs.back().get()});
  }
  (void)base->Read(saved);  // per-slot errors below
  size_t kept = 0;
  for (size_t i = 0; i < pending.size(); i++) {
    if (saved[i].error != 0) {
      ios[pending_index[i]].error = saved[i].error;
      free_bufs.push_back(std::move(saved_bufs[i]));
      continue;
    }
    pending[kept] = pending[i];
    pending_index[kept] = pending_index[i];
    saved[kept] = saved[i];
    saved_bufs[kept] = std::move(saved_bufs[i]);
    kept++;
  }
  pending.resize(kept);
  pending_index.resize(kept);
  saved.resize(kept);
  saved_bufs.resize(kept);
  ChainRepeatedSlots();
}

// A slot programmed twice in one batch: the later write replaces the earlier
// write's bytes, not what the base held before the batch.
void FaultyMedium::State::ChainRepeatedSlots() {
  order.resize(pending.size());
  for (uint32_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
    return pending[a].slot != pending[b].slot ? pending[a].slot < pending[b].slot : a < b;
  });
  for (size_t i = 1; i < order.size(); i++) {
    if (pending[order[i - 1]].slot == pending[order[i]].slot) {
      std::memcpy(saved[order[i]].buf, pending[order[i - 1]].buf, kSlotBytes);
    }
  }
}

// Copies the base's per-slot results back to the caller and logs each slot
// the base programmed, in caller order.
void FaultyMedium::State::LogPrograms(std::span<SlotIo> ios) {
  for (size_t i = 0; i < pending.size(); i++) {
    ios[pending_index[i]].error = pending[i].error;
    if (pending[i].error != 0) {
      free_bufs.push_back(std::move(saved_bufs[i]));
      continue;
    }
    UndoRecord record;
    record.kind = OpKind::kProgram;
    record.slot = pending[i].slot;
    record.old = std::move(saved_bufs[i]);
    Log(std::move(record));
  }
}

Status FaultyMedium::Program(std::span<SlotIo> ios) {
  std::lock_guard lock(s_->op_mu);
  s_->ChooseProgramFaults(ios);
  s_->SaveOldContents(ios);
  (void)s_->base->Program(s_->pending);  // per-slot errors, merged with injected ones
  s_->LogPrograms(ios);
  return ProgramStatus(ios);
}

// A flipped bit is a transient read disturb: only the returned copy changes.
Status FaultyMedium::Read(std::span<SlotIo> ios) {
  Status status = s_->base->Read(ios);
  std::lock_guard lock(s_->fault_mu);
  for (SlotIo& io : ios) {
    if (io.error != 0) continue;
    if (s_->TakeOneShot(s_->flip_reads) || s_->Chance(s_->options.read_bitflip_rate)) {
      const uint64_t bit = s_->Below(uint64_t{kPageBytes} * 8);
      io.buf[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    }
  }
  return status;
}

Status FaultyMedium::Erase(uint32_t block) {
  std::lock_guard lock(s_->op_mu);
  const std::vector<BlockInfo> before = s_->base->Blocks();
  // Faults hit only erases the base would accept; it rejects the others below.
  if (block < before.size() && !before[block].retired) {
    std::lock_guard fault_lock(s_->fault_mu);
    if (s_->TakeOneShot(s_->fail_erases) || s_->Chance(s_->options.erase_fail_rate)) {
      return Status::IoError("erase of block " + std::to_string(block) + " failed");
    }
  }
  PS_RETURN_IF_ERROR(s_->base->Erase(block));
  s_->LogBlock(block, before[block]);
  return Status::Ok();
}

Status FaultyMedium::Retire(uint32_t block) {
  std::lock_guard lock(s_->op_mu);
  const std::vector<BlockInfo> before = s_->base->Blocks();
  PS_RETURN_IF_ERROR(s_->base->Retire(block));  // an out-of-range block fails here
  s_->LogBlock(block, before[block]);
  return Status::Ok();
}

std::vector<BlockInfo> FaultyMedium::Blocks() const { return s_->base->Blocks(); }

Status FaultyMedium::ReadLabel(std::span<uint8_t, kPageBytes> out) {
  return s_->base->ReadLabel(out);
}

Status FaultyMedium::WriteLabel(std::span<const uint8_t, kPageBytes> label) {
  std::lock_guard lock(s_->op_mu);
  internal::AlignedBuffer old = s_->TakeBuffer();
  Status status = s_->base->ReadLabel(std::span<uint8_t, kPageBytes>(old.get(), kPageBytes));
  if (status.ok()) status = s_->base->WriteLabel(label);
  if (!status.ok()) {
    s_->free_bufs.push_back(std::move(old));
    return status;
  }
  UndoRecord record;
  record.kind = OpKind::kLabel;
  record.old = std::move(old);
  s_->Log(std::move(record));
  return Status::Ok();
}

Status FaultyMedium::Sync() {
  std::lock_guard lock(s_->op_mu);
  PS_RETURN_IF_ERROR(s_->base->Sync());
  s_->ClearLog();
  return Status::Ok();
}

void FaultyMedium::FailNextPrograms(int n) {
  std::lock_guard lock(s_->fault_mu);
  s_->fail_programs = n;
}

void FaultyMedium::FailNextErases(int n) {
  std::lock_guard lock(s_->fault_mu);
  s_->fail_erases = n;
}

void FaultyMedium::FlipBitOnNextReads(int n) {
  std::lock_guard lock(s_->fault_mu);
  s_->flip_reads = n;
}

// Restarts the generator from options.seed, so what follows is reproducible.
void FaultyMedium::set_options(const FaultOptions& options) {
  std::lock_guard lock(s_->fault_mu);
  s_->options = options;
  s_->rng.seed(options.seed);
}

void FaultyMedium::State::Undo(UndoRecord& record) {
  switch (record.kind) {
    case OpKind::kProgram: {
      SlotIo io{.slot = record.slot, .buf = record.old.get()};
      CheckUndo(base->Program(std::span(&io, 1)));
      break;
    }
    case OpKind::kBlock:
      CheckUndo(internal::RestoreBlockInfo(base, record.block, record.old_block));
      break;
    case OpKind::kLabel:
      CheckUndo(
          base->WriteLabel(std::span<const uint8_t, kPageBytes>(record.old.get(), kPageBytes)));
      break;
  }
}

// Leaves the first 1..kSectorsPerSlot-1 sectors of the new bytes and the old
// bytes after them: a program cut off part way.
void FaultyMedium::State::Tear(UndoRecord& record) {
  internal::AlignedBuffer torn = TakeBuffer();
  SlotIo io{.slot = record.slot, .buf = torn.get()};
  CheckUndo(base->Read(std::span(&io, 1)));
  const uint64_t new_bytes = (1 + Below(kSectorsPerSlot - 1)) * kSectorBytes;
  std::memcpy(torn.get() + new_bytes, record.old.get() + new_bytes, kSlotBytes - new_bytes);
  CheckUndo(base->Program(std::span(&io, 1)));
  free_bufs.push_back(std::move(torn));
}

size_t FaultyMedium::PowerLoss() {
  std::lock_guard lock(s_->op_mu);
  std::lock_guard fault_lock(s_->fault_mu);  // the cut and the tear come from the rng
  const size_t n = s_->log.size();
  const size_t kept = s_->Below(n + 1);  // the cut: ops [0, kept) survive
  for (size_t i = n; i > kept; i--) s_->Undo(s_->log[i - 1]);
  if (kept > 0 && s_->log[kept - 1].kind == OpKind::kProgram) s_->Tear(s_->log[kept - 1]);
  CheckUndo(s_->base->Sync());
  s_->ClearLog();
  return n - kept;
}

}  // namespace pstorage::flash
