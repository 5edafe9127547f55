// Tests of the copy-on-write block maps: reads and writes, snapshot
// isolation, a randomized model of many roots with content reference
// counting, and concurrent writers sharing nodes. The checkpoint image is
// tested in block_map_image_test.cc.
#include "engine/block_map.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <barrier>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "tests/engine/block_map_test_util.h"

namespace pstorage::engine {
namespace {

using block_map_test::CheckInvariants, block_map_test::Content, block_map_test::Contents;
using block_map_test::ContentRefs, block_map_test::Kind, block_map_test::Pattern;
using block_map_test::Write;

TEST(BlockMapTest, MaxBlocksAndBounds) {
  EXPECT_EQ(NodeStore(1).max_blocks(), 256u);
  EXPECT_EQ(NodeStore(3).max_blocks(), 1u << 24);
  EXPECT_EQ(NodeStore(5).max_blocks(), uint64_t{1} << 40);
  EXPECT_EQ(NodeStore(6).max_blocks(), uint64_t{1} << 40);
  NodeStore store(2);
  NodeId root = kNullNode;
  Result<MapEntry> r = store.Set(&root, store.max_blocks(), Pattern(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(root, kNullNode);
  EXPECT_EQ(store.live_nodes(), 0u);
  ASSERT_TRUE(store.Set(&root, store.max_blocks() - 1, Pattern(7)).ok());
  EXPECT_EQ(store.Get(root, store.max_blocks() - 1), Pattern(7));
  EXPECT_EQ(store.Get(root, store.max_blocks()), MapEntry{});  // past the end reads unmapped
  store.Unref(root, nullptr);
}

TEST(BlockMapTest, UnmappedReads) {
  NodeStore store(3);
  NodeId root = kNullNode;
  EXPECT_EQ(store.Get(root, 12345), MapEntry{});
  std::vector<MapEntry> out(600, Pattern(9));
  store.GetRange(root, 1000, out.size(), out.data());
  for (const MapEntry& e : out) EXPECT_EQ(e, MapEntry{});
  // Trimming what was never written allocates nothing.
  ASSERT_TRUE(store.Set(&root, 77, MapEntry{}).ok());
  EXPECT_EQ(root, kNullNode);
  EXPECT_EQ(store.live_nodes(), 0u);
  ASSERT_TRUE(store.Set(&root, 77, Pattern(3)).ok());
  EXPECT_EQ(store.live_nodes(), 3u);  // a fresh path: root, interior, leaf
  EXPECT_EQ(store.Get(root, 76), MapEntry{});
  EXPECT_EQ(store.Get(root, 78), MapEntry{});
  EXPECT_EQ(store.Get(root, 77 + 256), MapEntry{});
  store.Unref(root, nullptr);
  EXPECT_EQ(store.live_nodes(), 0u);
}

TEST(BlockMapTest, RandomRoundTrip) {
  const uint32_t seed = 20240611;
  std::printf("RandomRoundTrip seed=%u\n", seed);
  std::mt19937_64 rng(seed);
  ContentRefs refs;
  NodeStore store(4, refs.AddFn());
  const uint64_t last = store.max_blocks() - 1;
  NodeId root = kNullNode;
  std::map<uint64_t, MapEntry> model;
  for (int i = 0; i < 3000; i++) {
    const uint64_t lba = i == 0 ? last : i == 1 ? 0 : rng() % store.max_blocks();
    const MapEntry e = i % 3 ? Content(i + 1) : Pattern(rng());
    EXPECT_EQ(Write(store, refs, &root, lba, e), model[lba]) << "lba " << lba;
    model[lba] = e;
  }
  for (const auto& [lba, e] : model) EXPECT_EQ(store.Get(root, lba), e) << "lba " << lba;
  EXPECT_EQ(Contents(store, root), model);
  EXPECT_EQ(store.Get(root, last), model[last]);
  CheckInvariants(store, {root}, refs);
  EXPECT_GT(store.memory_bytes(), store.live_nodes() * 4096);
  store.Unref(root, refs.ReleaseFn());
  EXPECT_EQ(store.live_nodes(), 0u);
  EXPECT_TRUE(refs.Live().empty());
}

TEST(BlockMapTest, RangeReadsAcrossLeafAndSubtreeBoundaries) {
  NodeStore store(3);
  NodeId root = kNullNode;
  std::map<uint64_t, MapEntry> model;
  for (uint64_t lba = 250; lba < 800; lba += 3) model[lba] = Pattern(lba);
  for (uint64_t lba = 65530; lba < 65545; lba++) model[lba] = Pattern(lba);  // interior boundary
  for (uint64_t lba = store.max_blocks() - 5; lba < store.max_blocks(); lba++) {
    model[lba] = Pattern(lba);
  }
  for (const auto& [lba, e] : model) ASSERT_TRUE(store.Set(&root, lba, e).ok());
  auto check = [&](uint64_t lba, uint64_t count) {
    std::vector<MapEntry> out(count, Content(99));
    store.GetRange(root, lba, count, out.data());
    for (uint64_t i = 0; i < count; i++) {
      const auto it = model.find(lba + i);
      EXPECT_EQ(out[i], it == model.end() ? MapEntry{} : it->second) << "lba " << lba + i;
    }
  };
  check(240, 600);                       // three leaves
  check(0, 70000);                       // null leaves and an interior boundary
  check(65000, 1000);
  check(store.max_blocks() - 300, 310);  // runs past the end
  store.Unref(root, nullptr);
}

TEST(BlockMapTest, SnapshotIsolation) {
  ContentRefs refs;
  NodeStore store(3, refs.AddFn());
  NodeId volume = kNullNode;
  for (uint64_t lba = 0; lba < 1000; lba++) Write(store, refs, &volume, lba, Content(lba + 1));
  const uint64_t nodes_before = store.live_nodes();
  NodeId snap = volume;
  store.Ref(snap);  // O(1): no node copied
  EXPECT_EQ(store.live_nodes(), nodes_before);
  EXPECT_EQ(Write(store, refs, &volume, 10, Content(5000)), Content(11));
  EXPECT_NE(volume, snap);
  EXPECT_EQ(store.Get(volume, 10), Content(5000));
  EXPECT_EQ(store.Get(snap, 10), Content(11));
  EXPECT_EQ(store.live_nodes(), nodes_before + 3);  // one path copied
  // And the other way: a write through the snapshot's root.
  EXPECT_EQ(Write(store, refs, &snap, 20, Pattern(0)), Content(21));
  EXPECT_EQ(store.Get(snap, 20), Pattern(0));
  EXPECT_EQ(store.Get(volume, 20), Content(21));
  EXPECT_EQ(store.Get(snap, 10), Content(11));
  CheckInvariants(store, {volume, snap}, refs);
  store.Unref(volume, refs.ReleaseFn());
  for (uint64_t lba = 0; lba < 1000; lba++) {
    const MapEntry want = lba == 20 ? Pattern(0) : Content(lba + 1);
    EXPECT_EQ(store.Get(snap, lba), want);
  }
  CheckInvariants(store, {snap}, refs);
  store.Unref(snap, refs.ReleaseFn());
  EXPECT_EQ(store.live_nodes(), 0u);
  EXPECT_TRUE(refs.Live().empty());
}

TEST(BlockMapTest, RandomizedModelOfManyRoots) {
  const uint32_t seed = 4242;
  std::printf("RandomizedModelOfManyRoots seed=%u\n", seed);
  std::mt19937_64 rng(seed);
  ContentRefs refs;
  NodeStore store(3, refs.AddFn());
  struct Root {
    NodeId id = kNullNode;
    std::map<uint64_t, MapEntry> model;
  };
  std::vector<Root> roots(2);
  // LBAs cluster so that roots share leaves; one cluster crosses an interior
  // boundary and one ends at the last block.
  const uint64_t bases[] = {0, 65536 - 300, store.max_blocks() - 600};
  uint64_t next_content = 1;
  auto live_roots = [&] {
    std::vector<NodeId> ids;
    for (const Root& r : roots) ids.push_back(r.id);
    return ids;
  };
  for (int op = 0; op < 6000; op++) {
    Root& r = roots[rng() % roots.size()];
    const uint32_t dice = rng() % 100;
    if (dice < 70) {
      const uint64_t lba = bases[rng() % 3] + rng() % 600;
      MapEntry e;
      if (dice < 40) e = Content(next_content++);
      else if (dice < 50) e = Content(1 + rng() % next_content);  // a dedupe hit
      else if (dice < 60) e = Pattern(rng() % 4);
      const auto it = r.model.find(lba);
      ASSERT_EQ(Write(store, refs, &r.id, lba, e), it == r.model.end() ? MapEntry{} : it->second);
      if (e.kind == Kind::kUnmapped) r.model.erase(lba);
      else r.model[lba] = e;
    } else if (dice < 82 && roots.size() < 12) {
      store.Ref(r.id);  // snapshot or clone
      roots.push_back(r);
    } else if (dice < 92 && roots.size() > 1) {
      const size_t victim = rng() % roots.size();
      store.Unref(roots[victim].id, refs.ReleaseFn());
      roots.erase(roots.begin() + victim);
    }
    if (op % 250 == 0 || op == 5999) {
      for (const Root& each : roots) ASSERT_EQ(Contents(store, each.id), each.model);
      CheckInvariants(store, live_roots(), refs);
      ASSERT_FALSE(HasFailure()) << "op " << op;
    }
  }
  while (!roots.empty()) {
    store.Unref(roots.back().id, refs.ReleaseFn());
    roots.pop_back();
    CheckInvariants(store, live_roots(), refs);
  }
  EXPECT_EQ(store.live_nodes(), 0u);
  EXPECT_TRUE(refs.Live().empty());
}

TEST(BlockMapTest, FreedNodesAreReused) {
  NodeStore store(2);
  NodeId root = kNullNode;
  auto fill = [&](uint64_t pattern) {  // 50 leaves under one root
    for (uint64_t lba = 0; lba < 256 * 50; lba += 256) {
      ASSERT_TRUE(store.Set(&root, lba, Pattern(pattern)).ok());
    }
  };
  fill(1);
  const uint64_t bytes = store.memory_bytes();
  EXPECT_GE(bytes, 51u * 4096);
  NodeId max_id = 0;
  store.ForEachNode(root, [&](NodeId id) { max_id = std::max(max_id, id); });
  store.Unref(std::exchange(root, kNullNode), nullptr);
  EXPECT_EQ(store.live_nodes(), 0u);
  EXPECT_LE(store.memory_bytes(), bytes - 51u * 4096 + 51u * sizeof(NodeId));
  fill(2);
  uint64_t visited = 0;
  store.ForEachNode(root, [&](NodeId id) {
    visited++;
    EXPECT_LE(id, max_id);
  });
  EXPECT_EQ(visited, 51u);
  store.Unref(root, nullptr);
}

// Each round starts with volume 1 re-cloned from volume 0, so the two share
// every node; both then write one region at once and race to copy the same
// nodes. Some rounds also take and drop snapshots mid-round (Unref racing
// with copies), and a snapshot of the start is read and dropped in round 0.
TEST(BlockMapTest, ConcurrentWritersOnSharedRoots) {
  const uint32_t seed = 777;
  std::printf("ConcurrentWritersOnSharedRoots seed=%u\n", seed);
  ContentRefs refs;
  NodeStore store(3, refs.AddFn());
  constexpr uint64_t kBlocks = 20000;
  constexpr int kRounds = 300;
  constexpr int kWritesPerRound = 64;
  NodeId roots[2] = {kNullNode, kNullNode};
  std::map<uint64_t, MapEntry> models[2];
  for (uint64_t lba = 0; lba < kBlocks; lba += 2) {
    Write(store, refs, &roots[0], lba, Content(lba + 1));
    models[0][lba] = Content(lba + 1);
  }
  const std::map<uint64_t, MapEntry> start_model = models[0];
  NodeId start_snap = roots[0];
  store.Ref(start_snap);
  std::barrier sync(3);  // main and both writers; main re-clones between rounds
  auto writer = [&](int t) {
    std::mt19937_64 rng(seed + t);
    NodeId own_snap = kNullNode;
    for (int round = 0; round < kRounds; round++) {
      sync.arrive_and_wait();
      const uint64_t region = (uint64_t{977} * round) % (kBlocks - 512);
      for (int i = 0; i < kWritesPerRound; i++) {
        if (round % 4 == 1 && i % 16 == 0) {
          store.Unref(std::exchange(own_snap, roots[t]), refs.ReleaseFn());
          store.Ref(own_snap);
        }
        const uint64_t lba = region + rng() % 512;
        const uint64_t n = uint64_t{kWritesPerRound} * round + i;
        const MapEntry e = i % 4 ? Content((static_cast<uint64_t>(t + 1) << 32) | n) : Pattern(n);
        Write(store, refs, &roots[t], lba, e);
        models[t][lba] = e;
      }
      store.Unref(std::exchange(own_snap, kNullNode), refs.ReleaseFn());
      sync.arrive_and_wait();
    }
  };
  std::thread a(writer, 0), b(writer, 1);
  for (int round = 0; round < kRounds; round++) {
    store.Unref(roots[1], refs.ReleaseFn());
    roots[1] = roots[0];
    store.Ref(roots[1]);
    models[1] = models[0];
    sync.arrive_and_wait();
    if (round == 0) {
      EXPECT_EQ(Contents(store, start_snap), start_model);
      store.Unref(start_snap, refs.ReleaseFn());
    }
    sync.arrive_and_wait();
  }
  a.join();
  b.join();
  for (int t = 0; t < 2; t++) EXPECT_EQ(Contents(store, roots[t]), models[t]);
  CheckInvariants(store, {roots[0], roots[1]}, refs);
  store.Unref(roots[0], refs.ReleaseFn());
  store.Unref(roots[1], refs.ReleaseFn());
  EXPECT_EQ(store.live_nodes(), 0u);
  EXPECT_TRUE(refs.Live().empty());
}

// The narrowest race: a write copies a node of count 2 while the other
// holder drops it. Either the drop comes first and the write goes in place,
// or the copy does and the drop frees the original; never both, never
// neither (a height-1 map's root is its only leaf, with 256 contents).
TEST(BlockMapTest, SnapshotDropRacingWithCopy) {
  ContentRefs refs;
  NodeStore store(1, refs.AddFn());
  NodeId volume = kNullNode;
  std::map<uint64_t, MapEntry> model;
  for (uint64_t lba = 0; lba < kFanout; lba++) {
    Write(store, refs, &volume, lba, Content(lba + 1));
    model[lba] = Content(lba + 1);
  }
  constexpr int kIterations = 20000;
  NodeId snap = kNullNode;
  std::barrier sync(2);
  std::thread dropper([&] {
    for (int i = 0; i < kIterations; i++) {
      sync.arrive_and_wait();
      store.Unref(snap, refs.ReleaseFn());
      sync.arrive_and_wait();
    }
  });
  for (int i = 0; i < kIterations; i++) {
    snap = volume;
    store.Ref(snap);
    sync.arrive_and_wait();
    const MapEntry e = Content(1000 + i);
    Write(store, refs, &volume, i % kFanout, e);
    model[i % kFanout] = e;
    sync.arrive_and_wait();
  }
  dropper.join();
  EXPECT_EQ(Contents(store, volume), model);
  CheckInvariants(store, {volume}, refs);
  store.Unref(volume, refs.ReleaseFn());
  EXPECT_EQ(store.live_nodes(), 0u);
  EXPECT_TRUE(refs.Live().empty());
}

}  // namespace
}  // namespace pstorage::engine
