// `pstorage bench --html FILE`: one self-contained HTML5 page. Everything is
// inline (CSS, SVG charts drawn here, no script, no fonts, no images) so the
// report opens offline and can be mailed or attached to a ticket as is.
// Every number goes through Num(), which prints 0 for NaN/inf, so an empty
// or partial result still yields a valid document.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/tool/bench.h"

namespace pstorage::bench {
namespace {

std::string Escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const char* entity = c == '&'    ? "&amp;"
                         : c == '<'  ? "&lt;"
                         : c == '>'  ? "&gt;"
                         : c == '"'  ? "&quot;"
                         : c == '\'' ? "&#39;"
                                     : nullptr;
    if (entity) {
      out += entity;
    } else {
      out += c;
    }
  }
  return out;
}

std::string Num(double v, int decimals = 1) {
  if (!std::isfinite(v)) v = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Latency in the unit that keeps 1-3 integer digits.
std::string FormatNs(double ns) {
  if (!std::isfinite(ns) || ns < 0) ns = 0;
  if (ns < 1e3) return Num(ns, 0) + " ns";
  if (ns < 1e6) return Num(ns / 1e3, ns < 1e4 ? 2 : 1) + " µs";
  if (ns < 1e9) return Num(ns / 1e6, ns < 1e7 ? 2 : 1) + " ms";
  return Num(ns / 1e9, 2) + " s";
}

std::string FormatBytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (!std::isfinite(bytes) || bytes < 0) bytes = 0;
  int unit = 0;
  while (bytes >= 1024 && unit < 5) bytes /= 1024, ++unit;
  bool whole = unit == 0 || bytes >= 100 || bytes == std::floor(bytes);
  return Num(bytes, whole ? 0 : 1) + " " + kUnits[unit];
}

std::string FormatCount(double v) {
  if (!std::isfinite(v)) v = 0;
  if (v >= 1e9) return Num(v / 1e9, 1) + "G";
  if (v >= 1e6) return Num(v / 1e6, 1) + "M";
  if (v >= 1e4) return Num(v / 1e3, 0) + "k";
  return Num(v, v == std::floor(v) ? 0 : 1);
}

std::string FormatMbps(double v) { return Num(v, v < 10 ? 2 : 1); }

// Axis labels: "2 ms", not "2.00 ms".
std::string StripZeros(std::string s) {
  size_t end = s.find(' ');
  std::string unit = end == std::string::npos ? "" : s.substr(end);
  s = s.substr(0, end);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s == "0" ? s : s + unit;
}
std::string NsTick(double v) { return StripZeros(FormatNs(v)); }
std::string MbpsTick(double v) { return StripZeros(FormatMbps(v)); }

std::string Pct(double part, double whole) { return Num(whole > 0 ? 100 * part / whole : 0, 1); }

// A 1, 2 or 5 times a power of ten close to span / ticks; 1 for degenerate input.
double NiceStep(double span, int ticks) {
  double raw = span / ticks;
  if (!std::isfinite(raw) || raw <= 0) return 1;
  double mag = std::pow(10, std::floor(std::log10(raw)));
  double norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

// Chart frame shared by all plots: pixel sizes and margins.
constexpr int kW = 760, kH = 280, kLeft = 76, kRight = 76, kTop = 34, kBottom = 42;
constexpr int kPlotW = kW - kLeft - kRight, kPlotH = kH - kTop - kBottom;

std::string SvgOpen(const std::string& title, int height = kH) {
  // No xmlns: the HTML parser places inline <svg> in the SVG namespace itself.
  return "<svg width=\"" + std::to_string(kW) + "\" height=\"" + std::to_string(height) +
         "\" viewBox=\"0 0 " + std::to_string(kW) + " " + std::to_string(height) +
         "\" role=\"img\"><title>" + Escape(title) + "</title>\n";
}

std::string Text(double x, double y, const std::string& s, const char* anchor = "middle",
                 const char* cls = "") {
  return "<text x=\"" + Num(x) + "\" y=\"" + Num(y) + "\" text-anchor=\"" + anchor + "\" class=\"" +
         cls + "\">" + Escape(s) + "</text>\n";
}

std::string Line(double x1, double y1, double x2, double y2, const std::string& style) {
  return "<line x1=\"" + Num(x1) + "\" y1=\"" + Num(y1) + "\" x2=\"" + Num(x2) + "\" y2=\"" +
         Num(y2) + "\" style=\"" + style + "\"/>\n";
}

std::string Frame(const std::string& x_label) {
  return "<rect x=\"" + std::to_string(kLeft) + "\" y=\"" + std::to_string(kTop) + "\" width=\"" +
         std::to_string(kPlotW) + "\" height=\"" + std::to_string(kPlotH) +
         "\" fill=\"none\" stroke=\"#555\"/>\n" + Text(kLeft + kPlotW / 2.0, kH - 6, x_label);
}

std::string NoSamples() { return Text(kLeft + kPlotW / 2.0, kTop + kPlotH / 2.0, "no samples"); }

struct Series {
  std::string name;
  std::string color;
  std::vector<double> y;
  bool right_axis = false;
};
using Formatter = std::string (*)(double);

// Y ticks for [0, max]: returns the axis top (a multiple of the step).
double AxisTop(double max, double* step) {
  max = std::min(max, 1e300);  // keeps top finite, so the tick loops end
  *step = NiceStep(max > 0 ? max : 1, 5);
  return max > 0 ? std::max(*step, std::ceil(max / *step) * *step) : 5 * *step;
}

// Lines over time; left-axis series set the grid, right-axis series get
// their own scale labelled on the right.
std::string SvgLineChart(const std::string& title, const std::vector<double>& x,
                         const std::vector<Series>& series, Formatter left_fmt,
                         Formatter right_fmt) {
  std::string svg = SvgOpen(title) + Text(kW / 2.0, 18, title, "middle", "title");
  double x_max = 0, max[2] = {0, 0};
  for (double v : x) x_max = std::max(x_max, std::isfinite(v) ? v : 0);
  for (const Series& s : series)
    for (double v : s.y) max[s.right_axis] = std::max(max[s.right_axis], std::isfinite(v) ? v : 0);
  double x_step, step[2], top[2];
  double x_top = AxisTop(x_max, &x_step);
  for (int a = 0; a < 2; ++a) top[a] = AxisTop(max[a], &step[a]);
  auto px = [&](double v) { return kLeft + kPlotW * v / x_top; };
  auto py = [&](double v, int a) { return kTop + kPlotH * (1 - v / top[a]); };

  for (double v = 0; v <= x_top + x_step / 2; v += x_step) {
    svg += Line(px(v), kTop + kPlotH, px(v), kTop + kPlotH + 4, "stroke:#555");
    svg += Text(px(v), kTop + kPlotH + 16, Num(v, x_step < 1 ? 1 : 0));
  }
  bool has_right = false;
  for (const Series& s : series) has_right |= s.right_axis;
  for (int a = 0; a < (has_right ? 2 : 1); ++a) {
    for (double v = 0; v <= top[a] + step[a] / 2; v += step[a]) {
      if (a == 0 && v > 0) svg += Line(kLeft, py(v, 0), kLeft + kPlotW, py(v, 0), "stroke:#e4e4e4");
      svg += a == 0 ? Text(kLeft - 6, py(v, 0) + 4, left_fmt(v), "end")
                    : Text(kLeft + kPlotW + 6, py(v, 1) + 4, right_fmt(v), "start");
    }
  }
  svg += Frame("time (s)");
  if (x.empty()) return svg + NoSamples() + "</svg>\n";

  double legend_x = kLeft;
  for (const Series& s : series) {
    int a = s.right_axis;
    Formatter fmt = a ? right_fmt : left_fmt;
    std::string points, dots;
    size_t n = std::min(x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i) {
      double y = std::isfinite(s.y[i]) ? s.y[i] : 0;
      points += Num(px(x[i])) + "," + Num(py(y, a)) + " ";
      // Hover targets with an SVG tooltip; skipped on long runs to keep the page small.
      if (n <= 400)
        dots += "<circle cx=\"" + Num(px(x[i])) + "\" cy=\"" + Num(py(y, a)) +
                "\" r=\"2.5\" fill=\"" + s.color + "\"><title>" + Escape(s.name) + " at " +
                Num(x[i], 1) + " s: " + Escape(fmt(y)) + "</title></circle>";
    }
    svg += "<polyline fill=\"none\" stroke-width=\"1.8\" stroke=\"" + s.color + "\" points=\"" +
           points + "\"/>\n" + dots + "\n";
    std::string label = s.name + (has_right ? (a ? " (right)" : " (left)") : "");
    svg += "<rect x=\"" + Num(legend_x) + "\" y=\"" + std::to_string(kTop - 12) +
           "\" width=\"10\" height=\"10\" fill=\"" + s.color + "\"/>\n";
    svg += Text(legend_x + 14, kTop - 3, label, "start");
    legend_x += 24 + 7.0 * label.size();
  }
  return svg + "</svg>\n";
}

// Latency distribution on a log x axis. The histogram's thousands of fine
// buckets are summed into kBins equal-width bins of log10(latency).
std::string SvgHistogram(const LatencyHistogram& h) {
  const std::string title = "Latency distribution (all operations)";
  std::string svg = SvgOpen(title) + Text(kW / 2.0, 18, title, "middle", "title");
  auto buckets = h.Buckets();
  if (buckets.empty() || h.count() == 0) {
    return svg + Frame("latency (log scale)") + NoSamples() + "</svg>\n";
  }
  double lo = std::log10(std::max<double>(1, buckets.front().first / 1.2));
  double hi = std::log10(std::max<double>(2, buckets.back().first * 1.05));
  if (hi - lo < 1) lo = std::max(0.0, hi - 1);
  hi = std::max(hi, lo + 1);
  constexpr int kBins = 80;
  std::vector<uint64_t> bins(kBins, 0);
  for (auto [value, count] : buckets) {
    double f = (std::log10(std::max<double>(1, value)) - lo) / (hi - lo);
    bins[std::clamp(static_cast<int>(f * kBins), 0, kBins - 1)] += count;
  }
  double y_step, y_top = AxisTop(*std::max_element(bins.begin(), bins.end()), &y_step);
  auto px = [&](double log_v) { return kLeft + kPlotW * (log_v - lo) / (hi - lo); };
  auto py = [&](double c) { return kTop + kPlotH * (1 - c / y_top); };

  for (double v = y_step; v <= y_top + y_step / 2; v += y_step)
    svg += Line(kLeft, py(v), kLeft + kPlotW, py(v), "stroke:#e4e4e4");
  for (double v = 0; v <= y_top + y_step / 2; v += y_step)
    svg += Text(kLeft - 6, py(v) + 4, FormatCount(v), "end");
  // Decades, plus 2x and 5x when the range is narrow.
  const bool fine = hi - lo < 3;
  for (int d = static_cast<int>(std::floor(lo)); d <= static_cast<int>(std::ceil(hi)); ++d) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m != 1 && !fine) continue;
      double l = d + std::log10(m);
      if (l < lo || l > hi) continue;
      svg += Line(px(l), kTop + kPlotH, px(l), kTop + kPlotH + 4, "stroke:#555");
      svg += Text(px(l), kTop + kPlotH + 16, NsTick(std::pow(10, l)));
    }
  }
  const double bin_w = static_cast<double>(kPlotW) / kBins;
  for (int i = 0; i < kBins; ++i) {
    if (bins[i] == 0) continue;
    double from = std::pow(10, lo + (hi - lo) * i / kBins);
    double to = std::pow(10, lo + (hi - lo) * (i + 1) / kBins);
    svg += "<rect x=\"" + Num(kLeft + i * bin_w) + "\" y=\"" + Num(py(bins[i])) + "\" width=\"" +
           Num(std::max(1.0, bin_w - 1)) + "\" height=\"" + Num(kTop + kPlotH - py(bins[i])) +
           "\" fill=\"#4a7fc1\"><title>" + Escape(FormatNs(from)) + " – " + Escape(FormatNs(to)) +
           ": " + std::to_string(bins[i]) + " ops</title></rect>\n";
  }
  struct Mark {
    const char* name;
    double p;
    const char* color;
  };
  const Mark marks[] = {{"p50", 50, "#2a9d4b"}, {"p99", 99, "#e08a00"}, {"p99.9", 99.9, "#c62828"}};
  int row = 0;
  for (const Mark& m : marks) {
    double x = px(std::log10(std::max<double>(1, h.Percentile(m.p))));
    double y = kTop + 12 + 13 * row++;
    svg += Line(x, kTop, x, kTop + kPlotH, std::string("stroke-dasharray:4 3;stroke:") + m.color);
    std::string label = std::string(m.name) + " " + FormatNs(h.Percentile(m.p));
    bool left = x > kLeft + kPlotW - 110;
    svg += Text(left ? x - 4 : x + 4, y, label, left ? "end" : "start", "mark");
  }
  return svg + Frame("latency (log scale)") + "</svg>\n";
}

// Where the run's logical bytes went: one horizontal stacked bar.
std::string SvgReduction(const RunReduction& r) {
  constexpr int kHeight = 148, kBarX = 20, kBarW = kW - 40;
  const std::string title = "Reduction of the bytes written during the run";
  std::string svg = SvgOpen(title, kHeight) + Text(kW / 2.0, 18, title, "middle", "title");
  double logical = static_cast<double>(r.logical_bytes);
  double saved = static_cast<double>(r.saved_pattern) + r.saved_dedupe + r.saved_compression;
  struct Part {
    const char* name;
    double bytes;
    const char* color;
  };
  const Part parts[] = {{"zero blocks", static_cast<double>(r.saved_pattern), "#9e9e9e"},
                        {"dedupe", static_cast<double>(r.saved_dedupe), "#4a7fc1"},
                        {"compression", static_cast<double>(r.saved_compression), "#2a9d4b"},
                        {"stored", std::max(0.0, logical - saved), "#e08a00"}};
  double whole = std::max(logical, saved);
  if (whole <= 0) return svg + Text(kW / 2.0, 60, "no bytes written") + "</svg>\n";
  double x = kBarX;
  int i = 0;
  for (const Part& p : parts) {
    double legend_x = kBarX + (i % 2) * (kBarW / 2.0), legend_y = 86 + (i / 2) * 18;  // 2 x 2
    i++;
    double w = kBarW * p.bytes / whole;
    std::string desc =
        std::string(p.name) + ": " + FormatBytes(p.bytes) + " (" + Pct(p.bytes, whole) + " %)";
    if (w > 0)
      svg += "<rect x=\"" + Num(x) + "\" y=\"32\" width=\"" + Num(w) + "\" height=\"36\" fill=\"" +
             p.color + "\"><title>" + Escape(desc) + "</title></rect>\n";
    x += w;
    svg += "<rect x=\"" + Num(legend_x) + "\" y=\"" + Num(legend_y) +
           "\" width=\"10\" height=\"10\" fill=\"" + p.color + "\"/>\n" +
           Text(legend_x + 14, legend_y + 9, desc, "start");
  }
  svg += Text(kBarX, 138, "logical bytes written: " + FormatBytes(logical), "start");
  return svg + "</svg>\n";
}

std::string Row(const std::vector<std::string>& cells, const char* tag = "td") {
  std::string row = "<tr>";
  for (const std::string& c : cells) row += std::string("<") + tag + ">" + c + "</" + tag + ">";
  return row + "</tr>\n";
}

std::string StatsRow(const char* name, const OpStats& s) {
  const LatencyHistogram& h = s.latency;
  return Row({name, std::to_string(s.ops), FormatCount(s.iops), FormatMbps(s.mbps),
              FormatNs(h.Percentile(50)), FormatNs(h.Percentile(90)), FormatNs(h.Percentile(99)),
              FormatNs(h.Percentile(99.9)), FormatNs(h.max()), std::to_string(s.errors)});
}

std::string OptionsTable(const BenchOptions& o) {
  auto kv = [](const char* k, const std::string& v) { return Row({k, Escape(v)}); };
  std::string t = "<table class=\"kv\">\n";
  t += kv("target", o.target);
  if (!o.url.empty()) t += kv("url", o.url);
  if (!o.nbd_url.empty()) t += kv("nbd url", o.nbd_url);
  t += kv("profile", o.profile.empty() ? "(none)" : o.profile);
  if (!o.volume.empty()) t += kv("volume", o.volume);
  t += kv("workload", o.workload);
  if (o.workload == "kv") {
    t += kv("value size", FormatBytes(o.value_bytes)) + kv("keys", std::to_string(o.key_count));
  } else {
    t += kv("block size", FormatBytes(o.block_size));
  }
  t += kv("access", o.random ? "random" : "sequential");
  t += kv("read / write", Num(o.read_percent, 0) + " % / " + Num(100 - o.read_percent, 0) + " %");
  t += kv("queue depth", std::to_string(o.queue_depth));
  t += kv("working set", FormatBytes(o.working_set));
  t += kv("duration",
          Num(o.duration_s, 1) + " s" + (o.total_bytes ? " or " + FormatBytes(o.total_bytes) : ""));
  t += kv("prefill", o.prefill ? "yes" : "no");
  if (o.clones > 0) t += kv("clones", std::to_string(o.clones));
  t += kv("data: dedupe / compress / zero", Num(o.dedupe_ratio, 2) + " : 1 / " +
                                                Num(o.compress_ratio, 2) + " : 1 / " +
                                                Num(o.zero_percent, 1) + " %");
  t += kv("seed", std::to_string(o.seed));
  t += kv("sample interval", Num(o.interval_s, 2) + " s");
  return t + "</table>\n";
}

std::string ReductionSection(const RunReduction& r) {
  std::string s = "<h2>Data reduction and flash wear</h2>\n";
  if (!r.available) return s + "<p class=\"muted\">the target reports no metrics</p>\n";
  s += SvgReduction(r) + "<table class=\"kv\">\n";
  s += Row({"data reduction ratio (this run)", Num(r.data_reduction_ratio, 2) + " : 1"});
  s += Row({"live reduction ratio", Num(r.live_reduction_ratio, 2) + " : 1"});
  s += Row({"dedupe ratio", Num(r.dedupe_ratio, 2) + " : 1"});
  s += Row({"compression ratio", Num(r.compression_ratio, 2) + " : 1"});
  s += Row({"write amplification (NAND / host pages)", Num(r.waf, 2) + " (" +
                                                           std::to_string(r.nand_pages) + " / " +
                                                           std::to_string(r.host_pages) + ")"});
  return s + "</table>\n";
}

constexpr const char* kCss =
    R"(body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:820px}
h1{margin:0 0 4px}h2{margin:28px 0 8px;border-bottom:1px solid #ddd}
.muted{color:#666}
.banner{background:#c62828;color:#fff;padding:10px 14px;border-radius:4px;margin:12px 0}
table{border-collapse:collapse}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child,.kv td{text-align:left}th{background:#f4f4f4}
svg{display:block;margin:10px 0;font:11px system-ui,sans-serif}
svg .title{font-size:13px;font-weight:600}
svg .mark{font-weight:600}
)";

}  // namespace

std::string ToHtml(const BenchResult& result) {
  const BenchOptions& o = result.options;
  std::string name = o.profile.empty() ? o.target : o.profile + " on " + o.target;
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<title>pstorage bench: " + Escape(name) + "</title>\n<style>" + kCss + "</style>\n";
  h += "</head>\n<body>\n<h1>pstorage bench</h1>\n<p class=\"muted\">" + Escape(name) +
       " &middot; started " + Escape(result.started_at) + " &middot; ran " +
       Num(result.elapsed_s, 1) + " s<br>" + std::to_string(result.machine.cores) + " cores, " +
       Escape(result.machine.cpu_model) + ", kernel " + Escape(result.machine.kernel) +
       " &middot; tool " + Escape(result.tool_version) + "</p>\n";
  if (!result.complete) {
    h += "<div class=\"banner\"><b>Incomplete run:</b> the numbers below are partial. " +
         Escape(result.error) + "</div>\n";
  }
  if (result.throttled > 0) {
    h += "<div class=\"banner\"><b>Throttled:</b> the server answered " +
         std::to_string(result.throttled) +
         " requests with HTTP 429 (its rate limit); each was waited out and retried, so the "
         "figures below are the rate limit's, not the array's.</div>\n";
  }

  h += "<h2>Summary</h2>\n<table>\n";
  h += Row({"", "ops", "IOPS", "MB/s", "p50", "p90", "p99", "p99.9", "max", "errors"}, "th");
  h += StatsRow("reads", result.reads) + StatsRow("writes", result.writes) +
       StatsRow("total", result.total) + "</table>\n";
  h += "<p>CPU: client " + Num(result.client_cpu_s, 2) + " s";
  if (result.server_cpu_s >= 0) h += ", server " + Num(result.server_cpu_s, 2) + " s";
  h += "</p>\n<h2>Workload</h2>\n" + OptionsTable(o);

  std::vector<double> t;
  Series iops{"IOPS", "#4a7fc1", {}}, mbps{"MB/s", "#e08a00", {}, true};
  Series p50{"p50", "#2a9d4b", {}}, p99{"p99", "#c62828", {}};
  for (const IntervalSample& s : result.timeline) {
    t.push_back(s.t_s);
    iops.y.push_back(s.iops);
    mbps.y.push_back(s.mbps);
    p50.y.push_back(static_cast<double>(s.p50_ns));
    p99.y.push_back(static_cast<double>(s.p99_ns));
  }
  h += "<h2>Over time</h2>\n";
  h += SvgLineChart("Throughput", t, {iops, mbps}, FormatCount, MbpsTick);
  h += SvgLineChart("Latency per interval", t, {p50, p99}, NsTick, NsTick);
  h += "<h2>Latency distribution</h2>\n" + SvgHistogram(result.total.latency);
  h += ReductionSection(result.reduction);
  return h + "</body>\n</html>\n";
}

}  // namespace pstorage::bench
