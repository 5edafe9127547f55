// Recovery: reopening a medium rebuilds the FTL from the pages' spare areas,
// after a clean close and after a simulated power loss.
#include <filesystem>

#include "flash_sim/page_format.h"
#include "tests/flash_sim/test_util.h"

namespace pstorage::flash::testing {
namespace {

enum class Kind { kMemory, kFile };

class RecoveryTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    opts_ = SmallOptions(4, 32);
    if (GetParam() == Kind::kFile) dir_ = ScratchDir("recovery");
    medium_ = NewMedium();
  }
  void TearDown() override {
    medium_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // A medium of the parameter's kind; for files, reopening the same file.
  std::unique_ptr<Medium> NewMedium() {
    if (GetParam() == Kind::kMemory) return NewMemoryMedium(GeometryOf(opts_));
    Result<std::unique_ptr<Medium>> m = OpenFileMedium(dir_ + "/flash.img", GeometryOf(opts_));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return std::move(*m);
  }
  // Simulates a process restart: for files, the medium object goes too.
  void Restart() {
    if (GetParam() == Kind::kFile) {
      medium_.reset();
      medium_ = NewMedium();
    }
  }
  std::unique_ptr<FlashDevice> OpenDevice(Medium* m) {
    Result<std::unique_ptr<FlashDevice>> dev = FlashDevice::Open(opts_, m);
    EXPECT_TRUE(dev.ok()) << dev.status().ToString();
    return dev.ok() ? std::move(*dev) : nullptr;
  }
  // Random overwrites and trims over the first `live` pages.
  void Churn(FlashDevice& dev, Oracle& oracle, uint64_t pages_to_write, uint64_t& gen,
             std::mt19937_64& rng, uint64_t live) {
    std::vector<uint64_t> batch;
    for (uint64_t w = 0; w < pages_to_write; w += 8, gen++) {
      batch.clear();
      for (int i = 0; i < 8; i++) batch.push_back(rng() % live);
      if (gen % 23 == 0) {
        ASSERT_OK(dev.Trim(batch));
        for (uint64_t l : batch) oracle[l] = 0;
      } else {
        ASSERT_OK(WriteGen(dev, &oracle, batch, gen));
      }
    }
  }

  FlashOptions opts_;
  std::unique_ptr<Medium> medium_;
  std::string dir_;
};

TEST_P(RecoveryTest, CleanCloseKeepsEveryPageAndTrim) {
  uint64_t pages;
  Oracle oracle(0);
  FlashMetrics before;
  {
    auto dev = OpenDevice(medium_.get());
    pages = dev->logical_pages();
    oracle = Oracle(pages);
    std::mt19937_64 rng(SeedFromEnv(11));
    uint64_t gen = 1;
    Churn(*dev, oracle, 6 * pages, gen, rng, pages * 85 / 100);  // well past GC
    ASSERT_OK(dev->Flush());
    before = dev->Metrics();
    ASSERT_GT(before.gc_runs, 0u);
  }
  Restart();
  auto dev = OpenDevice(medium_.get());
  ASSERT_NE(nullptr, dev);
  EXPECT_TRUE(oracle.Verify(*dev));
  ASSERT_TRUE(dev->CheckInvariants().ok()) << dev->CheckInvariants().ToString();
  FlashMetrics after = dev->Metrics();
  EXPECT_EQ(before.used_bytes, after.used_bytes);
  EXPECT_EQ(before.max_erase_count, after.max_erase_count);  // erase counts are persistent
  EXPECT_DOUBLE_EQ(before.avg_erase_count, after.avg_erase_count);
  // The recovered device keeps working.
  std::mt19937_64 rng(5);
  uint64_t gen = 1u << 20;
  Churn(*dev, oracle, 2 * pages, gen, rng, pages * 85 / 100);
  EXPECT_TRUE(oracle.Verify(*dev));
}

TEST_P(RecoveryTest, PowerLossKeepsEveryFlushedPage) {
  const uint64_t seed = SeedFromEnv(100);
  size_t dropped_total = 0, reverted_total = 0;
  for (uint64_t round = 0; round < 12; round++) {
    medium_.reset();
    if (!dir_.empty()) std::filesystem::remove(dir_ + "/flash.img");
    medium_ = NewMedium();
    FaultOptions fo;
    fo.seed = seed + round;
    FaultyMedium faulty(medium_.get(), fo);
    std::mt19937_64 rng(seed + round);
    Oracle flushed(0);
    uint64_t pages;
    std::vector<uint64_t> unflushed_gen;  // newest generation written after the flush, per page
    {
      auto dev = OpenDevice(&faulty);
      pages = dev->logical_pages();
      flushed = Oracle(pages);
      uint64_t gen = 1;
      Churn(*dev, flushed, 3 * pages + rng() % pages, gen, rng, pages * 8 / 10);
      ASSERT_OK(dev->Flush());
      // Unflushed work: may be lost, in part or whole.
      Oracle after(pages);
      for (uint64_t l = 0; l < pages; l++) after[l] = flushed[l];
      Churn(*dev, after, rng() % pages, gen, rng, pages * 8 / 10);
      unflushed_gen.assign(pages, 0);
      for (uint64_t l = 0; l < pages; l++) {
        if (after[l] != flushed[l]) unflushed_gen[l] = after[l] == 0 ? ~0ull : after[l];
      }
      dropped_total += faulty.PowerLoss();
    }
    Restart();
    auto dev = OpenDevice(medium_.get());
    ASSERT_NE(nullptr, dev) << "round " << round;
    ASSERT_TRUE(dev->CheckInvariants().ok()) << dev->CheckInvariants().ToString();
    // Each page holds its flushed content, or a content written after the
    // flush; never anything else, never a checksum error.
    std::vector<uint8_t> got(kPageBytes), want(kPageBytes);
    for (uint64_t l = 0; l < pages; l++) {
      const uint64_t lpn[1] = {l};
      uint8_t* out[1] = {got.data()};
      Status s = dev->Read(lpn, out);
      ASSERT_TRUE(s.ok()) << "round " << round << " lpn " << l << ": " << s.ToString();
      uint64_t g = std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; })
                       ? 0 : GenerationOf(got.data());
      FillPage(want.data(), l, g);
      ASSERT_EQ(want, got) << "round " << round << " lpn " << l << " is not a whole page";
      if (g == flushed[l]) {
        reverted_total += unflushed_gen[l] != 0;
        continue;
      }
      ASSERT_NE(0u, unflushed_gen[l]) << "round " << round << " lpn " << l << ": lost a flushed page";
      ASSERT_GT(g == 0 ? ~0ull : g, flushed[l] == 0 ? 0 : flushed[l])
          << "round " << round << " lpn " << l << " went back in time";
    }
  }
  // The rounds really lost unflushed work (else this test proves nothing).
  EXPECT_GT(dropped_total, 0u);
  EXPECT_GT(reverted_total, 0u);
  std::printf("power loss dropped %zu unsynced operations; %zu pages reverted to their flushed content\n",
              dropped_total, reverted_total);
}

TEST_P(RecoveryTest, MismatchedOptionsAreRefused) {
  {
    auto dev = OpenDevice(medium_.get());
    ASSERT_OK(dev->Flush());
  }
  Restart();
  FlashOptions other = opts_;
  other.pages_per_block = 64;
  EXPECT_EQ(Code::kInvalidArgument, FlashDevice::Open(other, medium_.get()).status().code());
}

TEST_P(RecoveryTest, DamagedLabelIsCorruption) {
  uint8_t label[kPageBytes] = {};
  label[0] = 0x42;
  ASSERT_OK(medium_->WriteLabel(label));
  EXPECT_EQ(Code::kCorruption, FlashDevice::Open(opts_, medium_.get()).status().code());
}

INSTANTIATE_TEST_SUITE_P(Mediums, RecoveryTest, ::testing::Values(Kind::kMemory, Kind::kFile),
                         [](const auto& tp) {
                           return tp.param == Kind::kMemory ? "Memory" : "File";
                         });

}  // namespace
}  // namespace pstorage::flash::testing

namespace pstorage::flash::testing {
namespace {

// Flips one data byte of every slot holding `lpn` on the medium.
void RotPage(Medium* m, uint64_t lpn) {
  std::vector<uint8_t> raw(kSlotBytes + kSlotAlignBytes);
  uint8_t* buf = raw.data() + (kSlotAlignBytes - uintptr_t(raw.data()) % kSlotAlignBytes);
  for (uint64_t slot = 0; slot < m->geometry().slot_count(); slot++) {
    SlotIo io{slot, buf, 0};
    ASSERT_OK(m->Read(std::span(&io, 1)));
    std::optional<SpareArea> spare = DecodeSpare(buf);
    if (!spare || spare->kind != PageKind::kData || spare->lpn != lpn) continue;
    buf[100] ^= 0x10;
    ASSERT_OK(m->Program(std::span(&io, 1)));
  }
}

// A flushed page that rots is not taken for a torn write: after recovery it
// keeps reporting kCorruption (never an older copy, never zeros), and GC
// carries it along rather than getting stuck on it.
TEST(RotTest, RottenFlushedPageStaysCorruptAcrossRecoveryAndGc) {
  FlashOptions o = SmallOptions(2, 32);
  auto medium = NewMemoryMedium(GeometryOf(o));
  Oracle oracle(0);
  {
    auto dev = FlashDevice::Open(o, medium.get());
    ASSERT_OK(dev.status());
    oracle = Oracle((*dev)->logical_pages());
    std::vector<uint64_t> lpns;
    for (uint64_t l = 0; l < 200; l++) lpns.push_back(l);
    ASSERT_OK(WriteGen(**dev, &oracle, lpns, 1));
    ASSERT_OK(WriteGen(**dev, &oracle, std::span(lpns).subspan(0, 50), 2));  // old copies exist
    ASSERT_OK((*dev)->Flush());
  }
  RotPage(medium.get(), 7);    // has an older copy: must not fall back to it
  RotPage(medium.get(), 120);  // has none: must not read as zeros
  auto dev = FlashDevice::Open(o, medium.get());
  ASSERT_OK(dev.status());
  FlashDevice& d = **dev;
  std::vector<uint8_t> buf(kPageBytes);
  uint8_t* out[1] = {buf.data()};
  for (uint64_t lpn : {7, 120}) {
    const uint64_t one[1] = {lpn};
    EXPECT_EQ(Code::kCorruption, d.Read(one, out).code()) << "lpn " << lpn;
  }
  // Churn everything else until GC has moved every block at least once.
  std::mt19937_64 rng(3);
  for (uint64_t gen = 3; gen < 3 + 8 * d.logical_pages() / 8; gen++) {
    std::vector<uint64_t> batch;
    while (batch.size() < 8) {
      uint64_t l = 200 + rng() % (d.logical_pages() * 8 / 10 - 200);
      batch.push_back(l);
    }
    ASSERT_OK(WriteGen(d, &oracle, batch, gen));
  }
  EXPECT_GT(d.Metrics().gc_runs, 0u);
  for (uint64_t lpn : {7, 120}) {
    const uint64_t one[1] = {lpn};
    EXPECT_EQ(Code::kCorruption, d.Read(one, out).code()) << "lpn " << lpn;
  }
  EXPECT_OK(d.CheckInvariants());
  // Rewriting a rotten page heals it.
  const uint64_t seven[1] = {7};
  ASSERT_OK(WriteGen(d, &oracle, seven, 99));
  ASSERT_OK(d.Read(seven, out));
  EXPECT_EQ(99u, GenerationOf(buf.data()));
}

}  // namespace
}  // namespace pstorage::flash::testing
