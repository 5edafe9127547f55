// A Medium in memory: every slot in one contiguous buffer, allocated once.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "flash_sim/medium_internal.h"

namespace pstorage::flash {
namespace {

struct Free {
  void operator()(uint8_t* p) const { std::free(p); }
};

class MemoryMedium final : public internal::RestorableMedium {
 public:
  explicit MemoryMedium(const MediumGeometry& geometry)
      : geometry_(geometry),
        // calloc: the OS hands out zero pages lazily, so a large medium costs
        // nothing until it is written, and unwritten slots read as zeros.
        // (At least one slot, because calloc(0) may return null.)
        slots_(static_cast<uint8_t*>(
            std::calloc(std::max<uint64_t>(geometry.slot_count(), 1), kSlotBytes))),
        blocks_(geometry.block_count) {
    if (slots_ == nullptr) std::abort();
  }

  const MediumGeometry& geometry() const override { return geometry_; }

  Status Program(std::span<SlotIo> ios) override {
    std::unique_lock lock(mu_);
    return ForEachSlot(ios, /*writing=*/true,
                       [this](SlotIo& io) { std::memcpy(SlotAt(io.slot), io.buf, kSlotBytes); });
  }

  Status Read(std::span<SlotIo> ios) override {
    std::shared_lock lock(mu_);
    return ForEachSlot(ios, /*writing=*/false,
                       [this](SlotIo& io) { std::memcpy(io.buf, SlotAt(io.slot), kSlotBytes); });
  }

  Status Erase(uint32_t block) override {
    std::unique_lock lock(mu_);
    PS_RETURN_IF_ERROR(CheckUsableBlock(block, "erase"));
    blocks_[block].erase_count++;
    return Status::Ok();
  }

  Status Retire(uint32_t block) override {
    std::unique_lock lock(mu_);
    if (block >= blocks_.size()) return OutOfRange(block, "retire");
    blocks_[block].retired = true;  // retiring twice is harmless
    return Status::Ok();
  }

  std::vector<BlockInfo> Blocks() const override {
    std::shared_lock lock(mu_);
    return blocks_;
  }

  Status ReadLabel(std::span<uint8_t, kPageBytes> out) override {
    std::shared_lock lock(mu_);
    std::memcpy(out.data(), label_, kPageBytes);
    return Status::Ok();
  }

  Status WriteLabel(std::span<const uint8_t, kPageBytes> label) override {
    std::unique_lock lock(mu_);
    std::memcpy(label_, label.data(), kPageBytes);
    return Status::Ok();
  }

  // Memory is as durable as it gets.
  Status Sync() override { return Status::Ok(); }

  Status RestoreBlockInfo(uint32_t block, const BlockInfo& info) override {
    std::unique_lock lock(mu_);
    if (block >= blocks_.size()) return OutOfRange(block, "restore");
    blocks_[block] = info;
    return Status::Ok();
  }

 private:
  uint8_t* SlotAt(uint64_t slot) { return slots_.get() + slot * kSlotBytes; }

  // Runs `copy` on every valid slot and sets each slot's error. Out-of-range
  // slots, null buffers and (when writing) slots of retired blocks get EINVAL.
  template <typename Copy>
  Status ForEachSlot(std::span<SlotIo> ios, bool writing, Copy copy) {
    Status status;
    for (SlotIo& io : ios) {
      io.error = SlotError(io, writing);
      if (io.error == 0) {
        copy(io);
      } else if (status.ok()) {
        status = Status::InvalidArgument("slot " + std::to_string(io.slot) +
                                         (writing ? " cannot be programmed" : " cannot be read"));
      }
    }
    return status;
  }

  int SlotError(const SlotIo& io, bool writing) const {
    if (io.slot >= geometry_.slot_count() || io.buf == nullptr) return EINVAL;
    if (writing && blocks_[io.slot / geometry_.pages_per_block].retired) return EINVAL;
    return 0;
  }

  Status CheckUsableBlock(uint32_t block, const char* what) const {
    if (block >= blocks_.size()) return OutOfRange(block, what);
    if (blocks_[block].retired) {
      return Status::InvalidArgument(std::string("cannot ") + what + " retired block " +
                                     std::to_string(block));
    }
    return Status::Ok();
  }

  Status OutOfRange(uint32_t block, const char* what) const {
    return Status::InvalidArgument(std::string("cannot ") + what + " block " +
                                   std::to_string(block) + ": only " +
                                   std::to_string(blocks_.size()) + " blocks");
  }

  const MediumGeometry geometry_;
  // The slot bytes; the pointer is constant, the contents guarded by mu_.
  const std::unique_ptr<uint8_t[], Free> slots_;
  mutable std::shared_mutex mu_;    // exclusive for changes, shared for lookups
  std::vector<BlockInfo> blocks_;   // guarded by mu_
  uint8_t label_[kPageBytes] = {};  // guarded by mu_
};

}  // namespace

std::unique_ptr<Medium> NewMemoryMedium(const MediumGeometry& geometry) {
  return std::make_unique<MemoryMedium>(geometry);
}

}  // namespace pstorage::flash
