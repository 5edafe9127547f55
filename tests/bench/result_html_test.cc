// ToHtml: one self-contained page; no network references, every result
// string escaped, finite numbers only, one SVG per chart.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <regex>
#include <string>

#include "bench/tool/bench.h"

namespace pstorage::bench {
namespace {

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size()))
    ++n;
  return n;
}

// A 30 s mixed run against a REST target, with metrics.
BenchResult SampleResult() {
  BenchResult r;
  r.tool_version = "0.9.0";
  r.started_at = "2026-11-26T06:00:00Z";
  r.machine = {2, "Example CPU @ 3.0GHz", "6.1.0-13-amd64"};
  r.options.target = "rest";
  r.options.url = "http://127.0.0.1:8080";
  r.options.profile = "oltp-4k";
  r.options.read_percent = 70;
  r.options.queue_depth = 8;
  r.options.duration_s = 30;
  r.options.dedupe_ratio = 2;
  r.options.compress_ratio = 1.5;
  r.options.zero_percent = 10;
  r.elapsed_s = 30;
  uint64_t x = 12345;  // fixed LCG seed: the histogram is the same every run
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t ns = 80'000 + (x >> 40) % 120'000;  // 80..200 µs
    if (i % 100 == 0) ns *= 20;                  // a slow tail of a few ms
    (i % 10 < 7 ? r.reads : r.writes).latency.Record(ns);
  }
  r.total.latency.Merge(r.reads.latency);
  r.total.latency.Merge(r.writes.latency);
  r.reads.ops = 14000, r.writes.ops = 6000, r.total.ops = 20000;
  r.reads.iops = 466.7, r.writes.iops = 200, r.total.iops = 666.7;
  r.reads.mbps = 1.91, r.writes.mbps = 0.82, r.total.mbps = 2.73;
  r.writes.errors = r.total.errors = 2;
  for (int i = 1; i <= 30; ++i) {
    r.timeline.push_back({static_cast<double>(i), 600.0 + 10 * (i % 7), 2.5 + 0.04 * (i % 7),
                          120'000u + 1000u * (i % 5), 2'500'000u + 50'000u * (i % 3)});
  }
  r.reduction.available = true;
  r.reduction.logical_bytes = 6000 * kBlock;
  r.reduction.saved_pattern = 600 * kBlock;
  r.reduction.saved_dedupe = 2700 * kBlock;
  r.reduction.saved_compression = 900 * kBlock;
  r.reduction.data_reduction_ratio = 6000.0 / 1800;
  r.reduction.live_reduction_ratio = 3.1;
  r.reduction.dedupe_ratio = 2;
  r.reduction.compression_ratio = 1.5;
  r.reduction.host_pages = 1800;
  r.reduction.nand_pages = 2100;
  r.reduction.waf = 2100.0 / 1800;
  r.client_cpu_s = 12.5;
  r.server_cpu_s = 20.25;
  return r;
}

void ExpectNoNanOrInf(const std::string& html) {
  std::smatch m;
  EXPECT_FALSE(std::regex_search(html, m, std::regex(R"(\b-?(nan|inf)\b)", std::regex::icase)))
      << "found '" << m.str() << "'";
}

void ExpectBalancedSvg(const std::string& html) {
  // Every <svg is closed before the next one opens.
  size_t depth = 0, at = 0;
  while ((at = html.find("<", at)) != std::string::npos) {
    if (html.compare(at, 4, "<svg") == 0) {
      EXPECT_EQ(++depth, 1u);
    }
    if (html.compare(at, 6, "</svg>") == 0) {
      EXPECT_EQ(depth--, 1u);
    }
    ++at;
  }
  EXPECT_EQ(depth, 0u);
}

TEST(ResultHtml, IsOneHtml5Document) {
  std::string html = ToHtml(SampleResult());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(Count(html, "<html"), 1u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
}

TEST(ResultHtml, ReferencesNothingOnTheNetwork) {
  BenchResult r = SampleResult();
  std::string html = ToHtml(r);
  for (const char* bad : {"src=\"http", "href=\"http", "src='http", "href='http", "@import",
                          "url(http", "url(", "<script", "<link", "<img"})
    EXPECT_EQ(html.find(bad), std::string::npos) << bad;
  // The only "http" is the target url the result carries, as text.
  EXPECT_EQ(Count(html, "http"), 1u);
  EXPECT_NE(html.find("<td>http://127.0.0.1:8080</td>"), std::string::npos);
}

TEST(ResultHtml, DrawsFourChartsWithReductionMetrics) {
  std::string html = ToHtml(SampleResult());
  EXPECT_EQ(Count(html, "<svg"), 4u);
  EXPECT_EQ(Count(html, "</svg>"), 4u);
  EXPECT_NE(html.find("dedupe: 10.5 MiB (45.0 %)"), std::string::npos);
  EXPECT_NE(html.find("3.33 : 1"), std::string::npos);
  EXPECT_EQ(html.find("the target reports no metrics"), std::string::npos);
}

TEST(ResultHtml, DrawsThreeChartsWithoutMetrics) {
  BenchResult r = SampleResult();
  r.reduction = RunReduction{};
  std::string html = ToHtml(r);
  EXPECT_EQ(Count(html, "<svg"), 3u);
  EXPECT_NE(html.find("the target reports no metrics"), std::string::npos);
}

TEST(ResultHtml, MarksPercentilesOnTheHistogram) {
  std::string html = ToHtml(SampleResult());
  for (const char* mark : {">p50 ", ">p99 ", ">p99.9 "})
    EXPECT_NE(html.find(mark), std::string::npos) << mark;
  EXPECT_NE(html.find(" µs"), std::string::npos);
  EXPECT_NE(html.find(" ms"), std::string::npos);
}

TEST(ResultHtml, EscapesEveryResultString) {
  BenchResult r = SampleResult();
  r.complete = false;
  r.error = "<script>alert(1)</script> & \"quoted\"";
  r.machine.cpu_model = "<b>cpu</b>";
  r.options.url = "http://x/?a=1&b=<2>";
  r.options.profile = "p'<q>";
  std::string html = ToHtml(r);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<b>cpu"), std::string::npos);
  EXPECT_EQ(html.find("<q>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;"),
            std::string::npos);
  EXPECT_NE(html.find("http://x/?a=1&amp;b=&lt;2&gt;"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;cpu&lt;/b&gt;"), std::string::npos);
}

TEST(ResultHtml, IncompleteRunShowsABanner) {
  BenchResult r = SampleResult();
  EXPECT_EQ(ToHtml(r).find("class=\"banner\""), std::string::npos);
  r.complete = false;
  r.error = "connection reset";
  std::string html = ToHtml(r);
  EXPECT_NE(html.find("class=\"banner\""), std::string::npos);
  EXPECT_NE(html.find("connection reset"), std::string::npos);
}

TEST(ResultHtml, ServerCpuOnlyWhenKnown) {
  BenchResult r = SampleResult();
  EXPECT_NE(ToHtml(r).find("server 20.25 s"), std::string::npos);
  r.server_cpu_s = -1;
  EXPECT_EQ(ToHtml(r).find("server "), std::string::npos);
}

TEST(ResultHtml, EmptyResultHasOnlyFiniteNumbers) {
  BenchResult r;
  r.reduction.available = true;  // available, but nothing written
  std::string html = ToHtml(r);
  ExpectNoNanOrInf(html);
  ExpectBalancedSvg(html);
  EXPECT_EQ(Count(html, "<svg"), 4u);
  EXPECT_NE(html.find("no samples"), std::string::npos);
  EXPECT_NE(html.find("no bytes written"), std::string::npos);
}

TEST(ResultHtml, DegenerateTimelinesHaveOnlyFiniteNumbers) {
  BenchResult r;
  r.timeline.push_back({0, 0, 0, 0, 0});  // one sample at t = 0, all zero
  r.total.latency.Record(0);
  r.total.ops = 1;
  ExpectNoNanOrInf(ToHtml(r));
  r.timeline.push_back({1, std::numeric_limits<double>::quiet_NaN(), 1e300, ~0ull, ~0ull});
  r.total.latency.Record(~0ull);
  std::string html = ToHtml(r);
  ExpectNoNanOrInf(html);
  ExpectBalancedSvg(html);
}

TEST(ResultHtml, SvgTagsAreBalanced) { ExpectBalancedSvg(ToHtml(SampleResult())); }

}  // namespace
}  // namespace pstorage::bench
