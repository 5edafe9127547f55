// pstorage-engine-figures, part "reduction": the engine's data reduction on
// real files against the offline ideal for the same bytes.
//
// Dataset: the regular files under --dataset-dir in sorted path order (or
// the paths listed in --dataset-list, in that order, repeats included), each
// starting on a 4 KiB boundary (the tail of its last block zero, as a file
// system lays files out), up to --dataset-mib. It is written --copies times
// (default twice) to one volume in 1 MiB writes, each copy at the next 1 MiB
// boundary. --summary FILE also writes the figures as "key value" lines.
//
// Offline ideal for 4 KiB dedupe + per-block LZ4 over the written blocks:
// zero blocks are dropped (the engine leaves them unmapped); other 8-byte
// pattern blocks count as logical bytes and store nothing; the rest is
// deduplicated by XXH3-128 (collision odds ~ n^2 / 2^129) and each unique
// block costs min(LZ4_compress_default size, 4096) bytes.
//   ideal ratio  = logical non-zero bytes / ideal physical bytes
//   engine ratio = Reduction().data_reduction_ratio
//                = logical_bytes_live / physical_bytes_used (flash pages * 4096)
//   packing loss = 1 - engine ratio / ideal ratio
#include <lz4.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <unordered_set>
#include <vector>

#include "bench/engine_figures.h"
#include "engine/engine.h"

namespace pstorage::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kMiB = 1 << 20;
constexpr int kRawThresholdBytes = 4096 - 256;  // engine/codec.h: kMaxFragmentBytes

uint64_t RoundUp(uint64_t x, uint64_t to) { return (x + to - 1) / to * to; }

struct Dataset {
  std::vector<uint8_t> bytes;  // a multiple of kBlock
  uint64_t files = 0;
  uint64_t file_bytes = 0;
};

// The regular files under `dir`, in sorted order.
std::vector<fs::path> FilesUnder(const std::string& dir) {
  std::vector<fs::path> paths;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (!it->is_symlink(ec) && it->is_regular_file(ec)) paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

// The paths listed in `list_file`, one a line, in order.
std::vector<fs::path> FilesListed(const std::string& list_file) {
  std::ifstream in(list_file);
  if (!in) Die(list_file, Status::NotFound("cannot open the dataset list"));
  std::vector<fs::path> paths;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) paths.emplace_back(line);
  }
  return paths;
}

// The prefix of `paths` that fits in `cap` bytes, each file 4 KiB-aligned.
Dataset LoadDataset(const std::vector<fs::path>& paths, uint64_t cap) {
  std::error_code ec;
  Dataset d;
  d.bytes.reserve(cap);
  for (const fs::path& p : paths) {
    const uint64_t size = fs::file_size(p, ec);
    if (ec || size == 0) continue;
    if (d.bytes.size() + RoundUp(size, kBlock) > cap) break;
    FILE* f = std::fopen(p.c_str(), "rb");
    if (!f) continue;
    const size_t at = d.bytes.size();
    d.bytes.resize(at + RoundUp(size, kBlock), 0);
    const bool whole = std::fread(&d.bytes[at], 1, size, f) == size;
    std::fclose(f);
    if (!whole) {
      d.bytes.resize(at);  // changed under us or unreadable: leave it out
      continue;
    }
    d.files++, d.file_bytes += size;
  }
  return d;
}

struct Ideal {
  uint64_t zero = 0, pattern = 0, unique = 0, duplicate = 0;
  uint64_t logical_bytes = 0;    // non-zero blocks * 4096
  uint64_t lz4_bytes = 0;        // sum of min(LZ4 size, 4096) over unique blocks
  uint64_t threshold_bytes = 0;  // the same with the engine's raw threshold
};

struct HashKey {
  size_t operator()(const XXH128_hash_t& h) const { return size_t(h.low64); }
};
struct HashEq {
  bool operator()(const XXH128_hash_t& a, const XXH128_hash_t& b) const {
    return XXH128_isEqual(a, b);
  }
};

Ideal Offline(const Dataset& d, int copies) {
  Ideal r;
  std::unordered_set<XXH128_hash_t, HashKey, HashEq> seen;
  seen.reserve(d.bytes.size() / kBlock);
  std::vector<char> out(LZ4_compressBound(kBlock));
  for (int copy = 0; copy < copies; copy++) {
    for (size_t at = 0; at < d.bytes.size(); at += kBlock) {
      const uint8_t* b = &d.bytes[at];
      bool pattern = true;
      for (size_t i = 8; i < kBlock && pattern; i += 8) pattern = std::memcmp(b, b + i, 8) == 0;
      static const uint8_t kZero[8] = {};
      if (pattern && std::memcmp(b, kZero, 8) == 0) {
        r.zero++;
        continue;
      }
      r.logical_bytes += kBlock;
      if (pattern) {
        r.pattern++;
        continue;
      }
      if (!seen.insert(XXH3_128bits(b, kBlock)).second) {
        r.duplicate++;
        continue;
      }
      r.unique++;
      const int n = LZ4_compress_default(reinterpret_cast<const char*>(b), out.data(),
                                         int(kBlock), int(out.size()));
      r.lz4_bytes += n > 0 ? std::min<uint64_t>(uint64_t(n), kBlock) : kBlock;
      r.threshold_bytes += n > 0 && n <= kRawThresholdBytes ? uint64_t(n) : kBlock;
    }
  }
  return r;
}

// Writes `data` at `offset` in 1 MiB writes; seconds.
double WriteAll(engine::Engine& e, const std::string& id, uint64_t offset,
                const std::vector<uint8_t>& data) {
  const auto start = Clock::now();
  for (uint64_t at = 0; at < data.size(); at += kMiB) {
    const uint64_t n = std::min<uint64_t>(kMiB, data.size() - at);
    Check(e.Write(id, offset + at, {&data[at], n}), "write");
  }
  return SecondsSince(start);
}

double Ratio(uint64_t a, uint64_t b) { return b ? double(a) / double(b) : 0; }

}  // namespace

void PrintRealDataReduction(const FiguresArgs& a) {
  const bool md = a.markdown;
  const std::string source = a.dataset_list.empty() ? a.dataset_dir : a.dataset_list;
  std::fprintf(stderr, "reduction: reading the files %s %s\n",
               a.dataset_list.empty() ? "under" : "listed in", source.c_str());
  const Dataset d = LoadDataset(
      a.dataset_list.empty() ? FilesUnder(a.dataset_dir) : FilesListed(a.dataset_list),
      a.dataset_mib * kMiB);
  if (d.bytes.empty()) Die(source, Status::NotFound("no readable files"));
  const int copies = a.copies;
  std::fprintf(stderr, "reduction: offline ideal over %.1f MiB x %d\n",
               MiB(double(d.bytes.size())), copies);
  const Ideal ideal = Offline(d, copies);

  const std::string dir = a.bench_dir + "/pstorage-engine-figures-r";
  fs::remove_all(dir);
  engine::EngineOptions o;  // default cache, verify, checkpoints and zstd level
  o.data_dir = dir;
  o.flash.logical_capacity_bytes = RoundUp(d.bytes.size(), 1ull << 30) + (1ull << 30);
  o.flash.background_gc_idle_ms = 0;
  auto e = Check(engine::Engine::Open(o), "open " + dir);
  const uint64_t stride = RoundUp(d.bytes.size(), kMiB);
  const std::string id =
      Check(e->CreateVolume({"real", uint64_t(copies) * stride, "", {}}), "create").id;
  std::vector<double> copy_s;
  for (int c = 0; c < copies; c++) {
    std::fprintf(stderr, "reduction: engine, copy %d\n", c + 1);
    copy_s.push_back(WriteAll(*e, id, uint64_t(c) * stride, d.bytes));
  }
  const engine::ReductionStats r = e->Reduction();
  std::fprintf(stderr, "reduction: DeepReduce\n");
  const auto deep_start = Clock::now();
  const uint64_t reclaimed = Check(e->DeepReduce(), "DeepReduce");
  const double deep_s = SecondsSince(deep_start);
  const engine::ReductionStats deep = e->Reduction();
  e.reset();
  fs::remove_all(dir);

  const double ideal_ratio = Ratio(ideal.logical_bytes, ideal.lz4_bytes);
  const double engine_ratio = Ratio(r.logical_bytes_live, r.physical_bytes_used);
  const double loss = 1 - engine_ratio / ideal_ratio;
  const auto mib = [](uint64_t bytes) { return Fmt("%.1f MiB", MiB(double(bytes))); };
  const auto x = [](double ratio) { return Fmt("%.3fx", ratio); };

  if (!a.summary.empty()) {
    std::ofstream out(a.summary);
    out << "files " << d.files << "\nfile_bytes " << d.file_bytes << "\naligned_bytes "
        << d.bytes.size() << "\ncopies " << copies << "\nzero_blocks " << ideal.zero
        << "\npattern_blocks " << ideal.pattern << "\nunique_blocks " << ideal.unique
        << "\nduplicate_blocks " << ideal.duplicate << "\nlogical_nonzero_bytes "
        << ideal.logical_bytes << "\nideal_lz4_bytes " << ideal.lz4_bytes
        << "\nideal_threshold_bytes " << ideal.threshold_bytes << "\nengine_logical_bytes "
        << r.logical_bytes_live << "\nengine_fragment_bytes "
        << r.stored_bytes_after_compression << "\nengine_physical_bytes "
        << r.physical_bytes_used << "\nengine_ratio " << engine_ratio << "\nideal_ratio "
        << ideal_ratio << "\ndeep_physical_bytes " << deep.physical_bytes_used
        << "\ndeep_ratio " << Ratio(deep.logical_bytes_live, deep.physical_bytes_used)
        << "\ndeep_s " << deep_s << "\nzstd_level " << o.zstd_level << "\ncopy1_mibs "
        << MiB(double(d.bytes.size())) / copy_s.front() << "\n";
    if (!out) Die(a.summary, Status::IoError("cannot write the summary"));
  }
  std::printf("Dataset: %lu files (%.1f MiB) from %s, 4 KiB-aligned: %.1f MiB = %lu blocks "
              "per copy, written %d time%s. Over all copies: %lu zero, %lu other-pattern, %lu "
              "unique and %lu duplicate blocks (offline count).\n\n",
              (unsigned long)d.files, MiB(double(d.file_bytes)), source.c_str(),
              MiB(double(d.bytes.size())), (unsigned long)(d.bytes.size() / kBlock), copies,
              copies == 1 ? "" : "s",
              (unsigned long)ideal.zero, (unsigned long)ideal.pattern,
              (unsigned long)ideal.unique, (unsigned long)ideal.duplicate);
  TableHead(md, "physical", "ratio (logical non-zero / physical)");
  Row(md, "logical non-zero bytes (offline = engine logical_bytes_live)",
      mib(ideal.logical_bytes), "engine: " + mib(r.logical_bytes_live));
  Row(md, "offline ideal: 4 KiB dedupe + per-block LZ4, min(size, 4096)", mib(ideal.lz4_bytes),
      x(ideal_ratio));
  Row(md, "offline ideal with the engine's raw threshold (LZ4 > 3840 B: raw)",
      mib(ideal.threshold_bytes), x(Ratio(ideal.logical_bytes, ideal.threshold_bytes)));
  Row(md, "engine: fragment bytes stored", mib(r.stored_bytes_after_compression),
      x(Ratio(r.logical_bytes_live, r.stored_bytes_after_compression)));
  Row(md, "**engine: flash pages used (data_reduction_ratio)**", mib(r.physical_bytes_used),
      "**" + x(engine_ratio) + "**" +
          Fmt("; packing loss %.1f %% (target <= 5 %%: %s)", 100 * loss,
              loss <= 0.05 ? "met" : "MISSED"));
  Row(md, "engine: logical_bytes_written / physical_bytes_used", mib(r.physical_bytes_used),
      x(Ratio(r.logical_bytes_written, r.physical_bytes_used)));
  Row(md, Fmt("engine after DeepReduce (zstd level %d, %.1f s)", o.zstd_level, deep_s),
      mib(deep.physical_bytes_used),
      x(Ratio(deep.logical_bytes_live, deep.physical_bytes_used)) +
          Fmt(" (%.2f x the ideal; reclaimed %s)",
              Ratio(deep.logical_bytes_live, deep.physical_bytes_used) / ideal_ratio,
              mib(reclaimed).c_str()));
  std::printf("\nEngine counters: %lu unique blocks stored (offline: %lu), %lu dedupe hits "
              "(offline: %lu), %lu zero and %lu pattern blocks. Write rate through Engine::Write "
              "(1 MiB writes, verify on, default 64 MiB cache): copy 1 %.0f MiB/s",
              (unsigned long)r.unique_blocks, (unsigned long)ideal.unique,
              (unsigned long)r.duplicate_blocks, (unsigned long)ideal.duplicate,
              (unsigned long)r.zero_blocks_found, (unsigned long)r.pattern_blocks_found,
              MiB(double(d.bytes.size())) / copy_s.front());
  if (copies > 1) {
    std::printf(", copy 2 (all duplicates) %.0f MiB/s",
                MiB(double(d.bytes.size())) / copy_s[1]);
  }
  std::printf(".\n\n");
}

}  // namespace pstorage::bench
