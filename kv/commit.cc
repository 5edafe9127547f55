// KvStore's write path: append + apply under mu, one shared fdatasync per
// group of writers (group commit), delivery of durable events, compaction,
// drop.
//
// A write appends its record and applies it under mu, then waits until the
// record is durable. If no sync is running, it becomes the leader: it marks
// `syncing`, syncs every record appended so far without mu (so others keep
// appending), publishes synced_seq and wakes every waiter. Waiters whose
// record that sync covered return; one of the others leads the next group.
#include <cassert>
#include <filesystem>

#include "kv/store_impl.h"

namespace pstorage::kv {

using format::LogOp;
using format::RecordType;

Status KvStore::Impl::CheckOpen() const {
  return dropped ? Status::NotFound("project " + options.project_id + " was deleted")
                 : Status::Ok();
}

const Entry* KvStore::Impl::FindLive(const std::string& key, int64_t now_ms) const {
  auto it = map.find(key);
  return it != map.end() && Live(it->second, now_ms) ? &it->second : nullptr;
}

void KvStore::Impl::Apply(const LogOp& op) {
  auto it = map.find(op.entry.key);
  switch (op.type) {
    case RecordType::kPut:
      if (it != map.end()) stats.value_bytes -= it->second.value.size();
      if (it == map.end()) stats.key_bytes += op.entry.key.size();
      stats.value_bytes += op.entry.value.size();
      map[op.entry.key] = op.entry;
      break;
    case RecordType::kExpire:
    case RecordType::kDelete:
      if (it == map.end()) break;  // replay of a record the snapshot holds
      stats.value_bytes -= it->second.value.size();
      stats.key_bytes -= it->first.size();
      map.erase(it);
      if (op.type == RecordType::kExpire) stats.expirations++;
      break;
    case RecordType::kClear:
      map.clear();
      stats.value_bytes = 0;
      stats.key_bytes = 0;
      break;
    case RecordType::kTxn:
      assert(false && "txn ops are flattened by DecodeRecord");
      break;
  }
}

Status KvStore::Impl::Commit(std::unique_lock<std::mutex>& lock, const std::vector<LogOp>& ops,
                             std::vector<Event> events) {
  if (ops.empty()) return Status::Ok();
  if (!failure.ok()) return FailedError();
  const uint64_t seq = appended_seq + 1;
  if (log) {
    std::vector<uint8_t> payload = format::EncodeRecord(ops);
    if (payload.size() > format::kMaxPayloadBytes) {
      return Status::InvalidArgument("write too large for one log record");
    }
    Status s = log->Append(payload);
    if (!s.ok()) {
      Fail(s);
      return s;
    }
  }
  for (const LogOp& op : ops) Apply(op);
  stats.writes++;
  appended_seq = seq;
  if (!log) synced_seq = seq;  // memory only: nothing to sync
  for (Event& ev : events) pending.push_back({seq, std::move(ev)});
  PS_RETURN_IF_ERROR(WaitDurable(lock, seq));
  lock.unlock();
  Deliver();
  return Status::Ok();
}

// Returns once record seq is durable, or the error that stopped it (mu
// held by lock).
Status KvStore::Impl::WaitDurable(std::unique_lock<std::mutex>& lock, uint64_t seq) {
  while (synced_seq < seq) {
    if (syncing) {
      sync_done.wait(lock);  // that sync may cover seq, even after a failure
      continue;
    }
    if (dropped) return CheckOpen();
    if (!failure.ok()) return FailedError();
    SyncGroup(lock);
  }
  return Status::Ok();
}

// Makes every record appended so far durable, or records the failure (mu
// held by lock, released during the fdatasync; no sync running).
void KvStore::Impl::SyncGroup(std::unique_lock<std::mutex>& lock) {
  assert(log != nullptr && !syncing);  // on disk and not dropped
  stats.syncs++;
  // The snapshot holds every applied record, so compacting makes the group
  // durable too. A failed snapshot leaves the log whole: sync it instead,
  // and the next group tries again.
  if (log->size_bytes() >= options.compact_log_bytes && CompactLocked().ok()) return;
  if (!failure.ok()) return;  // the truncate after a good snapshot failed
  const uint64_t target = appended_seq;
  syncing = true;
  lock.unlock();
  Status s = log->Sync();
  lock.lock();
  syncing = false;
  sync_done.notify_all();
  if (!s.ok()) {
    Fail(s);
    return;
  }
  assert(target >= synced_seq);  // nothing compacts while syncing
  synced_seq = target;
}

void KvStore::Impl::WaitForSync(std::unique_lock<std::mutex>& lock) {
  sync_done.wait(lock, [this] { return !syncing; });
}

// mu held. No sync starts again, so once a running one ends synced_seq
// stays put, and the events of records after it stay pending for good.
void KvStore::Impl::Fail(const Status& s) {
  if (failure.ok()) failure = s;
}

Status KvStore::Impl::FailedError() const {
  return Status::IoError("kv log write failed, reopen the store: " + failure.message());
}

// Whoever holds deliver_mu drains the durable events, so events leave in
// commit order, and a writer returns only after its own events were
// delivered.
void KvStore::Impl::Deliver() {
  std::lock_guard<std::mutex> deliver(deliver_mu);
  std::vector<Event> batch;
  {
    std::lock_guard<std::mutex> lock(mu);
    while (!pending.empty() && pending.front().seq <= synced_seq) {
      batch.push_back(std::move(pending.front().event));
      pending.pop_front();
    }
  }
  for (const Event& ev : batch) {
    for (const auto& [id, w] : watchers) {
      if (HasPrefix(ev.key, w.prefix)) w.callback(ev);
    }
  }
}

Status KvStore::Impl::CompactLocked() {
  assert(!syncing);
  if (!log) return Status::Ok();
  PS_RETURN_IF_ERROR(WriteSnapshot(paths, map));
  // Invariant: the map holds every appended record (appends happen under
  // mu), so the log holds nothing the snapshot lacks.
  synced_seq = appended_seq;
  Status s = log->Truncate();
  if (!s.ok()) Fail(s);
  return s;
}

Status KvStore::Impl::DropLocked() {
  assert(!syncing && !dropped);
  dropped = true;
  map.clear();
  pending.clear();
  stats.key_bytes = 0;
  stats.value_bytes = 0;
  log.reset();
  // Also in memory: files an earlier on-disk life of the id left behind.
  if (paths.dir.empty()) return Status::Ok();
  return RemoveFilesLocked();
}

Status KvStore::Impl::RemoveFilesLocked() {
  std::error_code ec;
  if (!std::filesystem::exists(paths.dir, ec)) return Status::Ok();
  std::filesystem::remove(log_path, ec);
  if (ec) return Status::IoError("remove " + log_path + ": " + ec.message());
  PS_RETURN_IF_ERROR(RemoveSnapshot(paths));
  return SyncDir(paths.dir);
}

Status KvStore::Impl::MoveToDiskLocked() {
  assert(!syncing && !dropped && !log);
  std::error_code ec;
  std::filesystem::create_directories(paths.dir, ec);
  if (ec) return Status::IoError("create " + paths.dir + ": " + ec.message());
  // Files of an earlier on-disk life hold nothing current.
  PS_RETURN_IF_ERROR(RemoveFilesLocked());
  PS_RETURN_IF_ERROR(WriteSnapshot(paths, map));
  std::vector<std::vector<uint8_t>> payloads;
  Result<std::unique_ptr<KvLog>> opened = KvLog::Open(log_path, &payloads);
  if (!opened.ok()) {
    (void)RemoveSnapshot(paths);
    return opened.status();
  }
  log = std::move(opened).value();
  PS_RETURN_IF_ERROR(SyncDir(paths.dir));
  synced_seq = appended_seq;
  options.on_disk = true;
  return Status::Ok();
}

Status KvStore::Impl::MoveToMemoryLocked() {
  assert(!syncing && !dropped);
  log.reset();
  options.on_disk = false;
  // Memory only: every applied record counts as durable; writers waiting
  // for a sync return.
  synced_seq = appended_seq;
  sync_done.notify_all();
  return RemoveFilesLocked();
}

void KvStore::Impl::CloseWatchersLocked() {
  closed = true;
  Event ev;
  ev.type = Event::Type::kClosed;
  for (const auto& [id, w] : watchers) w.callback(ev);
  watchers.clear();
}

}  // namespace pstorage::kv
