// Tests of FaultyMedium: one-shot faults, seeded fault rates, and a power
// loss oracle (every loss keeps a prefix of the unsynced operations) over
// many seeds, on the memory and file media.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "flash_sim/flash.h"
#include "tests/flash_sim/medium_test_util.h"

namespace pstorage::flash::testing {
namespace {

class FaultyMediumTest : public ::testing::Test {
 protected:
  std::unique_ptr<Medium> base_ = NewMemoryMedium(kGeometry);
  FaultyMedium faulty_{base_.get(), FaultOptions{.seed = TestSeed()}};
};

TEST_F(FaultyMediumTest, FailNextProgramsFailsExactlyThatSlot) {
  faulty_.FailNextPrograms(1);
  AlignedBuffer a = SlotBuffer(Bytes(kSlotBytes, 1)), b = SlotBuffer(Bytes(kSlotBytes, 2));
  std::vector<SlotIo> ios = {{.slot = 4, .buf = a.get()}, {.slot = 5, .buf = b.get()}};
  EXPECT_EQ(faulty_.Program(ios).code(), Code::kIoError);
  EXPECT_EQ(ios[0].error, EIO);
  EXPECT_EQ(ios[1].error, 0);
  EXPECT_EQ(ReadSlot(&faulty_, 4), Bytes(kSlotBytes, 0));  // not written
  EXPECT_EQ(ReadSlot(&faulty_, 5), Bytes(kSlotBytes, 2));
  EXPECT_TRUE(faulty_.Program(ios).ok());  // the fault was one-shot
}

TEST_F(FaultyMediumTest, FailNextErasesLeavesTheCountUnchanged) {
  faulty_.FailNextErases(1);
  EXPECT_EQ(faulty_.Erase(2).code(), Code::kIoError);
  EXPECT_EQ(faulty_.Blocks()[2].erase_count, 0u);
  EXPECT_TRUE(faulty_.Erase(2).ok());
  EXPECT_EQ(faulty_.Blocks()[2].erase_count, 1u);
}

TEST_F(FaultyMediumTest, FlippedBitIsTransient) {
  std::mt19937_64 rng(TestSeed());
  const Bytes content = RandomBytes(rng, kSlotBytes);
  ASSERT_TRUE(ProgramSlot(&faulty_, 7, content).ok());
  faulty_.FlipBitOnNextReads(1);
  const Bytes disturbed = ReadSlot(&faulty_, 7);
  ASSERT_EQ(disturbed.size(), kSlotBytes);
  int bits = 0;
  for (size_t i = 0; i < kSlotBytes; i++) {
    const int diff = std::popcount(static_cast<unsigned>(disturbed[i] ^ content[i]));
    if (diff != 0) {
      EXPECT_LT(i, kPageBytes) << "the flip stays in the data area";
    }
    bits += diff;
  }
  EXPECT_EQ(bits, 1);
  EXPECT_EQ(ReadSlot(&faulty_, 7), content);
}

TEST_F(FaultyMediumTest, RatesAreReproducibleFromTheSeed) {
  auto failures = [](uint64_t seed) {
    auto base = NewMemoryMedium(kGeometry);
    FaultyMedium m(base.get(), {.seed = seed, .program_fail_rate = 0.5});
    std::vector<int> errors;
    for (uint64_t slot = 0; slot < kGeometry.slot_count(); slot++) {
      (void)ProgramSlot(&m, slot, Bytes(kSlotBytes, 1));
      errors.push_back(ReadSlot(&m, slot)[0]);
    }
    return errors;
  };
  const std::vector<int> first = failures(TestSeed());
  EXPECT_EQ(first, failures(TestSeed()));
  const auto written = std::count(first.begin(), first.end(), 1);
  EXPECT_GT(written, 0);
  EXPECT_LT(written, static_cast<long>(first.size()));

  faulty_.set_options({.erase_fail_rate = 1, .read_bitflip_rate = 1});
  EXPECT_EQ(faulty_.Erase(0).code(), Code::kIoError);
  EXPECT_NE(ReadSlot(&faulty_, 0), Bytes(kSlotBytes, 0));
}

// The medium's visible state, and a harness that drives random operations
// through a FaultyMedium while keeping the state after every logged one.
struct Snapshot {
  std::vector<Bytes> slots;
  std::vector<BlockInfo> blocks;
  std::array<uint8_t, kPageBytes> label{};
  int64_t programmed_slot = -1;  // the slot the operation leading here programmed
};

Snapshot Observe(Medium* m) {
  Snapshot s;
  for (uint64_t slot = 0; slot < m->geometry().slot_count(); slot++) {
    s.slots.push_back(ReadSlot(m, slot));
  }
  s.blocks = m->Blocks();
  s.label = ReadLabel(m);
  return s;
}

bool SameBlocks(const std::vector<BlockInfo>& a, const std::vector<BlockInfo>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](BlockInfo x, BlockInfo y) {
    return x.erase_count == y.erase_count && x.retired == y.retired;
  });
}

class PowerLossHarness {
 public:
  PowerLossHarness(Medium* base, uint64_t seed) : faulty_(base, {.seed = seed}), rng_(seed) {
    history_ = {Observe(base)};
  }

  // One random operation; each logged slot program, erase, retire or label
  // write appends the state after it to history_.
  void Step() {
    const uint64_t dice = rng_() % 20;
    if (dice < 11) return Program();
    const auto block = static_cast<uint32_t>(rng_() % kSmall.block_count);
    Snapshot next = history_.back();
    next.programmed_slot = -1;
    if (dice < 14) {
      if (!faulty_.Erase(block).ok()) return;  // retired: not logged
      next.blocks[block].erase_count++;
    } else if (dice == 14) {
      ASSERT_TRUE(faulty_.Retire(block).ok());
      next.blocks[block].retired = true;
    } else if (dice < 17) {
      for (auto& b : next.label) b = static_cast<uint8_t>(rng_());
      ASSERT_TRUE(faulty_.WriteLabel(next.label).ok());
    } else {
      ASSERT_TRUE(faulty_.Sync().ok());
      history_ = {history_.back()};
      return;
    }
    history_.push_back(std::move(next));
  }

  // Cuts the power and checks the result against history_.
  void PowerLossAndCheck() {
    const size_t logged = history_.size() - 1;
    const size_t dropped = faulty_.PowerLoss();
    ASSERT_LE(dropped, logged);
    const size_t kept = logged - dropped;
    const Snapshot got = Observe(&faulty_);
    const Snapshot& want = history_[kept];
    EXPECT_TRUE(SameBlocks(got.blocks, want.blocks));
    EXPECT_EQ(got.label, want.label);
    // The last kept operation, when a program, is torn; every other slot is exact.
    const int64_t torn = kept > 0 ? want.programmed_slot : -1;
    for (uint64_t slot = 0; slot < got.slots.size(); slot++) {
      SCOPED_TRACE("slot " + std::to_string(slot) + ", kept " + std::to_string(kept) + " of " +
                   std::to_string(logged));
      if (static_cast<int64_t>(slot) == torn) {
        ASSERT_TRUE(IsTorn(got.slots[slot], history_[kept - 1].slots[slot], want.slots[slot]));
      } else {
        ASSERT_EQ(got.slots[slot], want.slots[slot]);
      }
    }
    EXPECT_EQ(faulty_.PowerLoss(), 0u) << "PowerLoss syncs what it leaves";
    stats_.dropped_ops += dropped;
    stats_.torn_pages += torn >= 0;
    stats_.all_kept += dropped == 0 && logged > 0;
    history_ = {got};
  }

  struct Stats {
    size_t dropped_ops = 0;
    size_t torn_pages = 0;
    size_t all_kept = 0;  // power losses with unsynced operations that dropped none
  };
  const Stats& stats() const { return stats_; }

  static constexpr MediumGeometry kSmall{.pages_per_block = 4, .block_count = 4};

 private:
  void Program() {
    std::vector<Bytes> contents;
    std::vector<AlignedBuffer> bufs;
    std::vector<SlotIo> ios(1 + rng_() % 4);  // slots may repeat within the batch
    for (SlotIo& io : ios) {
      contents.push_back(RandomBytes(rng_, kSlotBytes));
      bufs.push_back(SlotBuffer(contents.back()));
      io = {.slot = rng_() % kSmall.slot_count(), .buf = bufs.back().get()};
    }
    (void)faulty_.Program(ios);  // slots of retired blocks fail alone
    for (size_t i = 0; i < ios.size(); i++) {
      if (ios[i].error != 0) continue;
      Snapshot next = history_.back();
      next.slots[ios[i].slot] = contents[i];
      next.programmed_slot = static_cast<int64_t>(ios[i].slot);
      history_.push_back(std::move(next));
    }
  }

  // New bytes for whole 512-byte sectors 1..8, then the old bytes.
  static bool IsTorn(const Bytes& got, const Bytes& old_bytes, const Bytes& new_bytes) {
    for (size_t sectors = 1; sectors < kSlotBytes / 512; sectors++) {
      const size_t cut = sectors * 512;
      if (std::equal(got.begin(), got.begin() + cut, new_bytes.begin()) &&
          std::equal(got.begin() + cut, got.end(), old_bytes.begin() + cut)) {
        return true;
      }
    }
    return false;
  }

  FaultyMedium faulty_;
  std::mt19937_64 rng_;
  std::vector<Snapshot> history_;  // [0] = the synced state
  Stats stats_;
};

PowerLossHarness::Stats RunPowerLossSeeds(const std::function<std::unique_ptr<Medium>()>& new_base,
                                          int seeds) {
  PowerLossHarness::Stats total;
  for (int i = 0; i < seeds; i++) {
    const uint64_t seed = TestSeed() + i;
    SCOPED_TRACE("power loss seed " + std::to_string(seed));
    auto base = new_base();
    PowerLossHarness harness(base.get(), seed);
    for (int round = 0; round < 3; round++) {
      for (int step = 0; step < 12; step++) harness.Step();
      harness.PowerLossAndCheck();
      if (::testing::Test::HasFatalFailure()) return total;
    }
    total.dropped_ops += harness.stats().dropped_ops;
    total.torn_pages += harness.stats().torn_pages;
    total.all_kept += harness.stats().all_kept;
  }
  return total;
}

TEST(PowerLossTest, MemoryKeepsAPrefixOfUnsyncedOpsOverManySeeds) {
  const auto stats =
      RunPowerLossSeeds([] { return NewMemoryMedium(PowerLossHarness::kSmall); }, 200);
  // The seeds reach every outcome: drops, tears, and cuts after the last op.
  EXPECT_GT(stats.dropped_ops, 0u);
  EXPECT_GT(stats.torn_pages, 0u);
  EXPECT_GT(stats.all_kept, 0u);
}

TEST(PowerLossTest, FileKeepsAPrefixOfUnsyncedOps) {
  const std::filesystem::path dir = NewTestDir(DiskRoot());
  int n = 0;
  RunPowerLossSeeds(
      [&] {
        auto m = OpenFileMedium((dir / std::to_string(n++)).string(), PowerLossHarness::kSmall);
        EXPECT_TRUE(m.ok()) << m.status().ToString();
        return std::move(m).value();
      },
      10);
  std::filesystem::remove_all(dir.parent_path());
}

}  // namespace
}  // namespace pstorage::flash::testing
