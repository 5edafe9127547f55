// The result as a table for people, and --compare.
#include <cmath>
#include <cstdio>

#include "bench/tool/bench.h"

namespace pstorage::bench {
namespace {

std::string Fmt(const char* format, double v) {
  char buf[64];
  snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string Latency(uint64_t ns) {
  if (ns == 0) return "-";
  if (ns < 1000) return Fmt("%.0f ns", static_cast<double>(ns));
  if (ns < 1000000) return Fmt("%.1f us", ns / 1e3);
  if (ns < 1000000000) return Fmt("%.2f ms", ns / 1e6);
  return Fmt("%.2f s", ns / 1e9);
}

std::string Ratio(double v) { return std::isfinite(v) ? Fmt("%.2f:1", v) : "all removed"; }

std::string Percent(uint64_t part, uint64_t whole) {
  return whole ? Fmt("%.1f %%", 100.0 * part / whole) : "-";
}

std::string Row(const char* name, const OpStats& s) {
  const LatencyHistogram& h = s.latency;
  char buf[256];
  snprintf(buf, sizeof buf, "%-6s %10llu %11.1f %9.1f %10s %10s %10s %10s %10s %7llu\n", name,
           static_cast<unsigned long long>(s.ops), s.iops, s.mbps,
           Latency(h.Percentile(50)).c_str(), Latency(h.Percentile(90)).c_str(),
           Latency(h.Percentile(99)).c_str(), Latency(h.Percentile(99.9)).c_str(),
           Latency(h.max()).c_str(), static_cast<unsigned long long>(s.errors));
  return buf;
}

std::string Describe(const BenchResult& r) {
  const BenchOptions& o = r.options;
  std::string what = (o.profile.empty() ? std::string("custom") : o.profile) + " on " + o.target;
  if (o.workload == "kv") {
    return what + Fmt(": %.0f-byte values", static_cast<double>(o.value_bytes)) +
           Fmt(", %.0f keys", static_cast<double>(o.key_count)) +
           Fmt(", %.0f %% gets", o.read_percent) + Fmt(", %.0f clients", o.queue_depth);
  }
  return what + Fmt(": %.0f KiB ", o.block_size / 1024.0) + (o.random ? "random" : "sequential") +
         Fmt(", %.0f %% reads", o.read_percent) + Fmt(", queue depth %.0f", o.queue_depth) +
         Fmt(", working set %.0f MiB", o.working_set / 1048576.0) +
         (o.clones ? Fmt(" x %.0f clones", o.clones) : "") +
         Fmt("; data dedupe %.2f:1", o.dedupe_ratio) + Fmt(", compress %.2f:1", o.compress_ratio) +
         Fmt(", %.0f %% zero", o.zero_percent);
}

}  // namespace

std::string FormatTable(const BenchResult& r) {
  std::string out = "pstorage bench: " + Describe(r) + "\n";
  out += Fmt("%.1f s measured", r.elapsed_s) + ", " + r.started_at + ", " +
         Fmt("%.0f cores", r.machine.cores) + ", " + r.machine.cpu_model + "\n";
  if (!r.complete) out += "INCOMPLETE: " + r.error + " (partial figures below)\n";
  out += "\n";
  char head[256];
  snprintf(head, sizeof head, "%-6s %10s %11s %9s %10s %10s %10s %10s %10s %7s\n", "", "ops",
           r.options.workload == "kv" ? "ops/s" : "IOPS", "MB/s", "p50", "p90", "p99", "p99.9",
           "max", "errors");
  out += head;
  if (r.reads.ops || r.reads.errors)
    out += Row(r.options.workload == "kv" ? "get" : "read", r.reads);
  if (r.writes.ops || r.writes.errors) {
    out += Row(r.options.workload == "kv" ? "put" : "write", r.writes);
  }
  out += Row("total", r.total);
  out += "\n";
  const RunReduction& red = r.reduction;
  if (red.available) {
    out += "data reduction of the bytes written: " + Ratio(red.data_reduction_ratio) + " (" +
           Fmt("%.1f MiB", red.logical_bytes / 1048576.0) + "; saved by zero/pattern removal " +
           Percent(red.saved_pattern, red.logical_bytes) + ", dedupe " +
           Percent(red.saved_dedupe, red.logical_bytes) + ", compression " +
           Percent(red.saved_compression, red.logical_bytes) + ")\n";
    out += "array after the run: reduction " + Ratio(red.live_reduction_ratio) + ", dedupe " +
           Ratio(red.dedupe_ratio) + ", compression " + Ratio(red.compression_ratio) + "\n";
    out += "flash write amplification: " + Fmt("%.2f", red.waf) +
           Fmt(" (%.0f host pages, ", static_cast<double>(red.host_pages)) +
           Fmt("%.0f NAND pages)\n", static_cast<double>(red.nand_pages));
  } else {
    out += "data reduction / WAF: not reported by this target\n";
  }
  if (r.throttled > 0) {
    out += "throttled: " + std::to_string(r.throttled) +
           " replies HTTP 429 from the server's rate limit, each waited out (Retry-After) and "
           "retried; the figures are the limit's, not the array's\n";
  }
  out += "CPU: client " + Fmt("%.2f s", r.client_cpu_s);
  if (r.server_cpu_s >= 0) out += ", server " + Fmt("%.2f s", r.server_cpu_s);
  if (r.options.target == "engine") out += " (engine in-process: included in the client's)";
  out += "\n";
  return out;
}

std::string FormatCompare(const BenchResult& a, const BenchResult& b) {
  std::string out = "A: " + Describe(a) + " (" + a.started_at + ")\n";
  out += "B: " + Describe(b) + " (" + b.started_at + ")\n";
  if (!a.complete) out += "warning: A is incomplete: " + a.error + "\n";
  if (!b.complete) out += "warning: B is incomplete: " + b.error + "\n";
  out += "\n";
  char line[256];
  snprintf(line, sizeof line, "%-28s %14s %14s %10s\n", "", "A", "B", "B/A");
  out += line;
  auto row = [&](const std::string& name, double va, double vb, const std::string& sa,
                 const std::string& sb) {
    std::string ratio =
        (va > 0 && std::isfinite(va) && std::isfinite(vb)) ? Fmt("%.3f", vb / va) : "-";
    snprintf(line, sizeof line, "%-28s %14s %14s %10s\n", name.c_str(), sa.c_str(), sb.c_str(),
             ratio.c_str());
    out += line;
  };
  auto num = [&](const std::string& name, double va, double vb, const char* f) {
    row(name, va, vb, Fmt(f, va), Fmt(f, vb));
  };
  auto lat = [&](const std::string& name, uint64_t va, uint64_t vb) {
    row(name, static_cast<double>(va), static_cast<double>(vb), Latency(va), Latency(vb));
  };
  struct Part {
    const char* name;
    const OpStats* a;
    const OpStats* b;
  };
  for (Part p : {Part{"read", &a.reads, &b.reads}, Part{"write", &a.writes, &b.writes},
                 Part{"total", &a.total, &b.total}}) {
    if (p.a->ops == 0 && p.b->ops == 0) continue;
    std::string n = p.name;
    num(n + " IOPS", p.a->iops, p.b->iops, "%.1f");
    num(n + " MB/s", p.a->mbps, p.b->mbps, "%.1f");
    for (double pct : {50.0, 90.0, 99.0, 99.9}) {
      lat(n + " p" + Fmt(pct == 99.9 ? "%.1f" : "%.0f", pct), p.a->latency.Percentile(pct),
          p.b->latency.Percentile(pct));
    }
    lat(n + " max", p.a->latency.max(), p.b->latency.max());
  }
  if (a.reduction.available || b.reduction.available) {
    num("data reduction (run)", a.reduction.data_reduction_ratio, b.reduction.data_reduction_ratio,
        "%.2f");
    num("flash WAF", a.reduction.waf, b.reduction.waf, "%.2f");
  }
  num("client CPU s", a.client_cpu_s, b.client_cpu_s, "%.2f");
  if (a.throttled || b.throttled) {
    num("throttled (HTTP 429)", static_cast<double>(a.throttled), static_cast<double>(b.throttled),
        "%.0f");
  }
  if (a.server_cpu_s >= 0 || b.server_cpu_s >= 0) {
    num("server CPU s", a.server_cpu_s, b.server_cpu_s, "%.2f");
  }
  out += "\nB/A above 1 means B has more of it: better for IOPS and MB/s, worse for latency.\n";
  return out;
}

}  // namespace pstorage::bench
