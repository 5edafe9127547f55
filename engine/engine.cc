// Catalog operations: volumes and snapshots. Each builds one journal record
// and commits it (engine_impl.h); replay.cc applies it.
#include <chrono>
#include <random>

#include "engine/engine_impl.h"

namespace pstorage::engine {

std::string NewUuid() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xf000ull) | 0x4000ull;                    // version 4
  lo = (lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // variant 1
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", uint32_t(hi >> 32),
                uint32_t(hi >> 16) & 0xffff, uint32_t(hi) & 0xffff, uint32_t(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

Status ValidName(const std::string& name, const char* what) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument(std::string(what) + " name must be 1-255 characters");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument(std::string(what) + " name must not contain control characters");
    }
  }
  return Status::Ok();
}

double Ratio(uint64_t num, uint64_t den) { return den == 0 ? 1.0 : double(num) / double(den); }

}  // namespace

Status Engine::Impl::ValidSize(uint64_t size) const {
  if (size == 0 || size % kBlockBytes != 0) {
    return Status::InvalidArgument("size_bytes must be a positive multiple of 4096");
  }
  uint64_t max = std::min(opts_.max_volume_bytes, nodes_->max_blocks() * kBlockBytes);
  if (size > max) {
    return Status::InvalidArgument("size_bytes " + std::to_string(size) + " exceeds the maximum " +
                                   std::to_string(max));
  }
  return Status::Ok();
}

std::shared_ptr<Volume> Engine::Impl::VolumeById(const std::string& id) const {
  auto it = volumes_.find(id);
  return it == volumes_.end() ? nullptr : it->second;
}

std::shared_ptr<Snapshot> Engine::Impl::SnapshotById(const std::string& id) const {
  auto it = snapshots_.find(id);
  return it == snapshots_.end() ? nullptr : it->second;
}

Status Engine::Impl::CheckName(const std::string& name, const std::string& except_id) const {
  PS_RETURN_IF_ERROR(ValidName(name, "volume"));
  for (const auto& [id, v] : volumes_) {
    if (v->info.name == name && id != except_id) {
      return Status::AlreadyExists("a volume named '" + name + "' already exists");
    }
  }
  return Status::Ok();
}

VolumeInfo Engine::Impl::Describe(const Volume& v) const {
  VolumeInfo info = v.info;
  info.used_bytes = v.mapped_blocks * kBlockBytes;
  info.reduction_ratio = Ratio(v.counters.logical_bytes, v.counters.stored_bytes);
  return info;
}

SnapshotInfo Engine::Impl::DescribeSnapshot(const Snapshot& s) const {
  SnapshotInfo info = s.info;
  info.used_bytes = s.mapped_blocks * kBlockBytes;
  return info;
}

// --- volumes -------------------------------------------------------------------

Result<VolumeInfo> Engine::Impl::CreateVolume(const VolumeSpec& spec) {
  PS_RETURN_IF_ERROR(ValidSize(spec.size_bytes));
  std::unique_lock lock(catalog_mu_);
  PS_RETURN_IF_ERROR(CheckName(spec.name, ""));
  VolumeInfo info;
  info.id = NewUuid();
  info.name = spec.name;
  info.description = spec.description;
  info.tags = spec.tags;
  info.size_bytes = spec.size_bytes;
  info.created_at_ms = info.updated_at_ms = NowMs();
  PS_RETURN_IF_ERROR(Commit(EncodeCreateVolume(next_handle_, info, SourceKind::kEmpty, 0)));
  return Describe(*VolumeById(info.id));
}

std::vector<VolumeInfo> Engine::Impl::ListVolumes() const {
  std::shared_lock lock(catalog_mu_);
  std::vector<VolumeInfo> out;
  for (const auto& [id, v] : volumes_) {
    std::shared_lock vl(v->mu);
    out.push_back(Describe(*v));
  }
  return out;
}

Result<VolumeInfo> Engine::Impl::GetVolume(const std::string& id) const {
  std::shared_lock lock(catalog_mu_);
  std::shared_ptr<Volume> v = VolumeById(id);
  if (!v) return Status::NotFound("Volume " + id + " not found");
  std::shared_lock vl(v->mu);
  return Describe(*v);
}

Result<VolumeInfo> Engine::Impl::FindVolumeByName(const std::string& name) const {
  std::shared_lock lock(catalog_mu_);
  for (const auto& [id, v] : volumes_) {
    if (v->info.name != name) continue;
    std::shared_lock vl(v->mu);
    return Describe(*v);
  }
  return Status::NotFound("no volume named '" + name + "'");
}

Result<VolumeInfo> Engine::Impl::UpdateVolume(const std::string& id, const VolumeUpdate& update) {
  std::unique_lock lock(catalog_mu_);
  std::shared_ptr<Volume> v = VolumeById(id);
  if (!v) return Status::NotFound("Volume " + id + " not found");
  if (update.name) PS_RETURN_IF_ERROR(CheckName(*update.name, id));
  std::unique_lock vl(v->mu);
  VolumeInfo info = v->info;
  if (update.name) info.name = *update.name;
  if (update.description) info.description = *update.description;
  if (update.tags) info.tags = *update.tags;
  info.updated_at_ms = NowMs();
  std::vector<uint8_t> rec;
  ByteWriter w(&rec);
  w.U8(uint8_t(RecordType::kUpdateVolume));
  w.U64(v->handle);
  w.Str(info.name);
  w.Str(info.description);
  w.TagMap(info.tags);
  w.I64(info.updated_at_ms);
  PS_RETURN_IF_ERROR(Commit(rec));
  return Describe(*v);
}

Status Engine::Impl::DeleteVolume(const std::string& id) {
  {
    std::unique_lock lock(catalog_mu_);
    std::shared_ptr<Volume> v = VolumeById(id);
    if (!v) return Status::NotFound("Volume " + id + " not found");
    std::unique_lock vl(v->mu);
    if (v->snapshots > 0) {
      return Status::FailedPrecondition("volume " + id + " has " + std::to_string(v->snapshots) +
                                        " snapshot(s); delete them first");
    }
    std::vector<uint8_t> rec;
    ByteWriter w(&rec);
    w.U8(uint8_t(RecordType::kDeleteVolume));
    w.U64(v->handle);
    PS_RETURN_IF_ERROR(Commit(rec));
  }
  MaybeCheckpoint();
  return Status::Ok();
}

Result<VolumeInfo> Engine::Impl::ResizeVolume(const std::string& id, uint64_t new_size) {
  PS_RETURN_IF_ERROR(ValidSize(new_size));
  std::shared_lock lock(catalog_mu_);
  std::shared_ptr<Volume> v = VolumeById(id);
  if (!v) return Status::NotFound("Volume " + id + " not found");
  std::unique_lock vl(v->mu);
  if (new_size <= v->info.size_bytes) {
    return Status::FailedPrecondition("volumes only grow: new size " + std::to_string(new_size) +
                                      " is not larger than " + std::to_string(v->info.size_bytes));
  }
  std::vector<uint8_t> rec;
  ByteWriter w(&rec);
  w.U8(uint8_t(RecordType::kResizeVolume));
  w.U64(v->handle);
  w.U64(new_size);
  w.I64(NowMs());
  PS_RETURN_IF_ERROR(Commit(rec));
  return Describe(*v);
}

Result<VolumeInfo> Engine::Impl::CloneVolume(const std::string& id, const std::string& name,
                                             const std::string& description) {
  std::unique_lock lock(catalog_mu_);
  std::shared_ptr<Volume> src = VolumeById(id);
  if (!src) return Status::NotFound("Volume " + id + " not found");
  PS_RETURN_IF_ERROR(CheckName(name, ""));
  std::unique_lock vl(src->mu);
  VolumeInfo info;
  info.id = NewUuid();
  info.name = name;
  info.description = description;
  info.tags = src->info.tags;
  info.size_bytes = src->info.size_bytes;
  info.created_at_ms = info.updated_at_ms = NowMs();
  PS_RETURN_IF_ERROR(Commit(EncodeCreateVolume(next_handle_, info, SourceKind::kVolume, src->handle)));
  return Describe(*VolumeById(info.id));
}

// --- snapshots ---------------------------------------------------------------------

Result<SnapshotInfo> Engine::Impl::CreateSnapshot(const std::string& volume_id,
                                                  const std::string& name,
                                                  const std::string& description, const Tags& tags) {
  PS_RETURN_IF_ERROR(ValidName(name, "snapshot"));
  std::unique_lock lock(catalog_mu_);
  std::shared_ptr<Volume> v = VolumeById(volume_id);
  if (!v) return Status::NotFound("Volume " + volume_id + " not found");
  for (const auto& [sid, s] : snapshots_) {
    if (s->volume_handle == v->handle && s->info.name == name) {
      return Status::AlreadyExists("volume " + volume_id + " already has a snapshot named '" + name + "'");
    }
  }
  std::unique_lock vl(v->mu);
  std::string id = NewUuid();
  std::vector<uint8_t> rec;
  ByteWriter w(&rec);
  w.U8(uint8_t(RecordType::kCreateSnapshot));
  w.U64(next_handle_);
  w.Str(id);
  w.Str(name);
  w.Str(description);
  w.TagMap(tags);
  w.U64(v->handle);
  w.I64(NowMs());
  PS_RETURN_IF_ERROR(Commit(rec));
  return DescribeSnapshot(*SnapshotById(id));
}

Result<std::vector<SnapshotInfo>> Engine::Impl::ListSnapshots(const std::string& volume_id) const {
  std::shared_lock lock(catalog_mu_);
  std::shared_ptr<Volume> v = VolumeById(volume_id);
  if (!v) return Status::NotFound("Volume " + volume_id + " not found");
  std::vector<SnapshotInfo> out;
  for (const auto& [id, s] : snapshots_) {
    if (s->volume_handle == v->handle) out.push_back(DescribeSnapshot(*s));
  }
  return out;
}

std::vector<SnapshotInfo> Engine::Impl::ListAllSnapshots() const {
  std::shared_lock lock(catalog_mu_);
  std::vector<SnapshotInfo> out;
  for (const auto& [id, s] : snapshots_) out.push_back(DescribeSnapshot(*s));
  return out;
}

Result<SnapshotInfo> Engine::Impl::GetSnapshot(const std::string& id) const {
  std::shared_lock lock(catalog_mu_);
  std::shared_ptr<Snapshot> s = SnapshotById(id);
  if (!s) return Status::NotFound("Snapshot " + id + " not found");
  return DescribeSnapshot(*s);
}

Status Engine::Impl::DeleteSnapshot(const std::string& id) {
  {
    std::unique_lock lock(catalog_mu_);
    std::shared_ptr<Snapshot> s = SnapshotById(id);
    if (!s) return Status::NotFound("Snapshot " + id + " not found");
    std::unique_lock sl(s->mu);
    std::vector<uint8_t> rec;
    ByteWriter w(&rec);
    w.U8(uint8_t(RecordType::kDeleteSnapshot));
    w.U64(s->handle);
    PS_RETURN_IF_ERROR(Commit(rec));
  }
  MaybeCheckpoint();
  return Status::Ok();
}

Result<VolumeInfo> Engine::Impl::RestoreSnapshot(const std::string& snapshot_id,
                                                 const std::string& target,
                                                 const std::string& new_name) {
  std::unique_lock lock(catalog_mu_);
  std::shared_ptr<Snapshot> s = SnapshotById(snapshot_id);
  if (!s) return Status::NotFound("Snapshot " + snapshot_id + " not found");
  if (target.empty()) {
    std::string name = new_name.empty() ? s->info.name + "-restore-" + NewUuid().substr(0, 8) : new_name;
    PS_RETURN_IF_ERROR(CheckName(name, ""));
    VolumeInfo info;
    info.id = NewUuid();
    info.name = name;
    info.description = "restored from snapshot " + s->info.name;
    info.tags = s->info.tags;
    info.size_bytes = s->info.size_bytes;
    info.created_at_ms = info.updated_at_ms = NowMs();
    info.source_snapshot_id = s->info.id;
    PS_RETURN_IF_ERROR(
        Commit(EncodeCreateVolume(next_handle_, info, SourceKind::kSnapshot, s->handle)));
    return Describe(*VolumeById(info.id));
  }
  std::shared_ptr<Volume> v = VolumeById(target);
  if (!v) return Status::NotFound("Volume " + target + " not found");
  std::unique_lock vl(v->mu);
  std::vector<uint8_t> rec;
  ByteWriter w(&rec);
  w.U8(uint8_t(RecordType::kRestoreOnto));
  w.U64(v->handle);
  w.U64(s->handle);
  w.I64(NowMs());
  PS_RETURN_IF_ERROR(Commit(rec));
  return Describe(*v);
}

// --- accounting ----------------------------------------------------------------------

ReductionStats Engine::Impl::Reduction() const {
  ReductionStats r;
  {
    std::shared_lock lock(catalog_mu_);
    for (const auto& [id, v] : volumes_) {
      std::shared_lock vl(v->mu);
      r.provisioned_bytes += v->info.size_bytes;
      r.logical_bytes_live += v->mapped_blocks * kBlockBytes;
    }
  }
  WriteCounters c;
  {
    std::lock_guard lock(counters_mu_);
    c = counters_;
  }
  ContentStats cs = contents_->Stats();
  FillReduction(c, cs.pages_used * uint64_t{kBlockBytes}, &r);
  r.unique_blocks = cs.unique_blocks;
  return r;
}

void FillReduction(const WriteCounters& c, uint64_t physical, ReductionStats* r) {
  r->logical_bytes_written = c.logical_bytes;
  r->physical_bytes_used = physical;
  r->duplicate_blocks = c.duplicate_blocks;
  r->zero_blocks_found = c.zero_blocks;
  r->pattern_blocks_found = c.pattern_blocks;
  r->bytes_saved_pattern = (c.zero_blocks + c.pattern_blocks) * uint64_t{kBlockBytes};
  r->bytes_saved_dedupe = c.duplicate_blocks * uint64_t{kBlockBytes};
  r->stored_bytes_before_compression = c.stored_blocks * uint64_t{kBlockBytes};
  r->stored_bytes_after_compression = c.stored_bytes;
  r->bytes_saved_compression = r->stored_bytes_before_compression - c.stored_bytes;
  r->dedupe_ratio = Ratio(c.stored_blocks + c.duplicate_blocks, c.stored_blocks);
  r->compression_ratio = Ratio(r->stored_bytes_before_compression, c.stored_bytes);
  r->data_reduction_ratio = Ratio(r->logical_bytes_live, physical);
  r->total_reduction_ratio = Ratio(r->provisioned_bytes, physical);
}

Result<ReductionStats> Engine::Impl::VolumeReduction(const std::string& id) const {
  std::shared_lock lock(catalog_mu_);
  std::shared_ptr<Volume> v = VolumeById(id);
  if (!v) return Status::NotFound("Volume " + id + " not found");
  std::shared_lock vl(v->mu);
  ReductionStats r;
  r.provisioned_bytes = v->info.size_bytes;
  r.logical_bytes_live = v->mapped_blocks * kBlockBytes;
  // A volume's physical share is what its own writes stored (fragment bytes).
  FillReduction(v->counters, v->counters.stored_bytes, &r);
  r.unique_blocks = v->counters.stored_blocks;
  return r;
}

}  // namespace pstorage::engine
