// Tests of the Medium implementations. The shared suite runs against every
// backend; then file-medium specifics. FaultyMedium's own faults and the power
// loss oracle are in faulty_medium_test.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "flash_sim/file_medium_format.h"
#include "tests/flash_sim/medium_test_util.h"

namespace pstorage::flash::testing {
namespace {

constexpr uint64_t kEXT4Magic = 0xEF53;

enum class Backend { kMemory, kFileDirect, kFileBuffered, kFaultyMemory };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  constexpr const char* kNames[] = {"Memory", "FileDirect", "FileBuffered", "FaultyMemory"};
  return kNames[static_cast<int>(info.param)];
}

class MediumTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    rng_.seed(TestSeed());
    if (GetParam() == Backend::kFileDirect) dir_ = NewTestDir(DiskRoot());
    if (GetParam() == Backend::kFileBuffered) dir_ = NewTestDir("/dev/shm");
    medium_ = Open(kGeometry);
    ASSERT_NE(medium_, nullptr);
  }
  void TearDown() override {
    medium_.reset();
    base_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_.parent_path());
  }

  bool is_file() const {
    return GetParam() == Backend::kFileDirect || GetParam() == Backend::kFileBuffered;
  }

  std::unique_ptr<Medium> Open(const MediumGeometry& g) {
    switch (GetParam()) {
      case Backend::kMemory:
        return NewMemoryMedium(g);
      case Backend::kFaultyMemory:
        base_ = NewMemoryMedium(g);
        return std::make_unique<FaultyMedium>(base_.get(), FaultOptions{});
      case Backend::kFileDirect:
      case Backend::kFileBuffered: {
        internal::FileMediumOptions options;
        options.try_direct_io = GetParam() == Backend::kFileDirect;
        auto r = internal::OpenFileMedium(path(), g, options, &info_);
        EXPECT_TRUE(r.ok()) << r.status().ToString();
        return r.ok() ? std::move(r).value() : nullptr;
      }
    }
    return nullptr;
  }

  std::string path() const { return (dir_ / "medium").string(); }

  std::mt19937_64 rng_;
  std::filesystem::path dir_;
  FileMediumInfo info_;
  std::unique_ptr<Medium> base_;
  std::unique_ptr<Medium> medium_;
};

INSTANTIATE_TEST_SUITE_P(AllMedia, MediumTest,
                         ::testing::Values(Backend::kMemory, Backend::kFileDirect,
                                           Backend::kFileBuffered, Backend::kFaultyMemory),
                         BackendName);

TEST_P(MediumTest, ProgramThenReadRandomSlotsInOneBatch) {
  std::vector<uint64_t> slots(kGeometry.slot_count());
  for (uint64_t i = 0; i < slots.size(); i++) slots[i] = i;
  std::shuffle(slots.begin(), slots.end(), rng_);
  slots.resize(slots.size() * 3 / 4);  // gaps and runs of adjacent slots
  std::vector<Bytes> contents;
  std::vector<AlignedBuffer> bufs;
  std::vector<SlotIo> ios;
  for (uint64_t slot : slots) {
    contents.push_back(RandomBytes(rng_, kSlotBytes));
    bufs.push_back(SlotBuffer(contents.back()));
    ios.push_back({.slot = slot, .buf = bufs.back().get(), .error = -1});
  }
  ASSERT_TRUE(medium_->Program(ios).ok());
  for (const SlotIo& io : ios) EXPECT_EQ(io.error, 0);

  std::reverse(ios.begin(), ios.end());  // read back in another order
  for (SlotIo& io : ios) std::memset(io.buf, 0xAA, kSlotBytes);
  ASSERT_TRUE(medium_->Read(ios).ok());
  for (size_t i = 0; i < slots.size(); i++) {
    EXPECT_EQ(0, std::memcmp(bufs[i].get(), contents[i].data(), kSlotBytes)) << slots[i];
  }
}

// More adjacent slots than one I/O takes, and more runs than the ring holds.
TEST_P(MediumTest, LargeBatchesSplitIntoManyIos) {
  const MediumGeometry big{.pages_per_block = 64, .block_count = 16};  // 1024 slots
  medium_.reset();
  if (is_file()) std::filesystem::remove(path());
  medium_ = Open(big);
  ASSERT_NE(medium_, nullptr);
  std::vector<AlignedBuffer> bufs;
  std::vector<SlotIo> all;
  for (uint64_t slot = 0; slot < big.slot_count(); slot++) {
    bufs.push_back(SlotBuffer(Bytes(kSlotBytes, static_cast<uint8_t>(slot * 7 + 1))));
    all.push_back({.slot = slot, .buf = bufs.back().get()});
  }
  ASSERT_TRUE(medium_->Program(all).ok());
  std::vector<SlotIo> every_other;
  for (uint64_t slot = 0; slot < big.slot_count(); slot += 2) every_other.push_back(all[slot]);
  for (SlotIo& io : every_other) std::memset(io.buf, 0, kSlotBytes);
  ASSERT_TRUE(medium_->Read(every_other).ok());
  for (const SlotIo& io : every_other) {
    ASSERT_EQ(io.buf[0], static_cast<uint8_t>(io.slot * 7 + 1));
    ASSERT_EQ(io.buf[kSlotBytes - 1], static_cast<uint8_t>(io.slot * 7 + 1));
  }
}

TEST_P(MediumTest, UnwrittenSlotsAndLabelReadAsZeros) {
  EXPECT_EQ(ReadSlot(medium_.get(), 0), Bytes(kSlotBytes, 0));
  EXPECT_EQ(ReadSlot(medium_.get(), kGeometry.slot_count() - 1), Bytes(kSlotBytes, 0));
  EXPECT_EQ(ReadLabel(medium_.get()), (std::array<uint8_t, kPageBytes>{}));
  for (const BlockInfo& b : medium_->Blocks()) {
    EXPECT_EQ(b.erase_count, 0u);
    EXPECT_FALSE(b.retired);
  }
}

TEST_P(MediumTest, SlotProgrammedTwiceInABatchKeepsTheLastWrite) {
  const Bytes first(kSlotBytes, 1), second(kSlotBytes, 2);
  AlignedBuffer a = SlotBuffer(first), b = SlotBuffer(second);
  std::vector<SlotIo> ios = {{.slot = 5, .buf = a.get()}, {.slot = 5, .buf = b.get()}};
  ASSERT_TRUE(medium_->Program(ios).ok());
  EXPECT_EQ(ReadSlot(medium_.get(), 5), second);
}

TEST_P(MediumTest, EraseIncrementsTheEraseCount) {
  ASSERT_TRUE(medium_->Erase(3).ok());
  ASSERT_TRUE(medium_->Erase(3).ok());
  ASSERT_TRUE(medium_->Erase(15).ok());
  const std::vector<BlockInfo> blocks = medium_->Blocks();
  ASSERT_EQ(blocks.size(), kGeometry.block_count);
  EXPECT_EQ(blocks[3].erase_count, 2u);
  EXPECT_EQ(blocks[15].erase_count, 1u);
  EXPECT_EQ(blocks[0].erase_count, 0u);
}

TEST_P(MediumTest, RetiredBlockRefusesEraseAndProgramButStaysReadable) {
  ASSERT_TRUE(ProgramSlot(medium_.get(), 2 * kGeometry.pages_per_block, Bytes(kSlotBytes, 9)).ok());
  ASSERT_TRUE(medium_->Retire(2).ok());
  EXPECT_TRUE(medium_->Blocks()[2].retired);
  EXPECT_EQ(medium_->Erase(2).code(), Code::kInvalidArgument);
  AlignedBuffer buf = SlotBuffer(Bytes(kSlotBytes, 1));
  SlotIo io{.slot = 2 * kGeometry.pages_per_block + 1, .buf = buf.get()};
  EXPECT_EQ(medium_->Program(std::span(&io, 1)).code(), Code::kInvalidArgument);
  EXPECT_EQ(io.error, EINVAL);
  EXPECT_EQ(ReadSlot(medium_.get(), 2 * kGeometry.pages_per_block), Bytes(kSlotBytes, 9));
  EXPECT_TRUE(medium_->Retire(2).ok());  // retiring twice is harmless
}

TEST_P(MediumTest, LabelRoundTrip) {
  const Bytes content = RandomBytes(rng_, kPageBytes);
  ASSERT_TRUE(
      medium_->WriteLabel(std::span<const uint8_t, kPageBytes>(content.data(), kPageBytes)).ok());
  const auto label = ReadLabel(medium_.get());
  EXPECT_TRUE(std::equal(label.begin(), label.end(), content.begin()));
}

TEST_P(MediumTest, OutOfRangeSlotFailsAloneAndOutOfRangeBlocksAreRefused) {
  AlignedBuffer good = SlotBuffer(Bytes(kSlotBytes, 4)), bad = SlotBuffer(Bytes(kSlotBytes, 5));
  std::vector<SlotIo> ios = {{.slot = 1, .buf = good.get()},
                             {.slot = kGeometry.slot_count(), .buf = bad.get()}};
  EXPECT_EQ(medium_->Program(ios).code(), Code::kInvalidArgument);
  EXPECT_EQ(ios[0].error, 0);
  EXPECT_EQ(ios[1].error, EINVAL);
  EXPECT_EQ(ReadSlot(medium_.get(), 1), Bytes(kSlotBytes, 4));
  EXPECT_EQ(medium_->Read(ios).code(), Code::kInvalidArgument);
  EXPECT_EQ(ios[0].error, 0);
  EXPECT_EQ(ios[1].error, EINVAL);
  EXPECT_EQ(medium_->Erase(kGeometry.block_count).code(), Code::kInvalidArgument);
  EXPECT_EQ(medium_->Retire(kGeometry.block_count).code(), Code::kInvalidArgument);
  EXPECT_TRUE(medium_->Sync().ok());
}

TEST_P(MediumTest, ConcurrentCallersOnSeparateBlocks) {
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; t++) {
    threads.emplace_back([this, t] {
      for (uint32_t round = 0; round < 20; round++) {
        const uint64_t slot = t * kGeometry.pages_per_block + round % kGeometry.pages_per_block;
        const Bytes content(kSlotBytes, static_cast<uint8_t>(t * 31 + round));
        EXPECT_TRUE(ProgramSlot(medium_.get(), slot, content).ok());
        EXPECT_EQ(ReadSlot(medium_.get(), slot), content);
        EXPECT_TRUE(medium_->Erase(t).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (uint32_t t = 0; t < 4; t++) EXPECT_EQ(medium_->Blocks()[t].erase_count, 20u);
}

class FileMediumTest : public MediumTest {};

INSTANTIATE_TEST_SUITE_P(Files, FileMediumTest,
                         ::testing::Values(Backend::kFileDirect, Backend::kFileBuffered),
                         BackendName);

TEST_P(FileMediumTest, ReopenPreservesSlotsLabelAndBlockTable) {
  const Bytes slot_bytes = RandomBytes(rng_, kSlotBytes), label = RandomBytes(rng_, kPageBytes);
  ASSERT_TRUE(ProgramSlot(medium_.get(), 77, slot_bytes).ok());
  ASSERT_TRUE(
      medium_->WriteLabel(std::span<const uint8_t, kPageBytes>(label.data(), kPageBytes)).ok());
  ASSERT_TRUE(medium_->Erase(9).ok());
  ASSERT_TRUE(medium_->Retire(10).ok());
  ASSERT_TRUE(medium_->Sync().ok());
  medium_.reset();
  medium_ = Open(kGeometry);
  ASSERT_NE(medium_, nullptr);
  EXPECT_EQ(ReadSlot(medium_.get(), 77), slot_bytes);
  const auto got = ReadLabel(medium_.get());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), label.begin()));
  EXPECT_EQ(medium_->Blocks()[9].erase_count, 1u);
  EXPECT_TRUE(medium_->Blocks()[10].retired);
  EXPECT_FALSE(medium_->Blocks()[9].retired);
}

TEST_P(FileMediumTest, RejectsOtherGeometryAndCorruptHeader) {
  medium_.reset();
  auto wrong = OpenFileMedium(path(), {.pages_per_block = 8, .block_count = 17});
  ASSERT_EQ(wrong.status().code(), Code::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("16 blocks x 8 pages"), std::string::npos);
  EXPECT_NE(wrong.status().message().find("17 blocks x 8 pages"), std::string::npos);
  auto geometry = ReadFileMediumGeometry(path());
  ASSERT_TRUE(geometry.ok());
  EXPECT_EQ(geometry->block_count, kGeometry.block_count);
  EXPECT_EQ(geometry->pages_per_block, kGeometry.pages_per_block);

  const int fd = open(path().c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const uint8_t flipped = 'X';
  ASSERT_EQ(pwrite(fd, &flipped, 1, 20), 1);  // inside block_count: checksum now fails
  close(fd);
  EXPECT_EQ(OpenFileMedium(path(), kGeometry).status().code(), Code::kCorruption);
  EXPECT_EQ(ReadFileMediumGeometry(path()).status().code(), Code::kCorruption);
}

// A file cut short under the medium: the read that crosses the end comes
// back short, its remainder finds the end, and only the cut slot fails.
TEST_P(FileMediumTest, ShortReadIsCompletedOrFailedNeverIgnored) {
  ASSERT_TRUE(ProgramSlot(medium_.get(), 10, Bytes(kSlotBytes, 10)).ok());
  ASSERT_TRUE(ProgramSlot(medium_.get(), 11, Bytes(kSlotBytes, 11)).ok());
  const off_t cut = static_cast<off_t>(file_format::SlotOffset(kGeometry.block_count, 11) + 2048);
  ASSERT_EQ(truncate(path().c_str(), cut), 0);
  AlignedBuffer a = NewAlignedBuffer(kSlotBytes), b = NewAlignedBuffer(kSlotBytes);
  std::vector<SlotIo> ios = {{.slot = 10, .buf = a.get()}, {.slot = 11, .buf = b.get()}};
  EXPECT_EQ(medium_->Read(ios).code(), Code::kIoError);
  EXPECT_EQ(ios[0].error, 0);
  EXPECT_EQ(Bytes(a.get(), a.get() + kSlotBytes), Bytes(kSlotBytes, 10));
  EXPECT_EQ(ios[1].error, EIO);
  medium_.reset();
  EXPECT_EQ(OpenFileMedium(path(), kGeometry).status().code(), Code::kCorruption);
}

TEST_P(FileMediumTest, ReportsWhetherDirectIoIsUsed) {
  struct statfs fs;
  ASSERT_EQ(statfs(dir_.c_str(), &fs), 0);
  if (GetParam() == Backend::kFileBuffered) {
    EXPECT_FALSE(info_.direct_io);
  } else if (fs.f_type == kEXT4Magic) {
    EXPECT_TRUE(info_.direct_io) << "ext4 takes O_DIRECT";
  }
}

TEST(FileLayoutTest, OnDiskLayoutMatchesTheFormat) {
  const std::filesystem::path dir = NewTestDir(DiskRoot());
  const std::string path = (dir / "medium").string();
  {
    auto m = OpenFileMedium(path, kGeometry);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE(ProgramSlot(m->get(), 3, Bytes(kSlotBytes, 0x33)).ok());
    for (int i = 0; i < 5; i++) ASSERT_TRUE((*m)->Erase(1).ok());
    ASSERT_TRUE((*m)->Retire(1).ok());
  }
  const int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  uint8_t header[32], entry[8], slot_first, slot_last;
  ASSERT_EQ(pread(fd, header, 32, 0), 32);
  ASSERT_EQ(pread(fd, entry, 8, 8192 + 8), 8);
  const off_t slot3 = 8192 + 4096 + 3 * 4608;  // 16 blocks: a one-chunk table
  ASSERT_EQ(pread(fd, &slot_first, 1, slot3), 1);
  ASSERT_EQ(pread(fd, &slot_last, 1, slot3 + 4607), 1);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  close(fd);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(header), 8), "PSMEDIA1");
  EXPECT_EQ(GetU32(header + 8), 1u);
  EXPECT_EQ(GetU32(header + 12), 4608u);
  EXPECT_EQ(GetU32(header + 16), 8u);
  EXPECT_EQ(GetU32(header + 20), 16u);
  EXPECT_EQ(GetU64(header + 24), XXH3_64bits(header, 24));
  EXPECT_EQ(GetU32(entry), 5u);
  EXPECT_EQ(GetU32(entry + 4), 1u);
  EXPECT_EQ(slot_first, 0x33);
  EXPECT_EQ(slot_last, 0x33);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 8192 + 4096 + 128 * 4608ull);
  EXPECT_EQ(ReadFileMediumGeometry((dir / "missing").string()).status().code(), Code::kNotFound);
  std::filesystem::remove_all(dir.parent_path());
}

}  // namespace
}  // namespace pstorage::flash::testing
