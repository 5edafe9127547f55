// The file medium's io_uring: queue a whole batch, submit once per round,
// reap every CQE and check its result against the bytes still owed.
#include "flash_sim/uring_ring.h"

#include <cassert>
#include <cerrno>
#include <cstring>

namespace pstorage::flash::internal {
namespace {

constexpr unsigned kRingDepth = 128;  // I/Os in flight at once

// Marks `moved` bytes of `t` done, dropping or trimming its leading iovecs.
void Advance(Transfer& t, uint64_t moved) {
  assert(moved <= t.remaining_bytes);
  t.offset += moved;
  t.remaining_bytes -= moved;
  while (moved > 0) {
    if (moved >= t.iov->iov_len) {
      moved -= t.iov->iov_len;
      t.iov++;
      t.iov_count--;
    } else {
      t.iov->iov_base = static_cast<uint8_t*>(t.iov->iov_base) + moved;
      t.iov->iov_len -= moved;
      moved = 0;
    }
  }
}

Status FailAll(std::span<Transfer> transfers) {
  for (Transfer& t : transfers) {
    if (t.remaining_bytes > 0 && t.error == 0) t.error = EIO;
  }
  return Status::IoError("io_uring submission failed");
}

}  // namespace

Status ErrnoStatus(const std::string& what, int error) {
  return Status::IoError(what + ": " + std::strerror(error));
}

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

Status Ring::Init() {
  const int ret = io_uring_queue_init(kRingDepth, &ring_, 0);
  if (ret < 0) return ErrnoStatus("io_uring_queue_init", -ret);
  initialized_ = true;
  return Status::Ok();
}

Status Ring::Run(int fd, bool write, std::span<Transfer> transfers) {
  if (broken_) return FailAll(transfers);
  queue_.clear();
  for (uint32_t i = 0; i < transfers.size(); i++) queue_.push_back(i);
  size_t next = 0;
  unsigned in_flight = 0;
  while (next < queue_.size() || in_flight > 0) {
    for (; in_flight < kRingDepth && next < queue_.size(); next++, in_flight++) {
      Prep(fd, write, transfers[queue_[next]], queue_[next]);
    }
    const int ret = io_uring_submit_and_wait(&ring_, 1);
    if (ret == -EINTR) continue;  // the wait was interrupted; submission stands
    if (ret < 0) {
      // The kernel may still own queued requests, so the ring is unusable.
      broken_ = true;
      return FailAll(transfers);
    }
    in_flight -= Reap(transfers);
  }
  return Status::Ok();
}

void Ring::Prep(int fd, bool write, const Transfer& t, uint32_t index) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  // Invariant: at most kRingDepth prepared and unreaped, and the SQ has kRingDepth entries.
  assert(sqe != nullptr);
  if (write) {
    io_uring_prep_writev(sqe, fd, t.iov, t.iov_count, t.offset);
  } else {
    io_uring_prep_readv(sqe, fd, t.iov, t.iov_count, t.offset);
  }
  io_uring_sqe_set_data64(sqe, index);
}

unsigned Ring::Reap(std::span<Transfer> transfers) {
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    const auto index = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
    Complete(transfers[index], index, cqe->res);
    count++;
  }
  io_uring_cq_advance(&ring_, count);
  return count;
}

void Ring::Complete(Transfer& t, uint32_t index, int res) {
  if (res < 0) {
    t.error = -res;
  } else if (res == 0) {
    t.error = EIO;  // end of file inside the medium: the file shrank under us
  } else {
    Advance(t, static_cast<uint64_t>(res));
    if (t.remaining_bytes > 0) queue_.push_back(index);  // short: move the rest
  }
}

}  // namespace pstorage::flash::internal
