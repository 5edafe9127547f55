// ContentStore: the inline reduction path (pattern, dedupe, compression,
// packing), reads, reference counts, corruption and concurrency.
#include <atomic>
#include <map>
#include <thread>

#include "tests/engine/content_store_test_util.h"

namespace pstorage::engine::testing {
namespace {

using Kind = MapEntry::Kind;

// Blocks whose fragments are small, so several share the open page.
Block SmallFragmentBlock(std::mt19937_64& rng) {
  Block b = PatternBlock(0x2020202020202020);
  for (size_t i = 0; i < 64; i += 8) {
    const uint64_t v = rng();
    std::memcpy(&b[i * 16], &v, 8);
  }
  return b;
}

TEST(IsPatternBlockTest, FindsRepeatedWordsOnly) {
  uint64_t p = 1;
  EXPECT_TRUE(IsPatternBlock(PatternBlock(0).data(), &p));
  EXPECT_EQ(p, 0u);
  EXPECT_TRUE(IsPatternBlock(PatternBlock(0xdeadbeef01234567).data(), &p));
  EXPECT_EQ(p, 0xdeadbeef01234567u);
  Block b = PatternBlock(7);
  b[kBlockBytes - 1] ^= 1;  // only the very last byte differs
  EXPECT_FALSE(IsPatternBlock(b.data(), &p));
  Block bytes(kBlockBytes, 0xab);  // a repeated byte is a repeated word too
  EXPECT_TRUE(IsPatternBlock(bytes.data(), &p));
}

TEST_F(StoreTest, EveryKindOfBlockRoundTrips) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(1));
  const std::vector<Block> blocks = {RandomBlock(rng), LogBlock(rng), PatternBlock(0),
                                     PatternBlock(0x0102030405060708)};
  std::vector<MapEntry> e;
  std::vector<BlockOutcome> o;
  std::vector<ContentRecord> stored;
  ASSERT_OK(PutBatch(blocks, &e, &o, &stored));

  EXPECT_EQ(e[0].kind, Kind::kContent);  // random: stored raw
  EXPECT_FALSE(o[0].compressed);
  EXPECT_EQ(o[0].stored_bytes, kBlockBytes);
  EXPECT_EQ(e[1].kind, Kind::kContent);  // text-like: LZ4, about half
  EXPECT_TRUE(o[1].compressed);
  EXPECT_LT(o[1].stored_bytes, kBlockBytes * 6 / 10);
  EXPECT_EQ(e[2], (MapEntry{Kind::kPattern, 0}));
  EXPECT_TRUE(o[2].pattern && o[2].zero);
  EXPECT_EQ(e[3], (MapEntry{Kind::kPattern, 0x0102030405060708}));
  EXPECT_TRUE(o[3].pattern && !o[3].zero);
  ASSERT_EQ(stored.size(), 2u);  // patterns are never stored
  EXPECT_EQ(stored[0].codec, Codec::kRaw);
  EXPECT_EQ(stored[1].codec, Codec::kLz4);

  for (size_t i = 0; i < blocks.size(); i++) EXPECT_TRUE(ReadsBack(e[i], blocks[i])) << i;
  EXPECT_TRUE(ReadsBack(MapEntry{}, PatternBlock(0)));  // unmapped reads as zeros
  const ContentStats st = store_->Stats();
  EXPECT_EQ(st.unique_blocks, 2u);
  EXPECT_EQ(st.stored_fragment_bytes, kBlockBytes + o[1].stored_bytes);
  EXPECT_EQ(st.pages_used, 2u);
}

TEST_F(StoreTest, ADuplicateConsumesNoFlash) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(2));
  const Block a = LogBlock(rng), b = RandomBlock(rng);
  const MapEntry first = PutOne(a);
  PutOne(b);
  const uint64_t pages = store_->Stats().pages_used;
  const uint64_t written = dev_->Metrics().host_pages_written;

  BlockOutcome outcome;
  const MapEntry again = PutOne(a, &outcome);
  EXPECT_TRUE(outcome.deduplicated);
  EXPECT_EQ(outcome.stored_bytes, 0u);
  EXPECT_EQ(again, first);
  EXPECT_EQ(store_->Stats().pages_used, pages);
  EXPECT_EQ(dev_->Metrics().host_pages_written, written);
  EXPECT_EQ(RefCount(uint32_t(first.value)), 2u);

  // Duplicates inside one batch share one new content.
  const Block c = LogBlock(rng);
  std::vector<MapEntry> e;
  std::vector<BlockOutcome> o;
  ASSERT_OK(PutBatch({c, a, c, c}, &e, &o));
  EXPECT_FALSE(o[0].deduplicated);
  EXPECT_TRUE(o[1].deduplicated && o[2].deduplicated && o[3].deduplicated);
  EXPECT_EQ(e[1], first);
  EXPECT_EQ(e[2], e[0]);
  EXPECT_EQ(RefCount(uint32_t(e[0].value)), 3u);
  EXPECT_EQ(store_->Stats().unique_blocks, 3u);
  EXPECT_TRUE(ReadsBack(e[3], c));
}

// Every block hashes alike: only byte verification keeps them apart.
TEST_F(StoreTest, VerifyKeepsCollidingBlocksApart) {
  ContentStoreOptions o;
  o.constant_hash_for_tests = true;
  o.cache_bytes = 64 * kBlockBytes;  // small: most verifications read flash
  Open(o);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(3));
  std::vector<Block> blocks;
  std::vector<MapEntry> entries;
  for (int batch = 0; batch < 20; batch++) {
    std::vector<Block> in;
    for (int i = 0; i < 10; i++) in.push_back(batch % 2 ? LogBlock(rng) : RandomBlock(rng));
    in.push_back(in[3]);                             // a duplicate within the batch
    if (batch > 0) in.push_back(blocks[batch * 3]);  // and one of an earlier batch
    std::vector<MapEntry> e;
    ASSERT_OK(PutBatch(in, &e));
    blocks.insert(blocks.end(), in.begin(), in.end());
    entries.insert(entries.end(), e.begin(), e.end());
  }
  EXPECT_EQ(store_->Stats().unique_blocks, 200u);
  for (size_t i = 0; i < blocks.size(); i++) ASSERT_TRUE(ReadsBack(entries[i], blocks[i])) << i;
}

// The same hook with verify off: a hash match decides, and distinct blocks
// are merged. It is the byte comparison that protects the data.
TEST_F(StoreTest, WithoutVerifyCollidingBlocksWouldBeMerged) {
  ContentStoreOptions o;
  o.constant_hash_for_tests = true;
  o.dedupe_verify = false;
  Open(o);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(4));
  const Block a = RandomBlock(rng), b = RandomBlock(rng);
  const MapEntry ea = PutOne(a);
  BlockOutcome outcome;
  const MapEntry eb = PutOne(b, &outcome);
  EXPECT_TRUE(outcome.deduplicated);
  EXPECT_EQ(ea, eb);
  EXPECT_FALSE(ReadsBack(eb, b));  // wrong data: what verify prevents
}

TEST_F(StoreTest, TheLastUnrefFreesAndNothingIsReusedBeforeRecycle) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(5));
  std::vector<ContentRecord> stored;
  const MapEntry a = PutOne(RandomBlock(rng), nullptr, &stored);
  const uint32_t id = uint32_t(a.value);
  store_->Ref(id);
  store_->Unref(id);
  EXPECT_EQ(store_->Stats().unique_blocks, 1u);
  store_->Unref(id);
  ContentStats st = store_->Stats();
  EXPECT_EQ(st.unique_blocks, 0u);
  EXPECT_EQ(st.pages_used, 0u);
  EXPECT_EQ(st.pages_freed_pending, 1u);
  Block out(kBlockBytes);
  EXPECT_EQ(store_->Get(a, out.data()).code(), Code::kNotFound);

  // Neither the id nor the page comes back before a checkpoint covers the
  // free and RecycleFreed() runs...
  const MapEntry b = PutOne(RandomBlock(rng), nullptr, &stored);
  EXPECT_NE(b.value, a.value);
  EXPECT_NE(stored[1].page, stored[0].page);
  const uint64_t trimmed = dev_->Metrics().host_pages_trimmed;
  ASSERT_OK(store_->RecycleFreed());  // no checkpoint yet: nothing to recycle
  EXPECT_EQ(store_->Stats().pages_freed_pending, 1u);
  // ...and both do after that, the page trimmed on flash first.
  ASSERT_OK(CheckpointAndRecycle());
  EXPECT_EQ(dev_->Metrics().host_pages_trimmed, trimmed + 1);
  EXPECT_EQ(store_->Stats().pages_freed_pending, 0u);
  const MapEntry c = PutOne(RandomBlock(rng), nullptr, &stored);
  EXPECT_EQ(c.value, a.value);
  EXPECT_EQ(stored[2].page, stored[0].page);
}

// A free after the last checkpoint may be undone by a crash (its journal
// record not yet durable): its page keeps its bytes until the next one.
TEST_F(StoreTest, FreesAfterTheCheckpointWaitForTheNextOne) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(17));
  const MapEntry small = PutOne(SmallFragmentBlock(rng));  // on the open page
  const MapEntry raw = PutOne(RandomBlock(rng));           // a page of its own
  std::vector<uint8_t> image;
  store_->Serialize(&image);
  store_->Unref(uint32_t(raw.value));
  store_->Unref(uint32_t(small.value));  // the open page is empty now
  const uint64_t trimmed = dev_->Metrics().host_pages_trimmed;
  ASSERT_OK(store_->RecycleFreed());
  EXPECT_EQ(dev_->Metrics().host_pages_trimmed, trimmed);
  EXPECT_EQ(store_->Stats().pages_freed_pending, 1u);

  // An open page that takes (and loses) a fragment after the checkpoint
  // stays too, though it is empty again.
  store_->Serialize(&image);
  store_->Unref(uint32_t(PutOne(SmallFragmentBlock(rng)).value));
  ASSERT_OK(store_->RecycleFreed());
  EXPECT_EQ(dev_->Metrics().host_pages_trimmed, trimmed + 1);  // the raw page only
  ASSERT_OK(CheckpointAndRecycle());
  EXPECT_EQ(dev_->Metrics().host_pages_trimmed, trimmed + 2);
  EXPECT_EQ(dev_->Metrics().used_bytes, 0u);
}

TEST_F(StoreTest, UnreffingEverythingEmptiesTheDevice) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(6));
  std::vector<Block> pool;
  for (int i = 0; i < 40; i++) pool.push_back(i % 3 ? LogBlock(rng) : RandomBlock(rng));
  std::vector<MapEntry> all;
  for (int batch = 0; batch < 10; batch++) {
    std::vector<Block> in;
    for (int i = 0; i < 16; i++) in.push_back(pool[rng() % pool.size()]);
    std::vector<MapEntry> e;
    ASSERT_OK(PutBatch(in, &e));
    all.insert(all.end(), e.begin(), e.end());
  }
  EXPECT_GT(store_->Stats().pages_used, 0u);
  for (const MapEntry& e : all) store_->Unref(uint32_t(e.value));
  ASSERT_OK(CheckpointAndRecycle());
  const ContentStats st = store_->Stats();
  EXPECT_EQ(st.unique_blocks, 0u);
  EXPECT_EQ(st.stored_fragment_bytes, 0u);
  EXPECT_EQ(st.pages_used, 0u);
  EXPECT_EQ(st.pages_freed_pending, 0u);
  EXPECT_EQ(dev_->Metrics().used_bytes, 0u);  // every page trimmed, the open one too
}

TEST_F(StoreTest, ACorruptFlashPageReadsAsCorruption) {
  ContentStoreOptions o;
  o.cache_bytes = 0;
  Open(o);
  std::mt19937_64 rng(flash::testing::SeedFromEnv(7));
  const Block raw = RandomBlock(rng), text = LogBlock(rng);
  std::vector<MapEntry> e;
  std::vector<BlockOutcome> outcomes;
  std::vector<ContentRecord> stored;
  ASSERT_OK(PutBatch({raw, text}, &e, &outcomes, &stored));
  ASSERT_TRUE(ReadsBack(e[0], raw));
  ASSERT_TRUE(ReadsBack(e[1], text));
  for (const ContentRecord& r : stored) {  // a misdirected write lands on each page
    const Block garbage = RandomBlock(rng);
    const uint64_t lpn = r.page;
    const uint8_t* page = garbage.data();
    ASSERT_OK(dev_->Write({&lpn, 1}, {&page, 1}));
  }
  Block out(kBlockBytes);
  EXPECT_EQ(store_->Get(e[0], out.data()).code(), Code::kCorruption);
  EXPECT_EQ(store_->Get(e[1], out.data()).code(), Code::kCorruption);
  EXPECT_EQ(store_->Verify(uint32_t(e[0].value)).code(), Code::kCorruption);
  // A corrupt copy is never a dedupe match: the block is stored again.
  BlockOutcome outcome;
  const MapEntry again = PutOne(text, &outcome);
  EXPECT_FALSE(outcome.deduplicated);
  EXPECT_TRUE(ReadsBack(again, text));
}

TEST_F(StoreTest, VerifyReadsFlashEvenWhenCached) {
  Open();
  std::mt19937_64 rng(flash::testing::SeedFromEnv(8));
  std::vector<ContentRecord> stored;
  const Block b = LogBlock(rng);
  const MapEntry e = PutOne(b, nullptr, &stored);
  const Block garbage = RandomBlock(rng);
  const uint64_t lpn = stored[0].page;
  const uint8_t* page = garbage.data();
  ASSERT_OK(dev_->Write({&lpn, 1}, {&page, 1}));
  EXPECT_TRUE(ReadsBack(e, b));  // the cache still has the block
  EXPECT_EQ(store_->Verify(uint32_t(e.value)).code(), Code::kCorruption);
  EXPECT_GT(store_->Stats().cache_hits, 0u);
}

// Batches that run out of flash pages part way (the open page already
// taken by earlier fragments of the batch) leave no reference and no
// fragment behind; once space is freed, writing resumes on the same pages.
TEST_F(StoreTest, AFullDeviceLeavesNoReferenceTaken) {
  ContentStoreOptions o;
  o.cache_bytes = 0;
  Open(o, 1);  // 256 pages
  std::mt19937_64 rng(flash::testing::SeedFromEnv(9));
  std::vector<Block> blocks = {RandomBlock(rng)};
  std::vector<MapEntry> entries = {PutOne(blocks[0])};
  Status s;
  uint64_t batches = 0;
  while (s.ok()) {
    std::vector<Block> in = {blocks[0]};  // a dedupe hit in every batch
    for (int i = 0; i < 8; i++) in.push_back(i % 2 ? RandomBlock(rng) : SmallFragmentBlock(rng));
    std::vector<MapEntry> e;
    s = PutBatch(in, &e);
    if (!s.ok()) break;
    batches++;
    blocks.insert(blocks.end(), in.begin(), in.end());
    entries.insert(entries.end(), e.begin(), e.end());
  }
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_EQ(RefCount(uint32_t(entries[0].value)), 1 + batches);
  EXPECT_EQ(store_->Stats().unique_blocks, 1 + 8 * batches);
  for (size_t i = 0; i < blocks.size(); i++) ASSERT_TRUE(ReadsBack(entries[i], blocks[i])) << i;

  for (size_t i = 1; i < entries.size(); i += 2) store_->Unref(uint32_t(entries[i].value));
  ASSERT_OK(CheckpointAndRecycle());
  for (int i = 0; i < 16; i++) {
    blocks.push_back(i % 2 ? RandomBlock(rng) : SmallFragmentBlock(rng));
    entries.push_back(PutOne(blocks.back()));
  }
  for (size_t i = 0; i < blocks.size(); i++) {
    if (i % 2 == 1 && i < blocks.size() - 16) continue;  // dropped above
    ASSERT_TRUE(ReadsBack(entries[i], blocks[i])) << i;
  }
}

// The flash write of a batch fails (every program fails until the device
// runs out of slots): no reference stays taken and the open page, which
// the failed batch was rewriting, still holds its earlier fragments.
TEST(StoreFaultTest, AFailedFlashWriteLeavesNoTrace) {
  flash::FlashOptions fo = flash::testing::SmallOptions(1, 8);
  fo.over_provisioning = 1.0;
  auto base = flash::NewMemoryMedium(flash::testing::GeometryOf(fo));
  flash::FaultyMedium faulty(base.get(), {});
  auto dev = flash::FlashDevice::Open(fo, &faulty);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  ContentStoreOptions o;
  o.cache_bytes = 0;
  ContentStore store(o, dev->get());
  std::mt19937_64 rng(flash::testing::SeedFromEnv(11));
  const Block a = SmallFragmentBlock(rng), b = SmallFragmentBlock(rng);
  const Block c = SmallFragmentBlock(rng);
  std::vector<const uint8_t*> in = {a.data(), b.data()};
  std::vector<MapEntry> e(2);
  std::vector<BlockOutcome> out(2);
  std::vector<ContentRecord> stored;
  ASSERT_OK(store.Put(in, e, out, &stored));
  ASSERT_EQ(stored[0].page, stored[1].page);  // both on the open page
  ASSERT_LT(out[0].stored_bytes, 1024u);

  faulty.FailNextPrograms(1 << 30);
  in = {c.data(), a.data()};  // a new fragment for the open page, and a dedupe hit
  const Status s = store.Put(in, e, out, &stored);
  faulty.FailNextPrograms(0);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(store.Stats().unique_blocks, 2u);
  std::map<uint32_t, uint32_t> refs;
  store.ForEachContent([&](uint32_t id, uint32_t n) { refs[id] = n; });
  EXPECT_EQ(refs, (std::map<uint32_t, uint32_t>{{stored[0].id, 1}, {stored[1].id, 1}}));
  Block got(kBlockBytes);
  ASSERT_OK(store.Get({Kind::kContent, stored[0].id}, got.data()));
  EXPECT_EQ(got, a);
  ASSERT_OK(store.Get({Kind::kContent, stored[1].id}, got.data()));
  EXPECT_EQ(got, b);
}

// 3 writers put, read back and drop blocks from a shared pool (so they
// dedupe against each other) while a 4th thread runs maintenance.
TEST_F(StoreTest, ConcurrentPutGetUnrefAndMaintenance) {
  ContentStoreOptions o;
  o.cache_bytes = 32 * kBlockBytes;
  Open(o, 16);
  const uint64_t seed = flash::testing::SeedFromEnv(10);
  std::vector<Block> pool;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 96; i++) pool.push_back(i % 4 ? LogBlock(rng) : RandomBlock(rng));
  pool.push_back(PatternBlock(0));
  std::atomic<bool> failed{false}, done{false};
  auto writer = [&](uint64_t thread_seed) {
    std::mt19937_64 r(thread_seed);
    std::vector<std::pair<MapEntry, size_t>> held;
    for (int round = 0; round < 400 && !failed; round++) {
      std::vector<Block> in;
      std::vector<size_t> which;
      for (int i = 0; i < 6; i++)
        which.push_back(r() % pool.size()), in.push_back(pool[which.back()]);
      std::vector<MapEntry> e;
      if (!PutBatch(in, &e).ok()) failed = true;
      for (size_t i = 0; i < e.size(); i++) held.push_back({e[i], which[i]});
      while (held.size() > 24) {  // read back, then drop, the oldest
        if (!ReadsBack(held.front().first, pool[held.front().second])) failed = true;
        if (held.front().first.kind == Kind::kContent)
          store_->Unref(uint32_t(held.front().first.value));
        held.erase(held.begin());
      }
    }
    for (auto& [entry, index] : held) {
      if (!ReadsBack(entry, pool[index])) failed = true;
      if (entry.kind == Kind::kContent) store_->Unref(uint32_t(entry.value));
    }
  };
  uint64_t passes = 0, reclaimed = 0;
  std::thread maintenance([&] {
    while (!done) {
      Result<uint64_t> r = store_->DeepReduce();
      if (!r.ok() || !CheckpointAndRecycle().ok()) failed = true;
      passes++, reclaimed += r.ok() ? *r : 0;
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; t++) writers.emplace_back(writer, seed * 31 + t);
  for (auto& t : writers) t.join();
  done = true;
  maintenance.join();
  std::printf("%llu deep reduction passes reclaimed %llu KiB meanwhile\n",
              (unsigned long long)passes, (unsigned long long)reclaimed / 1024);
  EXPECT_FALSE(failed);
  ASSERT_OK(CheckpointAndRecycle());
  const ContentStats st = store_->Stats();
  EXPECT_EQ(st.unique_blocks, 0u);
  EXPECT_EQ(st.pages_used, 0u);
  EXPECT_EQ(dev_->Metrics().used_bytes, 0u);
  ASSERT_OK(dev_->CheckInvariants());
}

}  // namespace
}  // namespace pstorage::engine::testing
