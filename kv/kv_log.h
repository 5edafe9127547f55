// The append-only record log of one project (format in kv/kv_format.h).
// KvLog owns its file descriptor. Thread safety: Sync may run on one thread
// while another calls Append (both only use the descriptor, which is
// constant until destruction); every other pair of calls, and destruction,
// must be serialized by the caller.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace pstorage::kv {

class KvLog {
 public:
  // Opens (creating) the log at path and returns every intact record's
  // payload through *payloads, in order. A damaged record that reaches the
  // end of the file (a torn append) is cut off: the file is truncated to
  // the last good record and synced. A damaged record followed by more
  // bytes is kCorruption: acknowledged records would be lost.
  static Result<std::unique_ptr<KvLog>> Open(const std::string& path,
                                             std::vector<std::vector<uint8_t>>* payloads);
  ~KvLog();
  KvLog(const KvLog&) = delete;
  KvLog& operator=(const KvLog&) = delete;

  // Writes one framed record at the end, without syncing: the record is
  // durable only after a later Sync (or a snapshot that holds it). On error
  // the file may hold a partial frame; the caller must stop appending.
  Status Append(std::span<const uint8_t> payload);
  // fdatasyncs: every record appended before the call is durable on success.
  Status Sync();
  // Empties the file (after a snapshot holds everything) and syncs. On error
  // the file's state is unknown; the caller must stop appending.
  Status Truncate();
  uint64_t size_bytes() const { return size_bytes_; }

 private:
  KvLog(int fd, uint64_t size_bytes) : fd_(fd), size_bytes_(size_bytes) {}
  int fd_;
  uint64_t size_bytes_;  // end of the last good record = where the next goes
};

}  // namespace pstorage::kv
