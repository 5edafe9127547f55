// KvStore: the map, its log, and event delivery (contract in kv/kv.h).
#include <algorithm>
#include <cassert>
#include <chrono>
#include <deque>
#include <filesystem>
#include <mutex>

#include "kv/kv.h"
#include "kv/kv_format.h"
#include "kv/kv_log.h"
#include "kv/snapshot.h"
#include "kv/validate.h"

namespace pstorage::kv {

using format::LogOp;
using format::RecordType;

namespace {

struct Watcher {
  std::string prefix;
  std::function<void(const Event&)> callback;
};

bool Live(const Entry& e, int64_t now_ms) {
  return e.expires_at_ms == 0 || e.expires_at_ms > now_ms;
}

bool HasPrefix(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

Event EventFor(const LogOp& op) {
  Event ev;
  ev.key = op.entry.key;
  ev.version = op.entry.version;
  if (op.type == RecordType::kPut) ev.value = op.entry.value;
  ev.type = op.type == RecordType::kPut      ? Event::Type::kPut
            : op.type == RecordType::kExpire ? Event::Type::kExpire
                                             : Event::Type::kDelete;
  return ev;
}

}  // namespace

struct KvStore::Impl {
  // Constant after Open.
  KvOptions options;
  SnapshotPaths paths;

  // Guarded by mu.
  mutable std::mutex mu;
  std::map<std::string, Entry> map;
  std::unique_ptr<KvLog> log;  // null when !on_disk
  bool failed = false;         // a log append failed: refuse writes until reopened
  Stats stats;
  std::deque<Event> pending;  // committed, not yet delivered, in commit order

  // deliver_mu orders deliveries and guards the watchers. Lock order:
  // deliver_mu before mu; writers never wait for deliver_mu holding mu.
  std::mutex deliver_mu;
  std::map<uint64_t, Watcher> watchers;
  uint64_t next_watch_id = 1;

  int64_t Now() const { return options.now_ms(); }

  Status ValidateKey(const std::string& key) const {
    return kv::ValidateKey(key, options.max_key_bytes);
  }

  // The live entry for key, or null (mu held).
  const Entry* FindLive(const std::string& key, int64_t now_ms) const {
    auto it = map.find(key);
    return it != map.end() && Live(it->second, now_ms) ? &it->second : nullptr;
  }

  void Apply(const LogOp& op);  // mu held
  // Appends ops as one record, applies them and queues events (mu held by
  // lock); then releases mu and delivers every pending event in order.
  Status Commit(std::unique_lock<std::mutex>& lock, const std::vector<LogOp>& ops,
                std::vector<Event> events);
  void Deliver();
  Status CompactLocked();

  class Stage;
};

// Stages a group of writes over the live map without changing it: later
// ops see earlier ones. mu must be held for the Stage's lifetime.
class KvStore::Impl::Stage {
 public:
  Stage(const Impl& s, int64_t now_ms) : s_(s), now_ms_(now_ms) {}

  const Entry* Find(const std::string& key) const {
    auto it = overlay_.find(key);
    if (it != overlay_.end()) return it->second ? &*it->second : nullptr;
    return s_.FindLive(key, now_ms_);
  }

  // value is already canonical; options already validated.
  Result<Entry> Put(const std::string& key, const std::string& value, const PutOptions& o) {
    const Entry* cur = Find(key);
    if (o.if_version && *o.if_version != (cur ? cur->version : 0)) {
      return Status::FailedPrecondition("version conflict on key " + key);
    }
    if (cur == nullptr) ExpireIfStale(key);
    Entry e;
    e.key = key;
    e.value = value;
    e.version = cur ? cur->version + 1 : 1;
    e.created_at_ms = cur ? cur->created_at_ms : now_ms_;
    e.updated_at_ms = now_ms_;
    e.expires_at_ms = o.ttl_seconds ? now_ms_ + *o.ttl_seconds * 1000 : 0;
    e.tags = o.tags;
    ops_.push_back({RecordType::kPut, e});
    overlay_[key] = e;
    return e;
  }

  Result<Entry> Delete(const std::string& key, std::optional<uint64_t> if_version) {
    const Entry* cur = Find(key);
    if (cur == nullptr) return Status::NotFound("no key " + key);
    if (if_version && *if_version != cur->version) {
      return Status::FailedPrecondition("version conflict on key " + key);
    }
    Entry removed = *cur;
    Entry tomb;
    tomb.key = key;
    tomb.version = removed.version;
    ops_.push_back({RecordType::kDelete, tomb});
    overlay_[key] = std::nullopt;
    return removed;
  }

  const std::vector<LogOp>& ops() const { return ops_; }
  std::vector<Event> Events() const {
    std::vector<Event> events;
    for (const LogOp& op : ops_) events.push_back(EventFor(op));
    return events;
  }

 private:
  // A stored but expired entry is recorded as expired before being replaced.
  void ExpireIfStale(const std::string& key) {
    if (overlay_.count(key)) return;
    auto it = s_.map.find(key);
    if (it == s_.map.end()) return;
    Entry gone;
    gone.key = key;
    gone.version = it->second.version;
    ops_.push_back({RecordType::kExpire, gone});
  }

  const Impl& s_;
  int64_t now_ms_;
  std::map<std::string, std::optional<Entry>> overlay_;
  std::vector<LogOp> ops_;
};

void KvStore::Impl::Apply(const LogOp& op) {
  auto it = map.find(op.entry.key);
  switch (op.type) {
    case RecordType::kPut:
      if (it != map.end()) stats.value_bytes -= it->second.value.size();
      stats.value_bytes += op.entry.value.size();
      map[op.entry.key] = op.entry;
      break;
    case RecordType::kExpire:
    case RecordType::kDelete:
      if (it == map.end()) break;  // replay of a record the snapshot holds
      stats.value_bytes -= it->second.value.size();
      map.erase(it);
      if (op.type == RecordType::kExpire) stats.expirations++;
      break;
    case RecordType::kClear:
      map.clear();
      stats.value_bytes = 0;
      break;
    case RecordType::kTxn:
      assert(false && "txn ops are flattened by DecodeRecord");
      break;
  }
}

Status KvStore::Impl::Commit(std::unique_lock<std::mutex>& lock, const std::vector<LogOp>& ops,
                             std::vector<Event> events) {
  if (ops.empty()) return Status::Ok();
  if (failed) return Status::IoError("an earlier log append failed; reopen the store");
  if (log) {
    std::vector<uint8_t> payload = format::EncodeRecord(ops);
    if (payload.size() > format::kMaxPayloadBytes) {
      return Status::InvalidArgument("write too large for one log record");
    }
    Status s = log->Append(payload);
    if (!s.ok()) {
      failed = true;
      return s;
    }
  }
  for (const LogOp& op : ops) Apply(op);
  stats.writes++;
  pending.insert(pending.end(), std::make_move_iterator(events.begin()),
                 std::make_move_iterator(events.end()));
  // A failed compaction leaves the log whole; the next write tries again.
  if (log && log->size_bytes() >= options.compact_log_bytes) (void)CompactLocked();
  lock.unlock();
  Deliver();
  return Status::Ok();
}

// Whoever holds deliver_mu drains the queue, so events leave in commit
// order, and a writer returns only after its own events were delivered.
void KvStore::Impl::Deliver() {
  std::lock_guard<std::mutex> deliver(deliver_mu);
  std::deque<Event> batch;
  {
    std::lock_guard<std::mutex> lock(mu);
    batch.swap(pending);
  }
  for (const Event& ev : batch) {
    for (const auto& [id, w] : watchers) {
      if (HasPrefix(ev.key, w.prefix)) w.callback(ev);
    }
  }
}

Status KvStore::Impl::CompactLocked() {
  if (!log) return Status::Ok();
  PS_RETURN_IF_ERROR(WriteSnapshot(paths, map));
  return log->Truncate();
}

Result<std::unique_ptr<KvStore>> KvStore::Open(const KvOptions& options) {
  if (!ValidProjectId(options.project_id)) {
    return Status::InvalidArgument("project id must match [A-Za-z0-9_-]{1,64}");
  }
  if (options.max_key_bytes == 0 || options.max_value_bytes == 0) {
    return Status::InvalidArgument("max_key_bytes and max_value_bytes must be positive");
  }
  if (options.on_disk && options.dir.empty()) return Status::InvalidArgument("dir is empty");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (!impl->options.now_ms) {
    impl->options.now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  if (options.on_disk) {
    std::error_code ec;
    std::filesystem::create_directories(options.dir, ec);
    if (ec) return Status::IoError("create " + options.dir + ": " + ec.message());
    impl->paths = MakeSnapshotPaths(options.dir, options.project_id);
    PS_RETURN_IF_ERROR(LoadSnapshot(impl->paths, &impl->map));
    for (const auto& [key, e] : impl->map) impl->stats.value_bytes += e.value.size();
    std::vector<std::vector<uint8_t>> payloads;
    auto log = KvLog::Open(options.dir + "/" + options.project_id + ".log", &payloads);
    if (!log.ok()) return log.status();
    impl->log = std::move(log).value();
    std::vector<LogOp> ops;
    for (const auto& payload : payloads) {
      PS_RETURN_IF_ERROR(format::DecodeRecord(payload, &ops));
      for (const LogOp& op : ops) impl->Apply(op);
    }
    impl->stats.expirations = 0;  // counts since Open, not replayed ones
  }
  return std::unique_ptr<KvStore>(new KvStore(std::move(impl)));
}

KvStore::KvStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvStore::~KvStore() = default;

Result<Entry> KvStore::Put(const std::string& key, const std::string& value_json,
                           const PutOptions& options) {
  auto r = PutBatch({BatchPut{key, value_json, options}});
  if (!r.ok()) return r.status();
  return std::move(r.value().front());
}

Result<Entry> KvStore::Get(const std::string& key) const {
  PS_RETURN_IF_ERROR(impl_->ValidateKey(key));
  std::lock_guard<std::mutex> lock(impl_->mu);
  const Entry* e = impl_->FindLive(key, impl_->Now());
  if (e == nullptr) return Status::NotFound("no key " + key);
  return *e;
}

Status KvStore::Delete(const std::string& key, std::optional<uint64_t> if_version) {
  PS_RETURN_IF_ERROR(impl_->ValidateKey(key));
  std::unique_lock<std::mutex> lock(impl_->mu);
  Impl::Stage stage(*impl_, impl_->Now());
  auto r = stage.Delete(key, if_version);
  if (!r.ok()) return r.status();
  return impl_->Commit(lock, stage.ops(), stage.Events());
}

Status KvStore::DeleteAll() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->map.empty()) return Status::Ok();
  std::vector<Event> events;
  int64_t now = impl_->Now();
  for (const auto& [key, e] : impl_->map) {
    if (Live(e, now)) events.push_back({Event::Type::kDelete, key, "", e.version});
  }
  return impl_->Commit(lock, {LogOp{RecordType::kClear, {}}}, std::move(events));
}

Result<ListPage> KvStore::List(const std::string& prefix, const std::string& cursor,
                               size_t limit) const {
  if (limit == 0 || limit > kMaxListLimit) {
    return Status::InvalidArgument("limit must be 1.." + std::to_string(kMaxListLimit));
  }
  ListPage page;
  std::lock_guard<std::mutex> lock(impl_->mu);
  int64_t now = impl_->Now();
  const auto& map = impl_->map;
  auto it = cursor < prefix ? map.lower_bound(prefix) : map.upper_bound(cursor);
  for (; it != map.end() && HasPrefix(it->first, prefix); ++it) {
    if (!Live(it->second, now)) continue;
    if (page.entries.size() == limit) {
      page.has_more = true;
      break;
    }
    page.entries.push_back(it->second);
  }
  return page;
}

Result<TxnResult> KvStore::Transact(const Txn& txn) {
  std::vector<std::string> values(txn.ops.size());  // canonical, computed before locking
  for (size_t i = 0; i < txn.ops.size(); i++) {
    const TxnOp& op = txn.ops[i];
    if (op.kind == TxnOp::Kind::kDelete) {
      PS_RETURN_IF_ERROR(impl_->ValidateKey(op.key));
      continue;
    }
    PS_RETURN_IF_ERROR(impl_->ValidateKey(op.key));
    PS_RETURN_IF_ERROR(ValidatePutOptions(op.options));
    auto v = ValidateValue(op.value_json, impl_->options.max_value_bytes);
    if (!v.ok()) return v.status();
    values[i] = std::move(v).value();
  }
  std::vector<std::string> expected(txn.conditions.size());
  for (size_t i = 0; i < txn.conditions.size(); i++) {
    const Condition& c = txn.conditions[i];
    PS_RETURN_IF_ERROR(impl_->ValidateKey(c.key));
    if (c.kind != Condition::Kind::kValueEquals) continue;
    auto v = CanonicalJson(c.value_json, kMaxJsonDepth);
    if (!v.ok()) return v.status();
    expected[i] = std::move(v).value();
  }
  std::unique_lock<std::mutex> lock(impl_->mu);
  TxnResult result;
  Impl::Stage stage(*impl_, impl_->Now());
  for (size_t i = 0; i < txn.conditions.size(); i++) {
    const Condition& c = txn.conditions[i];
    const Entry* e = stage.Find(c.key);
    bool holds = c.kind == Condition::Kind::kExists        ? e != nullptr
                 : c.kind == Condition::Kind::kNotExists   ? e == nullptr
                 : c.kind == Condition::Kind::kVersionEquals ? e && e->version == c.version
                                                             : e && e->value == expected[i];
    if (!holds) {
      result.failed_condition = i;
      return result;
    }
  }
  for (size_t i = 0; i < txn.ops.size(); i++) {
    const TxnOp& op = txn.ops[i];
    auto r = op.kind == TxnOp::Kind::kPut ? stage.Put(op.key, values[i], op.options)
                                          : stage.Delete(op.key, op.options.if_version);
    if (!r.ok()) return r.status();
    result.entries.push_back(std::move(r).value());
  }
  PS_RETURN_IF_ERROR(impl_->Commit(lock, stage.ops(), stage.Events()));
  result.succeeded = true;
  return result;
}

Result<std::vector<Entry>> KvStore::PutBatch(const std::vector<BatchPut>& puts) {
  Txn txn;
  for (const BatchPut& p : puts) {
    txn.ops.push_back({TxnOp::Kind::kPut, p.key, p.value_json, p.options});
  }
  auto r = Transact(txn);
  if (!r.ok()) return r.status();
  return std::move(r.value().entries);
}

std::vector<Result<Entry>> KvStore::GetBatch(const std::vector<std::string>& keys) const {
  std::vector<Result<Entry>> out;
  for (const std::string& key : keys) out.push_back(Get(key));
  return out;
}

Result<size_t> KvStore::DeleteBatch(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) PS_RETURN_IF_ERROR(impl_->ValidateKey(key));
  std::unique_lock<std::mutex> lock(impl_->mu);
  Impl::Stage stage(*impl_, impl_->Now());
  size_t deleted = 0;
  for (const std::string& key : keys) deleted += stage.Delete(key, std::nullopt).ok() ? 1 : 0;
  PS_RETURN_IF_ERROR(impl_->Commit(lock, stage.ops(), stage.Events()));
  return deleted;
}

uint64_t KvStore::Watch(const std::string& prefix, std::function<void(const Event&)> callback) {
  std::lock_guard<std::mutex> deliver(impl_->deliver_mu);
  uint64_t id = impl_->next_watch_id++;
  impl_->watchers[id] = Watcher{prefix, std::move(callback)};
  return id;
}

void KvStore::Unwatch(uint64_t id) {
  std::lock_guard<std::mutex> deliver(impl_->deliver_mu);
  impl_->watchers.erase(id);
}

Result<size_t> KvStore::ExpireNow() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  int64_t now = impl_->Now();
  std::vector<LogOp> ops;
  for (const auto& [key, e] : impl_->map) {
    if (Live(e, now)) continue;
    Entry gone;
    gone.key = key;
    gone.version = e.version;
    ops.push_back({RecordType::kExpire, std::move(gone)});
  }
  std::vector<Event> events;
  for (const LogOp& op : ops) events.push_back(EventFor(op));
  PS_RETURN_IF_ERROR(impl_->Commit(lock, ops, std::move(events)));
  return ops.size();
}

Status KvStore::Compact() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->CompactLocked();
}

Stats KvStore::GetStats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stats s = impl_->stats;
  s.keys = impl_->map.size();
  return s;
}

}  // namespace pstorage::kv
