#include "api/server/projects.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include <openssl/crypto.h>

#include "api/auth.h"
#include "api/server/log.h"

namespace pstorage::api {

namespace {

ProjectConfig WithoutKey(ProjectConfig p) {
  p.api_key.clear();
  return p;
}

}  // namespace

class ProjectRegistry::Impl {
 public:
  explicit Impl(const ServerConfig& config) : config_(config) {}
  ~Impl() { StopExpiry(); }

  Status OpenAll();
  void StartExpiry();
  void StopExpiry();

  Caller Identify(std::string_view presented) const;
  std::vector<ProjectConfig> List() const;
  Result<ProjectConfig> Get(const std::string& id) const;
  Result<std::string> DefaultProject() const;
  Result<Keyed> Create(ProjectConfig spec);
  Result<Keyed> Update(const std::string& id, const ProjectUpdate& update);
  Result<Keyed> RegenerateKey(const std::string& id);
  Status Delete(const std::string& id);
  Result<std::shared_ptr<kv::KvStore>> Store(const std::string& id) const;
  const KvConfig& limits() const { return config_.kv; }
  void CompactAll();

 private:
  kv::KvOptions OptionsFor(const ProjectConfig& p) const;
  // Writes `projects` into config.json; on success makes it the current
  // list. write_mu_ held.
  Status Commit(std::vector<ProjectConfig> projects);
  void RebuildKeyIndex();  // mu_ held exclusively
  ProjectConfig* Find(std::vector<ProjectConfig>& list, const std::string& id);
  void ExpiryLoop();

  // config_.projects is the current list; guarded by mu_ (readers shared).
  // Changes are serialized by write_mu_ (held across the config write, so
  // two changes never interleave their files), then published under mu_.
  ServerConfig config_;
  mutable std::shared_mutex mu_;
  std::mutex write_mu_;
  std::map<std::string, std::shared_ptr<kv::KvStore>> stores_;  // mu_
  std::map<std::string, std::string> key_index_;                 // hash -> project id; mu_

  std::mutex expiry_mu_;
  std::condition_variable expiry_cv_;
  bool stop_ = false;  // expiry_mu_
  std::thread expiry_thread_;
};

kv::KvOptions ProjectRegistry::Impl::OptionsFor(const ProjectConfig& p) const {
  kv::KvOptions o;
  o.dir = config_.persistent_file_path;
  o.project_id = p.id;
  o.on_disk = p.on_disk;
  o.max_key_bytes = config_.kv.max_key_bytes;
  o.max_value_bytes = config_.kv.max_value_bytes;
  return o;
}

Status ProjectRegistry::Impl::OpenAll() {
  for (const ProjectConfig& p : config_.projects) {
    Result<std::unique_ptr<kv::KvStore>> store = kv::KvStore::Open(OptionsFor(p));
    if (!store.ok()) {
      return Status(store.status().code(),
                    "project " + p.id + ": " + store.status().message());
    }
    stores_[p.id] = std::shared_ptr<kv::KvStore>(std::move(*store));
  }
  RebuildKeyIndex();
  return Status::Ok();
}

void ProjectRegistry::Impl::RebuildKeyIndex() {
  key_index_.clear();
  for (const ProjectConfig& p : config_.projects) {
    if (!p.auth.api_key_hash.empty()) key_index_[p.auth.api_key_hash] = p.id;
  }
}

ProjectConfig* ProjectRegistry::Impl::Find(std::vector<ProjectConfig>& list,
                                           const std::string& id) {
  for (ProjectConfig& p : list) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

Status ProjectRegistry::Impl::Commit(std::vector<ProjectConfig> projects) {
  ServerConfig next = config_;
  next.projects = std::move(projects);
  PS_RETURN_IF_ERROR(SaveConfig(next));
  std::unique_lock<std::shared_mutex> l(mu_);
  config_.projects = std::move(next.projects);
  RebuildKeyIndex();
  return Status::Ok();
}

Caller ProjectRegistry::Impl::Identify(std::string_view presented) const {
  Caller c;
  if (presented.empty()) return c;
  const std::string hash = HashApiKey(presented);
  const std::string& admin = config_.auth.api_key_hash;
  if (admin.size() == hash.size() && CRYPTO_memcmp(admin.data(), hash.data(), hash.size()) == 0) {
    c.kind = Caller::Kind::kAdmin;
    c.rate_key = "key:" + hash;
    return c;
  }
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = key_index_.find(hash);
  if (it == key_index_.end()) {
    c.kind = Caller::Kind::kInvalid;
    return c;
  }
  c.kind = Caller::Kind::kProject;
  c.project_id = it->second;
  c.rate_key = "key:" + hash;
  return c;
}

std::vector<ProjectConfig> ProjectRegistry::Impl::List() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  std::vector<ProjectConfig> out;
  for (const ProjectConfig& p : config_.projects) out.push_back(WithoutKey(p));
  return out;
}

Result<ProjectConfig> ProjectRegistry::Impl::Get(const std::string& id) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  for (const ProjectConfig& p : config_.projects) {
    if (p.id == id) return WithoutKey(p);
  }
  return Status::NotFound("Project " + id + " not found");
}

Result<std::string> ProjectRegistry::Impl::DefaultProject() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  if (config_.projects.empty()) {
    return Status::NotFound("there are no projects: create one with POST /api/v1/projects");
  }
  return config_.projects.front().id;
}

Result<std::shared_ptr<kv::KvStore>> ProjectRegistry::Impl::Store(const std::string& id) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = stores_.find(id);
  if (it == stores_.end()) return Status::NotFound("Project " + id + " not found");
  return it->second;
}

Result<ProjectRegistry::Keyed> ProjectRegistry::Impl::Create(ProjectConfig spec) {
  if (!ValidProjectId(spec.id)) {
    return Status::InvalidArgument("project id must be 1-64 characters of A-Z a-z 0-9 _ -");
  }
  std::lock_guard<std::mutex> w(write_mu_);
  std::vector<ProjectConfig> projects;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    projects = config_.projects;
  }
  if (Find(projects, spec.id) != nullptr) {
    return Status::AlreadyExists("Project " + spec.id + " already exists");
  }
  spec.api_key.clear();
  spec.auth.api_key_hash.clear();
  bool changed = false;
  Keyed out;
  out.api_key = ApplyProjectKeyRules(&spec, &changed);
  // Files of an earlier project with this id (deleted from config.json by
  // hand, say) must not resurface: open them and drop them.
  Result<std::unique_ptr<kv::KvStore>> old = kv::KvStore::Open(OptionsFor(spec));
  if (old.ok()) {
    PS_RETURN_IF_ERROR((*old)->Drop());
  } else if (spec.on_disk) {
    return Status(old.status().code(), "project " + spec.id + ": " + old.status().message());
  }
  Result<std::unique_ptr<kv::KvStore>> store = kv::KvStore::Open(OptionsFor(spec));
  if (!store.ok()) return store.status();
  std::shared_ptr<kv::KvStore> shared(std::move(*store));
  projects.push_back(spec);
  if (Status s = Commit(std::move(projects)); !s.ok()) {
    (void)shared->Drop();  // best effort: the next Create of this id drops again
    return s;
  }
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    stores_[spec.id] = shared;
  }
  Log(LogLevel::kInfo, "created project " + spec.id);
  out.project = WithoutKey(spec);
  return out;
}

Result<ProjectRegistry::Keyed> ProjectRegistry::Impl::Update(const std::string& id,
                                                             const ProjectUpdate& u) {
  std::lock_guard<std::mutex> w(write_mu_);
  std::vector<ProjectConfig> projects;
  std::shared_ptr<kv::KvStore> store;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    projects = config_.projects;
    auto it = stores_.find(id);
    if (it != stores_.end()) store = it->second;
  }
  ProjectConfig* p = Find(projects, id);
  if (p == nullptr || store == nullptr) return Status::NotFound("Project " + id + " not found");
  const bool was_on_disk = p->on_disk;
  if (u.on_disk) p->on_disk = *u.on_disk;
  if (u.cache_in_memory) p->cache_in_memory = *u.cache_in_memory;
  if (u.auth_enabled) p->auth.enabled = *u.auth_enabled;
  if (u.save_api_key_to_file) {
    p->auth.save_api_key_to_file = *u.save_api_key_to_file;
    // The plain key is known only when it was saved; turning saving off
    // removes it from the file.
    if (!p->auth.save_api_key_to_file) p->api_key.clear();
  }
  Keyed out;
  bool changed = false;
  out.api_key = ApplyProjectKeyRules(p, &changed);
  const ProjectConfig updated = *p;
  // Storage first: when it fails the config still says what the store does.
  if (updated.on_disk != was_on_disk) PS_RETURN_IF_ERROR(store->SetOnDisk(updated.on_disk));
  if (Status s = Commit(std::move(projects)); !s.ok()) {
    if (updated.on_disk != was_on_disk) (void)store->SetOnDisk(was_on_disk);
    return s;
  }
  Log(LogLevel::kInfo, "updated project " + id);
  out.project = WithoutKey(updated);
  return out;
}

Result<ProjectRegistry::Keyed> ProjectRegistry::Impl::RegenerateKey(const std::string& id) {
  std::lock_guard<std::mutex> w(write_mu_);
  std::vector<ProjectConfig> projects;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    projects = config_.projects;
  }
  ProjectConfig* p = Find(projects, id);
  if (p == nullptr) return Status::NotFound("Project " + id + " not found");
  Keyed out;
  out.api_key = GenerateApiKey();
  p->auth.api_key_hash = HashApiKey(out.api_key);
  p->api_key = p->auth.save_api_key_to_file ? out.api_key : "";
  out.project = WithoutKey(*p);
  PS_RETURN_IF_ERROR(Commit(std::move(projects)));
  Log(LogLevel::kInfo, "regenerated the API key of project " + id);
  return out;
}

Status ProjectRegistry::Impl::Delete(const std::string& id) {
  std::lock_guard<std::mutex> w(write_mu_);
  std::vector<ProjectConfig> projects;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    projects = config_.projects;
  }
  auto it = std::find_if(projects.begin(), projects.end(),
                         [&](const ProjectConfig& p) { return p.id == id; });
  if (it == projects.end()) return Status::NotFound("Project " + id + " not found");
  projects.erase(it);
  // The config first: a crash in between leaves files nobody names, which
  // the next Create of this id removes, never a project without its data.
  PS_RETURN_IF_ERROR(Commit(std::move(projects)));
  std::shared_ptr<kv::KvStore> store;
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    auto s = stores_.find(id);
    if (s != stores_.end()) {
      store = std::move(s->second);
      stores_.erase(s);
    }
  }
  if (store) {
    Status s = store->Drop();
    if (!s.ok()) Log(LogLevel::kWarn, "project " + id + ": removing its files: " + s.ToString());
  }
  Log(LogLevel::kInfo, "deleted project " + id);
  return Status::Ok();
}

void ProjectRegistry::Impl::StartExpiry() {
  expiry_thread_ = std::thread([this] { ExpiryLoop(); });
}

void ProjectRegistry::Impl::StopExpiry() {
  {
    std::lock_guard<std::mutex> l(expiry_mu_);
    stop_ = true;
  }
  expiry_cv_.notify_all();
  if (expiry_thread_.joinable()) expiry_thread_.join();
}

void ProjectRegistry::Impl::ExpiryLoop() {
  const auto interval = std::chrono::milliseconds(config_.kv.expiry_interval_ms);
  std::unique_lock<std::mutex> l(expiry_mu_);
  while (!expiry_cv_.wait_for(l, interval, [&] { return stop_; })) {
    l.unlock();
    std::vector<std::pair<std::string, std::shared_ptr<kv::KvStore>>> stores;
    {
      std::shared_lock<std::shared_mutex> r(mu_);
      stores.assign(stores_.begin(), stores_.end());
    }
    for (auto& [id, store] : stores) {
      Result<size_t> n = store->ExpireNow();
      if (!n.ok() && n.status().code() != Code::kNotFound) {
        Log(LogLevel::kWarn, "project " + id + ": removing expired keys: " + n.status().ToString());
      }
    }
    l.lock();
  }
}

void ProjectRegistry::Impl::CompactAll() {
  std::vector<std::pair<std::string, std::shared_ptr<kv::KvStore>>> stores;
  {
    std::shared_lock<std::shared_mutex> r(mu_);
    stores.assign(stores_.begin(), stores_.end());
  }
  for (auto& [id, store] : stores) {
    Status s = store->Compact();
    if (!s.ok()) Log(LogLevel::kWarn, "project " + id + ": final compaction: " + s.ToString());
  }
}

ProjectRegistry::ProjectRegistry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProjectRegistry::~ProjectRegistry() = default;

Result<std::unique_ptr<ProjectRegistry>> ProjectRegistry::Open(const ServerConfig& config) {
  auto impl = std::make_unique<Impl>(config);
  PS_RETURN_IF_ERROR(impl->OpenAll());
  impl->StartExpiry();
  return std::unique_ptr<ProjectRegistry>(new ProjectRegistry(std::move(impl)));
}

Caller ProjectRegistry::Identify(std::string_view key) const { return impl_->Identify(key); }
std::vector<ProjectConfig> ProjectRegistry::List() const { return impl_->List(); }
Result<ProjectConfig> ProjectRegistry::Get(const std::string& id) const { return impl_->Get(id); }
Result<std::string> ProjectRegistry::DefaultProject() const { return impl_->DefaultProject(); }
Result<ProjectRegistry::Keyed> ProjectRegistry::Create(ProjectConfig spec) {
  return impl_->Create(std::move(spec));
}
Result<ProjectRegistry::Keyed> ProjectRegistry::Update(const std::string& id,
                                                       const ProjectUpdate& update) {
  return impl_->Update(id, update);
}
Result<ProjectRegistry::Keyed> ProjectRegistry::RegenerateKey(const std::string& id) {
  return impl_->RegenerateKey(id);
}
Status ProjectRegistry::Delete(const std::string& id) { return impl_->Delete(id); }
Result<std::shared_ptr<kv::KvStore>> ProjectRegistry::Store(const std::string& id) const {
  return impl_->Store(id);
}
const KvConfig& ProjectRegistry::limits() const { return impl_->limits(); }
void ProjectRegistry::Shutdown() {
  impl_->StopExpiry();
  impl_->CompactAll();
}

}  // namespace pstorage::api
