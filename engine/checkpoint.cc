// Opening (recovery = checkpoint + journal replay) and checkpoints.
//
// Files under data_dir: flash.img (the flash device), checkpoint (the
// whole engine state as of journal generation G) and journal-G (records
// since). A checkpoint is written as: open an empty journal-(G+1), write
// the checkpoint naming G+1 atomically (temp, fsync, rename), switch to the
// new journal, remove journal-G. A crash anywhere in between leaves either
// the old checkpoint with journal-G or the new one with journal-(G+1).
#include <cstdio>
#include <filesystem>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "engine/engine_impl.h"

namespace pstorage::engine {

namespace {

std::string JournalPath(const std::string& dir, uint64_t gen) {
  return dir + "/journal-" + std::to_string(gen);
}

uint32_t HeightFor(uint64_t max_volume_bytes) {
  uint64_t blocks = std::max<uint64_t>(1, max_volume_bytes / kBlockBytes);
  uint32_t height = 1;
  while (height < 5 && (uint64_t{1} << (kFanoutBits * height)) < blocks) height++;
  return height;
}

// The fixed header of a checkpoint, readable before anything is opened.
struct CheckpointHeader {
  uint64_t generation = 0;
  uint64_t next_handle = 1;
  flash::FlashOptions flash;
  uint32_t height = 0;
};

void WriteHeader(ByteWriter& w, const CheckpointHeader& h) {
  w.U64(kCheckpointMagic);
  w.U32(kCheckpointVersion);
  w.U64(h.generation);
  w.U64(h.next_handle);
  w.U64(h.flash.logical_capacity_bytes);
  w.U32(h.flash.pages_per_block);
  w.U32(h.flash.physical_blocks);
  w.U32(h.height);
}

CheckpointHeader ReadHeader(ByteReader& r) {
  CheckpointHeader h;
  r.U64();  // magic, checked by the caller
  r.U32();
  h.generation = r.U64();
  h.next_handle = r.U64();
  h.flash.logical_capacity_bytes = r.U64();
  h.flash.pages_per_block = r.U32();
  h.flash.physical_blocks = r.U32();
  h.height = r.U32();
  return h;
}

// Verifies magic, version and the trailing checksum; returns the body size.
Result<size_t> CheckCheckpoint(const std::vector<uint8_t>& data) {
  if (data.size() < 16) return Status::Corruption("checkpoint is truncated");
  size_t body = data.size() - 8;
  ByteReader tail(data.data() + body, 8);
  if (tail.U64() != XXH3_64bits(data.data(), body)) {
    return Status::Corruption("checkpoint checksum mismatch");
  }
  ByteReader r(data.data(), body);
  if (r.U64() != kCheckpointMagic || r.U32() != kCheckpointVersion) {
    return Status::Corruption("checkpoint has a bad magic or an unsupported version");
  }
  return body;
}

}  // namespace

Engine::Impl::Impl(const EngineOptions& options) : opts_(options) {}

Engine::Impl::~Impl() = default;

Status Engine::Impl::Open() {
  env_ = opts_.env ? opts_.env : DefaultEnv();
  PS_RETURN_IF_ERROR(env_->CreateDir(opts_.data_dir));
  const std::string cp_path = opts_.data_dir + "/checkpoint";
  std::vector<uint8_t> cp;
  size_t cp_body = 0;
  CheckpointHeader header;
  header.flash = opts_.flash;
  header.height = HeightFor(opts_.max_volume_bytes);
  if (env_->Exists(cp_path)) {
    Result<std::vector<uint8_t>> data = env_->ReadFile(cp_path);
    if (!data.ok()) return data.status();
    cp = std::move(*data);
    Result<size_t> body = CheckCheckpoint(cp);
    if (!body.ok()) return body.status();
    cp_body = *body;
    ByteReader r(cp.data(), cp_body);
    CheckpointHeader stored = ReadHeader(r);
    // The device keeps the geometry it was created with.
    header.generation = stored.generation;
    header.next_handle = stored.next_handle;
    header.height = stored.height;
    header.flash.logical_capacity_bytes = stored.flash.logical_capacity_bytes;
    header.flash.pages_per_block = stored.flash.pages_per_block;
    header.flash.physical_blocks = stored.flash.physical_blocks;
  }

  Result<std::unique_ptr<flash::FlashDevice>> dev =
      opts_.medium ? flash::FlashDevice::Open(header.flash, opts_.medium)
                   : flash::FlashDevice::OpenFile(header.flash, opts_.data_dir + "/flash.img");
  if (!dev.ok()) return dev.status();
  flash_ = std::move(*dev);
  Result<flash::MediumGeometry> geometry = flash::GeometryFor(header.flash);
  if (!geometry.ok()) return geometry.status();
  header.flash.physical_blocks = geometry->block_count;
  flash_options_ = header.flash;
  height_ = header.height;

  ContentStoreOptions co;
  co.dedupe_verify = opts_.dedupe_verify;
  co.cache_bytes = opts_.cache_bytes;
  co.zstd_level = opts_.zstd_level;
  co.constant_hash_for_tests = opts_.constant_hash_for_tests;
  contents_ = std::make_unique<ContentStore>(co, flash_.get());
  // Copying a shared leaf adds one reference per content entry it holds.
  nodes_ = std::make_unique<NodeStore>(
      header.height, [this](uint64_t id) { contents_->Ref(uint32_t(id)); });

  if (cp.empty()) {
    journal_generation_ = 1;
    PS_RETURN_IF_ERROR(WriteCheckpointFile());  // a new engine: record its geometry
  } else {
    journal_generation_ = header.generation;
    next_handle_ = header.next_handle;
    PS_RETURN_IF_ERROR(LoadCheckpoint(cp.data(), cp_body));
  }
  JournalOptions jo;
  jo.before_sync = [this] { return flash_->Flush(); };
  Result<std::unique_ptr<Journal>> journal =
      Journal::Open(env_, JournalPath(opts_.data_dir, journal_generation_), jo);
  if (!journal.ok()) return journal.status();
  journal_ = std::move(*journal);
  PS_RETURN_IF_ERROR(journal_->Replay(
      [this](std::span<const uint8_t> rec) { return Apply(rec, /*recovering=*/true); }));
  return contents_->FinishRecovery();
}

// Serializes the whole state; every lock must be held (or no concurrency).
std::vector<uint8_t> Engine::Impl::SerializeState(uint64_t generation) const {
  std::vector<uint8_t> out;
  ByteWriter w(&out);
  CheckpointHeader h;
  h.generation = generation;
  h.next_handle = next_handle_;
  h.flash = flash_options_;
  h.height = height_;
  WriteHeader(w, h);
  {
    std::lock_guard lock(counters_mu_);
    w.Counters(counters_);
  }
  std::vector<NodeId> roots;
  w.U32(uint32_t(volumes_by_handle_.size()));
  for (const auto& [handle, v] : volumes_by_handle_) {
    w.U64(handle);
    w.Volume(v->info);
    w.U32(v->root);
    w.U64(v->mapped_blocks);
    w.U32(v->snapshots);
    w.Counters(v->counters);
    roots.push_back(v->root);
  }
  w.U32(uint32_t(snapshots_by_handle_.size()));
  for (const auto& [handle, s] : snapshots_by_handle_) {
    w.U64(handle);
    w.U64(s->volume_handle);
    w.Str(s->info.id);
    w.Str(s->info.name);
    w.Str(s->info.description);
    w.TagMap(s->info.tags);
    w.Str(s->info.volume_id);
    w.Str(s->info.volume_name);
    w.U64(s->info.size_bytes);
    w.I64(s->info.created_at_ms);
    w.U32(s->root);
    w.U64(s->mapped_blocks);
    roots.push_back(s->root);
  }
  std::vector<uint8_t> blob;
  nodes_->Serialize(roots, &blob);
  w.U64(blob.size());
  w.Raw(blob.data(), blob.size());
  blob.clear();
  contents_->Serialize(&blob);
  w.U64(blob.size());
  w.Raw(blob.data(), blob.size());
  w.U64(XXH3_64bits(out.data(), out.size()));
  return out;
}

Status Engine::Impl::LoadCheckpoint(const uint8_t* data, size_t size) {
  ByteReader r(data, size);
  ReadHeader(r);
  counters_ = r.Counters();
  uint32_t nvol = r.U32();
  for (uint32_t i = 0; i < nvol && r.ok(); i++) {
    auto v = std::make_shared<Volume>();
    v->handle = r.U64();
    v->info = r.Volume();
    v->root = r.U32();
    v->mapped_blocks = r.U64();
    v->snapshots = r.U32();
    v->counters = r.Counters();
    volumes_[v->info.id] = v;
    volumes_by_handle_[v->handle] = v;
  }
  uint32_t nsnap = r.U32();
  for (uint32_t i = 0; i < nsnap && r.ok(); i++) {
    auto s = std::make_shared<Snapshot>();
    s->handle = r.U64();
    s->volume_handle = r.U64();
    s->info.id = r.Str();
    s->info.name = r.Str();
    s->info.description = r.Str();
    s->info.tags = r.TagMap();
    s->info.volume_id = r.Str();
    s->info.volume_name = r.Str();
    s->info.size_bytes = r.U64();
    s->info.created_at_ms = r.I64();
    s->root = r.U32();
    s->mapped_blocks = r.U64();
    snapshots_[s->info.id] = s;
    snapshots_by_handle_[s->handle] = s;
  }
  uint64_t nodes_size = r.U64();
  const uint8_t* nodes = r.Raw(nodes_size);
  uint64_t contents_size = r.U64();
  const uint8_t* contents = r.Raw(contents_size);
  if (!r.ok() || !r.done()) return Status::Corruption("checkpoint body does not decode");
  PS_RETURN_IF_ERROR(nodes_->Load(nodes, nodes_size));
  return contents_->Load(contents, contents_size);
}

Status Engine::Impl::WriteCheckpointFile() {
  std::vector<uint8_t> data = SerializeState(journal_generation_);
  return env_->WriteFileAtomic(opts_.data_dir + "/checkpoint", data);
}

Status Engine::Impl::Checkpoint() {
  PS_RETURN_IF_ERROR(CheckNotBroken());
  std::lock_guard cp(checkpoint_mu_);
  std::unique_lock lock(catalog_mu_);
  std::vector<std::unique_lock<std::shared_mutex>> held;
  for (const auto& [handle, v] : volumes_by_handle_) held.emplace_back(v->mu);
  // Writers release their volume lock before waiting for their records; with
  // every lock held no record can be submitted, so commit what is queued
  // before the journal is replaced. If that fails, the applied state is
  // ahead of the journal: writing it as a checkpoint would make writes
  // durable that were reported failed.
  if (Status s = journal_->Drain(); !s.ok() || broken_.load()) {
    broken_.store(true);
    return s.ok() ? CheckNotBroken() : s;
  }
  uint64_t next = journal_generation_ + 1;
  std::string next_path = JournalPath(opts_.data_dir, next);
  JournalOptions jo;
  jo.before_sync = [this] { return flash_->Flush(); };
  Result<std::unique_ptr<Journal>> journal = Journal::Open(env_, next_path, jo);
  if (!journal.ok()) return journal.status();
  PS_RETURN_IF_ERROR((*journal)->Reset());  // left over from an interrupted checkpoint
  PS_RETURN_IF_ERROR(flash_->Flush());
  std::vector<uint8_t> data = SerializeState(next);
  PS_RETURN_IF_ERROR(env_->WriteFileAtomic(opts_.data_dir + "/checkpoint", data));
  std::string old_path = JournalPath(opts_.data_dir, journal_generation_);
  journal_ = std::move(*journal);
  journal_generation_ = next;
  (void)env_->RemoveFile(old_path);
  // The checkpoint made every free durable: freed ids and pages may be reused.
  return contents_->RecycleFreed();
}

void Engine::Impl::MaybeCheckpoint() {
  {
    std::shared_lock lock(catalog_mu_);  // Checkpoint swaps journal_ under it
    if (journal_->size_bytes() < opts_.checkpoint_journal_bytes) return;
  }
  (void)Checkpoint();  // on failure the journal keeps growing; the next call retries
}

// --- public face --------------------------------------------------------------------

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  PS_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<VolumeInfo> Engine::CreateVolume(const VolumeSpec& s) { return impl_->CreateVolume(s); }
std::vector<VolumeInfo> Engine::ListVolumes() const { return impl_->ListVolumes(); }
Result<VolumeInfo> Engine::GetVolume(const std::string& id) const { return impl_->GetVolume(id); }
Result<VolumeInfo> Engine::FindVolumeByName(const std::string& n) const {
  return impl_->FindVolumeByName(n);
}
Result<VolumeInfo> Engine::UpdateVolume(const std::string& id, const VolumeUpdate& u) {
  return impl_->UpdateVolume(id, u);
}
// Deleting data frees flash pages only at the next checkpoint (a page is
// reused only once no durable state can refer to it). Take that checkpoint
// now when a delete freed a megabyte or more, so the space shows up at once.
constexpr uint64_t kCheckpointAfterFreedPages = 256;

Status Engine::DeleteVolume(const std::string& id) {
  PS_RETURN_IF_ERROR(impl_->DeleteVolume(id));
  if (impl_->PagesFreedPending() >= kCheckpointAfterFreedPages) (void)impl_->Checkpoint();
  return Status::Ok();
}
Result<VolumeInfo> Engine::ResizeVolume(const std::string& id, uint64_t size) {
  return impl_->ResizeVolume(id, size);
}
Result<VolumeInfo> Engine::CloneVolume(const std::string& id, const std::string& name,
                                       const std::string& description) {
  return impl_->CloneVolume(id, name, description);
}
Result<SnapshotInfo> Engine::CreateSnapshot(const std::string& volume_id, const std::string& name,
                                            const std::string& description, const Tags& tags) {
  return impl_->CreateSnapshot(volume_id, name, description, tags);
}
Result<std::vector<SnapshotInfo>> Engine::ListSnapshots(const std::string& volume_id) const {
  return impl_->ListSnapshots(volume_id);
}
std::vector<SnapshotInfo> Engine::ListAllSnapshots() const { return impl_->ListAllSnapshots(); }
Result<SnapshotInfo> Engine::GetSnapshot(const std::string& id) const {
  return impl_->GetSnapshot(id);
}
Status Engine::DeleteSnapshot(const std::string& id) {
  PS_RETURN_IF_ERROR(impl_->DeleteSnapshot(id));
  if (impl_->PagesFreedPending() >= kCheckpointAfterFreedPages) (void)impl_->Checkpoint();
  return Status::Ok();
}
Result<VolumeInfo> Engine::RestoreSnapshot(const std::string& snapshot_id,
                                           const std::string& target, const std::string& name) {
  return impl_->RestoreSnapshot(snapshot_id, target, name);
}
Result<WriteResult> Engine::Write(const std::string& id, uint64_t offset,
                                  std::span<const uint8_t> data) {
  Result<WriteResult> r = impl_->Write(id, offset, data);
  // Full, but with pages freed (overwrites, trims) since the last checkpoint:
  // a checkpoint gives them back; then try once more. No lock is held here.
  if (!r.ok() && r.status().code() == Code::kNoSpace && impl_->PagesFreedPending() > 0 &&
      impl_->Checkpoint().ok()) {
    r = impl_->Write(id, offset, data);
  }
  return r;
}
Status Engine::Read(const std::string& id, uint64_t offset, std::span<uint8_t> out) const {
  return impl_->Read(id, offset, out);
}
Status Engine::ReadSnapshot(const std::string& id, uint64_t offset, std::span<uint8_t> out) const {
  return impl_->ReadSnapshot(id, offset, out);
}
Status Engine::Trim(const std::string& id, uint64_t offset, uint64_t length) {
  return impl_->Trim(id, offset, length);
}
Status Engine::Flush() { return impl_->Flush(); }
Result<std::vector<Extent>> Engine::Extents(const std::string& id, bool snapshot, uint64_t offset,
                                            uint64_t length) const {
  return impl_->Extents(id, snapshot, offset, length);
}
ReductionStats Engine::Reduction() const { return impl_->Reduction(); }
Result<ReductionStats> Engine::VolumeReduction(const std::string& id) const {
  return impl_->VolumeReduction(id);
}
flash::FlashMetrics Engine::FlashMetrics() const { return impl_->flash()->Metrics(); }
Result<FsckReport> Engine::Fsck() const { return impl_->Fsck(); }
Result<uint64_t> Engine::DeepReduce() { return impl_->DeepReduce(); }
Status Engine::Checkpoint() { return impl_->Checkpoint(); }
Status Engine::Health() const { return impl_->Health(); }

Result<FsckReport> FsckDataDir(const std::string& data_dir) {
  if (!std::filesystem::exists(data_dir + "/checkpoint")) {
    return Status::NotFound(data_dir + " holds no PStorage engine (no checkpoint file)");
  }
  EngineOptions o;
  o.data_dir = data_dir;
  Result<std::unique_ptr<Engine>> engine = Engine::Open(o);
  if (!engine.ok()) return engine.status();
  return (*engine)->Fsck();
}

}  // namespace pstorage::engine
