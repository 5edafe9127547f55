// Overwrite churn far beyond capacity: every page's newest content survives,
// and the GC and wear-leveling invariants hold afterwards.
#include "tests/flash_sim/test_util.h"

namespace pstorage::flash::testing {
namespace {

struct ChurnCase {
  const char* name;
  GcPolicy policy;
};

class ChurnTest : public ::testing::TestWithParam<ChurnCase> {};

// Fills 90 % of a device, then writes 20x its logical capacity of random
// overwrites (with some trims mixed in), then checks everything.
TEST_P(ChurnTest, TwentyTimesCapacityAtNinetyPercentFill) {
  FlashOptions o = SmallOptions(8, 32);
  o.gc_policy = GetParam().policy;
  o.static_wl_threshold = 16;
  auto medium = NewMemoryMedium(GeometryOf(o));
  auto dev = FlashDevice::Open(o, medium.get());
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  FlashDevice& d = **dev;
  const uint64_t pages = d.logical_pages();
  const uint64_t live = pages * 9 / 10;
  Oracle oracle(pages);
  std::mt19937_64 rng(SeedFromEnv(42));

  std::vector<uint64_t> batch;
  for (uint64_t l = 0; l < live; l++) {
    batch.push_back(l);
    if (batch.size() == 64 || l + 1 == live) {
      ASSERT_OK(WriteGen(d, &oracle, batch, 1));
      batch.clear();
    }
  }
  uint64_t gen = 2;
  for (uint64_t written = 0; written < 20 * pages; written += 16, gen++) {
    batch.clear();
    for (int i = 0; i < 16; i++) batch.push_back(rng() % live);
    if (gen % 50 == 0) {
      ASSERT_OK(d.Trim(batch));
      for (uint64_t l : batch) oracle[l] = 0;
      continue;
    }
    Status s = WriteGen(d, &oracle, batch, gen);
    ASSERT_TRUE(s.ok()) << "after " << written << " pages: " << s.ToString();
  }

  EXPECT_TRUE(oracle.Verify(d));
  ASSERT_TRUE(d.CheckInvariants().ok()) << d.CheckInvariants().ToString();
  FlashMetrics m = d.Metrics();
  uint64_t mapped = 0;
  for (uint64_t l = 0; l < pages; l++) mapped += oracle[l] != 0;
  EXPECT_EQ(mapped * kPageBytes, m.used_bytes);
  EXPECT_GT(m.gc_runs, 0u);
  EXPECT_GT(m.write_amplification, 1.0);
  // NAND writes = host pages + GC moves + trim records (a few).
  EXPECT_GE(m.nand_pages_written, m.host_pages_written + m.gc_pages_moved);
  EXPECT_LE(m.nand_pages_written, m.host_pages_written + m.gc_pages_moved + m.host_pages_trimmed);
  // Dynamic + static wear leveling keep the erase counts close together.
  EXPECT_LE(m.max_erase_count - m.min_erase_count, o.static_wl_threshold + 4)
      << "max " << m.max_erase_count << " min " << m.min_erase_count;
  std::printf("%s: WAF %.2f, gc runs %llu, erase counts %u..%u (avg %.1f, variance %.2f)\n",
              GetParam().name, m.write_amplification, (unsigned long long)m.gc_runs,
              m.min_erase_count, m.max_erase_count, m.avg_erase_count, m.wear_variance);
}

// Half the device is written once and never again; the other half churns.
// Static wear leveling must move the cold blocks so their erase counts keep
// up with the hot ones.
TEST_P(ChurnTest, StaticWearLevelingMovesColdData) {
  FlashOptions o = SmallOptions(4, 32);
  o.gc_policy = GetParam().policy;
  o.static_wl_threshold = 8;
  auto medium = NewMemoryMedium(GeometryOf(o));
  auto dev = FlashDevice::Open(o, medium.get());
  ASSERT_OK(dev.status());
  FlashDevice& d = **dev;
  const uint64_t pages = d.logical_pages();
  Oracle oracle(pages);
  std::vector<uint64_t> batch;
  for (uint64_t l = 0; l < pages * 8 / 10; l++) batch.push_back(l);
  ASSERT_OK(WriteGen(d, &oracle, batch, 1));
  std::mt19937_64 rng(SeedFromEnv(7));
  const uint64_t hot_first = pages / 2, hot_count = pages * 3 / 10;
  for (uint64_t gen = 2; gen < 2 + 30 * pages / 16; gen++) {
    batch.clear();
    for (int i = 0; i < 16; i++) batch.push_back(hot_first + rng() % hot_count);
    ASSERT_OK(WriteGen(d, &oracle, batch, gen));
  }
  FlashMetrics m = d.Metrics();
  EXPECT_GT(m.blocks_moved, 0u);
  EXPECT_LE(m.max_erase_count - m.min_erase_count, o.static_wl_threshold + 4)
      << "max " << m.max_erase_count << " min " << m.min_erase_count;
  EXPECT_TRUE(oracle.Verify(d));
  EXPECT_OK(d.CheckInvariants());
}

INSTANTIATE_TEST_SUITE_P(Policies, ChurnTest,
                         ::testing::Values(ChurnCase{"Greedy", GcPolicy::kGreedy},
                                           ChurnCase{"CostBenefit", GcPolicy::kCostBenefit}),
                         [](const auto& tp) { return std::string(tp.param.name); });

}  // namespace
}  // namespace pstorage::flash::testing
