// NodeStore::CheckRefCounts: the block maps' half of fsck.
#include <string>
#include <unordered_map>
#include <utility>

#include "engine/block_map.h"

namespace pstorage::engine {

uint64_t NodeStore::CheckRefCounts(const std::vector<NodeId>& roots,
                                   const std::function<void(const MapEntry&)>& leaf_entry,
                                   std::vector<std::string>* errors) const {
  std::unordered_map<NodeId, uint32_t> expected;  // parents + roots per node
  std::vector<std::pair<NodeId, uint32_t>> stack;  // (node, depth from the root)
  auto reach = [&](NodeId id, uint32_t depth) {
    if (id == kNullNode) return;
    if (expected[id]++ == 0) stack.push_back({id, depth});
  };
  for (NodeId root : roots) reach(root, 0);
  while (!stack.empty()) {
    auto [id, depth] = stack.back();
    stack.pop_back();
    const Node& node = At(id);
    bool leaf = depth + 1 == height_;
    for (uint32_t i = 0; i < kFanout; i++) {
      if (!node.Present(leaf, i)) continue;
      if (leaf) {
        leaf_entry(node.entries[i].entry());
      } else {
        reach(node.children[i], depth + 1);
      }
    }
  }
  uint64_t mismatches = 0;
  for (const auto& [id, want] : expected) {
    uint32_t have = RefCount(id);
    if (have == want) continue;
    mismatches++;
    if (errors != nullptr && errors->size() < 20) {
      errors->push_back("block map node " + std::to_string(id) + ": count " + std::to_string(have) +
                        " but " + std::to_string(want) + " parents and roots");
    }
  }
  return mismatches;
}

}  // namespace pstorage::engine
