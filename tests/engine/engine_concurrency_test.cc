// Writers to different volumes, readers everywhere, and snapshots all at
// once; the end state matches each writer's model and fsck is clean.
#include <atomic>
#include <thread>

#include "tests/engine/engine_test_util.h"

namespace pstorage::engine::testing {
namespace {

TEST(EngineConcurrencyTest, WritersReadersAndSnapshotsInParallel) {
  MemEngine e;
  ASSERT_OK(e.Open());
  constexpr int kWriters = 3;
  constexpr uint64_t kBlocks = 256;
  std::string vols[kWriters];
  for (int i = 0; i < kWriters; i++) vols[i] = MakeVolume(e.get(), "v" + std::to_string(i), kBlocks * kBlock);
  // Every writer writes blocks whose contents name (volume, block, version).
  std::vector<std::vector<uint64_t>> versions(kWriters, std::vector<uint64_t>(kBlocks, 0));
  std::atomic<bool> failed{false}, done{false};
  // The same contents in every volume on purpose: cross-volume dedupe under load.
  auto contents = [](uint64_t b, uint64_t version) {
    return Block((b * 131 + version) % 97, BlockKind(version % 4));
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; w++) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(w + 1);
      for (uint64_t version = 1; version <= 400 && !failed; version++) {
        uint64_t b = rng() % kBlocks;
        if (!e->Write(vols[w], b * kBlock, contents(b, version)).ok()) failed = true;
        versions[w][b] = version;
        if (version % 100 == 0 &&
            !e->CreateSnapshot(vols[w], "s" + std::to_string(version), "").ok()) {
          failed = true;
        }
      }
    });
  }
  std::thread reader([&] {
    std::mt19937_64 rng(99);
    std::vector<uint8_t> buf(kBlock);
    while (!done && !failed) {
      int v = int(rng() % kWriters);
      if (!e->Read(vols[v], (rng() % kBlocks) * kBlock, buf).ok()) failed = true;
      for (const SnapshotInfo& s : e->ListAllSnapshots()) {
        if (!e->ReadSnapshot(s.id, 0, buf).ok()) failed = true;
      }
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  reader.join();
  ASSERT_FALSE(failed);
  for (int w = 0; w < kWriters; w++) {
    std::vector<uint8_t> got = ReadAll(e.get(), vols[w], 0, kBlocks * kBlock);
    for (uint64_t b = 0; b < kBlocks; b++) {
      std::vector<uint8_t> want = versions[w][b] ? contents(b, versions[w][b])
                                                 : std::vector<uint8_t>(kBlock, 0);
      ASSERT_TRUE(std::equal(want.begin(), want.end(), got.begin() + b * kBlock))
          << "volume " << w << " block " << b;
    }
  }
  Result<FsckReport> f = e->Fsck();
  ASSERT_OK(f.status());
  EXPECT_TRUE(f->clean()) << (f->errors.empty() ? "" : f->errors[0]);
  EXPECT_EQ(kWriters * 4u, e->ListAllSnapshots().size());
}

}  // namespace
}  // namespace pstorage::engine::testing
