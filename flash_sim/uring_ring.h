// Internal to flash_sim: the one io_uring of a file medium. It moves batches
// of vectored transfers against one file descriptor, completely or with a
// per-transfer errno; short transfers are requeued, never ignored.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace pstorage::flash::internal {

// kIoError naming `what` and the errno `error`.
Status ErrnoStatus(const std::string& what, int error);

// One vectored transfer: a run of adjacent slots, or one metadata region.
// The caller owns the iovecs; Ring::Run advances them in place.
struct Transfer {
  uint64_t offset = 0;           // file offset of the next byte to move
  uint64_t remaining_bytes = 0;  // bytes not yet moved
  iovec* iov = nullptr;          // iovecs not yet fully moved (advanced in place)
  uint32_t iov_count = 0;
  uint32_t first = 0;       // slot runs: position of the first slot in the plan
  uint32_t slot_count = 0;  // slot runs: how many slots
  int error = 0;            // positive errno once failed
};

// Owns the io_uring. Not thread-safe: the medium serializes callers.
class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  // Call once, before Run.
  Status Init();

  // Moves every transfer completely or sets its `error`. A short transfer is
  // requeued for its remainder. Non-OK only when the ring itself failed;
  // from then on every Run fails all its transfers.
  Status Run(int fd, bool write, std::span<Transfer> transfers);

 private:
  void Prep(int fd, bool write, const Transfer& t, uint32_t index);
  unsigned Reap(std::span<Transfer> transfers);
  void Complete(Transfer& t, uint32_t index, int res);

  io_uring ring_{};
  bool initialized_ = false;
  bool broken_ = false;
  std::vector<uint32_t> queue_;  // transfers to (re)submit; capacity reused
};

}  // namespace pstorage::flash::internal
