// Engine::Extents: the allocation map read from the block map, for a
// volume and for a snapshot, with unaligned and out-of-range requests.
#include "tests/engine/engine_test_util.h"

namespace pstorage::engine::testing {
namespace {

class ExtentsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(e_.Open()); }
  MemEngine e_;
};

Extent Hole(uint64_t off, uint64_t len) { return Extent{off, len, true, true}; }
Extent Data(uint64_t off, uint64_t len) { return Extent{off, len, false, false}; }

TEST_F(ExtentsTest, ANewVolumeIsOneHole) {
  const std::string vol = MakeVolume(e_.get(), "v", 16 << 20);
  Result<std::vector<Extent>> x = e_->Extents(vol, false, 0, 16 << 20);
  ASSERT_OK(x.status());
  EXPECT_EQ(std::vector<Extent>{Hole(0, 16 << 20)}, *x);
}

TEST_F(ExtentsTest, DataAndHolesAreToldApart) {
  const std::string vol = MakeVolume(e_.get(), "v", 1 << 20);
  std::vector<uint8_t> data;
  for (int i = 0; i < 3; i++) {
    std::vector<uint8_t> b = Block(i, BlockKind::kRandom);
    data.insert(data.end(), b.begin(), b.end());
  }
  ASSERT_OK(e_->Write(vol, 2 * kBlock, data).status());  // blocks 2-4
  // A written zero block is unmapped like a trimmed one; another pattern is data.
  ASSERT_OK(e_->Write(vol, 5 * kBlock, std::vector<uint8_t>(kBlock)).status());
  ASSERT_OK(e_->Write(vol, 6 * kBlock, Block(1, BlockKind::kPattern)).status());
  ASSERT_OK(e_->Trim(vol, 3 * kBlock, kBlock));
  Result<std::vector<Extent>> x = e_->Extents(vol, false, 0, 8 * kBlock);
  ASSERT_OK(x.status());
  const std::vector<Extent> want = {Hole(0, 2 * kBlock),      Data(2 * kBlock, kBlock),
                                    Hole(3 * kBlock, kBlock), Data(4 * kBlock, kBlock),
                                    Hole(5 * kBlock, kBlock), Data(6 * kBlock, kBlock),
                                    Hole(7 * kBlock, kBlock)};
  EXPECT_EQ(want, *x);

  // Unaligned: the ends are clipped to the request.
  x = e_->Extents(vol, false, 2 * kBlock + 100, kBlock);
  ASSERT_OK(x.status());
  EXPECT_EQ((std::vector<Extent>{Data(2 * kBlock + 100, kBlock - 100), Hole(3 * kBlock, 100)}), *x);
}

TEST_F(ExtentsTest, ASnapshotKeepsItsMapAfterTheVolumeChanges) {
  const std::string vol = MakeVolume(e_.get(), "v", 1 << 20);
  ASSERT_OK(e_->Write(vol, 0, Block(7, BlockKind::kRandom)).status());
  Result<SnapshotInfo> snap = e_->CreateSnapshot(vol, "s", "");
  ASSERT_OK(snap.status());
  ASSERT_OK(e_->Trim(vol, 0, kBlock));
  Result<std::vector<Extent>> x = e_->Extents(snap->id, true, 0, 2 * kBlock);
  ASSERT_OK(x.status());
  EXPECT_EQ((std::vector<Extent>{Data(0, kBlock), Hole(kBlock, kBlock)}), *x);
  x = e_->Extents(vol, false, 0, 2 * kBlock);
  ASSERT_OK(x.status());
  EXPECT_EQ(std::vector<Extent>{Hole(0, 2 * kBlock)}, *x);
}

TEST_F(ExtentsTest, ErrorsAreValues) {
  const std::string vol = MakeVolume(e_.get(), "v", 1 << 20);
  EXPECT_EQ(Code::kInvalidArgument, e_->Extents(vol, false, 1 << 20, 1).status().code());
  EXPECT_EQ(Code::kInvalidArgument, e_->Extents(vol, false, 1, ~0ull).status().code());
  EXPECT_EQ(Code::kNotFound, e_->Extents("nope", false, 0, 1).status().code());
  EXPECT_EQ(Code::kNotFound, e_->Extents(vol, true, 0, 1).status().code());
  Result<std::vector<Extent>> empty = e_->Extents(vol, false, 1 << 20, 0);
  ASSERT_OK(empty.status());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace pstorage::engine::testing
