// The block engine end to end on memory: round trips, reduction, catalog,
// snapshots and clones, refcounts + fsck, collisions, recovery.
#include "tests/engine/engine_test_util.h"

namespace pstorage::engine::testing {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(e_.Open()); }
  MemEngine e_;
};

TEST_F(EngineTest, EveryKindOfBlockRoundTrips) {
  std::string vol = MakeVolume(e_.get(), "v");
  std::vector<uint8_t> data;
  const BlockKind kinds[] = {BlockKind::kRandom, BlockKind::kCompressible, BlockKind::kZero,
                             BlockKind::kPattern};
  for (int i = 0; i < 64; i++) {
    std::vector<uint8_t> b = Block(i % 13, kinds[i % 4]);  // many duplicates too
    data.insert(data.end(), b.begin(), b.end());
  }
  ASSERT_OK(e_->Write(vol, 0, data).status());
  EXPECT_EQ(data, ReadAll(e_.get(), vol, 0, data.size()));
  // Never-written blocks read as zeros.
  EXPECT_EQ(std::vector<uint8_t>(3 * kBlock, 0), ReadAll(e_.get(), vol, 1 << 20, 3 * kBlock));
  ReductionStats r = e_->Reduction();
  EXPECT_EQ(16u, r.zero_blocks_found);
  EXPECT_EQ(16u, r.pattern_blocks_found);
  EXPECT_GT(r.duplicate_blocks, 0u);
  EXPECT_GT(r.compression_ratio, 1.1);  // random blocks are stored raw
  EXPECT_GT(r.data_reduction_ratio, 1.0);
  EXPECT_EQ(data.size(), r.logical_bytes_written);
}

TEST_F(EngineTest, PartialWritesKeepTheBytesAround) {
  std::string vol = MakeVolume(e_.get(), "v");
  std::vector<uint8_t> model(4 * kBlock);
  for (size_t i = 0; i < model.size(); i++) model[i] = uint8_t(i * 7);
  ASSERT_OK(e_->Write(vol, 0, model).status());
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200; i++) {
    uint64_t off = rng() % model.size();
    uint64_t len = 1 + rng() % std::min<uint64_t>(model.size() - off, 9000);
    std::vector<uint8_t> patch(len);
    for (auto& b : patch) b = uint8_t(rng());
    ASSERT_OK(e_->Write(vol, off, patch).status());
    std::memcpy(model.data() + off, patch.data(), len);
  }
  EXPECT_EQ(model, ReadAll(e_.get(), vol, 0, model.size()));
  // Reads at odd offsets too.
  EXPECT_EQ(std::vector<uint8_t>(model.begin() + 4095, model.begin() + 8193),
            ReadAll(e_.get(), vol, 4095, 4098));
}

TEST_F(EngineTest, TrimAndWriteZeroesReadAsZeros) {
  std::string vol = MakeVolume(e_.get(), "v");
  std::vector<uint8_t> data(8 * kBlock, 0xAB);
  ASSERT_OK(e_->Write(vol, 0, data).status());
  ASSERT_OK(e_->Trim(vol, kBlock + 100, 3 * kBlock));  // partial at both ends
  std::memset(data.data() + kBlock + 100, 0, 3 * kBlock);
  EXPECT_EQ(data, ReadAll(e_.get(), vol, 0, data.size()));
  ASSERT_OK(e_->WriteZeroes(vol, 0, data.size()));
  EXPECT_EQ(std::vector<uint8_t>(data.size(), 0), ReadAll(e_.get(), vol, 0, data.size()));
  EXPECT_EQ(0u, e_->GetVolume(vol)->used_bytes);
  EXPECT_EQ(0u, e_->Reduction().physical_bytes_used);
}

TEST_F(EngineTest, ADuplicateInAnotherVolumeTakesNoNewFlash) {
  std::string a = MakeVolume(e_.get(), "a"), b = MakeVolume(e_.get(), "b");
  std::vector<uint8_t> blk = Block(5, BlockKind::kRandom);
  ASSERT_OK(e_->Write(a, 0, blk).status());
  uint64_t physical = e_->Reduction().physical_bytes_used;
  Result<WriteResult> w = e_->Write(b, 8 * kBlock, blk);
  ASSERT_OK(w.status());
  EXPECT_TRUE(w->was_deduplicated);
  EXPECT_EQ(physical, e_->Reduction().physical_bytes_used);
  EXPECT_EQ(1u, e_->Reduction().duplicate_blocks);
  EXPECT_EQ(blk, ReadAll(e_.get(), b, 8 * kBlock, kBlock));
}

TEST_F(EngineTest, CatalogRulesAndErrors) {
  std::string vol = MakeVolume(e_.get(), "db");
  VolumeSpec spec;
  spec.name = "db";
  spec.size_bytes = 1 << 20;
  EXPECT_EQ(Code::kAlreadyExists, e_->CreateVolume(spec).status().code());
  spec.name = "";
  EXPECT_EQ(Code::kInvalidArgument, e_->CreateVolume(spec).status().code());
  spec.name = std::string(256, 'x');
  EXPECT_EQ(Code::kInvalidArgument, e_->CreateVolume(spec).status().code());
  spec.name = "odd";
  spec.size_bytes = 1000;
  EXPECT_EQ(Code::kInvalidArgument, e_->CreateVolume(spec).status().code());
  spec.size_bytes = (1ull << 40) + 4096;
  EXPECT_EQ(Code::kInvalidArgument, e_->CreateVolume(spec).status().code());
  EXPECT_EQ(Code::kNotFound, e_->GetVolume("nope").status().code());
  EXPECT_EQ(Code::kFailedPrecondition, e_->ResizeVolume(vol, 4096).status().code());
  ASSERT_OK(e_->ResizeVolume(vol, 32ull << 20).status());
  EXPECT_EQ(32ull << 20, e_->GetVolume(vol)->size_bytes);
  std::vector<uint8_t> blk(kBlock, 1);
  EXPECT_EQ(Code::kInvalidArgument, e_->Write(vol, (32ull << 20) - 10, blk).status().code());
  VolumeUpdate u;
  u.name = "db2";
  u.tags = Tags{{"env", "prod"}};
  ASSERT_OK(e_->UpdateVolume(vol, u).status());
  EXPECT_EQ("db2", e_->GetVolume(vol)->name);
  EXPECT_EQ("prod", e_->GetVolume(vol)->tags.at("env"));
  ASSERT_OK(e_->CreateSnapshot(vol, "s1", "").status());
  EXPECT_EQ(Code::kAlreadyExists, e_->CreateSnapshot(vol, "s1", "").status().code());
  EXPECT_EQ(Code::kFailedPrecondition, e_->DeleteVolume(vol).code());
  ASSERT_EQ(1u, e_->ListVolumes().size());
  // A failed call changed nothing.
  EXPECT_EQ(1u, e_->ListAllSnapshots().size());
}

TEST_F(EngineTest, SnapshotsAreIsolatedAndRestorable) {
  std::string vol = MakeVolume(e_.get(), "v");
  std::vector<uint8_t> v1 = Block(1, BlockKind::kRandom), v2 = Block(2, BlockKind::kRandom);
  ASSERT_OK(e_->Write(vol, 0, v1).status());
  Result<SnapshotInfo> snap = e_->CreateSnapshot(vol, "s", "before");
  ASSERT_OK(snap.status());
  EXPECT_EQ(kBlock, snap->used_bytes);
  ASSERT_OK(e_->Write(vol, 0, v2).status());
  std::vector<uint8_t> got(kBlock);
  ASSERT_OK(e_->ReadSnapshot(snap->id, 0, got));
  EXPECT_EQ(v1, got);
  EXPECT_EQ(v2, ReadAll(e_.get(), vol, 0, kBlock));
  // Clone diverges independently.
  Result<VolumeInfo> clone = e_->CloneVolume(vol, "c", "");
  ASSERT_OK(clone.status());
  ASSERT_OK(e_->Write(clone->id, 0, v1).status());
  EXPECT_EQ(v2, ReadAll(e_.get(), vol, 0, kBlock));
  EXPECT_EQ(v1, ReadAll(e_.get(), clone->id, 0, kBlock));
  // Restore onto the volume, and into a new one.
  ASSERT_OK(e_->RestoreSnapshot(snap->id, vol).status());
  EXPECT_EQ(v1, ReadAll(e_.get(), vol, 0, kBlock));
  Result<VolumeInfo> restored = e_->RestoreSnapshot(snap->id, "", "r");
  ASSERT_OK(restored.status());
  EXPECT_EQ(v1, ReadAll(e_.get(), restored->id, 0, kBlock));
  EXPECT_EQ(snap->id, restored->source_snapshot_id);
}

// Random writes, overwrites, snapshots, clones and deletes; fsck agrees with
// the maps at every step, and deleting everything frees all flash.
TEST_F(EngineTest, RefcountsStayExactAndEverythingIsFreedAtTheEnd) {
  std::mt19937_64 rng(7);
  std::vector<std::string> vols = {MakeVolume(e_.get(), "v0")};
  std::vector<std::string> snaps;
  for (int step = 0; step < 300; step++) {
    int op = rng() % 10;
    const std::string& vol = vols[rng() % vols.size()];
    if (op < 6) {
      size_t n = 1 + rng() % 8;
      std::vector<uint8_t> data;
      for (size_t i = 0; i < n; i++) {
        auto b = Block(rng() % 40, BlockKind(rng() % 4));
        data.insert(data.end(), b.begin(), b.end());
      }
      ASSERT_OK(e_->Write(vol, (rng() % 256) * kBlock, data).status());
    } else if (op == 6) {
      auto s = e_->CreateSnapshot(vol, "s" + std::to_string(step), "");
      ASSERT_OK(s.status());
      snaps.push_back(s->id);
    } else if (op == 7 && vols.size() < 5) {
      auto c = e_->CloneVolume(vol, "c" + std::to_string(step), "");
      ASSERT_OK(c.status());
      vols.push_back(c->id);
    } else if (op == 8 && !snaps.empty()) {
      ASSERT_OK(e_->DeleteSnapshot(snaps.back()));
      snaps.pop_back();
    } else if (op == 9) {
      ASSERT_OK(e_->Trim(vol, (rng() % 256) * kBlock, (1 + rng() % 16) * kBlock));
    }
    if (step % 50 == 49) {
      Result<FsckReport> f = e_->Fsck();
      ASSERT_OK(f.status());
      ASSERT_TRUE(f->clean()) << "step " << step << ": " << (f->errors.empty() ? "" : f->errors[0]);
    }
  }
  for (const std::string& s : snaps) ASSERT_OK(e_->DeleteSnapshot(s));
  for (const std::string& v : vols) ASSERT_OK(e_->DeleteVolume(v));
  Result<FsckReport> f = e_->Fsck();
  ASSERT_OK(f.status());
  EXPECT_TRUE(f->clean());
  EXPECT_EQ(0u, f->contents_checked);
  EXPECT_EQ(0u, e_->Reduction().physical_bytes_used);
  EXPECT_EQ(0u, e_->Reduction().unique_blocks);
}

TEST(EngineCollisionTest, ConstantHashNeverReturnsWrongDataWithVerifyOn) {
  EngineOptions o;
  o.constant_hash_for_tests = true;  // every block hashes alike
  MemEngine e(o);
  ASSERT_OK(e.Open());
  std::string vol = MakeVolume(e.get(), "v");
  std::vector<uint8_t> data;
  for (int i = 0; i < 200; i++) {
    auto b = Block(i, i % 2 ? BlockKind::kRandom : BlockKind::kCompressible);
    data.insert(data.end(), b.begin(), b.end());
  }
  ASSERT_OK(e->Write(vol, 0, data).status());
  EXPECT_EQ(data, ReadAll(e.get(), vol, 0, data.size()));
  EXPECT_EQ(0u, e->Reduction().duplicate_blocks);
  EXPECT_EQ(200u, e->Reduction().unique_blocks);
}

TEST_F(EngineTest, ReopenRecoversFromJournalAndFromCheckpoint) {
  std::string vol = MakeVolume(e_.get(), "v");
  std::vector<uint8_t> a(40 * kBlock), b(10 * kBlock);
  for (size_t i = 0; i < a.size(); i++) a[i] = uint8_t(i / 4096 * 3 + i % 251);
  for (size_t i = 0; i < b.size(); i++) b[i] = uint8_t(i % 13);
  ASSERT_OK(e_->Write(vol, 0, a).status());
  Result<SnapshotInfo> snap = e_->CreateSnapshot(vol, "s", "");
  ASSERT_OK(snap.status());
  ASSERT_OK(e_->Write(vol, 5 * kBlock, b).status());
  std::vector<uint8_t> expect = a;
  std::memcpy(expect.data() + 5 * kBlock, b.data(), b.size());
  ReductionStats before = e_->Reduction();
  for (int round = 0; round < 2; round++) {
    if (round == 1) ASSERT_OK(e_->Checkpoint());
    e_.Close();
    e_.env().DropUnsynced();  // only what was durable survives
    ASSERT_OK(e_.Open());
    EXPECT_EQ(expect, ReadAll(e_.get(), vol, 0, expect.size())) << "round " << round;
    std::vector<uint8_t> got(a.size());
    ASSERT_OK(e_->ReadSnapshot(snap->id, 0, got));
    EXPECT_EQ(a, got);
    ReductionStats after = e_->Reduction();
    EXPECT_EQ(before.physical_bytes_used, after.physical_bytes_used);
    EXPECT_EQ(before.logical_bytes_written, after.logical_bytes_written);
    EXPECT_EQ(before.unique_blocks, after.unique_blocks);
    Result<FsckReport> f = e_->Fsck();
    ASSERT_OK(f.status());
    EXPECT_TRUE(f->clean()) << (f->errors.empty() ? "" : f->errors[0]);
  }
}

TEST_F(EngineTest, DeepReduceReclaimsFlashAndKeepsData) {
  std::string vol = MakeVolume(e_.get(), "v");
  std::vector<uint8_t> data;
  for (int i = 0; i < 256; i++) {
    auto blk = Block(1000 + i, BlockKind::kCompressible);
    data.insert(data.end(), blk.begin(), blk.end());
  }
  ASSERT_OK(e_->Write(vol, 0, data).status());
  // Free every other block so pages become sparse.
  for (int i = 0; i < 256; i += 2) ASSERT_OK(e_->Trim(vol, i * kBlock, kBlock));
  for (int i = 0; i < 256; i += 2) std::memset(data.data() + i * kBlock, 0, kBlock);
  uint64_t before = e_->Reduction().physical_bytes_used;
  Result<uint64_t> reclaimed = e_->DeepReduce();
  ASSERT_OK(reclaimed.status());
  EXPECT_GT(*reclaimed, 0u);
  EXPECT_EQ(before - *reclaimed, e_->Reduction().physical_bytes_used);
  EXPECT_EQ(data, ReadAll(e_.get(), vol, 0, data.size()));
  e_.Close();
  ASSERT_OK(e_.Open());
  EXPECT_EQ(data, ReadAll(e_.get(), vol, 0, data.size()));
  EXPECT_TRUE(e_->Fsck()->clean());
}

}  // namespace
}  // namespace pstorage::engine::testing

namespace pstorage::engine::testing {
namespace {

// Thin provisioning lets volumes promise more than the flash holds; when the
// flash fills, writes fail with kNoSpace and nothing acknowledged is harmed.
TEST(EngineFullTest, FlashFullIsNoSpaceAndAcknowledgedDataSurvives) {
  EngineOptions o;
  o.flash.logical_capacity_bytes = 4ull << 20;  // 1024 flash pages
  MemEngine e(o);
  ASSERT_OK(e.Open());
  std::string vol = MakeVolume(e.get(), "big", 64ull << 20);  // 16x the flash
  std::vector<uint8_t> acked;
  Status last;
  uint64_t block = 0;
  for (; block < 4096 && last.ok(); block++) {
    std::vector<uint8_t> b = Block(block, BlockKind::kRandom);
    last = e->Write(vol, block * kBlock, b).status();
    if (last.ok()) acked.insert(acked.end(), b.begin(), b.end());
  }
  ASSERT_EQ(Code::kNoSpace, last.code()) << last.ToString();
  ASSERT_GT(acked.size(), 512 * kBlock);
  EXPECT_EQ(acked, ReadAll(e.get(), vol, 0, acked.size()));
  // The failed block reads as before (zeros): nothing half-written.
  EXPECT_EQ(std::vector<uint8_t>(kBlock, 0), ReadAll(e.get(), vol, (block - 1) * kBlock, kBlock));
  Result<FsckReport> f = e->Fsck();
  ASSERT_OK(f.status());
  EXPECT_TRUE(f->clean()) << (f->errors.empty() ? "" : f->errors[0]);
  // Freeing space lets writes proceed again, with no explicit checkpoint:
  // the write that finds the flash full takes one and retries.
  ASSERT_OK(e->Trim(vol, 0, 256 * kBlock));
  std::vector<uint8_t> b = Block(999999, BlockKind::kRandom);
  ASSERT_OK(e->Write(vol, (block - 1) * kBlock, b).status());
  e.Close();
  ASSERT_OK(e.Open());
  EXPECT_EQ(std::vector<uint8_t>(acked.begin() + 256 * kBlock, acked.end()),
            ReadAll(e.get(), vol, 256 * kBlock, acked.size() - 256 * kBlock));
  EXPECT_EQ(b, ReadAll(e.get(), vol, (block - 1) * kBlock, kBlock));
}

// Deleting a volume gives its flash back before the call returns.
TEST(EngineFullTest, DeletedVolumeSpaceIsUsableAtOnce) {
  EngineOptions o;
  o.flash.logical_capacity_bytes = 4ull << 20;
  MemEngine e(o);
  ASSERT_OK(e.Open());
  std::string filler = MakeVolume(e.get(), "filler", 64ull << 20);
  Status last;
  for (uint64_t block = 0; block < 4096 && last.ok(); block++) {
    last = e->Write(filler, block * kBlock, Block(block, BlockKind::kRandom)).status();
  }
  ASSERT_EQ(Code::kNoSpace, last.code());
  uint64_t used_full = e->FlashMetrics().used_bytes;
  ASSERT_OK(e->DeleteVolume(filler));
  EXPECT_LT(e->FlashMetrics().used_bytes, used_full / 4);
  std::string vol = MakeVolume(e.get(), "next", 1ull << 20);
  std::vector<uint8_t> b = Block(7, BlockKind::kRandom);
  ASSERT_OK(e->Write(vol, 0, b).status());
  EXPECT_EQ(b, ReadAll(e.get(), vol, 0, kBlock));
}

}  // namespace
}  // namespace pstorage::engine::testing
