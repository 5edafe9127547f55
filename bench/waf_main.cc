// pstorage-waf: write amplification (WAF) of uniform random overwrites on the
// memory medium, next to Desnoyers' analytic model of greedy GC.
//
// For each fill f of the logical capacity (50, 70, 80, 90 %),
// over-provisioning op (0.07, 0.10, 0.28) and GC policy: write pages
// [0, f * logical) once in order, overwrite them uniformly at random
// (warm-up, --warmup times the filled pages), snapshot the metrics,
// overwrite again (--measure times), and report
//   WAF = delta nand_pages_written / delta host_pages_written.
// Background GC is off (background_gc_idle_ms = 0), so every GC step is a
// foreground one, counted in the window it serves.
//
// Model: P. Desnoyers, "Analytic Modeling of SSD Write Performance",
// SYSTOR 2012 (also ACM TOS 10(2), 2014). Greedy GC, uniform random writes:
//   WA = alpha / (alpha + W0(-alpha * exp(-alpha)))
// with alpha = physical pages / live pages = (1 + op) / f and W0 the principal
// branch of Lambert W.
//
// Usage: pstorage-waf [--capacity-mib N] [--pages-per-block N] [--warmup X]
//                     [--measure X] [--markdown]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "flash_sim/flash.h"

namespace pstorage::flash {
namespace {

constexpr size_t kBatchPages = 256;
constexpr uint64_t kSeed = 1;

struct Args {
  uint64_t capacity_mib = 512;
  uint32_t pages_per_block = 64;  // small blocks: the GC reserve is a negligible part of the spare
  double warmup = 4;              // warm-up overwrites, in multiples of the filled pages
  double measure = 4;             // measured overwrites, same unit
  bool markdown = false;
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "pstorage-waf: %s\n", message.c_str());
  std::exit(1);
}

// Principal branch of Lambert W on [-1/e, inf), by Halley iteration.
double LambertW0(double x) {
  const double branch = 1 + std::exp(1.0) * x;  // 0 at the branch point x = -1/e
  if (branch <= 0) return -1;
  // Near the branch point W ~ -1 + p - p^2/3, p = sqrt(2 (1 + e x)).
  const double p = std::sqrt(2 * branch);
  double w = x < -0.25 ? -1 + p - p * p / 3 : std::log1p(x);
  for (int i = 0; i < 100; i++) {
    const double e = std::exp(w);
    const double f = w * e - x;
    const double dw = f / (e * (w + 1) - (w + 2) * f / (2 * w + 2));
    w -= dw;
    if (std::fabs(dw) <= 1e-15 * (1 + std::fabs(w))) break;
  }
  return w;
}

// Desnoyers' write amplification of greedy GC; alpha > 1.
double ModelWaf(double alpha) { return alpha / (alpha + LambertW0(-alpha * std::exp(-alpha))); }

// The geometry FlashDevice::Open wants for `o`.
MediumGeometry GeometryOf(const FlashOptions& o) {
  Result<MediumGeometry> g = GeometryFor(o);
  if (!g.ok()) {
    std::fprintf(stderr, "%s\n", g.status().ToString().c_str());
    std::exit(1);
  }
  return *g;
}

class Writer {
 public:
  Writer() : data_(kBatchPages * kPageBytes, 0x5a) {
    for (size_t i = 0; i < kBatchPages; i++) pages_[i] = &data_[i * kPageBytes];
  }
  // Writes `count` pages: in order from 0, or uniformly at random below `range`.
  void Write(FlashDevice& dev, uint64_t range, uint64_t count, bool sequential) {
    for (uint64_t done = 0; done < count;) {
      const size_t n = std::min<uint64_t>(kBatchPages, count - done);
      for (size_t i = 0; i < n; i++) lpns_[i] = sequential ? done + i : Next() % range;
      const Status s = dev.Write({lpns_, n}, {pages_, n});
      if (!s.ok()) Die("write: " + s.ToString());
      done += n;
    }
  }

 private:
  uint64_t Next() {  // splitmix64
    uint64_t x = state_ += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  uint64_t state_ = kSeed;
  std::vector<uint8_t> data_;
  const uint8_t* pages_[kBatchPages];
  uint64_t lpns_[kBatchPages];
};

struct Row {
  int fill_percent;
  double op;
  GcPolicy policy;
  double waf;
  double model;
};

Row Measure(const Args& args, int fill_percent, double op, GcPolicy policy, Writer& writer) {
  FlashOptions o;
  o.logical_capacity_bytes = args.capacity_mib << 20;
  o.pages_per_block = args.pages_per_block;
  o.over_provisioning = op;
  o.gc_policy = policy;
  o.background_gc_idle_ms = 0;
  std::unique_ptr<Medium> medium = NewMemoryMedium(GeometryOf(o));
  Result<std::unique_ptr<FlashDevice>> opened = FlashDevice::Open(o, medium.get());
  if (!opened.ok()) Die("open: " + opened.status().ToString());
  FlashDevice& dev = **opened;
  const uint64_t live = dev.logical_pages() * fill_percent / 100;
  writer.Write(dev, live, live, true);
  writer.Write(dev, live, uint64_t(args.warmup * live), false);
  const FlashMetrics before = dev.Metrics();
  writer.Write(dev, live, uint64_t(args.measure * live), false);
  const FlashMetrics after = dev.Metrics();
  const double host = double(after.host_pages_written - before.host_pages_written);
  const double nand = double(after.nand_pages_written - before.nand_pages_written);
  return Row{fill_percent, op, policy, nand / host, ModelWaf((1 + op) * 100 / fill_percent)};
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    const std::string flag = argv[i];
    if (flag == "--markdown") {
      a.markdown = true;
      continue;
    }
    const char* v = i + 1 < argc ? argv[++i] : "";
    char* end = nullptr;
    const double x = std::strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(x > 0)) Die("bad value for " + flag + ": '" + v + "'");
    if (flag == "--capacity-mib") a.capacity_mib = uint64_t(x);
    else if (flag == "--pages-per-block") a.pages_per_block = uint32_t(x);
    else if (flag == "--warmup") a.warmup = x;
    else if (flag == "--measure") a.measure = x;
    else Die("unknown flag " + flag + "\nusage: pstorage-waf [--capacity-mib N] "
             "[--pages-per-block N] [--warmup X] [--measure X] [--markdown]");
  }
  return a;
}

}  // namespace
}  // namespace pstorage::flash

int main(int argc, char** argv) {
  using namespace pstorage::flash;
  const Args args = ParseArgs(argc, argv);
  std::fprintf(stderr, "model check: WA(alpha=1.07) = %.2f, WA(1.125) = %.2f, WA(1.28) = %.2f\n",
               ModelWaf(1.07), ModelWaf(1.125), ModelWaf(1.28));
  std::fprintf(stderr, "capacity %lu MiB, %u pages per block, warm-up %gx, measure %gx, seed %lu\n",
               static_cast<unsigned long>(args.capacity_mib), args.pages_per_block, args.warmup,
               args.measure, static_cast<unsigned long>(kSeed));
  Writer writer;
  std::vector<Row> rows;
  const std::vector<int> fills = {50, 70, 80, 90};
  const std::vector<double> ops = {0.07, 0.10, 0.28};
  const size_t runs = fills.size() * ops.size() * 2;
  for (int fill : fills) {
    for (double op : ops) {
      for (GcPolicy policy : {GcPolicy::kGreedy, GcPolicy::kCostBenefit}) {
        const auto start = std::chrono::steady_clock::now();
        rows.push_back(Measure(args, fill, op, policy, writer));
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        std::fprintf(stderr, "[%2zu/%zu] fill %d%% op %.2f %-12s WAF %.3f (model %.3f) %.1f s\n",
                     rows.size(), runs, fill, op,
                     policy == GcPolicy::kGreedy ? "greedy" : "cost-benefit", rows.back().waf,
                     rows.back().model, took.count());
      }
    }
  }
  // Markdown puts the ratio first, then the absolute figures it comes from.
  if (args.markdown) {
    std::printf("| fill | OP | policy | measured/model | measured WAF | model WAF (greedy) |\n"
                "|---:|---:|---|---:|---:|---:|\n");
  } else {
    std::printf("%5s %5s %-13s %13s %19s %15s\n", "fill", "OP", "policy", "measured WAF",
                "model WAF (greedy)", "measured/model");
  }
  for (const Row& r : rows) {
    const char* policy = r.policy == GcPolicy::kGreedy ? "greedy" : "cost-benefit";
    if (args.markdown) {
      std::printf("| %d%% | %.2f | %s | %.3f | %.3f | %.3f |\n", r.fill_percent, r.op, policy,
                  r.waf / r.model, r.waf, r.model);
    } else {
      std::printf("%4d%% %5.2f %-13s %13.3f %19.3f %15.3f\n", r.fill_percent, r.op, policy,
                  r.waf, r.model, r.waf / r.model);
    }
  }
  return 0;
}
