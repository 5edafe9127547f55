// Internal: the in-memory Env behind NewMemoryEnv(), with the hooks tests
// use to simulate crashes and I/O faults. Production code only sees Env.
//
// Crash model: each file keeps the image it had at its last successful Sync
// (WriteFileAtomic syncs before it renames). DropUnsynced() sets every file
// back to that image: bytes appended since, and truncations since, are lost.
// Directory entries are always durable.
//
// Fault model: FailNextWrites(n) makes the next n writes (File::Append and
// the data write of WriteFileAtomic) fail with kIoError after storing only
// the first half of their bytes, as a torn write would. FailNextSyncs(n)
// makes the next n syncs (File::Sync and WriteFileAtomic's sync) fail with
// kIoError without making anything durable.
//
// Thread safety: every method may be called from any thread. Files opened
// from the env may outlive it.
#pragma once

#include <memory>
#include <string>

#include "engine/journal.h"

namespace pstorage::engine {

class MemoryEnv : public Env {
 public:
  MemoryEnv();
  ~MemoryEnv() override;

  Result<std::unique_ptr<File>> OpenFile(const std::string& path) override;
  Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> data) override;
  Result<std::vector<uint8_t>> ReadFile(const std::string& path) override;
  bool Exists(const std::string& path) override;
  Status CreateDir(const std::string& path) override;
  Status RemoveFile(const std::string& path) override;

  // Simulates power loss: every file goes back to its last synced image.
  void DropUnsynced();
  void FailNextWrites(int n);
  void FailNextSyncs(int n);

  struct State;  // shared with the open files

 private:
  std::shared_ptr<State> state_;
};

}  // namespace pstorage::engine
