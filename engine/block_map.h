// Internal: copy-on-write block maps.
//
// A block map translates a volume's block numbers (LBA, 4 KiB each) to
// MapEntry values. Every volume, snapshot and clone owns a *root*; roots are
// trees of fixed-size nodes (kFanout children or entries each) of a fixed
// height, shared by reference count until written. Taking a snapshot is
// Ref(root): O(1) whatever the volume size. Writing through a shared node
// copies the path from the root down (path copying), so the other owners
// keep seeing the old contents.
//
// Reference counts are per parent pointer: a node's count is the number of
// roots and parent nodes that point to it. A node may be changed in place
// only when every node on the path from the root has a count of one.
//
// Thread safety: NodeStore methods may be called from many threads. The
// caller guarantees that a given root is not read and written at the same
// time (the engine holds the owning volume's lock); different roots may be
// used concurrently even when they share nodes (shared nodes are never
// changed in place; counts are atomic; allocation takes an internal mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace pstorage::engine {

// What one 4 KiB block of a volume holds.
struct MapEntry {
  enum class Kind : uint8_t {
    kUnmapped = 0,  // never written or trimmed: reads as zeros
    kPattern = 1,   // the 8-byte `value` repeated 512 times (zeros included)
    kContent = 2,   // content id `value` in the content store
  };
  Kind kind = Kind::kUnmapped;
  uint64_t value = 0;

  bool operator==(const MapEntry&) const = default;
};

using NodeId = uint32_t;
inline constexpr NodeId kNullNode = 0;  // an all-unmapped subtree; never allocated

inline constexpr uint32_t kFanoutBits = 8;
inline constexpr uint32_t kFanout = 1u << kFanoutBits;  // children or entries per node

class NodeStore {
 public:
  // `height` levels of nodes (1 = a single leaf) cover kFanout^height blocks.
  explicit NodeStore(uint32_t height);
  // As above, for maps holding kContent entries: the content store counts one
  // reference per map entry, so when Set copies a shared leaf it calls
  // `ref_content(content_id)` once for every kContent entry of the copy. It
  // runs under an internal lock and must not call back into this store. A
  // store built without it must never copy a leaf holding kContent entries
  // (asserted).
  NodeStore(uint32_t height, std::function<void(uint64_t)> ref_content);
  ~NodeStore();

  uint32_t height() const { return height_; }
  uint64_t max_blocks() const;

  // Adds one reference to `root` (a snapshot or clone shares the tree).
  void Ref(NodeId root);
  // Drops one reference; nodes whose count reaches zero are freed, and for
  // every kContent entry of a freed leaf `release(content_id)` is called.
  void Unref(NodeId root, const std::function<void(uint64_t)>& release);

  MapEntry Get(NodeId root, uint64_t lba) const;
  // Reads `count` consecutive entries starting at `lba`.
  void GetRange(NodeId root, uint64_t lba, uint64_t count, MapEntry* out) const;

  // Sets one entry, copying shared nodes on the path. `*root` may change
  // (the caller stores the new root). Returns the previous entry; the
  // caller releases its content reference. Errors: kInvalidArgument when
  // lba >= max_blocks().
  Result<MapEntry> Set(NodeId* root, uint64_t lba, const MapEntry& entry);

  // Calls fn(lba, entry) for every entry that is not kUnmapped, in LBA order.
  void ForEach(NodeId root, const std::function<void(uint64_t, const MapEntry&)>& fn) const;

  // Statistics and checks for fsck and tests.
  uint64_t live_nodes() const;
  uint64_t memory_bytes() const;
  // Calls fn(node) once for every node reachable from `root`
  // (a node shared by several parents is visited once per parent).
  void ForEachNode(NodeId root, const std::function<void(NodeId)>& fn) const;
  uint32_t RefCount(NodeId node) const;

  // fsck: walks every node reachable from `roots` once (a shared subtree is
  // visited once, not once per owner), calls leaf_entry(entry) for every
  // mapped entry of every distinct leaf -- exactly the references the content
  // store counts -- and compares each node's count with its number of
  // parents plus roots. Returns how many nodes disagree (details appended to
  // *errors).
  uint64_t CheckRefCounts(const std::vector<NodeId>& roots,
                          const std::function<void(const MapEntry&)>& leaf_entry,
                          std::vector<std::string>* errors) const;

  // Serialization for checkpoints: writes every node reachable from
  // `roots` once; Load rebuilds a store with the same node ids and counts.
  void Serialize(const std::vector<NodeId>& roots, std::vector<uint8_t>* out) const;
  Status Load(const uint8_t* data, size_t size);

 private:
  // One leaf entry in memory: 16 bytes.
  struct Slot {
    uint64_t value;
    uint8_t kind;  // MapEntry::Kind
    uint8_t pad[7];
    MapEntry entry() const { return {static_cast<MapEntry::Kind>(kind), value}; }
    static Slot Of(const MapEntry& e) { return {e.value, static_cast<uint8_t>(e.kind), {}}; }
  };
  // One node, 4096 bytes: a leaf's entries or an interior node's children.
  struct Node {
    union {
      Slot entries[kFanout];
      NodeId children[kFanout];  // kNullNode = an all-unmapped subtree
    };
    bool Present(bool leaf, uint32_t i) const {
      return leaf ? entries[i].kind != 0 : children[i] != kNullNode;
    }
  };
  struct Chunk;  // kChunkNodes nodes and their reference counts
  static constexpr uint32_t kChunkBits = 10;
  static constexpr uint32_t kChunkNodes = 1u << kChunkBits;
  static constexpr uint32_t kMaxChunks = 1u << 14;  // 16 Mi nodes, 64 GiB of nodes
  static constexpr uint32_t kStripes = 64;

  Node& At(NodeId id) const;
  std::atomic<uint32_t>& Count(NodeId id) const;
  uint32_t Index(uint64_t lba, uint32_t depth) const;
  // Takes `n` free ids (kNoSpace when the arena is full); Free gives ids back
  // (`live`: they held nodes, rather than being reserved and unused).
  Status Reserve(uint32_t n, NodeId* ids);
  void Free(const NodeId* ids, size_t n, bool live);
  // Requires alloc_mu_: allocates chunks up to `id`'s and moves next_id_ past it.
  void GrowTo(NodeId id);
  // Set's read-only first pass: the entry at `lba` now, and how many nodes
  // the write allocates at most.
  uint32_t PlanSet(NodeId root, uint64_t lba, MapEntry* current) const;
  // Under the node's stripe: returns `id` when it turned exclusive meanwhile,
  // else copies it into `fresh` (children and contents gain a reference) and
  // drops this path's reference to the original.
  NodeId CopyShared(NodeId id, bool leaf, NodeId fresh);
  uint32_t Drop(NodeId id);  // decrements under the stripe; returns the new count
  void ForEachUnder(NodeId id, uint32_t depth, uint64_t base,
                    const std::function<void(uint64_t, const MapEntry&)>& fn) const;
  void ForEachNodeUnder(NodeId id, uint32_t depth,
                        const std::function<void(NodeId)>& fn) const;
  // Load's steps: decode the records into the arena, then check that they
  // form trees of height_ (a valid checksum does not prove a valid structure).
  Status Decode(const uint8_t* data, size_t size, std::vector<uint8_t>* kinds,
                std::vector<NodeId>* loaded);
  Status CheckForest(const std::vector<uint8_t>& kinds, const std::vector<NodeId>& loaded) const;
  void ResetEmpty();

  const uint32_t height_;
  const std::function<void(uint64_t)> ref_content_;  // may be empty
  // Chunk pointers, published with release; a chunk is never moved or freed
  // before destruction, so nodes are read by id without a lock.
  const std::unique_ptr<std::atomic<Chunk*>[]> chunks_;
  mutable std::mutex alloc_mu_;
  std::vector<std::unique_ptr<Chunk>> owned_chunks_;  // guarded by alloc_mu_
  std::vector<NodeId> free_ids_;                       // guarded by alloc_mu_
  NodeId next_id_ = 1;  // guarded by alloc_mu_: ids >= next_id_ were never used
  std::atomic<uint64_t> live_nodes_{0};
  // Invariant: a count is decremented only under its node's stripe, so a
  // count seen >= 2 under the stripe stays >= 1 after Set drops its own
  // reference: Set never frees a node (and needs no release callback).
  mutable std::mutex stripes_[kStripes];
};

}  // namespace pstorage::engine
