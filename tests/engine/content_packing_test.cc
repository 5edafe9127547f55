// ContentStore packing: a fragment that does not fit the open page's rest
// continues on a second page. Round trips, page accounting when the
// neighbours go, recovery of spanning records, and the space it saves.
#include <xxhash.h>

#include <functional>
#include <map>

#include "engine/content_format.h"
#include "engine/engine_format.h"
#include "tests/engine/content_store_test_util.h"

namespace pstorage::engine::testing {
namespace {

using Kind = MapEntry::Kind;

bool Spans(const ContentRecord& r) { return r.next_page != kNoNextPage; }

std::map<uint32_t, uint32_t> Contents(const ContentStore& store) {
  std::map<uint32_t, uint32_t> m;
  store.ForEachContent([&](uint32_t id, uint32_t refs) { m[id] = refs; });
  return m;
}

// A block whose LZ4 fragment is a little over half a page (~2220 bytes):
// 2200 random bytes, then the same bytes again. Whatever the seed, the
// first fragment starts a page and the second spans into the next.
Block HalfPageBlock(std::mt19937_64& rng) {
  constexpr size_t kUnique = 2200;
  Block b = RandomBlock(rng);
  for (size_t i = kUnique; i < kBlockBytes; i++) b[i] = b[i - kUnique];
  return b;
}

class PackingTest : public StoreTest {
 protected:
  // Puts `n` blocks from `make` in batches of 64.
  void PutBlocks(Block (*make)(std::mt19937_64&), std::mt19937_64& rng, int n,
                 std::vector<Block>* blocks, std::vector<MapEntry>* entries,
                 std::vector<ContentRecord>* stored) {
    for (int first = 0; first < n; first += 64) {
      std::vector<Block> in;
      for (int i = first; i < std::min(n, first + 64); i++) in.push_back(make(rng));
      std::vector<MapEntry> e;
      std::vector<BlockOutcome> o;
      ASSERT_OK(PutBatch(in, &e, &o, stored));
      blocks->insert(blocks->end(), in.begin(), in.end());
      entries->insert(entries->end(), e.begin(), e.end());
    }
  }
};

TEST_F(PackingTest, SpanningFragmentsRoundTrip) {
  ContentStoreOptions o;
  o.cache_bytes = 0;  // every read below decodes from flash
  Open(o);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(22));
  std::vector<Block> blocks;
  std::vector<MapEntry> e;
  std::vector<ContentRecord> stored;
  PutBlocks(LogBlock, rng, 200, &blocks, &e, &stored);
  ASSERT_EQ(stored.size(), blocks.size());
  int spanning = 0;
  for (size_t i = 0; i < stored.size(); i++) {
    const ContentRecord& r = stored[i];
    ASSERT_EQ(r.id, e[i].value);
    ASSERT_EQ(Spans(r), r.offset + r.length > kBlockBytes) << i;
    if (!Spans(r)) continue;
    spanning++;
    EXPECT_NE(r.next_page, r.page);
    // The rest starts the next page, and the next fragment follows it there.
    if (i + 1 < stored.size()) {
      EXPECT_EQ(stored[i + 1].page, r.next_page);
      EXPECT_EQ(stored[i + 1].offset, r.offset + r.length - kBlockBytes);
    }
  }
  std::printf("%d of %zu fragments span two pages\n", spanning, stored.size());
  EXPECT_GT(spanning, 50);

  for (size_t i = 0; i < blocks.size(); i++) {
    const uint64_t read = dev_->Metrics().host_pages_read;
    ASSERT_TRUE(ReadsBack(e[i], blocks[i])) << i;
    EXPECT_EQ(dev_->Metrics().host_pages_read, read + (Spans(stored[i]) ? 2 : 1)) << i;
    ASSERT_OK(store_->Verify(uint32_t(e[i].value)));
  }
  // A duplicate of a spanning block is verified against both its pages.
  size_t first_spanning = 0;
  while (!Spans(stored[first_spanning])) first_spanning++;
  BlockOutcome outcome;
  EXPECT_EQ(PutOne(blocks[first_spanning], &outcome), e[first_spanning]);
  EXPECT_TRUE(outcome.deduplicated);
}

// Damage to the page a fragment continues on is caught like damage to its
// first page.
TEST_F(PackingTest, ACorruptSecondPageReadsAsCorruption) {
  ContentStoreOptions o;
  o.cache_bytes = 0;
  Open(o);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(23));
  std::vector<Block> blocks;
  std::vector<MapEntry> e;
  std::vector<ContentRecord> stored;
  PutBlocks(HalfPageBlock, rng, 4, &blocks, &e, &stored);
  ASSERT_TRUE(Spans(stored[1]));
  const Block garbage = RandomBlock(rng);
  const uint64_t lpn = stored[1].next_page;
  const uint8_t* page = garbage.data();
  ASSERT_OK(dev_->Write({&lpn, 1}, {&page, 1}));
  Block out(kBlockBytes);
  EXPECT_EQ(store_->Get(e[1], out.data()).code(), Code::kCorruption);
  EXPECT_EQ(store_->Verify(uint32_t(e[1].value)).code(), Code::kCorruption);
  EXPECT_TRUE(ReadsBack(e[0], blocks[0]));  // on the first page only
}

// Fragment 1 spans pages P -> Q. When everything else on Q is freed, Q
// stays in use for fragment 1's rest; when fragment 1 goes, P and Q both
// become free (once a checkpoint covers it).
TEST_F(PackingTest, ASpanningFragmentKeepsItsSecondPageAlive) {
  ContentStoreOptions o;
  o.cache_bytes = 0;
  Open(o);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(24));
  std::vector<Block> blocks;
  std::vector<MapEntry> e;
  std::vector<ContentRecord> s;
  PutBlocks(HalfPageBlock, rng, 4, &blocks, &e, &s);
  // P: 0, head of 1; Q: rest of 1, 2, head of 3; R (open): rest of 3.
  ASSERT_FALSE(Spans(s[0]));
  ASSERT_TRUE(Spans(s[1]) && !Spans(s[2]) && Spans(s[3]));
  const uint32_t p = s[0].page, q = s[1].next_page, r = s[3].next_page;
  ASSERT_TRUE(s[1].page == p && s[2].page == q && s[3].page == q && r != p && r != q);
  EXPECT_EQ(store_->Stats().pages_used, 3u);

  store_->Unref(uint32_t(e[2].value));
  store_->Unref(uint32_t(e[3].value));  // R, the open page, is empty now
  ContentStats st = store_->Stats();
  EXPECT_EQ(st.pages_used, 2u);  // P and Q
  EXPECT_EQ(st.pages_freed_pending, 0u);
  const uint64_t trimmed = dev_->Metrics().host_pages_trimmed;
  ASSERT_OK(CheckpointAndRecycle());
  EXPECT_EQ(dev_->Metrics().host_pages_trimmed, trimmed + 1);  // R only
  EXPECT_TRUE(ReadsBack(e[1], blocks[1]));
  ASSERT_OK(store_->Verify(uint32_t(e[1].value)));

  // New fragments never land on Q (full, not open) or P.
  std::vector<ContentRecord> more;
  PutBlocks(HalfPageBlock, rng, 8, &blocks, &e, &more);
  for (const ContentRecord& m : more) {
    EXPECT_TRUE(m.page != p && m.page != q) << m.page;
    EXPECT_TRUE(m.next_page != p && m.next_page != q) << m.next_page;
  }
  for (size_t i = 4; i < e.size(); i++) store_->Unref(uint32_t(e[i].value));
  ASSERT_OK(CheckpointAndRecycle());

  // The page accounting survives a restart: Q still holds fragment 1's rest.
  std::vector<uint8_t> image;
  store_->Serialize(&image);
  Reopen();
  ASSERT_OK(store_->Load(image.data(), image.size()));
  ASSERT_OK(store_->FinishRecovery());
  EXPECT_EQ(store_->Stats().pages_used, 2u);
  EXPECT_EQ(dev_->Metrics().used_bytes, 2 * kBlockBytes);  // everything else trimmed
  EXPECT_TRUE(ReadsBack(e[0], blocks[0]));
  EXPECT_TRUE(ReadsBack(e[1], blocks[1]));

  store_->Unref(uint32_t(e[0].value));
  EXPECT_EQ(store_->Stats().pages_used, 2u);  // P keeps fragment 1's head
  store_->Unref(uint32_t(e[1].value));
  st = store_->Stats();
  EXPECT_EQ(st.pages_used, 0u);
  EXPECT_EQ(st.pages_freed_pending, 2u);
  ASSERT_OK(CheckpointAndRecycle());
  EXPECT_EQ(dev_->Metrics().used_bytes, 0u);
}

// Spanning records come back from the checkpoint image and from journal
// replay with the same pages in use; records that break the spanning rule
// are rejected.
TEST_F(PackingTest, SpanningRecordsSurviveRecovery) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(25));
  std::vector<Block> blocks;
  std::vector<MapEntry> e;
  std::vector<ContentRecord> journal;
  PutBlocks(HalfPageBlock, rng, 100, &blocks, &e, &journal);
  for (size_t i = 0; i < e.size(); i += 7) store_->Unref(uint32_t(e[i].value));
  const auto before = Contents(*store_);
  const ContentStats stats = store_->Stats();
  std::vector<uint8_t> image;
  store_->Serialize(&image);

  // The image carries next_page.
  namespace fmt = content_format;
  ASSERT_EQ(image.size(), fmt::kHeaderBytes + before.size() * fmt::kRecordBytes + 8);
  int spanning = 0;
  for (size_t i = 0; i < before.size(); i++) {
    ContentRecord r;
    uint32_t refs;
    fmt::DecodeRecord(&image[fmt::kHeaderBytes + i * fmt::kRecordBytes], &r, &refs);
    spanning += Spans(r) ? 1 : 0;
  }
  EXPECT_GT(spanning, 20);

  auto check = [&] {
    EXPECT_EQ(Contents(*store_), before);
    EXPECT_EQ(store_->Stats().pages_used, stats.pages_used);
    EXPECT_EQ(store_->Stats().stored_fragment_bytes, stats.stored_fragment_bytes);
    EXPECT_EQ(dev_->Metrics().used_bytes, stats.pages_used * kBlockBytes);
    for (size_t i = 0; i < blocks.size(); i++) {
      if (i % 7 != 0) {
        EXPECT_TRUE(ReadsBack(e[i], blocks[i])) << i;
      }
    }
  };
  Reopen();
  ASSERT_OK(store_->Load(image.data(), image.size()));
  ASSERT_OK(store_->FinishRecovery());
  check();

  Reopen();  // journal replay: the records, then the references
  for (const ContentRecord& r : journal) ASSERT_OK(store_->Insert(r));
  for (size_t i = 0; i < e.size(); i++) {
    if (i % 7 != 0) store_->Ref(uint32_t(e[i].value));
  }
  ContentRecord spans = journal[1], fits = journal[0];
  ASSERT_TRUE(Spans(spans));
  ASSERT_FALSE(Spans(fits));
  spans.id = fits.id = uint32_t(journal.size() + 10);
  ContentRecord bad = spans;
  bad.next_page = kNoNextPage;  // runs past its page with nowhere to go
  EXPECT_EQ(store_->Insert(bad).code(), Code::kCorruption);
  bad.next_page = bad.page;
  EXPECT_EQ(store_->Insert(bad).code(), Code::kCorruption);
  bad.next_page = uint32_t(dev_->logical_pages());
  EXPECT_EQ(store_->Insert(bad).code(), Code::kCorruption);
  bad = fits;
  bad.next_page = spans.next_page;  // fits its page, yet names another
  EXPECT_EQ(store_->Insert(bad).code(), Code::kCorruption);
  ContentRecord clash = journal[1];
  clash.next_page++;
  EXPECT_EQ(store_->Insert(clash).code(), Code::kAlreadyExists);
  ASSERT_OK(store_->FinishRecovery());
  check();
}

// Images whose checksum is right but whose records are not: a spanning
// record without (or with a wrong) next page, and a repeated id.
TEST_F(PackingTest, LoadRejectsBadNextPagesAndRepeatedIds) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(26));
  std::vector<Block> blocks;
  std::vector<MapEntry> e;
  std::vector<ContentRecord> stored;
  PutBlocks(HalfPageBlock, rng, 2, &blocks, &e, &stored);
  ASSERT_TRUE(Spans(stored[1]));
  std::vector<uint8_t> image;
  store_->Serialize(&image);
  namespace fmt = content_format;
  // Rewrites record `i` of a copy of the image and reseals it.
  auto edit = [&](size_t i, const std::function<void(ContentRecord*)>& change) {
    std::vector<uint8_t> bad = image;
    uint8_t* p = &bad[fmt::kHeaderBytes + i * fmt::kRecordBytes];
    ContentRecord r;
    uint32_t refs;
    fmt::DecodeRecord(p, &r, &refs);
    change(&r);
    fmt::EncodeRecord(r, refs, p);
    fmt::PutU64(&bad[bad.size() - 8], XXH3_64bits(bad.data(), bad.size() - 8));
    return bad;
  };
  std::vector<std::vector<uint8_t>> bad_images;
  for (const uint32_t next : {kNoNextPage, stored[1].page, uint32_t(dev_->logical_pages())}) {
    bad_images.push_back(edit(1, [&](ContentRecord* r) { r->next_page = next; }));
  }
  bad_images.push_back(edit(0, [&](ContentRecord* r) { r->next_page = stored[1].next_page; }));
  bad_images.push_back(edit(1, [&](ContentRecord* r) { *r = stored[0]; }));  // id twice
  for (size_t i = 0; i < bad_images.size(); i++) {
    Reopen();
    const std::vector<uint8_t>& bad = bad_images[i];
    EXPECT_EQ(store_->Load(bad.data(), bad.size()).code(), Code::kCorruption) << i;
  }
  Reopen();
  ASSERT_OK(store_->Load(image.data(), image.size()));
}

// Deep reduction repacks through the same packer: the recompressed
// fragments span pages too, and the pages they take stay dense.
TEST_F(PackingTest, DeepReduceRepacksIntoSpanningFragments) {
  ContentStoreOptions o;
  o.cache_bytes = 0;
  Open(o, 8);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(27));
  std::vector<Block> blocks;
  std::vector<MapEntry> e;
  std::vector<ContentRecord> stored;
  PutBlocks(LogBlock, rng, 600, &blocks, &e, &stored);
  for (size_t i = 0; i < e.size(); i++) {
    if (i % 3 != 1) store_->Unref(uint32_t(e[i].value));  // two thirds gone: sparse pages
  }
  Result<uint64_t> reclaimed = store_->DeepReduce();
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status().ToString();
  const ContentStats st = store_->Stats();
  std::printf("deep reduce reclaimed %llu pages: %llu pages for %llu fragment bytes\n",
              (unsigned long long)*reclaimed / kBlockBytes, (unsigned long long)st.pages_used,
              (unsigned long long)st.stored_fragment_bytes);
  EXPECT_LE(double(st.pages_used), 1.05 * double(st.stored_fragment_bytes) / kBlockBytes + 2);

  std::vector<uint8_t> image;
  store_->Serialize(&image);
  namespace fmt = content_format;
  int zstd_spanning = 0;
  for (size_t i = 0; i < st.unique_blocks; i++) {
    ContentRecord r;
    uint32_t refs;
    fmt::DecodeRecord(&image[fmt::kHeaderBytes + i * fmt::kRecordBytes], &r, &refs);
    zstd_spanning += r.codec == Codec::kZstd && Spans(r) ? 1 : 0;
  }
  EXPECT_GT(zstd_spanning, 20);
  for (size_t i = 1; i < e.size(); i += 3) {
    ASSERT_TRUE(ReadsBack(e[i], blocks[i])) << i;
    ASSERT_OK(store_->Verify(uint32_t(e[i].value)));
  }
  ASSERT_OK(CheckpointAndRecycle());
  Reopen();
  ASSERT_OK(store_->Load(image.data(), image.size()));
  ASSERT_OK(store_->FinishRecovery());
  EXPECT_EQ(store_->Stats().pages_used, st.pages_used);
  for (size_t i = 1; i < e.size(); i += 3) ASSERT_TRUE(ReadsBack(e[i], blocks[i])) << i;
}

TEST(ContentJournalEncodingTest, CarriesNextPage) {
  for (const uint32_t next : {kNoNextPage, 0u, 77u}) {
    ContentRecord c;
    c.id = 9;
    c.hash.fill(0xab);
    c.page = 5;
    c.offset = 4000;
    c.length = 2100;
    c.codec = Codec::kZstd;
    c.next_page = next;
    std::vector<uint8_t> bytes;
    ByteWriter(&bytes).Content(c);
    EXPECT_EQ(bytes.size(), 4u + 16 + 4 + 4 + 1 + 4);
    ByteReader r(bytes.data(), bytes.size());
    const ContentRecord d = r.Content();
    EXPECT_TRUE(r.ok() && r.done());
    EXPECT_EQ(d.id, c.id);
    EXPECT_EQ(d.hash, c.hash);
    EXPECT_EQ(d.page, c.page);
    EXPECT_EQ(d.offset, c.offset);
    EXPECT_EQ(d.length, c.length);
    EXPECT_EQ(d.codec, c.codec);
    EXPECT_EQ(d.next_page, next);
  }
}

// ~2x-compressible blocks (fragments of 2000-2800 bytes) must not waste a
// page each: pages used stay within 5% of the fragment bytes.
TEST_F(PackingTest, PackingLossStaysWithinFivePercent) {
  Open({}, 16);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(21));
  std::vector<Block> blocks;
  std::vector<MapEntry> e;
  std::vector<ContentRecord> stored;
  PutBlocks(LogBlock, rng, 2000, &blocks, &e, &stored);
  const ContentStats st = store_->Stats();
  const double ideal = double(st.stored_fragment_bytes) / kBlockBytes;
  std::printf(
      "%llu unique blocks, %llu fragment bytes (%.1f per block): %llu pages used, "
      "%.1f ideal, %.3f pages per block, %.2f%% packing loss\n",
      (unsigned long long)st.unique_blocks, (unsigned long long)st.stored_fragment_bytes,
      double(st.stored_fragment_bytes) / double(st.unique_blocks),
      (unsigned long long)st.pages_used, ideal, double(st.pages_used) / double(st.unique_blocks),
      100.0 * (double(st.pages_used) / ideal - 1));
  ASSERT_EQ(st.unique_blocks, 2000u);
  EXPECT_LE(double(st.pages_used), 1.05 * ideal + 2);
  EXPECT_EQ(dev_->Metrics().used_bytes, st.pages_used * kBlockBytes);
}

}  // namespace
}  // namespace pstorage::engine::testing
