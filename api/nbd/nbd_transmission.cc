// The transmission phase: the reader (Transmit) decodes requests and queues
// them; workers run them against the engine and reply under write_mu_, in
// any order. Payload bytes in flight are bounded by max_inflight_bytes.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "api/nbd/nbd_connection.h"
#include "engine/engine.h"

namespace pstorage::api::nbd {
namespace {

constexpr uint16_t kKnownFlags =
    kCmdFlagFua | kCmdFlagNoHole | kCmdFlagDf | kCmdFlagReqOne | kCmdFlagFastZero;
constexpr uint64_t kMaxStatusBytes = 1ull << 30;  // scanned per BLOCK_STATUS request
constexpr size_t kMaxDescriptors = 1 << 16;

uint32_t ErrorOf(const Status& s) {
  switch (s.code()) {
    case Code::kInvalidArgument:
      return kEInval;
    case Code::kNoSpace:
      return kENoSpc;
    default:
      return kEIo;
  }
}

bool Writes(uint16_t type) {
  return type == kCmdWrite || type == kCmdTrim || type == kCmdWriteZeroes;
}

}  // namespace

bool Connection::Send(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  std::lock_guard lock(write_mu_);
  if (write_failed_) return false;
  if (!transport_.Write(a, b)) {
    write_failed_ = true;
    ::shutdown(fd_, SHUT_RDWR);  // the reader stops too
    return false;
  }
  return true;
}

void Connection::ReplySimple(uint64_t handle, uint32_t error, std::span<const uint8_t> data) {
  uint8_t h[kSimpleReplyBytes];
  Put32(h, kSimpleReplyMagic);
  Put32(h + 4, error);
  Put64(h + 8, handle);
  Send(h, data);
}

// One structured chunk with the DONE flag: `head` then `data` as payload.
void Connection::ReplyChunk(uint64_t handle, uint16_t type, std::span<const uint8_t> head,
                            std::span<const uint8_t> data) {
  std::vector<uint8_t> h(kStructuredHeaderBytes + head.size());
  Put32(h.data(), kStructuredReplyMagic);
  Put16(h.data() + 4, kReplyFlagDone);
  Put16(h.data() + 6, type);
  Put64(h.data() + 8, handle);
  Put32(h.data() + 16, static_cast<uint32_t>(head.size() + data.size()));
  std::memcpy(h.data() + kStructuredHeaderBytes, head.data(), head.size());
  Send(h, data);
}

// READ and BLOCK_STATUS need structured errors once structured replies are
// on; everything else may use simple replies.
void Connection::ReplyError(const Request& r, uint32_t error, const std::string& message) {
  if (!structured_ || (r.type != kCmdRead && r.type != kCmdBlockStatus)) {
    ReplySimple(r.handle, error);
    return;
  }
  const size_t n = std::min<size_t>(message.size(), 4096);
  std::vector<uint8_t> p(6 + n);
  Put32(p.data(), error);
  Put16(p.data() + 4, static_cast<uint16_t>(n));
  std::memcpy(p.data() + 6, message.data(), n);
  ReplyChunk(r.handle, kReplyError, p);
}

uint32_t Connection::Check(const Request& r) const {
  if ((r.flags & ~kKnownFlags) != 0) return kEInval;
  switch (r.type) {
    case kCmdRead:
    case kCmdWrite:
      if (r.length > kMaxRequestBytes) return kEInval;
      break;
    case kCmdFlush:
      return 0;
    case kCmdTrim:
    case kCmdWriteZeroes:
      break;
    case kCmdBlockStatus:
      if (!structured_ || !allocation_context_ || r.length == 0) return kEInval;
      break;
    default:
      return kEInval;
  }
  if (Writes(r.type) && export_.snapshot) return kEPerm;
  if (r.offset > export_.size_bytes || r.length > export_.size_bytes - r.offset) {
    // The spec's choice: writes past the end are ENOSPC, the rest EINVAL.
    return r.type == kCmdWrite || r.type == kCmdWriteZeroes ? kENoSpc : kEInval;
  }
  return 0;
}

void Connection::BlockStatus(const Request& r) {
  const uint64_t length = std::min<uint64_t>(r.length, kMaxStatusBytes);
  Result<std::vector<engine::Extent>> x =
      engine_.Extents(export_.id, export_.snapshot, r.offset, length);
  if (!x.ok()) return ReplyError(r, ErrorOf(x.status()), x.status().message());
  size_t n = std::min(x->size(), kMaxDescriptors);
  if (r.flags & kCmdFlagReqOne) n = std::min<size_t>(n, 1);
  std::vector<uint8_t> p(4 + 8 * n);
  Put32(p.data(), kAllocationContextId);
  for (size_t i = 0; i < n; i++) {
    const engine::Extent& e = (*x)[i];
    Put32(p.data() + 4 + 8 * i, static_cast<uint32_t>(e.length));  // <= kMaxStatusBytes
    Put32(p.data() + 8 + 8 * i, (e.hole ? kStateHole : 0) | (e.zero ? kStateZero : 0));
  }
  ReplyChunk(r.handle, kReplyBlockStatus, p);
}

void Connection::Execute(Work& w) {
  const Request& r = w.request;
  if (const uint32_t error = Check(r); error != 0) {
    return ReplyError(r, error, "request refused (see the NBD section of docs/operations.md)");
  }
  Status st;
  switch (r.type) {
    case kCmdRead: {
      if (r.length == 0 && structured_) return ReplyChunk(r.handle, kReplyNone, {});
      std::vector<uint8_t> data(r.length);
      st = export_.snapshot ? engine_.ReadSnapshot(export_.id, r.offset, data)
                            : engine_.Read(export_.id, r.offset, data);
      if (!st.ok()) break;
      if (!structured_) return ReplySimple(r.handle, 0, data);
      uint8_t offset[8];
      Put64(offset, r.offset);
      return ReplyChunk(r.handle, kReplyOffsetData, offset, data);
    }
    case kCmdWrite:  // durable when acknowledged: FUA needs nothing more
      st = engine_.Write(export_.id, r.offset, w.payload).status();
      break;
    case kCmdFlush:
      st = engine_.Flush();
      break;
    case kCmdTrim:
      st = engine_.Trim(export_.id, r.offset, r.length);
      break;
    case kCmdWriteZeroes:
      // The engine never stores zero blocks: with or without NO_HOLE the
      // range reads as zeros and takes no space (and may report as a hole).
      st = engine_.WriteZeroes(export_.id, r.offset, r.length);
      break;
    case kCmdBlockStatus:
      return BlockStatus(r);
  }
  if (!st.ok()) return ReplyError(r, ErrorOf(st), st.message());
  ReplySimple(r.handle, 0);
}

bool Connection::TakeBudget(uint64_t bytes) {
  std::unique_lock lock(mu_);
  // One request larger than the budget may still run alone.
  budget_cv_.wait(lock, [&] {
    return stopping_.load() || inflight_bytes_ == 0 ||
           inflight_bytes_ + bytes <= options_.max_inflight_bytes;
  });
  if (stopping_.load()) return false;
  inflight_bytes_ += bytes;
  return true;
}

void Connection::GiveBudget(uint64_t bytes) {
  {
    std::lock_guard lock(mu_);
    inflight_bytes_ -= bytes;
  }
  budget_cv_.notify_all();
}

void Connection::Worker() {
  for (;;) {
    Work w;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty()) return;  // closing_ and drained
      w = std::move(queue_.front());
      queue_.pop_front();
    }
    Execute(w);
    const uint64_t budget = w.budget;
    w = Work{};  // free the payload before the budget returns
    GiveBudget(budget);
  }
}

void Connection::Transmit() {
  for (size_t i = 0; i < std::max<size_t>(1, options_.workers_per_connection); i++) {
    workers_.emplace_back([this] { Worker(); });
  }
  for (;;) {
    uint8_t h[kRequestBytes];
    Work w;
    if (!transport_.Read(h, sizeof(h)) || !DecodeRequest(h, &w.request)) break;
    const Request& r = w.request;
    if (r.type == kCmdDisc) break;  // answered requests first, then close
    if (r.type == kCmdWrite && r.length > kMaxRequestBytes) break;  // cannot skip the payload
    // Payloads count against the budget; an oversized READ is refused
    // without allocating anything.
    if ((r.type == kCmdWrite || r.type == kCmdRead) && r.length <= kMaxRequestBytes) {
      w.budget = r.length;
    }
    if (!TakeBudget(w.budget)) break;
    if (r.type == kCmdWrite) {
      w.payload.resize(r.length);
      // A client gone mid-payload: nothing of it is written or acknowledged.
      if (!transport_.Read(w.payload.data(), r.length)) {
        GiveBudget(w.budget);
        break;
      }
    }
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(w));
    }
    work_cv_.notify_one();
  }
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

}  // namespace pstorage::api::nbd
