// KvStore's shared state, used by store.cc (Open and the public methods)
// and commit.cc (append, group sync, event delivery, compaction, drop).
// Internal: the contract is kv/kv.h.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kv/kv.h"
#include "kv/kv_format.h"
#include "kv/kv_log.h"
#include "kv/snapshot.h"
#include "kv/validate.h"

namespace pstorage::kv {

inline bool Live(const Entry& e, int64_t now_ms) {
  return e.expires_at_ms == 0 || e.expires_at_ms > now_ms;
}

inline bool HasPrefix(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

struct Watcher {
  std::string prefix;
  std::function<void(const Event&)> callback;
};

// An event waits in `pending` until the record that made it is durable.
struct PendingEvent {
  uint64_t seq = 0;  // the record's sequence number
  Event event;
};

// Lock order: deliver_mu, then mu. Nobody waits for deliver_mu while
// holding mu.
struct KvStore::Impl {
  // Constant after Open.
  KvOptions options;
  SnapshotPaths paths;
  std::string log_path;

  // Guarded by mu. While `syncing`, one thread runs log->Sync() without mu;
  // appends go on, but nobody truncates or closes the log until it clears.
  mutable std::mutex mu;
  std::map<std::string, Entry> map;  // every appended record applied, synced or not
  std::unique_ptr<KvLog> log;        // null when !on_disk or dropped
  Status failure;                    // first log write error: refuse writes until reopened
  bool dropped = false;
  bool syncing = false;
  std::condition_variable sync_done;  // notified (under mu) when syncing clears
  // Records are numbered from 1 since Open, in log order.
  // Invariant: synced_seq <= appended_seq; records up to synced_seq are
  // durable (synced in the log, or in the snapshot).
  uint64_t appended_seq = 0;
  uint64_t synced_seq = 0;
  Stats stats;                       // `keys` is filled in by GetStats
  std::deque<PendingEvent> pending;  // not yet delivered, in commit order

  // deliver_mu orders deliveries and guards the watchers.
  std::mutex deliver_mu;
  std::map<uint64_t, Watcher> watchers;
  uint64_t next_watch_id = 1;
  bool closed = false;  // kClosed sent: no callback is called again

  int64_t Now() const { return options.now_ms(); }
  Status ValidateKey(const std::string& key) const {
    return kv::ValidateKey(key, options.max_key_bytes);
  }

  // kNotFound once dropped (mu held).
  Status CheckOpen() const;
  // The kIoError every write gets after a log write failed (mu held).
  Status FailedError() const;
  // The live entry for key, or null (mu held).
  const Entry* FindLive(const std::string& key, int64_t now_ms) const;
  void Apply(const format::LogOp& op);  // mu held

  // Appends ops as one record, applies them and queues events (mu held by
  // lock); then releases mu, waits until the record is durable and
  // delivers every event whose record is durable, in order.
  Status Commit(std::unique_lock<std::mutex>& lock, const std::vector<format::LogOp>& ops,
                std::vector<Event> events);
  // Waits until no sync runs (mu held by lock), so the log may be
  // truncated or closed.
  void WaitForSync(std::unique_lock<std::mutex>& lock);
  // Snapshot + truncate; publishes every appended record as durable (mu
  // held, no sync running).
  Status CompactLocked();
  // Marks the store dropped, closes the log and removes its files (mu
  // held, no sync running, not yet dropped).
  Status DropLocked();
  // SetOnDisk: files from the map / no files (mu held, no sync running,
  // not dropped, not failed).
  Status MoveToDiskLocked();
  Status MoveToMemoryLocked();
  Status RemoveFilesLocked();  // the log and snapshot files, then the folder's sync
  // Sends kClosed to every watcher and forgets them (deliver_mu held).
  void CloseWatchersLocked();

  class Stage;

 private:
  Status WaitDurable(std::unique_lock<std::mutex>& lock, uint64_t seq);
  void SyncGroup(std::unique_lock<std::mutex>& lock);
  void Fail(const Status& s);
  void Deliver();
};

}  // namespace pstorage::kv
