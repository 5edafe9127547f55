// The block map checkpoint image: NodeStore::Serialize and Load. Layout in
// block_map_format.h and docs/formats.md ("Block map image").
#include <xxhash.h>

#include <algorithm>
#include <string>

#include "engine/block_map.h"
#include "engine/block_map_format.h"

namespace pstorage::engine {
namespace {

using block_map_format::kBitmapBytes, block_map_format::kChildBytes;
using block_map_format::kEntryBytes, block_map_format::kHeaderBytes;
using block_map_format::kImageMagic, block_map_format::kImageVersion;
using block_map_format::kInteriorRecord, block_map_format::kLeafRecord;
using block_map_format::kMaxEntryKind, block_map_format::kRecordHeadBytes;
using block_map_format::kTrailerBytes;
using block_map_format::BitSet, block_map_format::GetU32, block_map_format::GetU64;
using block_map_format::PutU32, block_map_format::PutU64;

constexpr uint8_t kNoLevel = 0xff;  // CheckForest: level not known (yet)

}  // namespace

void NodeStore::Serialize(const std::vector<NodeId>& roots, std::vector<uint8_t>* out) const {
  const size_t start = out->size();
  PutU64(out, kImageMagic);
  PutU32(out, kImageVersion);
  PutU32(out, height_);
  const size_t count_at = out->size();
  PutU64(out, 0);  // node_count, patched below
  NodeId limit;
  {
    std::lock_guard lock(alloc_mu_);
    limit = next_id_;
  }
  std::vector<bool> seen(limit);
  std::vector<std::pair<NodeId, uint32_t>> stack;  // (node, depth)
  for (NodeId r : roots) {
    if (r != kNullNode) stack.emplace_back(r, 0);
  }
  uint64_t count = 0;
  while (!stack.empty()) {
    const auto [id, depth] = stack.back();
    stack.pop_back();
    if (seen[id]) continue;
    seen[id] = true;
    count++;
    const bool leaf = depth + 1 == height_;
    const Node& node = At(id);
    PutU32(out, id);
    PutU32(out, RefCount(id));
    out->push_back(leaf ? kLeafRecord : kInteriorRecord);
    uint8_t bitmap[kBitmapBytes] = {};
    for (uint32_t i = 0; i < kFanout; i++) {
      if (node.Present(leaf, i)) bitmap[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
    }
    out->insert(out->end(), bitmap, bitmap + kBitmapBytes);
    for (uint32_t i = 0; i < kFanout; i++) {
      if (!node.Present(leaf, i)) continue;
      if (leaf) {
        out->push_back(node.entries[i].kind);
        PutU64(out, node.entries[i].value);
      } else {
        PutU32(out, node.children[i]);
        stack.emplace_back(node.children[i], depth + 1);
      }
    }
  }
  for (int i = 0; i < 8; i++) (*out)[count_at + i] = static_cast<uint8_t>(count >> (8 * i));
  PutU64(out, XXH3_64bits(out->data() + start, out->size() - start));
}

Status NodeStore::Load(const uint8_t* data, size_t size) {
  if (live_nodes() != 0) return Status::FailedPrecondition("block map store is not empty");
  std::vector<uint8_t> kinds;  // by id: 0 = absent, else the record kind
  std::vector<NodeId> loaded;
  Status s = Decode(data, size, &kinds, &loaded);
  if (s.ok()) s = CheckForest(kinds, loaded);
  if (!s.ok()) {
    ResetEmpty();
    return s;
  }
  std::lock_guard lock(alloc_mu_);
  for (NodeId id = next_id_ - 1; id >= 1; id--) {
    if (id >= kinds.size() || kinds[id] == 0) free_ids_.push_back(id);
  }
  return Status::Ok();
}

void NodeStore::ResetEmpty() {
  std::lock_guard lock(alloc_mu_);
  free_ids_.clear();
  next_id_ = 1;
  live_nodes_.store(0, std::memory_order_relaxed);
}

Status NodeStore::Decode(const uint8_t* data, size_t size, std::vector<uint8_t>* kinds,
                         std::vector<NodeId>* loaded) {
  ResetEmpty();
  if (size < kHeaderBytes + kTrailerBytes) return Status::Corruption("block map image truncated");
  const size_t body = size - kTrailerBytes;
  if (XXH3_64bits(data, body) != GetU64(data + body)) {
    return Status::Corruption("block map image checksum mismatch");
  }
  if (GetU64(data) != kImageMagic) return Status::Corruption("not a block map image");
  if (GetU32(data + 8) != kImageVersion) return Status::Corruption("unknown block map version");
  if (GetU32(data + 12) != height_) {
    return Status::InvalidArgument("block map image height differs from the store's");
  }
  const Status truncated = Status::Corruption("block map image truncated");
  const uint64_t count = GetU64(data + 16);
  size_t pos = kHeaderBytes;
  for (uint64_t n = 0; n < count; n++) {
    if (body - pos < kRecordHeadBytes) return truncated;
    const NodeId id = GetU32(data + pos);
    const uint32_t refs = GetU32(data + pos + 4);
    const uint8_t kind = data[pos + 8];
    const uint8_t* bitmap = data + pos + 9;
    pos += kRecordHeadBytes;
    if (id == kNullNode || id >= uint64_t{kMaxChunks} * kChunkNodes || refs == 0 ||
        (kind != kLeafRecord && kind != kInteriorRecord) ||
        (id < kinds->size() && (*kinds)[id] != 0)) {
      return Status::Corruption("bad block map node record");
    }
    if (id >= kinds->size()) kinds->resize(id + 1);
    (*kinds)[id] = kind;
    {
      std::lock_guard lock(alloc_mu_);
      GrowTo(id);
    }
    Node& node = At(id);
    node = Node{};
    for (uint32_t i = 0; i < kFanout; i++) {
      if (!BitSet(bitmap, i)) continue;
      if (kind == kLeafRecord) {
        if (body - pos < kEntryBytes) return truncated;
        if (data[pos] == 0 || data[pos] > kMaxEntryKind) return Status::Corruption("bad entry");
        const auto kind_of_entry = static_cast<MapEntry::Kind>(data[pos]);
        node.entries[i] = Slot::Of({kind_of_entry, GetU64(data + pos + 1)});
        pos += kEntryBytes;
      } else {
        if (body - pos < kChildBytes) return truncated;
        node.children[i] = GetU32(data + pos);
        if (node.children[i] == kNullNode) return Status::Corruption("bad child id");
        pos += kChildBytes;
      }
    }
    Count(id).store(refs, std::memory_order_relaxed);
    live_nodes_.fetch_add(1, std::memory_order_relaxed);
    loaded->push_back(id);
  }
  if (pos != body) return Status::Corruption("block map image has trailing bytes");
  return Status::Ok();
}

// Children exist; every node sits at one level (leaves 0, the children of a
// level-l node at l - 1) below height_; a node without parents is a root
// (level height_ - 1); parents never outnumber a node's count.
Status NodeStore::CheckForest(const std::vector<uint8_t>& kinds,
                              const std::vector<NodeId>& loaded) const {
  std::vector<uint8_t> level(kinds.size(), kNoLevel);
  std::vector<uint32_t> parents(kinds.size(), 0);
  for (NodeId id : loaded) {
    if (kinds[id] == kLeafRecord) {
      level[id] = 0;
      continue;
    }
    for (NodeId c : At(id).children) {
      if (c == kNullNode) continue;
      if (c >= kinds.size() || kinds[c] == 0) return Status::Corruption("dangling child id");
      parents[c]++;
    }
  }
  for (uint32_t l = 1; l < height_; l++) {
    for (NodeId id : loaded) {
      const NodeId* children = At(id).children;
      if (level[id] == kNoLevel &&
          std::all_of(children, children + kFanout,
                      [&](NodeId c) { return c == kNullNode || level[c] == l - 1; })) {
        level[id] = static_cast<uint8_t>(l);
      }
    }
  }
  for (NodeId id : loaded) {
    if (level[id] == kNoLevel || parents[id] > RefCount(id) ||
        (parents[id] == 0 && level[id] != height_ - 1)) {
      return Status::Corruption("block map image is not a forest of height " +
                                std::to_string(height_));
    }
  }
  return Status::Ok();
}

}  // namespace pstorage::engine
