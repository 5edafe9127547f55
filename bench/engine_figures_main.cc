// pstorage-engine-figures: the block engine's figures that a micro-benchmark
// cannot give, measured through the public Engine API on real files.
//
// Part "memory" (resident memory per unique block, recovery time):
//   1. Engine B (a small device) gets N blocks of distinct non-zero 8-byte
//      patterns: they are mapped but store nothing, so the RSS growth is the
//      volume block map alone (per mapped block). B stays open, so that
//      memory freed later cannot be reused and hide growth.
//   2. Engine A (--capacity-gib of flash, DRAM cache 8 MiB, no automatic
//      checkpoint) gets N unique 2x-compressible blocks (2 KiB random bytes,
//      2 KiB zeros) in 1 MiB writes. Its RSS growth is block map + dedupe
//      index + content table + the cache as it fills; the flash FTL tables
//      are allocated (and touched) by Open, before the writes.
//   3. A is closed; fresh processes (this binary, --open-once) then time
//      Engine::Open replaying the whole journal, Checkpoint(), and
//      Engine::Open from that checkpoint, medians of three runs. Each run
//      then also times FlashDevice::OpenFile on the same flash.img alone,
//      so that the engine's own part is a difference within one run.
// Part "reduction": engine_figures_reduction.cc.
//
// Usage: pstorage-engine-figures [--markdown] [--part memory|reduction|all]
//          [--blocks N] [--capacity-gib N] [--dataset-dir DIR] [--dataset-list FILE]
//          [--dataset-mib N] [--copies N] [--summary FILE] [--keep 1]
// Files go to $PSTORAGE_BENCH_DIR (default /var/tmp) and are removed after
// (--keep 1 keeps the memory run's engine, pstorage-engine-figures-a).
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "bench/engine_figures.h"
#include "engine/engine.h"

namespace pstorage::bench {
namespace {

using engine::Engine;
using engine::EngineOptions;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kWriteBytes = 1 << 20;
constexpr uint64_t kCacheBytes = 8 << 20;
constexpr int kOpenRuns = 3;

EngineOptions Options(const std::string& dir, uint64_t capacity_bytes) {
  EngineOptions o;
  o.data_dir = dir;
  o.flash.logical_capacity_bytes = capacity_bytes;
  o.flash.background_gc_idle_ms = 0;
  o.cache_bytes = kCacheBytes;
  o.checkpoint_journal_bytes = UINT64_MAX;  // the journal keeps every record
  return o;
}

// Fills one write's worth of blocks, numbered from `first`: distinct
// 8-byte patterns, or unique blocks of 2 KiB pseudo-random bytes + 2 KiB zeros.
void FillBlocks(uint8_t* buf, uint64_t first, bool pattern) {
  for (uint64_t b = 0; b < kWriteBytes / kBlock; b++) {
    uint64_t* words = reinterpret_cast<uint64_t*>(buf + b * kBlock);
    uint64_t x = (first + b + 1) * 0x9E3779B97F4A7C15ull;
    for (uint64_t i = 0; i < kBlock / 8; i++) {
      if (pattern) {
        words[i] = first + b + 1;
      } else if (i < kBlock / 16) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;  // xorshift64*
        words[i] = x * 0x2545F4914F6CDD1Dull;
      } else {
        words[i] = 0;
      }
    }
  }
}

// Writes `blocks` blocks to a new volume `name` in 1 MiB writes from `buf`
// (allocated by the caller before it samples RSS); seconds.
double FillVolume(Engine& e, const char* name, uint64_t blocks, bool pattern,
                  std::vector<uint8_t>& buf) {
  const std::string id = Check(e.CreateVolume({name, blocks * kBlock, "", {}}), "create").id;
  const auto start = Clock::now();
  for (uint64_t b = 0; b < blocks; b += kWriteBytes / kBlock) {
    FillBlocks(buf.data(), b, pattern);
    const uint64_t n = std::min(kWriteBytes, (blocks - b) * kBlock);
    Check(e.Write(id, b * kBlock, {buf.data(), n}), "write");
    if (b % (1 << 18) == 0) std::fprintf(stderr, "  %s: %lu blocks\n", name, (unsigned long)b);
  }
  return SecondsSince(start);
}

// In this (fresh) process: times Engine::Open, then (engine closed)
// FlashDevice::OpenFile on its flash.img alone, so that each run pairs the
// two on the same disk state; the engine goes first so that its RSS growth
// is that of a fresh process. Prints
// "flash_s open_s rss_growth_of_open mapped_blocks checkpoint_s".
int OpenOnce(const std::string& dir, bool then_checkpoint) {
  const uint64_t rss0 = RssBytes();
  auto start = Clock::now();
  auto e = Check(Engine::Open(Options(dir, 0)), "open " + dir);
  const double open_s = SecondsSince(start);
  const uint64_t rss = RssBytes() - rss0;
  uint64_t mapped = 0;
  for (const auto& v : e->ListVolumes()) mapped += v.used_bytes / kBlock;
  double checkpoint_s = 0;
  if (then_checkpoint) {
    start = Clock::now();
    Check(e->Checkpoint(), "checkpoint");
    checkpoint_s = SecondsSince(start);
  }
  e.reset();
  const std::string img = dir + "/flash.img";
  flash::FlashOptions fo = Check(flash::ReadDeviceFileOptions(img), "device options");
  fo.background_gc_idle_ms = 0;
  start = Clock::now();
  Check(flash::FlashDevice::OpenFile(fo, img), "open " + img).reset();
  const double flash_s = SecondsSince(start);
  std::printf("%.6f %.6f %lu %lu %.6f\n", flash_s, open_s, (unsigned long)rss,
              (unsigned long)mapped, checkpoint_s);
  return 0;
}

struct Opened {
  double flash_s = 0, open_s = 0, rss_bytes = 0, checkpoint_s = 0;
  uint64_t mapped = 0;
  double engine_s = 0;  // the median of open_s - flash_s over the runs
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs --open-once in a fresh process `runs` times: the run with the median
// open time, and the median of the runs' engine-only parts. Appends each
// run's flash-only time to *flash_times.
Opened OpenInChild(const std::string& dir, const std::string& flags, int runs,
                   std::vector<double>* flash_times) {
  std::vector<Opened> all;
  std::vector<double> engine_parts;
  for (int i = 0; i < runs; i++) {
    std::string cmd = "'";  // built piecewise: g++ 12 warns (-Wrestrict) on a + chain
    cmd += std::filesystem::read_symlink("/proc/self/exe").string();
    cmd += "' --open-once '";
    cmd += dir;
    cmd += "' ";
    cmd += flags;
    FILE* p = popen(cmd.c_str(), "r");
    Opened o;
    unsigned long rss = 0, mapped = 0;
    const bool read = p && std::fscanf(p, "%lf %lf %lu %lu %lf", &o.flash_s, &o.open_s, &rss,
                                       &mapped, &o.checkpoint_s) == 5;
    if (!p || pclose(p) != 0 || !read) Die(cmd, Status::Internal("child failed"));
    o.rss_bytes = double(rss), o.mapped = mapped;
    all.push_back(o);
    engine_parts.push_back(o.open_s - o.flash_s);
    flash_times->push_back(o.flash_s);
  }
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.open_s < b.open_s; });
  Opened median = all[all.size() / 2];
  median.engine_s = Median(engine_parts);
  return median;
}

uint64_t FileBytes(const std::string& dir, const std::string& prefix) {
  uint64_t total = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().filename().string().rfind(prefix, 0) == 0) total += f.file_size();
  }
  return total;
}

std::string PerBlock(double bytes, uint64_t n) { return Fmt("%.1f B/block", bytes / double(n)); }

}  // namespace

void PrintMemoryAndRecovery(const FiguresArgs& a) {
  const std::string dir_a = a.bench_dir + "/pstorage-engine-figures-a";
  const std::string dir_b = a.bench_dir + "/pstorage-engine-figures-b";
  std::filesystem::remove_all(dir_a), std::filesystem::remove_all(dir_b);
  const uint64_t n = a.blocks;
  const bool md = a.markdown;

  std::fprintf(stderr, "memory: block map alone (%lu pattern blocks)\n", (unsigned long)n);
  std::vector<uint8_t> buf(kWriteBytes, 1);
  auto b = Check(Engine::Open(Options(dir_b, 64 << 20)), "open " + dir_b);
  const uint64_t rss_b0 = RssBytes();
  FillVolume(*b, "patterns", n, true, buf);
  const double map_bytes = double(RssBytes() - rss_b0);

  std::fprintf(stderr, "memory: %lu unique blocks\n", (unsigned long)n);
  const uint64_t rss0 = RssBytes();
  const EngineOptions opts = Options(dir_a, a.capacity_gib << 30);
  auto e = Check(Engine::Open(opts), "open " + dir_a);
  const uint64_t rss1 = RssBytes();
  const double write_s = FillVolume(*e, "unique", n, false, buf);
  const uint64_t rss2 = RssBytes();
  const double grew = double(rss2 - rss1);
  const engine::ReductionStats r = e->Reduction();
  const flash::MediumGeometry g = Check(flash::GeometryFor(opts.flash), "geometry");
  const uint64_t lpages = opts.flash.logical_capacity_bytes / kBlock;
  // l2p_ and stale_copies_ (4 + 4 B per logical page), slot_lpn_ and
  // slot_state_ (4 + 1 B per physical slot): flash_sim/ftl.h.
  const double ftl_bytes = double(lpages * 8 + g.slot_count() * 5);
  e.reset();
  b.reset();
  std::filesystem::remove_all(dir_b);

  std::fprintf(stderr, "recovery: fresh processes, %d runs each\n", kOpenRuns);
  const uint64_t journal_bytes = FileBytes(dir_a, "journal-");
  std::vector<double> flash_times;
  const Opened replay = OpenInChild(dir_a, "", kOpenRuns, &flash_times);
  const Opened cp = OpenInChild(dir_a, "--then-checkpoint", 1, &flash_times);
  const uint64_t cp_bytes = FileBytes(dir_a, "checkpoint");
  const Opened from_cp = OpenInChild(dir_a, "", kOpenRuns, &flash_times);
  if (!a.keep) std::filesystem::remove_all(dir_a);
  const double flash_s = Median(flash_times);

  const double index_table = grew - double(kCacheBytes) - map_bytes;
  const double per_unique = index_table / double(n);
  const double formula = double(rss2 - rss0) - ftl_bytes - double(kCacheBytes);
  if (md) std::printf("### Resident memory (VmRSS)\n\n");
  TableHead(md, "value", "per block / note");
  Row(md, "engine Open, empty device", Fmt("+%.1f MiB", MiB(double(rss1 - rss0))),
      Fmt("of which flash FTL tables %.1f MiB (%.1f B per physical page)", MiB(ftl_bytes),
          ftl_bytes / double(g.slot_count())));
  Row(md, Fmt("writing %lu unique blocks (%.0f blocks/s)", (unsigned long)n, double(n) / write_s),
      Fmt("+%.1f MiB", MiB(grew)), PerBlock(grew, n));
  Row(md, "- of which DRAM block cache (full)", Fmt("%.1f MiB", MiB(kCacheBytes)),
      PerBlock(kCacheBytes, n));
  Row(md, "- of which volume block map (pattern-block run)", Fmt("%.1f MiB", MiB(map_bytes)),
      PerBlock(map_bytes, n));
  Row(md, "**= dedupe index + content table (the rest)**", Fmt("%.1f MiB", MiB(index_table)),
      Fmt("**%.1f B/unique block**; target <= 48: %s", per_unique,
          per_unique <= 48 ? "met" : "MISSED"));
  Row(md, "(RSS after writes - RSS before Open - FTL tables - cache) / N", "",
      PerBlock(formula, n) + " (block map and fixed buffers included)");
  Row(md, "recovered engine, fresh process (from checkpoint)",
      Fmt("%.1f MiB", MiB(from_cp.rss_bytes)), "whole RSS growth of Engine::Open");
  std::printf("\nEngine A: %lu unique blocks stored, %.1f MiB of flash pages used, %.2f GiB "
              "device (%lu physical pages).\n\n", (unsigned long)r.unique_blocks,
              MiB(double(r.physical_bytes_used)), double(lpages * kBlock) / (1 << 30),
              (unsigned long)g.slot_count());

  const double scan_gib = double(g.slot_count()) * flash::kSlotBytes / (1 << 30);
  const auto engine_open = [](const Opened& o) {
    return Fmt("%lu blocks mapped; engine's own part %.2f s; under 2 s: %s",
               (unsigned long)o.mapped, o.engine_s, o.open_s < 2 ? "met" : "MISSED");
  };
  if (md) std::printf("### Recovery with %lu mapped blocks (medians of %d runs)\n\n",
                      (unsigned long)n, kOpenRuns);
  TableHead(md, "time", "note");
  Row(md, Fmt("flash_sim alone: FlashDevice::OpenFile, scan of %.2f GiB (all %zu runs)",
              scan_gib, flash_times.size()),
      Fmt("%.2f s", flash_s), Fmt("%.2f GiB/s", scan_gib / flash_s));
  Row(md, Fmt("Engine::Open, no checkpoint: replay of a %.1f MiB journal", MiB(journal_bytes)),
      Fmt("%.2f s", replay.open_s), engine_open(replay));
  Row(md, "Checkpoint() after that replay (one run)", Fmt("%.2f s", cp.checkpoint_s),
      Fmt("checkpoint file %.1f MiB", MiB(cp_bytes)));
  Row(md, "Engine::Open after the checkpoint (journal empty)", Fmt("%.2f s", from_cp.open_s),
      engine_open(from_cp));
  std::printf("\n");
}

}  // namespace pstorage::bench

int main(int argc, char** argv) {
  using namespace pstorage::bench;
  FiguresArgs a;
  if (const char* d = std::getenv("PSTORAGE_BENCH_DIR"); d && *d) a.bench_dir = d;
  for (int i = 1; i < argc; i++) {
    const std::string flag = argv[i];
    const std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (flag == "--open-once") {
      return OpenOnce(v, i + 2 < argc && std::strcmp(argv[i + 2], "--then-checkpoint") == 0);
    }
    if (flag == "--markdown") { a.markdown = true; continue; }
    if (v.empty()) Die("missing value for " + flag, pstorage::Status::InvalidArgument("usage"));
    i++;
    if (flag == "--part") a.part = v;
    else if (flag == "--blocks") a.blocks = std::stoull(v);
    else if (flag == "--capacity-gib") a.capacity_gib = std::stoull(v);
    else if (flag == "--dataset-dir") a.dataset_dir = v;
    else if (flag == "--dataset-list") a.dataset_list = v;
    else if (flag == "--dataset-mib") a.dataset_mib = std::stoull(v);
    else if (flag == "--copies") a.copies = std::max(1, std::stoi(v));
    else if (flag == "--summary") a.summary = v;
    else if (flag == "--keep") a.keep = v == "1";
    else Die("unknown flag " + flag, pstorage::Status::InvalidArgument(
        "usage: pstorage-engine-figures [--markdown] [--part memory|reduction|all] [--blocks N] "
        "[--capacity-gib N] [--dataset-dir DIR] [--dataset-list FILE] [--dataset-mib N] "
        "[--copies N] [--summary FILE] [--keep 1]"));
  }
  if (a.part == "memory" || a.part == "all") PrintMemoryAndRecovery(a);
  if (a.part == "reduction" || a.part == "all") PrintRealDataReduction(a);
  return 0;
}
