// The key-value store of ONE project namespace: JSON values with versions,
// times, TTL and tags; conditional writes, prefix listing, batches,
// transactions and watch callbacks.
//
// Contract in brief:
//   * A value is the text of exactly one JSON value (nesting depth <= 32).
//     Put stores it re-serialized compactly (whitespace dropped, member
//     order kept); Get returns that form.
//   * Every key has a version: 1 on creation, +1 per write. created_at_ms
//     survives updates; updated_at_ms is the time of the last write;
//     expires_at_ms is 0 for "never". Times come from KvOptions::now_ms.
//   * Put replaces the whole entry: value, TTL and tags (absent TTL = never
//     expires, absent tags = none).
//   * An expired key is never returned (Get says kNotFound, List skips it)
//     and counts as absent for conditions. ExpireNow() removes expired keys
//     for good; a write onto an expired key first records its expiry.
//   * Every successful write is durable (appended to the log and
//     fdatasync'ed) before the call returns, when options.on_disk. A
//     transaction or batch is one log record: after a crash, all of it or
//     none of it is there. Open() recovers every acknowledged write.
//   * Group commit: a write is appended and applied to the map under the
//     store mutex (so conditions see every earlier write, in log order),
//     then waits without the mutex for one fdatasync shared by every write
//     appended so far. Readers may therefore see a write a moment before
//     it is durable, i.e. before its call returns.
//   * If a log append or sync fails, the write whose record was not synced
//     and every write after it return kIoError, and every later write
//     returns kIoError until the store is reopened. The map may still hold
//     unsynced writes that readers of this open store can see; as with the
//     block engine, after an I/O error the store must be reopened, and
//     reopening recovers exactly what was synced (a write that returned
//     kIoError may or may not be there).
//   * Drop() deletes the project: its files are removed and every later
//     call on the object fails with kNotFound; watchers get one kClosed.
//   * Errors: kInvalidArgument (bad key, value, tags, TTL, project id,
//     limit), kNotFound (missing or expired key; a dropped store),
//     kFailedPrecondition (an if_version that does not match), kIoError,
//     kCorruption (a damaged log record that is not the log's tail, or an
//     unreadable snapshot).
//
// Thread safety: every method may be called from any thread, except that
// nothing may call the object during or after its destruction. One mutex
// guards the map and log appends; the shared fdatasync runs without it,
// one group at a time, while the next group appends. Watch callbacks run
// on a writing thread after the change is durable, in commit order,
// without the store mutex (they may call Get/List, but must not write to
// the store nor call Unwatch or Drop; they must be cheap). The destructor
// never calls a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace pstorage::kv {

// Fixed limits on tags (names and values are UTF-8 without control bytes).
inline constexpr size_t kMaxTags = 64;
inline constexpr size_t kMaxTagBytes = 256;  // per tag name and per tag value
inline constexpr int kMaxJsonDepth = 32;
inline constexpr size_t kMaxListLimit = 1000;
inline constexpr int64_t kMaxTtlSeconds = 1'000'000'000;  // about 31 years

struct KvOptions {
  std::string dir;         // where {project_id}.log/.json/.meta.json live (on_disk only)
  std::string project_id;  // [A-Za-z0-9_-]{1,64}: it becomes a file name
  bool on_disk = true;     // false: memory only, no files at all
  size_t max_key_bytes = 1024;       // keys: 1..max bytes of UTF-8, no control bytes
  size_t max_value_bytes = 1 << 20;  // the JSON text as given to Put
  uint64_t compact_log_bytes = 4 << 20;  // snapshot + truncate the log past this
  std::function<int64_t()> now_ms;       // for tests; empty = system clock (Unix ms)
};

struct Entry {
  std::string key;
  std::string value;  // compact JSON text
  uint64_t version = 0;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t expires_at_ms = 0;  // 0 = never
  std::map<std::string, std::string> tags;
};

struct PutOptions {
  std::optional<uint64_t> if_version;   // must equal the current version; 0 = must not exist
  std::optional<int64_t> ttl_seconds;   // 1..kMaxTtlSeconds; absent = never expires
  std::map<std::string, std::string> tags;
};

struct ListPage {
  std::vector<Entry> entries;  // sorted by key
  bool has_more = false;       // more keys with the prefix after the last entry
};

// Transactions: every condition is checked, then every op applied in order,
// all under the store lock and as one log record.
struct Condition {
  enum class Kind { kExists, kNotExists, kVersionEquals, kValueEquals };
  Kind kind = Kind::kExists;
  std::string key;
  uint64_t version = 0;    // kVersionEquals
  std::string value_json;  // kValueEquals: compared after compact re-serialization
};
struct TxnOp {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value_json;  // kPut
  PutOptions options;      // kPut; for kDelete only if_version is used
};
struct Txn {
  std::vector<Condition> conditions;
  std::vector<TxnOp> ops;
};
struct TxnResult {
  bool succeeded = false;      // false: a condition failed and nothing changed
  size_t failed_condition = 0; // index of the first failing condition
  // Per op when succeeded: the new entry (put) or the removed one; a
  // delete of an absent key (without if_version) changes nothing and gets
  // an entry with version 0.
  std::vector<Entry> entries;
};

struct BatchPut {
  std::string key;
  std::string value_json;
  PutOptions options;
};

// kClosed: the store was dropped; it is the watcher's last call, sent to
// every watcher once whatever its prefix, with key and value empty and
// version 0.
struct Event {
  enum class Type { kPut, kDelete, kExpire, kClosed };
  Type type = Type::kPut;
  std::string key;
  std::string value;     // the new value for kPut; empty otherwise
  uint64_t version = 0;  // the new version (kPut) or the version removed
};

struct Stats {
  uint64_t keys = 0;         // stored keys, including expired ones not yet removed
  uint64_t key_bytes = 0;    // sum of the stored key sizes
  uint64_t value_bytes = 0;  // sum of the stored value sizes
  uint64_t writes = 0;       // committed write records since Open
  uint64_t syncs = 0;        // group syncs since Open (fdatasync or compaction), 0 in memory
  uint64_t expirations = 0;  // keys removed by expiry since Open
};

class KvStore {
 public:
  // Validates options; when on_disk, creates dir if needed, loads the
  // snapshot, replays the log and truncates a torn tail.
  static Result<std::unique_ptr<KvStore>> Open(const KvOptions& options);
  // Closes the log (every acknowledged write is already durable). Calls no
  // callback, not even kClosed; no other call may be running.
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  Result<Entry> Put(const std::string& key, const std::string& value_json,
                    const PutOptions& options = {});
  Result<Entry> Get(const std::string& key) const;
  Status Delete(const std::string& key, std::optional<uint64_t> if_version = std::nullopt);
  // Removes every key (one record; a delete event per live key).
  Status DeleteAll();

  // Up to `limit` (1..kMaxListLimit) live entries whose key starts with
  // prefix and sorts after cursor ("" = from the start). Pass the last key
  // returned as the next cursor; concurrent changes never repeat or skip a
  // key that stays present.
  Result<ListPage> List(const std::string& prefix, const std::string& cursor,
                        size_t limit) const;

  Result<TxnResult> Transact(const Txn& txn);

  // All or nothing, one record; entries in input order.
  Result<std::vector<Entry>> PutBatch(const std::vector<BatchPut>& puts);
  // One result per key (kNotFound for missing or expired keys).
  std::vector<Result<Entry>> GetBatch(const std::vector<std::string>& keys) const;
  // Deletes the keys that exist (one record); returns how many did.
  Result<size_t> DeleteBatch(const std::vector<std::string>& keys);

  // Registers a callback for changes to keys starting with prefix; returns
  // its id (never 0). After Unwatch returns the callback is not running
  // and is never called again.
  uint64_t Watch(const std::string& prefix, std::function<void(const Event&)> callback);
  void Unwatch(uint64_t id);

  // Removes expired keys (one record, an expire event each); returns how many.
  Result<size_t> ExpireNow();
  // Moves the store between disk and memory, keeping every key: to disk,
  // the snapshot is written and a new log begun (stale files of the id are
  // replaced); to memory, the files are removed. Needs options.dir.
  Status SetOnDisk(bool on_disk);

  // Writes the snapshot and truncates the log now (no-op when !on_disk).
  // kIoError after an I/O error: the map may hold writes never synced.
  Status Compact();
  // A dropped store reports no keys (counters since Open stay).
  Stats GetStats() const;

  // Deletes the project: closes the log and removes {id}.log, {id}.json,
  // {id}.meta.json and their temp files, so a later Open of the same id in
  // the same dir starts empty. Waits for a running sync; a write in flight
  // whose record it did not cover returns kNotFound. Afterwards every call
  // with valid arguments fails with kNotFound "project <id> was deleted"
  // (GetBatch: per key; Unwatch: no-op) and no file is created again.
  // Events not yet delivered are discarded; every registered watcher then
  // gets one kClosed, on this thread before Drop returns, and is
  // forgotten. Watch on a dropped store calls its callback with kClosed at
  // once. kIoError if a file could not be removed (the store is dropped
  // all the same; a crash during Drop may leave some files: Open and Drop
  // again). Not from a callback.
  Status Drop();

 private:
  struct Impl;
  explicit KvStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstorage::kv
