// FlashDevice basics on both mediums: round trips, zeros, trim, errors,
// metrics, concurrency and background GC.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/flash_sim/test_util.h"

namespace pstorage::flash::testing {
namespace {

enum class Kind { kMemory, kFile };

class DeviceTest : public ::testing::TestWithParam<Kind> {
 protected:
  // Opens a device with `o` on a fresh medium of the parameter's kind.
  std::unique_ptr<FlashDevice> Open(const FlashOptions& o) {
    if (GetParam() == Kind::kMemory) {
      medium_ = NewMemoryMedium(GeometryOf(o));
    } else {
      dir_ = ScratchDir("device");
      Result<std::unique_ptr<Medium>> m = OpenFileMedium(dir_ + "/flash.img", GeometryOf(o));
      EXPECT_TRUE(m.ok()) << m.status().ToString();
      medium_ = std::move(*m);
    }
    Result<std::unique_ptr<FlashDevice>> dev = FlashDevice::Open(o, medium_.get());
    EXPECT_TRUE(dev.ok()) << dev.status().ToString();
    return dev.ok() ? std::move(*dev) : nullptr;
  }
  void TearDown() override {
    medium_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Medium> medium_;
  std::string dir_;
};

TEST_P(DeviceTest, WriteThenReadRoundTripsABatch) {
  auto dev = Open(SmallOptions());
  Oracle oracle(dev->logical_pages());
  std::vector<uint64_t> lpns;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; i++) lpns.push_back(rng() % dev->logical_pages());
  ASSERT_OK(WriteGen(*dev, &oracle, lpns, 1));
  EXPECT_TRUE(oracle.Verify(*dev));
  EXPECT_OK(dev->CheckInvariants());
}

TEST_P(DeviceTest, NeverWrittenPagesReadAsZeros) {
  auto dev = Open(SmallOptions());
  std::vector<uint8_t> buf(kPageBytes, 0xAB);
  const uint64_t lpns[1] = {17};
  uint8_t* out[1] = {buf.data()};
  ASSERT_OK(dev->Read(lpns, out));
  EXPECT_EQ(std::vector<uint8_t>(kPageBytes, 0), buf);
}

TEST_P(DeviceTest, TrimmedPagesReadAsZerosAndOthersSurvive) {
  auto dev = Open(SmallOptions());
  Oracle oracle(dev->logical_pages());
  std::vector<uint64_t> lpns = {1, 2, 3, 4, 5};
  ASSERT_OK(WriteGen(*dev, &oracle, lpns, 3));
  const uint64_t trim[3] = {2, 4, 900};  // 900 was never written: a no-op
  ASSERT_OK(dev->Trim(trim));
  oracle[2] = oracle[4] = 0;
  EXPECT_TRUE(oracle.Verify(*dev));
  EXPECT_EQ(3u * kPageBytes, dev->Metrics().used_bytes);
  EXPECT_OK(dev->CheckInvariants());
}

TEST_P(DeviceTest, LaterEntryForTheSamePageWinsInsideABatch) {
  auto dev = Open(SmallOptions());
  std::vector<uint8_t> a(kPageBytes), b(kPageBytes), got(kPageBytes);
  FillPage(a.data(), 9, 1);
  FillPage(b.data(), 9, 2);
  const uint64_t lpns[2] = {9, 9};
  const uint8_t* pages[2] = {a.data(), b.data()};
  ASSERT_OK(dev->Write(lpns, pages));
  uint8_t* out[1] = {got.data()};
  ASSERT_OK(dev->Read(std::span(lpns, 1), out));
  EXPECT_EQ(b, got);
}

TEST_P(DeviceTest, OutOfRangeAndMalformedCallsAreInvalidArgumentAndChangeNothing) {
  auto dev = Open(SmallOptions());
  std::vector<uint8_t> page(kPageBytes, 1);
  const uint64_t bad[2] = {0, dev->logical_pages()};
  const uint8_t* pages[2] = {page.data(), page.data()};
  EXPECT_EQ(Code::kInvalidArgument, dev->Write(bad, pages).code());
  EXPECT_EQ(Code::kInvalidArgument, dev->Write(std::span(bad, 1), std::span(pages, 2)).code());
  EXPECT_EQ(Code::kInvalidArgument, dev->Trim(bad).code());
  uint8_t* out[2] = {page.data(), page.data()};
  EXPECT_EQ(Code::kInvalidArgument, dev->Read(bad, out).code());
  EXPECT_EQ(0u, dev->Metrics().used_bytes);  // page 0 was not written either
  EXPECT_EQ(0u, dev->Metrics().host_pages_written);
}

TEST_P(DeviceTest, MetricsCountTraffic) {
  auto dev = Open(SmallOptions());
  std::vector<uint64_t> lpns(64);
  for (uint64_t i = 0; i < 64; i++) lpns[i] = i;
  ASSERT_OK(WriteGen(*dev, nullptr, lpns, 1));
  ASSERT_OK(WriteGen(*dev, nullptr, lpns, 2));
  FlashMetrics m = dev->Metrics();
  EXPECT_EQ(128u, m.host_pages_written);
  EXPECT_EQ(128u, m.nand_pages_written);  // no GC yet
  EXPECT_DOUBLE_EQ(1.0, m.write_amplification);
  EXPECT_EQ(64u * kPageBytes, m.used_bytes);
  EXPECT_EQ(dev->logical_pages() * kPageBytes, m.total_bytes);
  EXPECT_NEAR(64.0 / double(dev->logical_pages()), m.utilization, 1e-9);
  EXPECT_DOUBLE_EQ(100.0, m.health_percentage);
}

TEST_P(DeviceTest, TwoWritersAndAReaderRunConcurrently) {
  FlashOptions o = SmallOptions(8, 32);
  auto dev = Open(o);
  const uint64_t half = dev->logical_pages() / 2;
  Oracle oracle(dev->logical_pages());
  std::atomic<bool> failed{false};
  auto writer = [&](uint64_t first, uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (uint64_t gen = 1; gen <= 6000; gen++) {
      uint64_t lpns[8];
      for (uint64_t& l : lpns) l = first + rng() % (half * 9 / 10);
      if (!WriteGen(*dev, nullptr, lpns, gen).ok()) failed = true;
      for (uint64_t l : lpns) oracle[l] = gen;  // each writer owns its half
    }
  };
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::vector<uint8_t> buf(kPageBytes), want(kPageBytes);
    std::mt19937_64 rng(3);
    while (!done) {
      const uint64_t lpn[1] = {rng() % dev->logical_pages()};
      uint8_t* out[1] = {buf.data()};
      if (!dev->Read(lpn, out).ok()) failed = true;
      // The page holds some generation of itself or zeros: check the shape.
      bool zeros = std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; });
      if (!zeros) {
        FillPage(want.data(), lpn[0], GenerationOf(buf.data()));
        if (want != buf) failed = true;
      }
    }
  });
  std::thread a(writer, 0, 1), b(writer, half, 2);
  a.join();
  b.join();
  done = true;
  reader.join();
  EXPECT_FALSE(failed);
  EXPECT_GT(dev->Metrics().gc_runs, 0u);  // enough churn to run GC under the readers
  EXPECT_OK(dev->CheckInvariants());
  EXPECT_TRUE(oracle.Verify(*dev));
}

TEST_P(DeviceTest, BackgroundGcReclaimsBlocksWhenIdle) {
  FlashOptions o = SmallOptions(4, 32);
  o.over_provisioning = 0.5;  // 16 spare blocks: room for garbage to collect
  o.background_gc_idle_ms = 5;
  o.gc_high_watermark_blocks = 12;
  auto dev = Open(o);
  Oracle oracle(dev->logical_pages());
  std::vector<uint64_t> lpns;
  for (uint64_t l = 0; l < dev->logical_pages(); l++) lpns.push_back(l);
  ASSERT_OK(WriteGen(*dev, &oracle, lpns, 1));
  // Overwrite half of every block: garbage everywhere, few free blocks left.
  std::vector<uint64_t> evens;
  for (uint64_t l = 0; l < dev->logical_pages(); l += 2) evens.push_back(l);
  ASSERT_OK(WriteGen(*dev, &oracle, evens, 2));
  ASSERT_LT(dev->Metrics().free_blocks, o.gc_high_watermark_blocks);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (dev->Metrics().free_blocks < o.gc_high_watermark_blocks &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  FlashMetrics m = dev->Metrics();
  EXPECT_GE(m.free_blocks, o.gc_high_watermark_blocks);
  EXPECT_GT(m.gc_runs, 0u);
  EXPECT_TRUE(oracle.Verify(*dev));
  EXPECT_OK(dev->CheckInvariants());
}

TEST_P(DeviceTest, InvalidOptionsAreRejected) {
  FlashOptions o = SmallOptions();
  o.logical_capacity_bytes = 4097;
  MediumGeometry g{32, 200};
  auto m = NewMemoryMedium(g);
  EXPECT_EQ(Code::kInvalidArgument, FlashDevice::Open(o, m.get()).status().code());
  o = SmallOptions();
  o.gc_low_watermark_blocks = 1;
  EXPECT_EQ(Code::kInvalidArgument, FlashDevice::Open(o, m.get()).status().code());
  o = SmallOptions();  // geometry of the medium does not fit these options
  EXPECT_EQ(Code::kInvalidArgument, FlashDevice::Open(o, m.get()).status().code());
}

INSTANTIATE_TEST_SUITE_P(Mediums, DeviceTest, ::testing::Values(Kind::kMemory, Kind::kFile),
                         [](const auto& tp) {
                           return tp.param == Kind::kMemory ? "Memory" : "File";
                         });

}  // namespace
}  // namespace pstorage::flash::testing
