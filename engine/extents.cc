// Engine::Extents: the allocation map of a byte range, read from the block
// map only (for NBD's base:allocation block status).
#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "engine/engine_impl.h"

namespace pstorage::engine {
namespace {

// Appends [from, to) with the state of `e`, merging with the last extent
// when the state is the same.
void Append(std::vector<Extent>* out, uint64_t from, uint64_t to, const MapEntry& e) {
  const bool hole = e.kind == MapEntry::Kind::kUnmapped;
  const bool zero = hole || (e.kind == MapEntry::Kind::kPattern && e.value == 0);
  if (!out->empty() && out->back().hole == hole && out->back().zero == zero &&
      out->back().offset + out->back().length == from) {
    out->back().length += to - from;
    return;
  }
  out->push_back(Extent{from, to - from, hole, zero});
}

}  // namespace

Result<std::vector<Extent>> Engine::Impl::Extents(const std::string& id, bool snapshot,
                                                  uint64_t offset, uint64_t length) const {
  std::shared_ptr<Volume> v;
  std::shared_ptr<Snapshot> s;
  {
    std::shared_lock lock(catalog_mu_);
    if (snapshot) {
      s = SnapshotById(id);
    } else {
      v = VolumeById(id);
    }
  }
  const char* what = snapshot ? "Snapshot " : "Volume ";
  if (!v && !s) return Status::NotFound(what + id + " not found");
  std::shared_lock lock(snapshot ? s->mu : v->mu);
  if (snapshot ? s->deleted : v->deleted) return Status::NotFound(what + id + " not found");
  const NodeId root = snapshot ? s->root : v->root;
  const uint64_t size = snapshot ? s->info.size_bytes : v->info.size_bytes;
  if (offset > size || length > size - offset) {
    return Status::InvalidArgument("range [" + std::to_string(offset) + ", +" +
                                   std::to_string(length) + ") is outside the volume (" +
                                   std::to_string(size) + " bytes)");
  }
  std::vector<Extent> out;
  const uint64_t end = offset + length;
  MapEntry entries[kFanout];  // one leaf's worth per lookup
  uint64_t lba = offset / kBlockBytes;
  while (lba * kBlockBytes < end) {
    const uint64_t count = std::min<uint64_t>(kFanout, (end - 1) / kBlockBytes + 1 - lba);
    nodes_->GetRange(root, lba, count, entries);
    for (uint64_t i = 0; i < count; i++, lba++) {
      const uint64_t from = std::max(offset, lba * kBlockBytes);
      const uint64_t to = std::min(end, (lba + 1) * kBlockBytes);
      Append(&out, from, to, entries[i]);
    }
  }
  return out;
}

}  // namespace pstorage::engine
