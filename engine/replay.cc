// Journal records: committing them (append, then apply) and applying them,
// which is the same code live and during recovery. Apply never fails on a
// record this engine wrote; a record that does not decode is corruption.
#include "engine/engine_impl.h"

namespace pstorage::engine {

std::vector<uint8_t> Engine::Impl::EncodeCreateVolume(uint64_t handle, const VolumeInfo& info,
                                                      SourceKind source,
                                                      uint64_t source_handle) const {
  std::vector<uint8_t> rec;
  ByteWriter w(&rec);
  w.U8(uint8_t(RecordType::kCreateVolume));
  w.U64(handle);
  w.Volume(info);
  w.U8(uint8_t(source));
  w.U64(source_handle);
  return rec;
}

// The caller holds the locks the record's objects need (catalog and/or
// volume). Durable first, then visible.
Status Engine::Impl::Commit(const std::vector<uint8_t>& record) {
  PS_RETURN_IF_ERROR(CheckNotBroken());
  PS_RETURN_IF_ERROR(journal_->Append(record));
  return Apply(record, /*recovering=*/false);
}

void Engine::Impl::SetBlock(Volume& v, uint64_t lba, const MapEntry& entry) {
  Result<MapEntry> old = nodes_->Set(&v.root, lba, entry);
  if (!old.ok()) return;  // validated before journaling; cannot happen
  bool was = old->kind != MapEntry::Kind::kUnmapped;
  bool is = entry.kind != MapEntry::Kind::kUnmapped;
  v.mapped_blocks = v.mapped_blocks + (is ? 1 : 0) - (was ? 1 : 0);
  if (old->kind == MapEntry::Kind::kContent) contents_->Unref(uint32_t(old->value));
}

void Engine::Impl::ApplyCreateVolume(ByteReader& r) {
  auto v = std::make_shared<Volume>();
  v->handle = r.U64();
  v->info = r.Volume();
  auto source = static_cast<SourceKind>(r.U8());
  uint64_t source_handle = r.U64();
  if (source == SourceKind::kVolume && volumes_by_handle_.count(source_handle)) {
    const Volume& src = *volumes_by_handle_[source_handle];
    v->root = src.root;
    v->mapped_blocks = src.mapped_blocks;
  } else if (source == SourceKind::kSnapshot && snapshots_by_handle_.count(source_handle)) {
    const Snapshot& src = *snapshots_by_handle_[source_handle];
    v->root = src.root;
    v->mapped_blocks = src.mapped_blocks;
  }
  nodes_->Ref(v->root);  // the new volume shares the source's tree
  next_handle_ = std::max(next_handle_, v->handle + 1);
  volumes_[v->info.id] = v;
  volumes_by_handle_[v->handle] = v;
}

void Engine::Impl::ApplyWrite(ByteReader& r, bool recovering) {
  uint64_t handle = r.U64();
  WriteCounters c = r.Counters();
  uint32_t ncontents = r.U32();
  for (uint32_t i = 0; i < ncontents && r.ok(); i++) {
    ContentRecord rec = r.Content();
    // Live, Put() already inserted it and took the references.
    if (recovering) (void)contents_->Insert(rec);
  }
  auto it = volumes_by_handle_.find(handle);
  Volume* v = it == volumes_by_handle_.end() ? nullptr : it->second.get();
  uint32_t nentries = r.U32();
  for (uint32_t i = 0; i < nentries && r.ok(); i++) {
    uint64_t lba = r.U64();
    MapEntry e;
    e.kind = static_cast<MapEntry::Kind>(r.U8());
    e.value = r.U64();
    if (v == nullptr) continue;
    if (recovering && e.kind == MapEntry::Kind::kContent) contents_->Ref(uint32_t(e.value));
    SetBlock(*v, lba, e);
  }
  if (v != nullptr) v->counters.Add(c);
  std::lock_guard lock(counters_mu_);
  counters_.Add(c);
}

Status Engine::Impl::Apply(std::span<const uint8_t> record, bool recovering) {
  ByteReader r(record.data(), record.size());
  auto type = static_cast<RecordType>(r.U8());
  switch (type) {
    case RecordType::kCreateVolume:
      ApplyCreateVolume(r);
      break;
    case RecordType::kUpdateVolume: {
      auto it = volumes_by_handle_.find(r.U64());
      if (it == volumes_by_handle_.end()) break;
      Volume* v = it->second.get();
      v->info.name = r.Str();
      v->info.description = r.Str();
      v->info.tags = r.TagMap();
      v->info.updated_at_ms = r.I64();
      break;
    }
    case RecordType::kDeleteVolume: {
      uint64_t handle = r.U64();
      auto it = volumes_by_handle_.find(handle);
      if (it == volumes_by_handle_.end()) break;
      std::shared_ptr<Volume> v = it->second;
      nodes_->Unref(v->root, [this](uint64_t id) { contents_->Unref(uint32_t(id)); });
      v->root = kNullNode;
      v->deleted = true;
      volumes_.erase(v->info.id);
      volumes_by_handle_.erase(it);
      break;
    }
    case RecordType::kResizeVolume: {
      auto it = volumes_by_handle_.find(r.U64());
      uint64_t size = r.U64();
      int64_t now = r.I64();
      if (it == volumes_by_handle_.end()) break;
      it->second->info.size_bytes = size;
      it->second->info.updated_at_ms = now;
      break;
    }
    case RecordType::kCreateSnapshot: {
      auto s = std::make_shared<Snapshot>();
      s->handle = r.U64();
      s->info.id = r.Str();
      s->info.name = r.Str();
      s->info.description = r.Str();
      s->info.tags = r.TagMap();
      s->volume_handle = r.U64();
      s->info.created_at_ms = r.I64();
      auto it = volumes_by_handle_.find(s->volume_handle);
      if (it == volumes_by_handle_.end()) break;
      Volume& v = *it->second;
      s->info.volume_id = v.info.id;
      s->info.volume_name = v.info.name;
      s->info.size_bytes = v.info.size_bytes;
      s->root = v.root;
      s->mapped_blocks = v.mapped_blocks;
      nodes_->Ref(s->root);
      v.snapshots++;
      next_handle_ = std::max(next_handle_, s->handle + 1);
      snapshots_[s->info.id] = s;
      snapshots_by_handle_[s->handle] = s;
      break;
    }
    case RecordType::kDeleteSnapshot: {
      auto it = snapshots_by_handle_.find(r.U64());
      if (it == snapshots_by_handle_.end()) break;
      std::shared_ptr<Snapshot> s = it->second;
      nodes_->Unref(s->root, [this](uint64_t id) { contents_->Unref(uint32_t(id)); });
      s->deleted = true;
      auto vit = volumes_by_handle_.find(s->volume_handle);
      if (vit != volumes_by_handle_.end() && vit->second->snapshots > 0) vit->second->snapshots--;
      snapshots_.erase(s->info.id);
      snapshots_by_handle_.erase(it);
      break;
    }
    case RecordType::kRestoreOnto: {
      auto vit = volumes_by_handle_.find(r.U64());
      auto sit = snapshots_by_handle_.find(r.U64());
      int64_t now = r.I64();
      if (vit == volumes_by_handle_.end() || sit == snapshots_by_handle_.end()) break;
      Volume& v = *vit->second;
      const Snapshot& s = *sit->second;
      nodes_->Ref(s.root);
      nodes_->Unref(v.root, [this](uint64_t id) { contents_->Unref(uint32_t(id)); });
      v.root = s.root;
      v.mapped_blocks = s.mapped_blocks;
      v.info.size_bytes = std::max(v.info.size_bytes, s.info.size_bytes);
      v.info.source_snapshot_id = s.info.id;
      v.info.updated_at_ms = now;
      break;
    }
    case RecordType::kWrite:
      ApplyWrite(r, recovering);
      break;
    default:
      return Status::Corruption("journal record of unknown type " + std::to_string(int(type)));
  }
  if (!r.ok()) return Status::Corruption("journal record of type " + std::to_string(int(type)) +
                                         " is truncated");
  return Status::Ok();
}

}  // namespace pstorage::engine
