// ContentStore: checkpoint image, journal-replay recovery, deep reduction
// and the memory the index and content table take per unique block.
#include <fstream>
#include <map>

#include "tests/engine/content_store_test_util.h"

namespace pstorage::engine::testing {
namespace {

using Kind = MapEntry::Kind;

std::map<uint32_t, uint32_t> Contents(const ContentStore& store) {
  std::map<uint32_t, uint32_t> m;
  store.ForEachContent([&](uint32_t id, uint32_t refs) { m[id] = refs; });
  return m;
}

TEST_F(StoreTest, SerializeLoadRoundTrips) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(11));
  std::vector<Block> blocks;
  for (int i = 0; i < 60; i++) blocks.push_back(i % 3 ? LogBlock(rng) : RandomBlock(rng));
  std::vector<MapEntry> e;
  ASSERT_OK(PutBatch(blocks, &e));
  store_->Ref(uint32_t(e[5].value));
  store_->Unref(uint32_t(e[6].value));  // freed: not in the image
  const auto before = Contents(*store_);
  const ContentStats stats = store_->Stats();
  std::vector<uint8_t> image;
  store_->Serialize(&image);

  Reopen();
  ASSERT_OK(store_->Load(image.data(), image.size()));
  ASSERT_OK(store_->FinishRecovery());
  EXPECT_EQ(Contents(*store_), before);
  EXPECT_EQ(store_->Stats().unique_blocks, stats.unique_blocks);
  EXPECT_EQ(store_->Stats().stored_fragment_bytes, stats.stored_fragment_bytes);
  EXPECT_EQ(store_->Stats().pages_used, stats.pages_used);
  for (size_t i = 0; i < blocks.size(); i++) {
    if (i == 6) continue;
    EXPECT_TRUE(ReadsBack(e[i], blocks[i])) << i;
  }
  // New writes go to free pages only, and the index was rebuilt.
  std::vector<MapEntry> more;
  std::vector<BlockOutcome> o;
  ASSERT_OK(PutBatch({LogBlock(rng), blocks[7]}, &more, &o));
  EXPECT_TRUE(o[1].deduplicated);
  EXPECT_EQ(more[1], e[7]);
  EXPECT_NE(more[0].value, e[6].value);  // the freed id waits for RecycleFreed
  for (size_t i = 0; i < blocks.size(); i++) {
    if (i == 6) continue;
    EXPECT_TRUE(ReadsBack(e[i], blocks[i])) << i;
  }
}

TEST_F(StoreTest, LoadRejectsDamagedImages) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(12));
  PutOne(LogBlock(rng));
  std::vector<uint8_t> image;
  store_->Serialize(&image);
  EXPECT_EQ(store_->Load(image.data(), image.size()).code(), Code::kFailedPrecondition);
  for (size_t at : {size_t{0}, size_t{20}, image.size() / 2, image.size() - 1}) {
    std::vector<uint8_t> bad = image;
    bad[at] ^= 0x10;
    Reopen();
    EXPECT_EQ(store_->Load(bad.data(), bad.size()).code(), Code::kCorruption) << at;
  }
  Reopen();
  EXPECT_EQ(store_->Load(image.data(), image.size() - 1).code(), Code::kCorruption);
}

TEST_F(StoreTest, FinishRecoveryFreesWhatReplayLeftUnreferenced) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(13));
  const Block a = RandomBlock(rng), b = LogBlock(rng), c = RandomBlock(rng);
  std::vector<MapEntry> e;
  std::vector<BlockOutcome> o;
  std::vector<ContentRecord> journal;
  ASSERT_OK(PutBatch({a, b, c}, &e, &o, &journal));

  Reopen();  // replay: every record, then the references the maps hold
  for (const ContentRecord& r : journal) ASSERT_OK(store_->Insert(r));
  ASSERT_OK(store_->Insert(journal[0]));  // replaying a record twice is harmless
  ContentRecord clash = journal[0];
  clash.page++;
  EXPECT_EQ(store_->Insert(clash).code(), Code::kAlreadyExists);
  ContentRecord bad = journal[1];
  bad.offset = 4000;
  EXPECT_EQ(store_->Insert(bad).code(), Code::kCorruption);
  store_->Ref(uint32_t(e[0].value));
  store_->Ref(uint32_t(e[0].value));
  store_->Ref(uint32_t(e[1].value));
  store_->Ref(uint32_t(e[2].value));
  store_->Unref(uint32_t(e[2].value));  // overwritten later in the journal
  ASSERT_OK(store_->FinishRecovery());

  const std::map<uint32_t, uint32_t> want = {{uint32_t(e[0].value), 2}, {uint32_t(e[1].value), 1}};
  EXPECT_EQ(Contents(*store_), want);
  Block out(kBlockBytes);
  EXPECT_EQ(store_->Get(e[2], out.data()).code(), Code::kNotFound);
  EXPECT_TRUE(ReadsBack(e[0], a));
  EXPECT_TRUE(ReadsBack(e[1], b));
  const ContentStats st = store_->Stats();
  EXPECT_EQ(st.unique_blocks, 2u);
  EXPECT_EQ(dev_->Metrics().used_bytes, st.pages_used * kBlockBytes);  // the rest was trimmed
  BlockOutcome outcome;
  EXPECT_EQ(PutOne(b, &outcome), e[1]);
  EXPECT_TRUE(outcome.deduplicated);
}

TEST_F(StoreTest, DeepReduceReclaimsSpaceAndKeepsEveryBlock) {
  ContentStoreOptions o;
  o.cache_bytes = 0;  // every read below decodes from flash
  Open(o, 8);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(14));
  std::vector<Block> blocks;
  for (int i = 0; i < 600; i++) blocks.push_back(i % 10 ? LogBlock(rng) : RandomBlock(rng));
  std::vector<MapEntry> e;
  for (size_t first = 0; first < blocks.size(); first += 50) {
    std::vector<Block> in(blocks.begin() + long(first), blocks.begin() + long(first) + 50);
    std::vector<MapEntry> part;
    ASSERT_OK(PutBatch(in, &part));
    e.insert(e.end(), part.begin(), part.end());
  }
  for (size_t i = 0; i < e.size(); i += 3) store_->Unref(uint32_t(e[i].value));  // sparse pages
  const ContentStats before = store_->Stats();

  Result<uint64_t> reclaimed = store_->DeepReduce();
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status().ToString();
  const ContentStats after = store_->Stats();
  std::printf("deep reduce: pages %llu -> %llu, fragment bytes %llu -> %llu\n",
              (unsigned long long)before.pages_used, (unsigned long long)after.pages_used,
              (unsigned long long)before.stored_fragment_bytes,
              (unsigned long long)after.stored_fragment_bytes);
  EXPECT_GT(*reclaimed, before.pages_used * kBlockBytes / 4);
  EXPECT_EQ(*reclaimed, (before.pages_used - after.pages_used) * kBlockBytes);
  EXPECT_LT(after.stored_fragment_bytes, before.stored_fragment_bytes);
  EXPECT_EQ(after.unique_blocks, before.unique_blocks);
  for (size_t i = 1; i < e.size(); i += (i % 3 == 2 ? 2 : 1)) {  // the ones still held
    ASSERT_TRUE(ReadsBack(e[i], blocks[i])) << i;
    ASSERT_OK(store_->Verify(uint32_t(e[i].value)));
  }
  // A second pass finds (almost) nothing; the new locations survive a restart.
  ASSERT_TRUE(store_->DeepReduce().ok());
  ASSERT_OK(CheckpointAndRecycle());
  std::vector<uint8_t> image;
  store_->Serialize(&image);
  Reopen();
  ASSERT_OK(store_->Load(image.data(), image.size()));
  ASSERT_OK(store_->FinishRecovery());
  for (size_t i = 1; i < e.size(); i += (i % 3 == 2 ? 2 : 1)) {
    ASSERT_TRUE(ReadsBack(e[i], blocks[i])) << i;
  }
}

// Dense pages whose fragments zstd hardly shrinks (incompressible bytes,
// repeated once): moving them would empty no page, so nothing is written.
TEST_F(StoreTest, DeepReduceWritesNothingWhenNoPageCanBeSaved) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(16));
  std::vector<Block> blocks;
  for (int b = 0; b < 40; b++) {
    Block block = RandomBlock(rng);
    const size_t unique = 1800 + rng() % 700;  // fragments of ~1.8-2.5 KiB
    for (size_t i = unique; i < kBlockBytes; i++) block[i] = block[i - unique];
    blocks.push_back(block);
  }
  std::vector<MapEntry> e;
  ASSERT_OK(PutBatch(blocks, &e));
  const uint64_t pages = store_->Stats().pages_used;
  const uint64_t written = dev_->Metrics().host_pages_written;
  Result<uint64_t> reclaimed = store_->DeepReduce();
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status().ToString();
  EXPECT_EQ(*reclaimed, 0u);
  EXPECT_EQ(store_->Stats().pages_used, pages);
  EXPECT_EQ(dev_->Metrics().host_pages_written, written);
  for (size_t i = 0; i < blocks.size(); i++) ASSERT_TRUE(ReadsBack(e[i], blocks[i])) << i;
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * 4096;
}

// The budget: index + content table <= 48 bytes per unique block. Measured
// on a replayed table of a million contents (no flash data needed).
TEST_F(StoreTest, IndexAndTableStayWithinTheMemoryBudget) {
  Open({}, 256);  // 65536 pages, 16 fragments of 256 bytes each
  std::mt19937_64 rng(flash::testing::SeedFromEnv(15));
  constexpr uint32_t kContents = 1 << 20;
  const uint64_t rss_before = ResidentBytes();
  for (uint32_t id = 1; id <= kContents; id++) {
    ContentRecord r;
    r.id = id;
    for (size_t i = 0; i < 16; i += 8) {
      const uint64_t v = rng();
      std::memcpy(&r.hash[i], &v, 8);
    }
    r.page = (id - 1) / 16;
    r.offset = uint16_t((id - 1) % 16 * 256);
    r.length = 256;
    r.codec = Codec::kLz4;
    ASSERT_OK(store_->Insert(r));
    store_->Ref(id);
  }
  ASSERT_OK(store_->FinishRecovery());
  const uint64_t rss_after = ResidentBytes();
  const ContentStats st = store_->Stats();
  ASSERT_EQ(st.unique_blocks, kContents);
  const double per_block = double(st.index_memory_bytes) / double(st.unique_blocks);
  std::printf(
      "index + content table: %.1f bytes per unique block (accounted), "
      "%.1f (resident set growth, including the page tables)\n",
      per_block, double(rss_after - rss_before) / kContents);
  EXPECT_LE(per_block, 48.0);
}

}  // namespace
}  // namespace pstorage::engine::testing
