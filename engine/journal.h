// Internal: the engine's write-ahead journal and the small file API under it.
//
// The journal is an append-only file of checksummed records (format in
// journal_format.h and docs/formats.md). Append() returns only when the
// record is durable; concurrent appenders are grouped so that one leader
// writes everyone's records with one write and one fdatasync (group
// commit). Before each sync the leader runs `before_sync` (the engine flushes
// the flash device there, so data is durable before the metadata that
// points at it).
//
// Replay() reads records in order and stops at the first record that is
// torn or fails its checksum: it was never acknowledged. The file is cut
// back to the end of the last good record.
//
// Thread safety: Append may be called from any number of threads. Replay
// and Reset must not run concurrently with Append.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace pstorage::engine {

// A file opened for appending / reading. Implementations: POSIX and memory.
class File {
 public:
  virtual ~File() = default;
  virtual Status Append(std::span<const uint8_t> data) = 0;
  virtual Status Sync() = 0;  // fdatasync
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) = 0;  // short at EOF
  virtual Result<uint64_t> Size() = 0;
  virtual Status Truncate(uint64_t size) = 0;
};

// All file-system access of the engine: journals and checkpoints.
class Env {
 public:
  virtual ~Env() = default;
  // Opens (creating if missing) for read + append.
  virtual Result<std::unique_ptr<File>> OpenFile(const std::string& path) = 0;
  // Writes a whole file atomically: temp file, fsync, rename, fsync dir.
  virtual Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> data) = 0;
  virtual Result<std::vector<uint8_t>> ReadFile(const std::string& path) = 0;  // kNotFound
  virtual bool Exists(const std::string& path) = 0;
  virtual Status CreateDir(const std::string& path) = 0;  // ok if it exists
  // Removes a file (durably: the directory is synced); kNotFound if missing.
  virtual Status RemoveFile(const std::string& path) = 0;
};

Env* DefaultEnv();                       // POSIX; lives forever
std::unique_ptr<Env> NewMemoryEnv();     // for tests

struct JournalOptions {
  std::function<Status()> before_sync;  // runs in the leader before fdatasync
};

class Journal {
 public:
  static Result<std::unique_ptr<Journal>> Open(Env* env, const std::string& path,
                                               const JournalOptions& options);
  ~Journal();

  // Appends one record; returns when it is durable. Records are replayed in
  // the order their Append calls were grouped and written.
  Status Append(std::span<const uint8_t> payload);

  // Append in two steps, so a caller can fix a record's place in the
  // journal under its own lock and wait for durability after releasing it.
  // Submit copies the payload into the forming group (its order is final);
  // Wait returns when that group is durable, leading the commit if no one
  // else is. Every submitted ticket must be waited for, on this journal,
  // before the journal is destroyed. Records commit in submission order.
  struct Ticket {
    Status status;
    bool done = false;
  };
  Status Submit(std::span<const uint8_t> payload, Ticket* ticket);
  Status Wait(Ticket* ticket);
  // Commits every submitted record (callers must keep new Submits out).
  // Fails if the journal has failed or any group completing meanwhile did.
  Status Drain();

  // Calls fn(payload) for each good record, then truncates a torn tail.
  Status Replay(const std::function<Status(std::span<const uint8_t>)>& fn);

  // Empties the journal (after a checkpoint made its records redundant).
  Status Reset();

  uint64_t size_bytes() const;
  uint64_t records_appended() const;
  uint64_t syncs() const;  // group commits: syncs <= records

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstorage::engine
