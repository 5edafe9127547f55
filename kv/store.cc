// KvStore: Open and the public methods (contract in kv/kv.h); the write
// path is in commit.cc.
#include <chrono>
#include <filesystem>

#include "kv/store_impl.h"

namespace pstorage::kv {

using format::LogOp;
using format::RecordType;

namespace {

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
  if (!options.dir.empty()) {  // also in memory: SetOnDisk(true) needs them
    impl->paths = MakeSnapshotPaths(options.dir, options.project_id);
    impl->log_path = options.dir + "/" + options.project_id + ".log";
  }
  if (options.on_disk) {
    std::error_code ec;
    std::filesystem::create_directories(options.dir, ec);
    if (ec) return Status::IoError("create " + options.dir + ": " + ec.message());
    PS_RETURN_IF_ERROR(LoadSnapshot(impl->paths, &impl->map));
    for (const auto& [key, e] : impl->map) {
      impl->stats.key_bytes += key.size();
      impl->stats.value_bytes += e.value.size();
    }
    std::vector<std::vector<uint8_t>> payloads;
    auto log = KvLog::Open(impl->log_path, &payloads);
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

Status KvStore::SetOnDisk(bool on_disk) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
  if (!impl_->failure.ok()) return impl_->FailedError();
  if (impl_->options.on_disk == on_disk) return Status::Ok();
  if (impl_->options.dir.empty()) return Status::InvalidArgument("no dir to keep the files in");
  impl_->WaitForSync(lock);
  return on_disk ? impl_->MoveToDiskLocked() : impl_->MoveToMemoryLocked();
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
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
  const Entry* e = impl_->FindLive(key, impl_->Now());
  if (e == nullptr) return Status::NotFound("no key " + key);
  return *e;
}

Status KvStore::Delete(const std::string& key, std::optional<uint64_t> if_version) {
  PS_RETURN_IF_ERROR(impl_->ValidateKey(key));
  std::unique_lock<std::mutex> lock(impl_->mu);
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
  Impl::Stage stage(*impl_, impl_->Now());
  auto r = stage.Delete(key, if_version);
  if (!r.ok()) return r.status();
  return impl_->Commit(lock, stage.ops(), stage.Events());
}

Status KvStore::DeleteAll() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
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
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
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
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
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
    if (op.kind == TxnOp::Kind::kDelete && !op.options.if_version && stage.Find(op.key) == nullptr) {
      // Deleting what is not there changes nothing; conditions say
      // otherwise when it matters.
      Entry absent;
      absent.key = op.key;
      result.entries.push_back(std::move(absent));
      continue;
    }
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
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
  Impl::Stage stage(*impl_, impl_->Now());
  size_t deleted = 0;
  for (const std::string& key : keys) deleted += stage.Delete(key, std::nullopt).ok() ? 1 : 0;
  PS_RETURN_IF_ERROR(impl_->Commit(lock, stage.ops(), stage.Events()));
  return deleted;
}

uint64_t KvStore::Watch(const std::string& prefix, std::function<void(const Event&)> callback) {
  std::lock_guard<std::mutex> deliver(impl_->deliver_mu);
  uint64_t id = impl_->next_watch_id++;
  if (impl_->closed) {
    callback(Event{.type = Event::Type::kClosed});
    return id;
  }
  impl_->watchers[id] = Watcher{prefix, std::move(callback)};
  return id;
}

void KvStore::Unwatch(uint64_t id) {
  std::lock_guard<std::mutex> deliver(impl_->deliver_mu);
  impl_->watchers.erase(id);
}

Result<size_t> KvStore::ExpireNow() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
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
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->WaitForSync(lock);
  PS_RETURN_IF_ERROR(impl_->CheckOpen());
  // After a failed write the map may hold records that were never synced.
  if (!impl_->failure.ok()) return impl_->FailedError();
  return impl_->CompactLocked();
}

Stats KvStore::GetStats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stats s = impl_->stats;
  s.keys = impl_->map.size();
  return s;
}

Status KvStore::Drop() {
  Status s;
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->WaitForSync(lock);
    PS_RETURN_IF_ERROR(impl_->CheckOpen());
    s = impl_->DropLocked();
  }
  std::lock_guard<std::mutex> deliver(impl_->deliver_mu);
  impl_->CloseWatchersLocked();
  return s;
}

}  // namespace pstorage::kv
