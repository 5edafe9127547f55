// The file medium: a backing file (layout in file_medium_format.h) driven
// through one io_uring (uring_ring.h). Batches of slots are sorted, adjacent
// slots are coalesced into vectored I/Os, and a whole batch is queued before
// waiting.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "flash_sim/file_medium_format.h"
#include "flash_sim/medium_internal.h"
#include "flash_sim/uring_ring.h"

namespace pstorage::flash {
namespace {

namespace ff = file_format;

using internal::ErrnoStatus;
using internal::Ring;
using internal::Transfer;

constexpr uint32_t kMaxIovecsPerIo = 256;  // slots coalesced into one I/O

class UringMedium final : public internal::RestorableMedium {
 public:
  UringMedium(const MediumGeometry& geometry, int fd, bool direct_io)
      : geometry_(geometry),
        slots_base_(ff::SlotsBase(geometry.block_count)),
        fd_(fd),
        direct_io_(direct_io),
        blocks_(geometry.block_count),
        meta_(internal::NewAlignedBuffer(ff::kRegionAlignBytes)) {}
  ~UringMedium() override { close(fd_); }

  bool direct_io() const { return direct_io_; }
  Status Init() { return ring_.Init(); }
  Status Create(uint64_t file_bytes);
  Status Load(const std::string& path, uint64_t file_bytes);

  const MediumGeometry& geometry() const override { return geometry_; }
  Status Program(std::span<SlotIo> ios) override { return RunBatch(ios, /*write=*/true); }
  Status Read(std::span<SlotIo> ios) override;
  Status Erase(uint32_t block) override;
  Status Retire(uint32_t block) override;
  std::vector<BlockInfo> Blocks() const override {
    std::lock_guard lock(mu_);
    return blocks_;
  }
  Status ReadLabel(std::span<uint8_t, kPageBytes> out) override;
  Status WriteLabel(std::span<const uint8_t, kPageBytes> label) override;
  Status Sync() override;
  Status RestoreBlockInfo(uint32_t block, const BlockInfo& info) override;

 private:
  Status RunBatch(std::span<SlotIo> ios, bool write);
  int SlotError(const SlotIo& io, bool write) const;
  void Plan(std::span<SlotIo> ios, bool write);
  void DropSupersededWrites(std::span<const SlotIo> ios);
  int MetaIo(bool write, uint64_t offset, uint8_t* buf, uint64_t bytes);
  int MetaIoWithFallback(bool write, uint64_t offset, uint8_t* buf, uint64_t bytes);
  Status SetBlockInfo(uint32_t block, const BlockInfo& info);
  Status CheckBlock(uint32_t block, const char* what) const;
  Status LoadBlockTable();

  const MediumGeometry geometry_;
  const uint64_t slots_base_;
  const int fd_;
  bool direct_io_;  // cleared only while opening, before the medium is shared

  // Held across every I/O: the ring has one submitter, and the scratch
  // arrays below are reused by each batch (no allocation once warm).
  mutable std::mutex mu_;
  Ring ring_;                      // guarded by mu_
  std::vector<BlockInfo> blocks_;  // guarded by mu_; mirrors the block table
  internal::AlignedBuffer meta_;   // guarded by mu_; header/label/table I/O
  std::vector<uint32_t> order_;    // guarded by mu_; slot positions, sorted by slot
  std::vector<iovec> iovecs_;      // guarded by mu_; parallel to order_
  std::vector<Transfer> runs_;     // guarded by mu_
};

// Small reads (a cache miss of one block, typically) go straight to pread:
// the ring and its plan are shared and guarded by mu_, so through the ring
// every read would wait for every other read and for whole write batches.
// Concurrent preads on one O_DIRECT descriptor are safe and run in parallel.
Status UringMedium::Read(std::span<SlotIo> ios) {
  constexpr size_t kMaxDirectReads = 4;
  if (ios.size() > kMaxDirectReads) return RunBatch(ios, /*write=*/false);
  Status status;
  for (SlotIo& io : ios) {
    io.error = SlotError(io, /*write=*/false);
    if (io.error != 0) {
      if (status.ok()) {
        status = Status::InvalidArgument("slot " + std::to_string(io.slot) + " cannot be read");
      }
      continue;
    }
    size_t done = 0;
    while (io.error == 0 && done < kSlotBytes) {
      const ssize_t n = pread(fd_, io.buf + done, kSlotBytes - done,
                              static_cast<off_t>(slots_base_ + uint64_t{io.slot} * kSlotBytes + done));
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n == 0) {
        io.error = EIO;  // past the end of the file: the file is damaged
      } else if (errno != EINTR) {
        io.error = errno;
      }
    }
    if (io.error != 0 && status.ok()) {
      status = ErrnoStatus("read of slot " + std::to_string(io.slot), io.error);
    }
  }
  return status;
}

Status UringMedium::RunBatch(std::span<SlotIo> ios, bool write) {
  std::lock_guard lock(mu_);
  Status status;
  for (SlotIo& io : ios) {
    io.error = SlotError(io, write);
    if (io.error != 0 && status.ok()) {
      status = Status::InvalidArgument("slot " + std::to_string(io.slot) + " cannot be " +
                                       (write ? "programmed" : "read"));
    }
  }
  Plan(ios, write);
  (void)ring_.Run(fd_, write, runs_);  // failures are reported per transfer
  for (const Transfer& run : runs_) {
    if (run.error == 0) continue;
    // Slots wholly moved before the failure succeeded; the rest failed.
    const uint64_t moved_bytes = uint64_t{run.slot_count} * kSlotBytes - run.remaining_bytes;
    const uint32_t first_failed = run.first + static_cast<uint32_t>(moved_bytes / kSlotBytes);
    for (uint32_t i = first_failed; i < run.first + run.slot_count; i++) {
      ios[order_[i]].error = run.error;
    }
    if (status.ok()) {
      status = ErrnoStatus(std::string(write ? "program" : "read") + " of slot " +
                               std::to_string(ios[order_[first_failed]].slot),
                           run.error);
    }
  }
  return status;
}

int UringMedium::SlotError(const SlotIo& io, bool write) const {
  if (io.slot >= geometry_.slot_count() || io.buf == nullptr) return EINVAL;
  if (reinterpret_cast<uintptr_t>(io.buf) % kSlotAlignBytes != 0) return EINVAL;
  if (write && blocks_[io.slot / geometry_.pages_per_block].retired) return EINVAL;
  return 0;
}

// Fills order_ with the valid slots sorted by slot, iovecs_ in that order,
// and runs_ with one transfer per run of adjacent slots.
void UringMedium::Plan(std::span<SlotIo> ios, bool write) {
  order_.clear();
  for (uint32_t i = 0; i < ios.size(); i++) {
    if (ios[i].error == 0) order_.push_back(i);
  }
  // Ties keep caller order, so the last write of a slot is the one kept.
  std::sort(order_.begin(), order_.end(), [&](uint32_t a, uint32_t b) {
    return ios[a].slot != ios[b].slot ? ios[a].slot < ios[b].slot : a < b;
  });
  if (write) DropSupersededWrites(ios);
  iovecs_.resize(order_.size());
  runs_.clear();
  for (uint32_t i = 0; i < order_.size(); i++) {
    const SlotIo& io = ios[order_[i]];
    iovecs_[i] = {io.buf, kSlotBytes};
    const bool extends = !runs_.empty() && runs_.back().slot_count < kMaxIovecsPerIo &&
                         ios[order_[i - 1]].slot + 1 == io.slot;
    if (!extends) {
      runs_.push_back({.offset = slots_base_ + io.slot * kSlotBytes, .first = i});
    }
    runs_.back().remaining_bytes += kSlotBytes;
    runs_.back().iov_count++;
    runs_.back().slot_count++;
  }
  for (Transfer& run : runs_) run.iov = &iovecs_[run.first];  // iovecs_ is final now
}

// A slot programmed twice in one batch keeps its last write, as if the
// batch ran in caller order; the earlier write counts as done.
void UringMedium::DropSupersededWrites(std::span<const SlotIo> ios) {
  size_t kept = 0;
  for (size_t i = 0; i < order_.size(); i++) {
    const bool superseded = i + 1 < order_.size() && ios[order_[i]].slot == ios[order_[i + 1]].slot;
    if (!superseded) order_[kept++] = order_[i];
  }
  order_.resize(kept);
}

// Returns 0 or a positive errno. The caller holds mu_ (or is opening).
int UringMedium::MetaIo(bool write, uint64_t offset, uint8_t* buf, uint64_t bytes) {
  iovec iov{buf, bytes};
  Transfer t{.offset = offset, .remaining_bytes = bytes, .iov = &iov, .iov_count = 1};
  (void)ring_.Run(fd_, write, std::span(&t, 1));
  return t.error;
}

// Where the file system refuses O_DIRECT transfers with EINVAL (it may
// accept the open and refuse only the I/O), drops to buffered I/O for good.
int UringMedium::MetaIoWithFallback(bool write, uint64_t offset, uint8_t* buf, uint64_t bytes) {
  int error = MetaIo(write, offset, buf, bytes);
  if (error != EINVAL || !direct_io_) return error;
  const int flags = fcntl(fd_, F_GETFL);
  if (flags < 0 || fcntl(fd_, F_SETFL, flags & ~O_DIRECT) < 0) return errno;
  direct_io_ = false;
  return MetaIo(write, offset, buf, bytes);
}

// A new file: sized first (which zeroes label and block table), header last,
// so a valid header always means a fully formatted file.
Status UringMedium::Create(uint64_t file_bytes) {
  if (ftruncate(fd_, static_cast<off_t>(file_bytes)) != 0) {
    return ErrnoStatus("ftruncate", errno);
  }
  ff::EncodeHeader(geometry_, meta_.get());
  const int error = MetaIoWithFallback(true, ff::kHeaderOffset, meta_.get(), ff::kHeaderBytes);
  if (error != 0) return ErrnoStatus("write medium header", error);
  if (fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", errno);
  return Status::Ok();
}

Status UringMedium::Load(const std::string& path, uint64_t file_bytes) {
  int error = MetaIoWithFallback(false, ff::kHeaderOffset, meta_.get(), ff::kHeaderBytes);
  if (error != 0) return ErrnoStatus("read medium header", error);
  Result<MediumGeometry> found = ff::DecodeHeader(meta_.get());
  if (!found.ok()) return found.status();
  if (found->pages_per_block != geometry_.pages_per_block ||
      found->block_count != geometry_.block_count) {
    return Status::InvalidArgument(path + " has geometry " + ff::GeometryString(*found) +
                                   ", asked for " + ff::GeometryString(geometry_));
  }
  if (file_bytes < ff::FileBytes(geometry_)) {
    return Status::Corruption(path + " is truncated: " + std::to_string(file_bytes) +
                              " bytes, expected " + std::to_string(ff::FileBytes(geometry_)));
  }
  PS_RETURN_IF_ERROR(LoadBlockTable());
  // Rewriting the header unchanged is the first direct write, which is where
  // some file systems refuse O_DIRECT.
  error = MetaIoWithFallback(true, ff::kHeaderOffset, meta_.get(), ff::kHeaderBytes);
  if (error != 0) return ErrnoStatus("rewrite medium header", error);
  return Status::Ok();
}

Status UringMedium::LoadBlockTable() {
  const uint64_t bytes = ff::BlockTableBytes(geometry_.block_count);
  internal::AlignedBuffer table = internal::NewAlignedBuffer(bytes);
  const int error = MetaIo(false, ff::kBlockTableOffset, table.get(), bytes);
  if (error != 0) return ErrnoStatus("read block table", error);
  for (uint32_t b = 0; b < geometry_.block_count; b++) {
    Result<BlockInfo> info = ff::DecodeBlockEntry(table.get() + uint64_t{b} * ff::kBlockEntryBytes);
    if (!info.ok()) {
      return Status::Corruption("block " + std::to_string(b) + ": " + info.status().message());
    }
    blocks_[b] = *info;
  }
  return Status::Ok();
}

Status UringMedium::CheckBlock(uint32_t block, const char* what) const {
  if (block >= geometry_.block_count) {
    return Status::InvalidArgument(std::string("cannot ") + what + " block " +
                                   std::to_string(block) + ": only " +
                                   std::to_string(geometry_.block_count) + " blocks");
  }
  return Status::Ok();
}

// Updates one entry and writes the aligned 4096-byte chunk holding it. The
// caller holds mu_. On failure the in-memory table keeps the old entry.
Status UringMedium::SetBlockInfo(uint32_t block, const BlockInfo& info) {
  const BlockInfo old = blocks_[block];
  blocks_[block] = info;
  const uint32_t first = block / ff::kBlocksPerChunk * ff::kBlocksPerChunk;
  const uint32_t end = std::min(first + ff::kBlocksPerChunk, geometry_.block_count);
  std::memset(meta_.get(), 0, ff::kRegionAlignBytes);
  for (uint32_t b = first; b < end; b++) {
    ff::EncodeBlockEntry(blocks_[b], meta_.get() + (b - first) * ff::kBlockEntryBytes);
  }
  const uint64_t offset = ff::kBlockTableOffset + uint64_t{first} * ff::kBlockEntryBytes;
  const int error = MetaIo(true, offset, meta_.get(), ff::kRegionAlignBytes);
  if (error == 0) return Status::Ok();
  blocks_[block] = old;
  return ErrnoStatus("write block table entry " + std::to_string(block), error);
}

Status UringMedium::Erase(uint32_t block) {
  std::lock_guard lock(mu_);
  PS_RETURN_IF_ERROR(CheckBlock(block, "erase"));
  if (blocks_[block].retired) {
    return Status::InvalidArgument("cannot erase retired block " + std::to_string(block));
  }
  BlockInfo info = blocks_[block];
  info.erase_count++;
  return SetBlockInfo(block, info);
}

Status UringMedium::Retire(uint32_t block) {
  std::lock_guard lock(mu_);
  PS_RETURN_IF_ERROR(CheckBlock(block, "retire"));
  BlockInfo info = blocks_[block];
  info.retired = true;
  return SetBlockInfo(block, info);
}

Status UringMedium::RestoreBlockInfo(uint32_t block, const BlockInfo& info) {
  std::lock_guard lock(mu_);
  PS_RETURN_IF_ERROR(CheckBlock(block, "restore"));
  return SetBlockInfo(block, info);
}

Status UringMedium::ReadLabel(std::span<uint8_t, kPageBytes> out) {
  std::lock_guard lock(mu_);
  const int error = MetaIo(false, ff::kLabelOffset, meta_.get(), kPageBytes);
  if (error != 0) return ErrnoStatus("read label", error);
  std::memcpy(out.data(), meta_.get(), kPageBytes);
  return Status::Ok();
}

Status UringMedium::WriteLabel(std::span<const uint8_t, kPageBytes> label) {
  std::lock_guard lock(mu_);
  std::memcpy(meta_.get(), label.data(), kPageBytes);
  const int error = MetaIo(true, ff::kLabelOffset, meta_.get(), kPageBytes);
  if (error != 0) return ErrnoStatus("write label", error);
  return Status::Ok();
}

// No lock: fdatasync covers every write that completed before the call, and
// the file's size never changes after creation, so data sync suffices.
Status UringMedium::Sync() {
  if (fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", errno);
  return Status::Ok();
}

// Opens with O_DIRECT when asked and allowed; *direct says which it got.
int OpenBackingFile(const std::string& path, bool* direct) {
  constexpr int kFlags = O_RDWR | O_CREAT | O_CLOEXEC;
  if (*direct) {
    const int fd = open(path.c_str(), kFlags | O_DIRECT, 0644);
    if (fd >= 0 || errno != EINVAL) return fd;
    *direct = false;
  }
  return open(path.c_str(), kFlags, 0644);
}

}  // namespace

namespace internal {

Result<std::unique_ptr<Medium>> OpenFileMedium(const std::string& path,
                                               const MediumGeometry& geometry,
                                               const FileMediumOptions& options,
                                               FileMediumInfo* info) {
  if (!ff::GeometryValid(geometry)) {
    return Status::InvalidArgument("invalid medium geometry " + ff::GeometryString(geometry));
  }
  bool direct = options.try_direct_io;
  const int fd = OpenBackingFile(path, &direct);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  auto medium = std::make_unique<UringMedium>(geometry, fd, direct);  // owns fd now
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus("fstat " + path, errno);
  PS_RETURN_IF_ERROR(medium->Init());
  const auto file_bytes = static_cast<uint64_t>(st.st_size);
  PS_RETURN_IF_ERROR(file_bytes == 0 ? medium->Create(ff::FileBytes(geometry))
                                     : medium->Load(path, file_bytes));
  if (info != nullptr) info->direct_io = medium->direct_io();
  return std::unique_ptr<Medium>(std::move(medium));
}

}  // namespace internal

Result<std::unique_ptr<Medium>> OpenFileMedium(const std::string& path,
                                               const MediumGeometry& geometry,
                                               FileMediumInfo* info) {
  return internal::OpenFileMedium(path, geometry, internal::FileMediumOptions{}, info);
}

Result<MediumGeometry> ReadFileMediumGeometry(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return ErrnoStatus("open " + path, errno);
  }
  uint8_t header[ff::kHeaderBytes];
  const ssize_t n = pread(fd, header, sizeof(header), ff::kHeaderOffset);
  const int error = errno;
  close(fd);
  if (n < 0) return ErrnoStatus("read " + path, error);
  if (n != static_cast<ssize_t>(sizeof(header))) {
    return Status::Corruption(path + " is too short for a medium header");
  }
  return ff::DecodeHeader(header);
}

}  // namespace pstorage::flash
