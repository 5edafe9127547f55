// pstorage-flash: drives a simulated SSD backed by DIR/flash.img.
//
// Each run verifies every page that the recorded earlier runs left behind,
// overwrites random pages, flushes and prints the device's metrics. A page's
// content is a function of (lpn, generation). DIR/flash-demo.state lists the
// runs (generation, seed, writes, done); replaying their page sequences says
// which generation each page must hold. A run cut short stays "started": its
// pages may hold their old or their new content, as the device promises.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "flash_sim/flash.h"
#include "flash_sim/page_format.h"  // little-endian helpers

namespace pstorage::flash {
namespace {

constexpr size_t kBatchPages = 64;

struct Args {
  std::string data_dir = "./pstorage-data";
  uint64_t capacity_mib = 0;  // 0: not given; a new device gets 256 MiB
  uint64_t writes = 0;  // 0: twice the capacity in pages
  uint64_t seed = 1;
};

struct Run {
  uint32_t generation = 0;
  uint64_t seed = 0;
  uint64_t writes = 0;
  bool done = false;
};

struct State {
  uint64_t logical_pages = 0;
  bool baseline_unknown = false;  // the device held data no recorded run wrote
  std::vector<Run> runs;
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "\npstorage-flash: %s\n", message.c_str());
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A run's page sequence: uniform over the device, reproducible from its seed.
struct LpnStream {
  uint64_t state;
  uint64_t pages;
  uint64_t Next() { return Mix(state += 0x9e3779b97f4a7c15ull) % pages; }
};

// Word 0 = lpn, word 1 = generation, then a stream seeded by both: every word
// differs, so a torn, misplaced or stale page cannot compare equal.
void FillPage(uint64_t lpn, uint32_t generation, uint8_t* page) {
  PutU64(page, lpn);
  PutU64(page + 8, generation);
  uint64_t x = Mix(lpn * 0x100000001b3ull + generation);
  for (uint32_t off = 16; off < kPageBytes; off += 8) PutU64(page + off, Mix(x += off));
}

State LoadState(const std::string& path) {
  State st;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string key, word;
    Run r;
    ls >> key;
    if (key == "logical_pages") ls >> st.logical_pages;
    if (key == "baseline") st.baseline_unknown = true;
    if (key != "run") continue;
    ls >> r.generation >> word >> r.seed >> word >> r.writes >> word;
    if (!ls) Die(path + ": malformed line: " + line);
    r.done = word == "done";
    st.runs.push_back(r);
  }
  return st;
}

// Temp file, fsync, rename: a crash leaves the old or the new state.
void SaveState(const std::string& path, const State& st) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) Die("cannot write " + tmp + ": " + std::strerror(errno));
  std::fprintf(f, "# pstorage-flash demo: runs that wrote flash.img, oldest first\n");
  std::fprintf(f, "logical_pages %" PRIu64 "\n%s", st.logical_pages,
               st.baseline_unknown ? "baseline unknown\n" : "");
  for (const Run& r : st.runs) {
    std::fprintf(f, "run %u seed %" PRIu64 " writes %" PRIu64 " %s\n", r.generation, r.seed,
                 r.writes, r.done ? "done" : "started");
  }
  const bool ok = std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    Die("cannot write " + path + ": " + std::strerror(errno));
  }
}

// Reads every page and checks it; returns how many hold a recorded run's data.
uint64_t Verify(FlashDevice& dev, const State& st) {
  const uint64_t pages = dev.logical_pages();
  std::vector<uint32_t> expect(pages, 0), maybe(pages, 0);  // generations; 0 = zeros
  for (const Run& r : st.runs) {
    LpnStream s{r.seed, pages};
    for (uint64_t i = 0; i < r.writes; i++) {
      const uint64_t lpn = s.Next();
      (r.done ? expect[lpn] : maybe[lpn]) = r.generation;
      if (r.done) maybe[lpn] = 0;
    }
  }
  std::vector<uint8_t> buf(kBatchPages * kPageBytes), want(kPageBytes);
  std::vector<uint64_t> lpns(kBatchPages);
  std::vector<uint8_t*> outs(kBatchPages);
  uint64_t verified = 0;
  for (uint64_t first = 0; first < pages; first += kBatchPages) {
    const size_t n = std::min<uint64_t>(kBatchPages, pages - first);
    for (size_t i = 0; i < n; i++) lpns[i] = first + i, outs[i] = &buf[i * kPageBytes];
    Check(dev.Read({lpns.data(), n}, {outs.data(), n}), "verify: read");
    for (size_t i = 0; i < n; i++) {
      const uint64_t lpn = lpns[i];
      auto holds = [&](uint32_t gen) {
        if (gen == 0) std::fill(want.begin(), want.end(), 0);
        else FillPage(lpn, gen, want.data());
        return std::memcmp(outs[i], want.data(), kPageBytes) == 0;
      };
      const bool unknown = st.baseline_unknown && expect[lpn] == 0 && maybe[lpn] == 0;
      if (holds(expect[lpn]) || (maybe[lpn] && holds(maybe[lpn]))) {
        verified += expect[lpn] || maybe[lpn];
      } else if (!unknown) {
        Die("verify: page " + std::to_string(lpn) + " should hold generation " +
            std::to_string(expect[lpn]) + " but its header says lpn " +
            std::to_string(GetU64(outs[i])) + ", generation " +
            std::to_string(GetU64(outs[i] + 8)));
      }
    }
  }
  return verified;
}

void Workload(FlashDevice& dev, const Run& run) {
  std::vector<uint8_t> buf(kBatchPages * kPageBytes);
  std::vector<uint64_t> lpns(kBatchPages);
  std::vector<const uint8_t*> pages(kBatchPages);
  LpnStream s{run.seed, dev.logical_pages()};
  const auto start = std::chrono::steady_clock::now();
  auto mib_per_s = [&](uint64_t n) {
    const std::chrono::duration<double> t = std::chrono::steady_clock::now() - start;
    return n * kPageBytes / 1048576.0 / std::max(t.count(), 1e-9);
  };
  for (uint64_t done = 0, shown = 101; done < run.writes;) {
    const size_t n = std::min<uint64_t>(kBatchPages, run.writes - done);
    for (size_t i = 0; i < n; i++) {
      lpns[i] = s.Next();
      pages[i] = &buf[i * kPageBytes];
      FillPage(lpns[i], run.generation, &buf[i * kPageBytes]);
    }
    Check(dev.Write({lpns.data(), n}, {pages.data(), n}), "write");
    done += n;
    if (100 * done / run.writes != shown) {
      shown = 100 * done / run.writes;
      std::printf("\r  writing %3" PRIu64 "%%  %8.1f MiB/s", shown, mib_per_s(done));
      std::fflush(stdout);
    }
  }
  std::printf("\n");
}

void PrintMetrics(const FlashMetrics& m) {
  auto num = [](double v, const char* fmt) {
    char s[64];
    std::snprintf(s, sizeof s, fmt, v);
    return std::string(s);
  };
  auto mib = [&](uint64_t bytes) { return num(bytes / 1048576.0, "%.1f MiB"); };
  auto u = [](uint64_t v) { return std::to_string(v); };
  const std::pair<const char*, std::string> rows[] = {
      {"capacity", mib(m.total_bytes)},
      {"used", mib(m.used_bytes)},
      {"free", mib(m.free_bytes)},
      {"utilization", num(100 * m.utilization, "%.1f %%")},
      {"physical", mib(m.physical_bytes)},
      {"blocks / free", u(m.block_count) + " / " + u(m.free_blocks)},
      {"health", num(m.health_percentage, "%.2f %%")},
      {"erase count avg", num(m.avg_erase_count, "%.2f")},
      {"erase count min / max", u(m.min_erase_count) + " / " + u(m.max_erase_count)},
      {"wear variance", num(m.wear_variance, "%.2f")},
      {"host pages written", u(m.host_pages_written)},
      {"nand pages written", u(m.nand_pages_written)},
      {"write amplification", num(m.write_amplification, "%.3f")},
      {"host pages read / trimmed", u(m.host_pages_read) + " / " + u(m.host_pages_trimmed)},
      {"gc state", m.gc_active ? "collecting" : "idle"},
      {"gc runs", u(m.gc_runs)},
      {"gc pages moved", u(m.gc_pages_moved)},
      {"blocks reclaimed", u(m.blocks_reclaimed)},
      {"blocks moved (wear lvl)", u(m.blocks_moved)},
      {"blocks retired", u(m.blocks_retired)},
      {"program / erase failures", u(m.program_failures) + " / " + u(m.erase_failures)},
      {"read errors", u(m.read_errors)},
  };
  std::printf("\nflash metrics\n");
  for (const auto& [name, value] : rows) std::printf("  %-26s %16s\n", name, value.c_str());
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    char* end = nullptr;
    const uint64_t n = std::strtoull(v, &end, 10);
    const bool number = *v != '\0' && *end == '\0';
    if (flag == "--data-dir" && *v) a.data_dir = v;
    else if (flag == "--capacity-mib" && number && n > 0) a.capacity_mib = n;
    else if (flag == "--writes" && number) a.writes = n;
    else if (flag == "--seed" && number) a.seed = n;
    else Die("bad flag '" + flag + " " + v + "'\nusage: pstorage-flash [--data-dir DIR] "
             "[--capacity-mib N] [--writes N] [--seed N]");
  }
  return a;
}

// The options of an existing device file: its label records the geometry.
FlashOptions OptionsOfFile(const std::string& path, FlashOptions o) {
  Result<FlashOptions> recorded = ReadDeviceFileOptions(path);
  Check(recorded.status(), "reading the geometry of " + path);
  o.logical_capacity_bytes = recorded->logical_capacity_bytes;
  o.pages_per_block = recorded->pages_per_block;
  o.physical_blocks = recorded->physical_blocks;
  return o;
}

void Demo(const Args& args) {
  std::error_code ec;
  std::filesystem::create_directories(args.data_dir, ec);
  if (ec) Die("cannot create " + args.data_dir + ": " + ec.message());
  const std::string image = args.data_dir + "/flash.img";
  const std::string state_path = args.data_dir + "/flash-demo.state";

  FlashOptions options;
  if (args.capacity_mib) options.logical_capacity_bytes = args.capacity_mib << 20;
  const bool existed = std::filesystem::exists(image);
  if (existed) options = OptionsOfFile(image, options);
  if (args.capacity_mib && options.logical_capacity_bytes != args.capacity_mib << 20) {
    std::printf("note: %s holds a %" PRIu64 " MiB device; using it, not --capacity-mib %" PRIu64
                "\n", image.c_str(), options.logical_capacity_bytes >> 20, args.capacity_mib);
  }
  Result<std::unique_ptr<FlashDevice>> opened = FlashDevice::OpenFile(options, image);
  Check(opened.status(), "opening " + image);
  FlashDevice& dev = **opened;
  std::printf("%s %s: %" PRIu64 " MiB, %" PRIu64 " logical pages\n",
              existed ? "recovered" : "created", image.c_str(),
              dev.logical_pages() * kPageBytes >> 20, dev.logical_pages());

  State st = LoadState(state_path);
  if (st.logical_pages != dev.logical_pages() || (!existed && !st.runs.empty())) {
    if (!st.runs.empty()) std::printf("note: %s is not about this device\n", state_path.c_str());
    st = State{dev.logical_pages(), existed, {}};
  }
  if (st.runs.empty()) {
    std::printf("no previous run recorded: nothing to verify\n");
  } else {
    std::printf("verified %" PRIu64 " pages from the previous run (generation %u)\n",
                Verify(dev, st), st.runs.back().generation);
  }

  Run run;
  run.generation = st.runs.empty() ? 1 : st.runs.back().generation + 1;
  run.seed = Mix(args.seed * 0x9e3779b97f4a7c15ull + run.generation);
  run.writes = args.writes ? args.writes : 2 * dev.logical_pages();
  st.runs.push_back(run);
  SaveState(state_path, st);  // "started" until the flush below returns
  std::printf("run %u: %" PRIu64 " random overwrites in batches of %zu\n", run.generation,
              run.writes, kBatchPages);
  Workload(dev, run);
  Check(dev.Flush(), "flush");
  st.runs.back().done = true;
  SaveState(state_path, st);
  PrintMetrics(dev.Metrics());
}

}  // namespace
}  // namespace pstorage::flash

int main(int argc, char** argv) {
  pstorage::flash::Demo(pstorage::flash::ParseArgs(argc, argv));
  return 0;
}
