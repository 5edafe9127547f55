// Internal to flash_sim: pieces the Medium implementations share and that
// the public contract (flash.h) deliberately does not expose.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "flash_sim/flash.h"

namespace pstorage::flash::internal {

// A heap buffer aligned for O_DIRECT. Sizes are rounded up to the alignment
// because std::aligned_alloc requires it.
inline constexpr size_t kIoAlignBytes = 4096;

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t[], AlignedFree>;

inline AlignedBuffer NewAlignedBuffer(size_t bytes) {
  const size_t rounded = (bytes + kIoAlignBytes - 1) / kIoAlignBytes * kIoAlignBytes;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kIoAlignBytes, rounded));
  if (p == nullptr) std::abort();  // like operator new, but without exceptions
  return AlignedBuffer(p);
}

// A medium whose block table can be set directly. Only FaultyMedium uses
// this, to undo an Erase or Retire lost in a simulated power loss; the
// public Medium interface has no such operation because real flash has none.
class RestorableMedium : public Medium {
 public:
  // Sets `block`'s erase count and retired flag. kInvalidArgument when the
  // block is out of range.
  virtual Status RestoreBlockInfo(uint32_t block, const BlockInfo& info) = 0;
};

// kFailedPrecondition when `medium` is not a memory or file medium.
inline Status RestoreBlockInfo(Medium* medium, uint32_t block, const BlockInfo& info) {
  auto* restorable = dynamic_cast<RestorableMedium*>(medium);
  if (restorable == nullptr) {
    return Status::FailedPrecondition("medium cannot restore block info");
  }
  return restorable->RestoreBlockInfo(block, info);
}

// Options of the file medium that the public OpenFileMedium leaves at their
// defaults.
struct FileMediumOptions {
  // false opens buffered even where O_DIRECT works; tests use it to cover
  // the buffered path on file systems that accept O_DIRECT.
  bool try_direct_io = true;
};

Result<std::unique_ptr<Medium>> OpenFileMedium(const std::string& path,
                                               const MediumGeometry& geometry,
                                               const FileMediumOptions& options,
                                               FileMediumInfo* info);

}  // namespace pstorage::flash::internal
