// Injected faults: each gives its documented outcome and loses no page.
#include <filesystem>

#include "tests/flash_sim/test_util.h"

namespace pstorage::flash::testing {
namespace {

class FaultTest : public ::testing::Test {
 protected:
  void Open(const FlashOptions& o, const FaultOptions& fo = {}) {
    opts_ = o;
    base_ = NewMemoryMedium(GeometryOf(o));
    faulty_ = std::make_unique<FaultyMedium>(base_.get(), fo);
    auto dev = FlashDevice::Open(o, faulty_.get());
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    dev_ = std::move(*dev);
    oracle_ = Oracle(dev_->logical_pages());
  }
  // Writes random pages over the first `live` pages until `pages` were written.
  Status Churn(uint64_t pages, uint64_t live, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> batch;
    for (uint64_t w = 0; w < pages; w += 16) {
      batch.clear();
      for (int i = 0; i < 16; i++) batch.push_back(rng() % live);
      PS_RETURN_IF_ERROR(WriteGen(*dev_, &oracle_, batch, ++gen_));
    }
    return Status::Ok();
  }
  FlashOptions opts_;
  std::unique_ptr<Medium> base_;
  std::unique_ptr<FaultyMedium> faulty_;
  std::unique_ptr<FlashDevice> dev_;
  Oracle oracle_{0};
  uint64_t gen_ = 0;
};

TEST_F(FaultTest, ProgramFailureIsRetriedAndTheBlockRetired) {
  Open(SmallOptions(2, 32));
  faulty_->FailNextPrograms(3);
  std::vector<uint64_t> lpns = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_OK(WriteGen(*dev_, &oracle_, lpns, ++gen_));
  EXPECT_TRUE(oracle_.Verify(*dev_));
  EXPECT_EQ(3u, dev_->Metrics().program_failures);
  // Churn until GC has visited the failing block: it is retired, not erased.
  ASSERT_OK(Churn(6 * dev_->logical_pages(), dev_->logical_pages() * 8 / 10, 1));
  EXPECT_GE(dev_->Metrics().blocks_retired, 1u);
  EXPECT_TRUE(oracle_.Verify(*dev_));
  EXPECT_OK(dev_->CheckInvariants());
}

TEST_F(FaultTest, RandomProgramFailuresUnderChurnLoseNothing) {
  FaultOptions fo;
  fo.seed = SeedFromEnv(3);
  fo.program_fail_rate = 0.0005;
  FlashOptions o = SmallOptions(2, 32);
  o.over_provisioning = 0.5;  // room for the retired blocks
  Open(o, fo);
  faulty_->FailNextPrograms(1);  // at least one, whatever the seed
  ASSERT_OK(Churn(8 * dev_->logical_pages(), dev_->logical_pages() * 7 / 10, fo.seed));
  FlashMetrics m = dev_->Metrics();
  EXPECT_GT(m.program_failures, 0u);
  EXPECT_TRUE(oracle_.Verify(*dev_));
  EXPECT_OK(dev_->CheckInvariants());
}

TEST_F(FaultTest, EraseFailureRetiresTheBlock) {
  Open(SmallOptions(2, 32));
  faulty_->FailNextErases(1);
  ASSERT_OK(Churn(4 * dev_->logical_pages(), dev_->logical_pages() * 8 / 10, 2));
  FlashMetrics m = dev_->Metrics();
  EXPECT_EQ(1u, m.erase_failures);
  EXPECT_EQ(1u, m.blocks_retired);
  EXPECT_EQ(uint64_t{m.block_count - 1} * opts_.pages_per_block * kPageBytes, m.physical_bytes);
  EXPECT_TRUE(oracle_.Verify(*dev_));
  // Retirement is persistent: a reopened device does not use the block again.
  dev_.reset();
  auto again = FlashDevice::Open(opts_, base_.get());
  ASSERT_OK(again.status());
  EXPECT_EQ(m.physical_bytes, (*again)->Metrics().physical_bytes);
}

TEST_F(FaultTest, BitFlipOnReadIsReportedNeverReturned) {
  Open(SmallOptions(2, 32));
  std::vector<uint64_t> lpns = {10};
  ASSERT_OK(WriteGen(*dev_, &oracle_, lpns, ++gen_));
  std::vector<uint8_t> got(kPageBytes, 0x5A), want(kPageBytes);
  FillPage(want.data(), 10, gen_);
  uint8_t* out[1] = {got.data()};
  faulty_->FlipBitOnNextReads(1);
  Status s = dev_->Read(lpns, out);
  EXPECT_EQ(Code::kCorruption, s.code()) << s.ToString();
  EXPECT_EQ(std::vector<uint8_t>(kPageBytes, 0), got);  // zeroed, not the flipped bytes
  EXPECT_EQ(1u, dev_->Metrics().read_errors);
  ASSERT_OK(dev_->Read(lpns, out));  // the medium itself is intact
  EXPECT_EQ(want, got);
}

TEST_F(FaultTest, BitFlipsDuringGcAreReadAgain) {
  FaultOptions fo;
  fo.seed = SeedFromEnv(9);
  fo.read_bitflip_rate = 0.01;
  Open(SmallOptions(2, 32), fo);
  ASSERT_OK(Churn(6 * dev_->logical_pages(), dev_->logical_pages() * 8 / 10, 4));
  EXPECT_GT(dev_->Metrics().gc_runs, 0u);
  EXPECT_TRUE(oracle_.Verify(*dev_, /*read_retries=*/5));
  EXPECT_OK(dev_->CheckInvariants());
}

// P/E exhaustion retires blocks until no space can be reclaimed: writes
// then fail with kNoSpace and every acknowledged page stays readable.
TEST_F(FaultTest, WornOutDeviceFillsUpWithNoSpaceAndKeepsItsData) {
  FlashOptions o = SmallOptions(1, 16);
  o.pe_cycle_limit = 12;
  Open(o);
  const uint64_t live = dev_->logical_pages() * 9 / 10;
  std::mt19937_64 rng(5);
  Status last;
  std::vector<uint64_t> batch;
  for (int i = 0; i < 1000000 && last.ok(); i++) {
    batch.assign(1, rng() % live);
    last = WriteGen(*dev_, &oracle_, batch, ++gen_);
  }
  ASSERT_EQ(Code::kNoSpace, last.code()) << last.ToString();
  EXPECT_NE(std::string::npos, last.message().find("full"));
  FlashMetrics m = dev_->Metrics();
  EXPECT_GT(m.blocks_retired, 0u);
  EXPECT_LT(m.health_percentage, 50.0);
  // The failed write left its page either old or new; refresh the oracle's
  // view of that one page, then check everything.
  std::vector<uint8_t> got(kPageBytes);
  uint8_t* out[1] = {got.data()};
  ASSERT_OK(dev_->Read(batch, out));
  uint64_t g = GenerationOf(got.data());
  EXPECT_TRUE(g == gen_ || g == oracle_[batch[0]]);
  oracle_[batch[0]] = g;
  EXPECT_TRUE(oracle_.Verify(*dev_));
  EXPECT_OK(dev_->CheckInvariants());
  // Trimming frees space again.
  std::vector<uint64_t> all;
  for (uint64_t l = 0; l < live; l++) all.push_back(l);
  ASSERT_OK(dev_->Trim(all));
  EXPECT_EQ(0u, dev_->Metrics().used_bytes);
  for (uint64_t l = 0; l < live; l++) oracle_[l] = 0;
  EXPECT_TRUE(oracle_.Verify(*dev_));
  EXPECT_OK(dev_->CheckInvariants());
}

}  // namespace
}  // namespace pstorage::flash::testing

namespace pstorage::flash::testing {
namespace {

// On the file medium, faults are a configuration option of the device.
TEST(FileFaultTest, ConfiguredFaultsOnTheFileMediumLoseNothing) {
  std::string dir = ScratchDir("file-faults");
  FlashOptions o = SmallOptions(2, 32);
  o.over_provisioning = 0.5;
  o.faults.seed = SeedFromEnv(21);
  o.faults.program_fail_rate = 0.001;
  o.faults.erase_fail_rate = 0.01;
  o.faults.read_bitflip_rate = 0.001;
  Oracle oracle(0);
  {
    auto dev = FlashDevice::OpenFile(o, dir + "/flash.img");
    ASSERT_OK(dev.status());
    FlashDevice& d = **dev;
    oracle = Oracle(d.logical_pages());
    std::mt19937_64 rng(o.faults.seed);
    std::vector<uint64_t> batch;
    for (uint64_t gen = 1; gen <= 6 * d.logical_pages() / 16; gen++) {
      batch.clear();
      for (int i = 0; i < 16; i++) batch.push_back(rng() % (d.logical_pages() * 7 / 10));
      Status s = WriteGen(d, &oracle, batch, gen);
      FlashMetrics fm = d.Metrics();
      ASSERT_TRUE(s.ok()) << s.ToString() << " retired " << fm.blocks_retired << " of "
                          << fm.block_count << ", free " << fm.free_blocks << ", program failures "
                          << fm.program_failures << ", erase failures " << fm.erase_failures;
    }
    FlashMetrics m = d.Metrics();
    EXPECT_GT(m.program_failures + m.erase_failures, 0u);
    EXPECT_TRUE(oracle.Verify(d, /*read_retries=*/5));
    ASSERT_OK(d.Flush());
  }
  o.faults = FaultOptions();  // reopen clean: everything flushed is there
  auto dev = FlashDevice::OpenFile(o, dir + "/flash.img");
  ASSERT_OK(dev.status());
  EXPECT_TRUE(oracle.Verify(**dev));
  EXPECT_OK((*dev)->CheckInvariants());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pstorage::flash::testing
