// Helpers shared by the block map tests: a model of the content store's
// reference counts, Set as the engine calls it, and an independent reader of
// the checkpoint image used to check every count against the tree.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "engine/block_map.h"

namespace pstorage::engine::block_map_test {

using Kind = MapEntry::Kind;

inline MapEntry Content(uint64_t id) { return {Kind::kContent, id}; }
inline MapEntry Pattern(uint64_t p) { return {Kind::kPattern, p}; }

// The content store's side: one reference per map entry naming a content.
// A count below zero means a reference was released twice.
class ContentRefs {
 public:
  void Add(uint64_t id) { Adjust(id, +1); }
  void Release(uint64_t id) { Adjust(id, -1); }
  std::function<void(uint64_t)> AddFn() { return [this](uint64_t id) { Add(id); }; }
  std::function<void(uint64_t)> ReleaseFn() { return [this](uint64_t id) { Release(id); }; }
  std::map<uint64_t, int64_t> Live() const {  // nonzero counts only
    std::lock_guard lock(mu_);
    return refs_;
  }

 private:
  void Adjust(uint64_t id, int64_t delta) {
    std::lock_guard lock(mu_);
    if ((refs_[id] += delta) == 0) refs_.erase(id);
  }
  mutable std::mutex mu_;
  std::map<uint64_t, int64_t> refs_;
};

// Set as the engine does it: the new entry brings one content reference,
// the returned old entry's reference is released.
inline MapEntry Write(NodeStore& store, ContentRefs& refs, NodeId* root, uint64_t lba, MapEntry e) {
  if (e.kind == Kind::kContent) refs.Add(e.value);
  Result<MapEntry> old = store.Set(root, lba, e);
  EXPECT_TRUE(old.ok()) << old.status().ToString();
  if (!old.ok()) return {};
  if (old->kind == Kind::kContent) refs.Release(old->value);
  return *old;
}

inline std::map<uint64_t, MapEntry> Contents(const NodeStore& store, NodeId root) {
  std::map<uint64_t, MapEntry> out;
  store.ForEach(root, [&](uint64_t lba, const MapEntry& e) {
    EXPECT_TRUE(out.empty() || out.rbegin()->first < lba) << "not in LBA order";
    out[lba] = e;
  });
  return out;
}

// A decoded checkpoint image (layout in docs/formats.md), read independently
// of the store so the tests check the documented format.
struct ImageNode {
  uint32_t count = 0;
  bool leaf = false;
  std::vector<NodeId> children;
  std::vector<MapEntry> entries;
};
inline uint64_t Le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= uint64_t{p[i]} << (8 * i);
  return v;
}
inline std::map<NodeId, ImageNode> ParseImage(const std::vector<uint8_t>& img) {
  std::map<NodeId, ImageNode> nodes;
  EXPECT_EQ(Le(img.data(), 8), 0x313050414d425350u);  // "PSBMAP01"
  size_t pos = 24;
  for (uint64_t n = Le(img.data() + 16, 8); n > 0; n--) {
    ImageNode& node = nodes[static_cast<NodeId>(Le(&img[pos], 4))];
    node.count = static_cast<uint32_t>(Le(&img[pos + 4], 4));
    node.leaf = img[pos + 8] == 1;
    const uint8_t* bitmap = &img[pos + 9];
    pos += 41;
    for (uint32_t i = 0; i < kFanout; i++) {
      if (!(bitmap[i / 8] & (1u << (i % 8)))) continue;
      if (node.leaf) {
        node.entries.push_back({static_cast<Kind>(img[pos]), Le(&img[pos + 1], 8)});
        pos += 9;
      } else {
        node.children.push_back(static_cast<NodeId>(Le(&img[pos], 4)));
        pos += 4;
      }
    }
  }
  EXPECT_EQ(pos + 8, img.size());
  return nodes;
}

// With `roots` every live root of the store: each node's count is the number
// of parents plus roots pointing at it, no node leaks, and every content's
// reference count is the number of leaf entries naming it.
inline void CheckInvariants(const NodeStore& store, const std::vector<NodeId>& roots,
                     const ContentRefs& refs) {
  std::vector<uint8_t> img;
  store.Serialize(roots, &img);
  const std::map<NodeId, ImageNode> nodes = ParseImage(img);
  std::map<NodeId, uint32_t> expected;
  std::map<uint64_t, int64_t> content_refs;
  for (NodeId r : roots) {
    if (r != kNullNode) expected[r]++;
  }
  for (const auto& [id, node] : nodes) {
    for (NodeId c : node.children) expected[c]++;
    for (const MapEntry& e : node.entries) {
      if (e.kind == Kind::kContent) content_refs[e.value]++;
    }
  }
  EXPECT_EQ(nodes.size(), store.live_nodes());
  EXPECT_EQ(expected.size(), nodes.size());
  for (const auto& [id, node] : nodes) {
    EXPECT_EQ(node.count, expected[id]) << "node " << id;
    EXPECT_EQ(store.RefCount(id), expected[id]) << "node " << id;
  }
  EXPECT_EQ(refs.Live(), content_refs);  // none negative, none leaked
}

}  // namespace pstorage::engine::block_map_test
