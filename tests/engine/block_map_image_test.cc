// Tests of the block map checkpoint image: a round trip keeps contents, ids
// and counts; damage, truncation and malformed structure are kCorruption.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdint>
#include <vector>

#include "engine/block_map.h"
#include "tests/engine/block_map_test_util.h"

namespace pstorage::engine {
namespace {

using block_map_test::Content, block_map_test::ContentRefs, block_map_test::Contents;
using block_map_test::Pattern, block_map_test::Write;

TEST(BlockMapTest, SerializeLoadRoundTripAndCorruption) {
  ContentRefs refs;
  NodeStore store(3, refs.AddFn());
  NodeId volume = kNullNode;
  for (uint64_t lba = 0; lba < 3000; lba += 7) Write(store, refs, &volume, lba, Content(lba + 1));
  NodeId snap = volume;
  store.Ref(snap);
  NodeId clone = snap;
  store.Ref(clone);
  Write(store, refs, &volume, 14, Pattern(5));
  Write(store, refs, &clone, 70000, Content(123456));
  const std::vector<NodeId> roots = {volume, snap, clone};
  std::vector<uint8_t> img;
  store.Serialize(roots, &img);

  NodeStore loaded(3, refs.AddFn());
  ASSERT_TRUE(loaded.Load(img.data(), img.size()).ok());
  EXPECT_EQ(loaded.live_nodes(), store.live_nodes());
  for (NodeId r : roots) {
    EXPECT_EQ(Contents(loaded, r), Contents(store, r));
    store.ForEachNode(r, [&](NodeId id) { EXPECT_EQ(loaded.RefCount(id), store.RefCount(id)); });
  }
  std::vector<uint8_t> again;
  loaded.Serialize(roots, &again);
  EXPECT_EQ(again, img);
  // The loaded store keeps working: a write allocates ids not in use.
  NodeId loaded_volume = volume;
  Write(loaded, refs, &loaded_volume, 21, Content(777));
  EXPECT_EQ(loaded.Get(snap, 21), Content(22));
  EXPECT_EQ(loaded.Get(clone, 21), Content(22));
  EXPECT_EQ(loaded.Get(loaded_volume, 14), Pattern(5));

  EXPECT_EQ(loaded.Load(img.data(), img.size()).code(), Code::kFailedPrecondition);
  EXPECT_EQ(NodeStore(2).Load(img.data(), img.size()).code(), Code::kInvalidArgument);
  for (size_t at : {size_t{0}, size_t{12}, size_t{20}, size_t{30}, img.size() / 2,
                    img.size() - 1}) {
    std::vector<uint8_t> bad = img;
    bad[at] ^= 0x10;
    NodeStore target(3);
    EXPECT_EQ(target.Load(bad.data(), bad.size()).code(), Code::kCorruption) << "byte " << at;
    EXPECT_EQ(target.live_nodes(), 0u);
  }
  NodeStore target(3);
  EXPECT_EQ(target.Load(img.data(), img.size() - 1).code(), Code::kCorruption);
  EXPECT_EQ(target.Load(img.data(), 10).code(), Code::kCorruption);
  std::vector<uint8_t> empty;
  store.Serialize({}, &empty);
  ASSERT_TRUE(target.Load(empty.data(), empty.size()).ok());
  EXPECT_EQ(target.live_nodes(), 0u);
  for (NodeId r : roots) store.Unref(r, refs.ReleaseFn());
  EXPECT_EQ(store.live_nodes(), 0u);
}

// A valid checksum does not make a malformed forest acceptable.
TEST(BlockMapTest, LoadRejectsBadStructureUnderValidChecksum) {
  NodeStore store(2);
  NodeId root = kNullNode;
  ASSERT_TRUE(store.Set(&root, 300, Pattern(1)).ok());
  std::vector<uint8_t> img;
  store.Serialize({root}, &img);
  ASSERT_EQ(img.size(), 24u + (41 + 4) + (41 + 9) + 8);  // root record first, then the leaf
  auto reseal = [](std::vector<uint8_t> b) {
    const uint64_t sum = XXH3_64bits(b.data(), b.size() - 8);
    for (int i = 0; i < 8; i++) b[b.size() - 8 + i] = static_cast<uint8_t>(sum >> (8 * i));
    return b;
  };
  std::vector<uint8_t> dangling = img;
  dangling[24 + 41] ^= 0x40;  // the root's child id names no record
  std::vector<uint8_t> orphan = img;
  orphan.erase(orphan.begin() + 24, orphan.begin() + 24 + 45);  // a leaf without its root
  orphan[16] = 1;
  std::vector<uint8_t> zero_count = img;
  zero_count[24 + 45 + 4] = 0;  // the leaf's count
  for (const auto& bad : {dangling, orphan, zero_count}) {
    NodeStore target(2);
    EXPECT_EQ(target.Load(bad.data(), bad.size()).code(), Code::kCorruption);  // checksum
    EXPECT_EQ(target.Load(reseal(bad).data(), bad.size()).code(), Code::kCorruption);
    EXPECT_EQ(target.live_nodes(), 0u);
  }
  NodeStore target(2);
  EXPECT_TRUE(target.Load(reseal(img).data(), img.size()).ok());
  store.Unref(root, nullptr);
}

}  // namespace
}  // namespace pstorage::engine
