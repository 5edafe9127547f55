// reduction_bench: the inline data-reduction path against its own parts,
// on the same pre-generated blocks, one core.
//
//   lz4_compress/text          LZ4_compress_default of one 2x-compressible block
//   lz4_decompress/text        LZ4_decompress_safe of one such block
//   zstd3_compress/text        ZSTD_compressCCtx level 3 of one block (deep reduction)
//   zstd3_decompress/text      ZSTD_decompressDCtx of one such block
//   xxh3_128/text              XXH3_128bits_dispatch of one block
//   memcmp_4k/text             memcmp of two equal 4 KiB blocks (the verify step)
//   put/unique_text/batch:64   ContentStore::Put of 64 new 2x-compressible blocks
//   put/duplicate_{verify,noverify}[_nocache]/batch:64
//                              Put of 64 blocks already stored (dedupe hits)
//   put/zero/batch:64          Put of 64 zero blocks
//   get/cached                 ContentStore::Get of a stored block in the DRAM cache
//   get/uncached               Get with no cache: flash read, LZ4 decode, hash check
//
// Items are blocks, so items/s compare directly: the ratios that matter are
// put/unique_text / lz4_compress, put/duplicate_* / xxh3_128, put/zero /
// memcmp_4k and get/uncached / lz4_decompress. The text blocks are log lines
// (timestamps, ids, paths, sizes); lz4_compress and zstd3_compress report the
// ratio they achieve on them as a counter (~2x and ~3x).
// Put runs on a FlashDevice over the memory medium, pre-touched; the unique
// benchmark stamps a counter into each block so that none repeats, and
// every ~16k blocks drops its references and recycles (time paused). It
// reports stored_ratio (block bytes / fragment bytes) and pages_per_block
// (flash pages in use per unique block, sampled before each cleanup): with
// fragments spanning pages the latter is within a few per cent of
// 1 / stored_ratio. After the table it prints those ratios against their
// targets (medians under --benchmark_repetitions).
#include <benchmark/benchmark.h>
#include <lz4.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>

#include "engine/content_store.h"
#include "flash_sim/flash.h"

namespace pstorage::engine {
namespace {

constexpr size_t kPoolBlocks = 4096;  // 16 MiB: beyond L2/L3, like real traffic
constexpr size_t kBatch = 64;
constexpr uint64_t kDeviceBytes = 256ull << 20;
constexpr size_t kRecycleEvery = 16384;  // unique blocks between untimed cleanups

[[noreturn]] void Die(const char* what, const Status& s) {
  std::fprintf(stderr, "reduction_bench: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

// Text-like 4 KiB blocks of log lines; LZ4 gets about 2x on them.
std::vector<uint8_t> MakeTextPool() {
  static const char* const kLevels[] = {"INFO", "WARN", "DEBUG", "ERROR"};
  static const char* const kPaths[] = {"/api/v1/volumes",       "/api/v1/data",
                                       "/api/v1/snapshots",     "/metrics",
                                       "/api/v1/projects/keys", "/health"};
  std::mt19937_64 rng(42);
  std::vector<uint8_t> pool(kPoolBlocks * kBlockBytes);
  std::string s;
  for (size_t b = 0; b < kPoolBlocks; b++) {
    s.clear();
    while (s.size() < kBlockBytes) {
      char line[256];
      const uint64_t r = rng();
      std::snprintf(line, sizeof(line),
                    "2024-05-%02d %02d:%02d:%02d.%06u %s req=%08x path=%s status=%d bytes=%u\n",
                    int(r % 28 + 1), int((r >> 8) % 24), int((r >> 16) % 60), int((r >> 24) % 60),
                    unsigned(rng() % 1000000), kLevels[rng() % 4], unsigned(rng()),
                    kPaths[rng() % 6], 200 + int(rng() % 5), unsigned(rng() % 100000));
      s += line;
    }
    std::memcpy(&pool[b * kBlockBytes], s.data(), kBlockBytes);
  }
  return pool;
}

std::vector<uint8_t>& TextPool() {
  static std::vector<uint8_t> pool = MakeTextPool();
  return pool;
}
const uint8_t* TextBlock(size_t i) { return &TextPool()[(i % kPoolBlocks) * kBlockBytes]; }

void Lz4Compress(benchmark::State& state) {
  std::vector<char> out(LZ4_compressBound(kBlockBytes));
  size_t i = 0;
  uint64_t in_bytes = 0, out_bytes = 0;
  for (auto _ : state) {
    const int n = LZ4_compress_default(reinterpret_cast<const char*>(TextBlock(i++)), out.data(),
                                       kBlockBytes, int(out.size()));
    benchmark::DoNotOptimize(n);
    in_bytes += kBlockBytes, out_bytes += uint64_t(n);
  }
  state.counters["lz4_ratio"] = out_bytes ? double(in_bytes) / double(out_bytes) : 0;
  state.SetItemsProcessed(int64_t(state.iterations()));
}

// Every pool block compressed once by `compress` (untimed), for the decoders.
struct Compressed {
  std::vector<std::vector<char>> blocks;
  uint64_t bytes = 0;
};

const Compressed& Lz4Pool() {
  static const Compressed pool = [] {
    Compressed c;
    std::vector<char> out(LZ4_compressBound(kBlockBytes));
    for (size_t i = 0; i < kPoolBlocks; i++) {
      const int n = LZ4_compress_default(reinterpret_cast<const char*>(TextBlock(i)), out.data(),
                                         kBlockBytes, int(out.size()));
      if (n <= 0) Die("lz4", Status::Internal("compress failed"));
      c.blocks.emplace_back(out.data(), out.data() + n), c.bytes += uint64_t(n);
    }
    return c;
  }();
  return pool;
}

constexpr int kZstdLevel = 3;  // the engine's default deep-reduction level

const Compressed& ZstdPool() {
  static const Compressed pool = [] {
    Compressed c;
    std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
    std::vector<char> out(ZSTD_compressBound(kBlockBytes));
    for (size_t i = 0; i < kPoolBlocks; i++) {
      const size_t n = ZSTD_compressCCtx(cctx.get(), out.data(), out.size(), TextBlock(i),
                                         kBlockBytes, kZstdLevel);
      if (ZSTD_isError(n)) Die("zstd", Status::Internal(ZSTD_getErrorName(n)));
      c.blocks.emplace_back(out.data(), out.data() + n), c.bytes += n;
    }
    return c;
  }();
  return pool;
}

void Lz4Decompress(benchmark::State& state) {
  const Compressed& pool = Lz4Pool();
  std::vector<char> out(kBlockBytes);
  size_t i = 0;
  for (auto _ : state) {
    const std::vector<char>& in = pool.blocks[i++ % kPoolBlocks];
    const int n = LZ4_decompress_safe(in.data(), out.data(), int(in.size()), int(out.size()));
    if (n != int(kBlockBytes)) {
      state.SkipWithError("LZ4_decompress_safe: wrong length");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}

void ZstdCompress(benchmark::State& state) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  std::vector<char> out(ZSTD_compressBound(kBlockBytes));
  size_t i = 0;
  uint64_t in_bytes = 0, out_bytes = 0;
  for (auto _ : state) {
    const size_t n = ZSTD_compressCCtx(cctx.get(), out.data(), out.size(), TextBlock(i++),
                                       kBlockBytes, kZstdLevel);
    benchmark::DoNotOptimize(n);
    in_bytes += kBlockBytes, out_bytes += n;
  }
  state.counters["zstd_ratio"] = out_bytes ? double(in_bytes) / double(out_bytes) : 0;
  state.SetItemsProcessed(int64_t(state.iterations()));
}

void ZstdDecompress(benchmark::State& state) {
  const Compressed& pool = ZstdPool();
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::vector<char> out(kBlockBytes);
  size_t i = 0;
  for (auto _ : state) {
    const std::vector<char>& in = pool.blocks[i++ % kPoolBlocks];
    const size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), in.data(), in.size());
    if (n != kBlockBytes) {
      state.SkipWithError("ZSTD_decompressDCtx: wrong length");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}

void Xxh3(benchmark::State& state) {
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(XXH3_128bits_dispatch(TextBlock(i++), kBlockBytes));
  state.SetItemsProcessed(int64_t(state.iterations()));
}

void Memcmp(benchmark::State& state) {
  std::vector<uint8_t> copy(TextPool());  // equal blocks: memcmp reads all 4 KiB of both
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ % kPoolBlocks;
    benchmark::DoNotOptimize(std::memcmp(TextBlock(k), &copy[k * kBlockBytes], kBlockBytes));
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}

// A store on a pre-touched memory-medium device; one per benchmark, kept
// across the benchmark's runs.
struct Rig {
  std::unique_ptr<flash::Medium> medium;
  std::unique_ptr<flash::FlashDevice> dev;
  std::unique_ptr<ContentStore> store;

  explicit Rig(const ContentStoreOptions& options) {
    flash::FlashOptions o;
    o.logical_capacity_bytes = kDeviceBytes;
    o.background_gc_idle_ms = 0;
    Result<flash::MediumGeometry> g = flash::GeometryFor(o);
    if (!g.ok()) Die("geometry", g.status());
    medium = flash::NewMemoryMedium(*g);
    Result<std::unique_ptr<flash::FlashDevice>> d = flash::FlashDevice::Open(o, medium.get());
    if (!d.ok()) Die("open", d.status());
    dev = std::move(*d);
    // Touch every logical page once (fresh memory is slow on first touch).
    std::vector<uint64_t> lpns(256);
    std::vector<const uint8_t*> pages(256, TextBlock(0));
    for (uint64_t first = 0; first < dev->logical_pages(); first += lpns.size()) {
      for (size_t k = 0; k < lpns.size(); k++) lpns[k] = first + k;
      if (Status s = dev->Write(lpns, pages); !s.ok()) Die("pre-touch", s);
    }
    store = std::make_unique<ContentStore>(options, dev.get());
    if (Status s = store->FinishRecovery(); !s.ok()) Die("trim", s);  // trims every page
  }
};

struct Batch {
  std::vector<const uint8_t*> blocks = std::vector<const uint8_t*>(kBatch);
  std::vector<MapEntry> entries = std::vector<MapEntry>(kBatch);
  std::vector<BlockOutcome> outcomes = std::vector<BlockOutcome>(kBatch);
  std::vector<ContentRecord> stored;

  void Put(ContentStore& store) {
    stored.clear();
    if (Status s = store.Put(blocks, entries, outcomes, &stored); !s.ok()) Die("put", s);
  }
};

void PutUnique(benchmark::State& state) {
  static Rig rig({});
  static std::vector<uint32_t> held;
  static uint64_t stamp = 0;
  Batch b;
  uint64_t stored_bytes = 0, pages = 0, samples = 0;
  size_t i = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < kBatch; k++) {
      uint8_t* block = &TextPool()[(i++ % kPoolBlocks) * kBlockBytes];
      std::memcpy(block, &++stamp, 8);  // never a duplicate
      b.blocks[k] = block;
    }
    b.Put(*rig.store);
    for (size_t k = 0; k < kBatch; k++) {
      held.push_back(uint32_t(b.entries[k].value));
      stored_bytes += b.outcomes[k].stored_bytes;
    }
    if (held.size() >= kRecycleEvery) {
      state.PauseTiming();
      pages += rig.store->Stats().pages_used, samples += held.size();
      for (uint32_t id : held) rig.store->Unref(id);
      held.clear();
      std::vector<uint8_t> image;
      rig.store->Serialize(&image);  // the checkpoint that lets frees be recycled
      if (Status s = rig.store->RecycleFreed(); !s.ok()) Die("recycle", s);
      state.ResumeTiming();
    }
  }
  state.counters["stored_ratio"] =
      double(state.iterations() * kBatch * kBlockBytes) / double(stored_bytes);
  if (samples > 0) state.counters["pages_per_block"] = double(pages) / double(samples);
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}

// The pool is stored once; every timed Put is 64 dedupe hits.
void PutDuplicate(benchmark::State& state, bool verify, bool cache) {
  static std::unique_ptr<Rig> rigs[2][2];
  std::unique_ptr<Rig>& rig = rigs[verify][cache];
  Batch b;
  if (!rig) {
    ContentStoreOptions o;
    o.dedupe_verify = verify;
    if (!cache) o.cache_bytes = 0;
    rig = std::make_unique<Rig>(o);
    for (size_t first = 0; first < kPoolBlocks; first += kBatch) {
      for (size_t k = 0; k < kBatch; k++) b.blocks[k] = TextBlock(first + k);
      b.Put(*rig->store);
    }
  }
  size_t i = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < kBatch; k++) b.blocks[k] = TextBlock(i++);
    b.Put(*rig->store);
    if (!b.outcomes[0].deduplicated) Die("duplicate", Status::Internal("not deduplicated"));
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}

void PutZero(benchmark::State& state) {
  static Rig rig({});
  static const std::vector<uint8_t> zero(kBlockBytes, 0);
  Batch b;
  for (size_t k = 0; k < kBatch; k++) b.blocks[k] = zero.data();
  for (auto _ : state) b.Put(*rig.store);
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}

// The pool is stored once; every timed Get reads one stored block back, from
// the DRAM cache or (no cache) from the memory-medium flash with its decode.
void GetBlock(benchmark::State& state, bool cache) {
  static std::unique_ptr<Rig> rigs[2];
  static std::vector<MapEntry> entries[2];
  std::unique_ptr<Rig>& rig = rigs[cache];
  if (!rig) {
    ContentStoreOptions o;
    if (!cache) o.cache_bytes = 0;
    rig = std::make_unique<Rig>(o);
    Batch b;
    for (size_t first = 0; first < kPoolBlocks; first += kBatch) {
      for (size_t k = 0; k < kBatch; k++) b.blocks[k] = TextBlock(first + k);
      b.Put(*rig->store);
      entries[cache].insert(entries[cache].end(), b.entries.begin(), b.entries.end());
    }
  }
  std::vector<uint8_t> out(kBlockBytes);
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ % kPoolBlocks;
    if (Status s = rig->store->Get(entries[cache][k], out.data()); !s.ok()) Die("get", s);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}

// The console table, then the three ratios the write path is judged by
// (medians when --benchmark_repetitions gives them, else the last run).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Color : OO_None) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if ((r.run_type != Run::RT_Iteration && !median) || r.error_occurred) continue;
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) rate_[r.run_name.str()] = it->second.value;
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    const auto ratio = [this](const char* what, const char* a, const char* b, double target) {
      if (!rate_.count(a) || !rate_.count(b)) return;  // filtered out
      const double x = rate_[a] / rate_[b];
      if (target == 0) {
        std::printf("ratio %-46s %6.2f  (no target)\n", what, x);
        return;
      }
      std::printf("ratio %-46s %6.2f  (target >= %.2f: %s)\n", what, x, target,
                  x >= target ? "met" : "MISSED");
    };
    ratio("put/unique_text / lz4_compress", "put/unique_text/batch:64", "lz4_compress/text", 0.80);
    ratio("put/duplicate_noverify / xxh3_128", "put/duplicate_noverify/batch:64",
          "xxh3_128/text", 0.50);
    ratio("put/duplicate_verify / xxh3_128", "put/duplicate_verify/batch:64", "xxh3_128/text", 0);
    ratio("put/zero / memcmp_4k", "put/zero/batch:64", "memcmp_4k/text", 0.50);
    ratio("get/uncached / lz4_decompress", "get/uncached", "lz4_decompress/text", 0);
  }

 private:
  std::map<std::string, double> rate_;
};

}  // namespace
}  // namespace pstorage::engine

int main(int argc, char** argv) {
  using namespace pstorage::engine;
  TextPool();  // generated (and touched) before any timing
  benchmark::RegisterBenchmark("lz4_compress/text", Lz4Compress);
  benchmark::RegisterBenchmark("lz4_decompress/text", Lz4Decompress);
  benchmark::RegisterBenchmark("zstd3_compress/text", ZstdCompress);
  benchmark::RegisterBenchmark("zstd3_decompress/text", ZstdDecompress);
  benchmark::RegisterBenchmark("xxh3_128/text", Xxh3);
  benchmark::RegisterBenchmark("memcmp_4k/text", Memcmp);
  benchmark::RegisterBenchmark("put/unique_text/batch:64", PutUnique);
  benchmark::RegisterBenchmark("put/duplicate_verify/batch:64", PutDuplicate, true, true);
  benchmark::RegisterBenchmark("put/duplicate_noverify/batch:64", PutDuplicate, false, true);
  benchmark::RegisterBenchmark("put/duplicate_verify_nocache/batch:64", PutDuplicate, true, false);
  benchmark::RegisterBenchmark("put/zero/batch:64", PutZero);
  benchmark::RegisterBenchmark("get/cached", GetBlock, true);
  benchmark::RegisterBenchmark("get/uncached", GetBlock, false);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
