// Copy-on-write block maps: a chunked node arena read without locks, and
// path-copying writes. The checkpoint image is in block_map_image.cc.
#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

#include "engine/block_map.h"

namespace pstorage::engine {
namespace {

constexpr uint32_t kMaxHeight = 7;  // kFanout^7 = 2^56: spans fit in 64 bits
constexpr uint8_t kContentKind = static_cast<uint8_t>(MapEntry::Kind::kContent);

}  // namespace

// Aligned so that each node fills exactly one page; nodes are left
// uninitialized (never touched, so not resident) until allocated.
struct alignas(4096) NodeStore::Chunk {
  Node nodes[kChunkNodes];
  std::atomic<uint32_t> counts[kChunkNodes];
};

NodeStore::NodeStore(uint32_t height) : NodeStore(height, nullptr) {}

NodeStore::NodeStore(uint32_t height, std::function<void(uint64_t)> ref_content)
    : height_(height),
      ref_content_(std::move(ref_content)),
      chunks_(std::make_unique<std::atomic<Chunk*>[]>(kMaxChunks)) {
  static_assert(sizeof(Node) == 4096);
  assert(height_ >= 1 && height_ <= kMaxHeight);
}

NodeStore::~NodeStore() = default;

uint64_t NodeStore::max_blocks() const {
  return kFanoutBits * height_ >= 40 ? uint64_t{1} << 40 : uint64_t{1} << (kFanoutBits * height_);
}

NodeStore::Node& NodeStore::At(NodeId id) const {
  assert(id != kNullNode);
  return chunks_[id >> kChunkBits].load(std::memory_order_acquire)->nodes[id & (kChunkNodes - 1)];
}

std::atomic<uint32_t>& NodeStore::Count(NodeId id) const {
  assert(id != kNullNode);
  return chunks_[id >> kChunkBits].load(std::memory_order_acquire)->counts[id & (kChunkNodes - 1)];
}

uint32_t NodeStore::Index(uint64_t lba, uint32_t depth) const {
  return static_cast<uint32_t>(lba >> (kFanoutBits * (height_ - 1 - depth))) & (kFanout - 1);
}

void NodeStore::GrowTo(NodeId id) {
  while (owned_chunks_.size() <= (id >> kChunkBits)) {
    owned_chunks_.push_back(std::make_unique_for_overwrite<Chunk>());
    chunks_[owned_chunks_.size() - 1].store(owned_chunks_.back().get(), std::memory_order_release);
  }
  next_id_ = std::max(next_id_, id + 1);
}

Status NodeStore::Reserve(uint32_t n, NodeId* ids) {
  if (n == 0) return Status::Ok();
  std::lock_guard lock(alloc_mu_);
  const uint64_t never_used = uint64_t{kMaxChunks} * kChunkNodes - next_id_;
  if (free_ids_.size() + never_used < n) return Status::NoSpace("block map node arena is full");
  for (uint32_t i = 0; i < n; i++) {
    if (free_ids_.empty()) {
      GrowTo(next_id_);
      ids[i] = next_id_ - 1;
    } else {
      ids[i] = free_ids_.back();
      free_ids_.pop_back();
    }
  }
  return Status::Ok();
}

void NodeStore::Free(const NodeId* ids, size_t n, bool live) {
  if (n == 0) return;
  std::lock_guard lock(alloc_mu_);
  free_ids_.insert(free_ids_.end(), ids, ids + n);
  if (live) live_nodes_.fetch_sub(n, std::memory_order_relaxed);
}

uint32_t NodeStore::Drop(NodeId id) {
  std::lock_guard lock(stripes_[id % kStripes]);
  const uint32_t before = Count(id).fetch_sub(1, std::memory_order_acq_rel);
  assert(before >= 1);
  return before - 1;
}

NodeId NodeStore::CopyShared(NodeId id, bool leaf, NodeId fresh) {
  std::lock_guard lock(stripes_[id % kStripes]);
  if (Count(id).load(std::memory_order_acquire) == 1) return id;  // the other owners let go
  const Node& src = At(id);
  At(fresh) = src;
  for (uint32_t i = 0; i < kFanout; i++) {
    if (!leaf) {
      if (src.children[i] != kNullNode) {
        Count(src.children[i]).fetch_add(1, std::memory_order_relaxed);
      }
    } else if (src.entries[i].kind == kContentKind) {
      assert(ref_content_ && "a leaf with content copied by a store without ref_content");
      if (ref_content_) ref_content_(src.entries[i].value);
    }
  }
  Count(fresh).store(1, std::memory_order_relaxed);
  live_nodes_.fetch_add(1, std::memory_order_relaxed);
  [[maybe_unused]] const uint32_t before = Count(id).fetch_sub(1, std::memory_order_acq_rel);
  assert(before >= 2);  // Invariant: counts drop only under this stripe
  return fresh;
}

void NodeStore::Ref(NodeId root) {
  if (root != kNullNode) Count(root).fetch_add(1, std::memory_order_relaxed);
}

void NodeStore::Unref(NodeId root, const std::function<void(uint64_t)>& release) {
  if (root == kNullNode) return;
  std::vector<std::pair<NodeId, uint32_t>> stack = {{root, 0}};  // (node, depth)
  std::vector<NodeId> freed;
  while (!stack.empty()) {
    const auto [id, depth] = stack.back();
    stack.pop_back();
    if (Drop(id) != 0) continue;
    const Node& node = At(id);
    const bool leaf = depth + 1 == height_;
    for (uint32_t i = 0; i < kFanout; i++) {
      if (!leaf) {
        if (node.children[i] != kNullNode) stack.emplace_back(node.children[i], depth + 1);
      } else if (node.entries[i].kind == kContentKind && release) {
        release(node.entries[i].value);
      }
    }
    freed.push_back(id);
  }
  Free(freed.data(), freed.size(), /*live=*/true);
}

MapEntry NodeStore::Get(NodeId root, uint64_t lba) const {
  if (lba >= max_blocks()) return {};
  NodeId id = root;
  for (uint32_t d = 0; id != kNullNode; d++) {
    if (d + 1 == height_) return At(id).entries[Index(lba, d)].entry();
    id = At(id).children[Index(lba, d)];
  }
  return {};
}

void NodeStore::GetRange(NodeId root, uint64_t lba, uint64_t count, MapEntry* out) const {
  const uint64_t max = max_blocks();
  while (count > 0) {
    if (lba >= max) {
      std::fill_n(out, count, MapEntry{});
      return;
    }
    NodeId id = root;
    uint32_t d = 0;
    while (id != kNullNode && d + 1 < height_) id = At(id).children[Index(lba, d++)];
    // `id` (a leaf or a null subtree) covers the aligned run of `span` blocks holding lba.
    const uint64_t span = uint64_t{1} << (kFanoutBits * (height_ - d));
    const uint64_t first = lba & (span - 1);
    const uint64_t n = std::min({count, span - first, max - lba});
    for (uint64_t i = 0; i < n; i++) {
      out[i] = id == kNullNode ? MapEntry{} : At(id).entries[first + i].entry();
    }
    lba += n;
    count -= n;
    out += n;
  }
}

// Below a shared node every node is copied too (copying the parent shares
// it), so the count is an upper bound: a shared node may turn exclusive
// before Set reaches it.
uint32_t NodeStore::PlanSet(NodeId root, uint64_t lba, MapEntry* current) const {
  uint32_t need = 0;
  NodeId id = root;
  for (uint32_t d = 0; d < height_; d++) {
    if (need == 0 && (id == kNullNode || Count(id).load(std::memory_order_acquire) != 1)) {
      need = height_ - d;
    }
    if (id == kNullNode) return need;
    if (d + 1 == height_) {
      *current = At(id).entries[Index(lba, d)].entry();
    } else {
      id = At(id).children[Index(lba, d)];
    }
  }
  return need;
}

Result<MapEntry> NodeStore::Set(NodeId* root, uint64_t lba, const MapEntry& entry) {
  if (lba >= max_blocks()) {
    return Status::InvalidArgument("lba " + std::to_string(lba) + " is past the block map end " +
                                   std::to_string(max_blocks()));
  }
  if (static_cast<uint8_t>(entry.kind) > kContentKind) {
    return Status::InvalidArgument("unknown map entry kind");
  }
  const MapEntry stored = entry.kind == MapEntry::Kind::kUnmapped ? MapEntry{} : entry;
  MapEntry current;
  const uint32_t need = PlanSet(*root, lba, &current);
  if (current == stored) return current;  // no change: copy nothing, allocate nothing
  NodeId ids[kMaxHeight];
  PS_RETURN_IF_ERROR(Reserve(need, ids));
  uint32_t used = 0;
  NodeId* slot = root;  // in the root variable or an exclusively owned parent
  for (uint32_t d = 0;; d++) {
    const bool leaf = d + 1 == height_;
    NodeId cur = *slot;
    assert(used <= need);
    if (cur == kNullNode) {
      assert(used < need);
      cur = ids[used++];
      At(cur) = Node{};
      Count(cur).store(1, std::memory_order_relaxed);
      live_nodes_.fetch_add(1, std::memory_order_relaxed);
    } else if (Count(cur).load(std::memory_order_acquire) != 1) {
      assert(used < need);
      const NodeId copy = CopyShared(cur, leaf, ids[used]);
      if (copy != cur) used++;
      cur = copy;
    }
    *slot = cur;
    Node& node = At(cur);
    const uint32_t i = Index(lba, d);
    if (leaf) {
      const MapEntry old = node.entries[i].entry();
      node.entries[i] = Slot::Of(stored);
      Free(ids + used, need - used, /*live=*/false);  // reserved, not needed
      return old;
    }
    slot = &node.children[i];
  }
}

void NodeStore::ForEach(NodeId root,
                        const std::function<void(uint64_t, const MapEntry&)>& fn) const {
  if (root != kNullNode) ForEachUnder(root, 0, 0, fn);
}

void NodeStore::ForEachUnder(NodeId id, uint32_t depth, uint64_t base,
                             const std::function<void(uint64_t, const MapEntry&)>& fn) const {
  const Node& node = At(id);
  const bool leaf = depth + 1 == height_;
  const uint32_t shift = kFanoutBits * (height_ - 1 - depth);
  for (uint32_t i = 0; i < kFanout; i++) {
    if (!node.Present(leaf, i)) continue;
    if (leaf) {
      fn(base + i, node.entries[i].entry());
    } else {
      ForEachUnder(node.children[i], depth + 1, base + (uint64_t{i} << shift), fn);
    }
  }
}

void NodeStore::ForEachNode(NodeId root, const std::function<void(NodeId)>& fn) const {
  if (root != kNullNode) ForEachNodeUnder(root, 0, fn);
}

void NodeStore::ForEachNodeUnder(NodeId id, uint32_t depth,
                                 const std::function<void(NodeId)>& fn) const {
  fn(id);
  if (depth + 1 == height_) return;
  const Node& node = At(id);
  for (uint32_t i = 0; i < kFanout; i++) {
    if (node.children[i] != kNullNode) ForEachNodeUnder(node.children[i], depth + 1, fn);
  }
}

uint64_t NodeStore::live_nodes() const { return live_nodes_.load(std::memory_order_relaxed); }

// Resident bytes: live nodes (one page each) plus the arena's fixed costs.
// Freed nodes awaiting reuse are not counted.
uint64_t NodeStore::memory_bytes() const {
  std::lock_guard lock(alloc_mu_);
  return live_nodes() * sizeof(Node) +
         owned_chunks_.size() * (sizeof(Chunk) - sizeof(Chunk::nodes)) +
         uint64_t{kMaxChunks} * sizeof(std::atomic<Chunk*>) +
         owned_chunks_.capacity() * sizeof(std::unique_ptr<Chunk>) +
         free_ids_.capacity() * sizeof(NodeId);
}

uint32_t NodeStore::RefCount(NodeId node) const {
  return node == kNullNode ? 0 : Count(node).load(std::memory_order_acquire);
}

}  // namespace pstorage::engine
