// `pstorage bench` in-process: option parsing and profiles, the JSON result
// (schema and round trip), --compare, and the reduction arithmetic.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/tool/bench.h"

namespace pstorage::bench {
namespace {

Result<BenchOptions> Parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseOptions(static_cast<int>(argv.size()), argv.data());
}

std::string ParseError(std::vector<std::string> args) {
  Result<BenchOptions> r = Parse(std::move(args));
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(BenchOptions, DefaultsAreAnEngineRun) {
  Result<BenchOptions> o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->target, "engine");
  EXPECT_EQ(o->block_size, 4096u);
  EXPECT_EQ(o->queue_depth, 1);
}

TEST(BenchOptions, ParsesEveryWorkloadAndDataOption) {
  Result<BenchOptions> o = Parse({"--block-size",
                                  "64k",
                                  "--pattern",
                                  "sequential",
                                  "--read-percent",
                                  "30",
                                  "--queue-depth=8",
                                  "--working-set",
                                  "1g",
                                  "--duration",
                                  "2.5",
                                  "--total-bytes",
                                  "3m",
                                  "--seed",
                                  "42",
                                  "--dedupe-ratio",
                                  "3",
                                  "--compress-ratio",
                                  "2.5",
                                  "--zero-percent",
                                  "12",
                                  "--no-prefill",
                                  "--json",
                                  "out.json",
                                  "--html",
                                  "out.html",
                                  "--quiet"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->block_size, 65536u);
  EXPECT_FALSE(o->random);
  EXPECT_EQ(o->read_percent, 30);
  EXPECT_EQ(o->queue_depth, 8);
  EXPECT_EQ(o->working_set, 1ull << 30);
  EXPECT_EQ(o->duration_s, 2.5);
  EXPECT_EQ(o->total_bytes, 3u << 20);
  EXPECT_EQ(o->seed, 42u);
  EXPECT_EQ(o->dedupe_ratio, 3);
  EXPECT_EQ(o->compress_ratio, 2.5);
  EXPECT_EQ(o->zero_percent, 12);
  EXPECT_FALSE(o->prefill);
  EXPECT_TRUE(o->quiet);
  EXPECT_EQ(o->json_path, "out.json");
  EXPECT_EQ(o->html_path, "out.html");
}

TEST(BenchOptions, ProfilesSetTheirWorkloadAndFlagsOverrideThem) {
  for (const Profile& p : Profiles()) {
    Result<BenchOptions> o = Parse({"--profile", p.name});
    if (std::string(p.name) == "kv-small") {
      ASSERT_TRUE(o.ok()) << o.status().ToString();
      EXPECT_EQ(o->workload, "kv");
      continue;
    }
    ASSERT_TRUE(o.ok()) << p.name << ": " << o.status().ToString();
    EXPECT_EQ(o->profile, p.name);
  }
  Result<BenchOptions> o = Parse({"--queue-depth", "2", "--profile", "oltp-4k"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->queue_depth, 2);  // explicit, even before the profile
  EXPECT_EQ(o->read_percent, 70);
  o = Parse({"--profile", "backup-seq-1m"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->block_size, 1u << 20);
  EXPECT_FALSE(o->random);
}

TEST(BenchOptions, AnNbdUrlNamesTheExport) {
  Result<BenchOptions> o = Parse({"--target", "nbd", "--url", "nbd://127.0.0.1:10809/vol"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->nbd_url, "nbd://127.0.0.1:10809/vol");
  EXPECT_EQ(o->url, "");
}

TEST(BenchOptions, MalformedOptionsSayWhatIsWrong) {
  EXPECT_EQ(ParseError({"--block-size", "3000"}),
            "--block-size: '3000' is not a multiple of 4k up to 32m (e.g. 4k, 64k, 1m)");
  EXPECT_EQ(ParseError({"--frobnicate", "1"}),
            "unknown option --frobnicate (see pstorage bench --help)");
  EXPECT_EQ(ParseError({"--duration"}), "--duration needs a value");
  EXPECT_NE(ParseError({"--duration", "-1"}).find("--duration: '-1'"), std::string::npos);
  EXPECT_NE(ParseError({"--read-percent", "101"}).find("0..100"), std::string::npos);
  EXPECT_NE(ParseError({"--profile", "oltp"}).find("unknown profile 'oltp' (one of oltp-4k"),
            std::string::npos);
  EXPECT_NE(ParseError({"--target", "iscsi"}).find("one of engine, rest, nbd"), std::string::npos);
  EXPECT_NE(ParseError({"--target", "rest"}).find("needs --url"), std::string::npos);
  EXPECT_NE(ParseError({"--target", "nbd"}).find("needs --url"), std::string::npos);
  EXPECT_NE(ParseError({"--target", "redis", "--url", "redis://127.0.0.1:1"}).find("kv-small"),
            std::string::npos);
  EXPECT_NE(ParseError({"--working-set", "8k", "--block-size", "16k"}).find("at least"),
            std::string::npos);
  EXPECT_NE(ParseError({"--dedupe-ratio", "0.5"}).find("1..1000"), std::string::npos);
  EXPECT_NE(ParseError({"--quiet=yes"}).find("takes no value"), std::string::npos);
  EXPECT_NE(ParseError({"stray"}).find("unexpected argument 'stray'"), std::string::npos);
  EXPECT_EQ(ParseError({"--server-pid", "2147483646"}),
            "--server-pid: no process 2147483646 on this machine");
  Result<BenchOptions> help = Parse({"--help"});
  ASSERT_FALSE(help.ok());
  EXPECT_EQ(help.status().code(), Code::kFailedPrecondition);
}

BenchResult SampleResult(double write_iops, uint64_t latency_ns) {
  BenchResult r;
  r.tool_version = "0.1.0";
  r.started_at = "2026-11-26T07:00:00Z";
  r.machine = {2, "Test CPU \"quoted\"", "Linux 6.1"};
  r.options.profile = "oltp-4k";
  r.options.read_percent = 70;
  r.elapsed_s = 2;
  for (uint64_t i = 1; i <= 1000; i++) r.writes.latency.Record(latency_ns * i / 500);
  r.writes.ops = 1000, r.writes.bytes = 4096000, r.writes.iops = write_iops, r.writes.mbps = 2.048;
  r.total = r.writes;
  r.timeline = {{1, write_iops, 2, latency_ns, 2 * latency_ns}, {2, write_iops, 2, latency_ns, 3}};
  r.reduction.available = true;
  r.reduction.logical_bytes = 4096000;
  r.reduction.saved_dedupe = 1024000;
  r.reduction.data_reduction_ratio = 4.0 / 3;
  r.reduction.waf = 1.25;
  r.client_cpu_s = 1.5;
  r.server_cpu_s = -1;
  return r;
}

TEST(BenchJson, HasTheDocumentedSchema) {
  std::string text = ToJson(SampleResult(500, 100000));
  rapidjson::Document d;
  d.Parse(text.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["schema"].GetString(), "pstorage-bench/1");
  for (const char* k : {"tool_version", "started_at", "error"}) EXPECT_TRUE(d[k].IsString()) << k;
  for (const char* k : {"cores", "cpu_model", "kernel"})
    EXPECT_TRUE(d["machine"].HasMember(k)) << k;
  for (const char* k : {"target",         "url",          "nbd_url",     "profile",
                        "workload",       "block_size",   "pattern",     "read_percent",
                        "queue_depth",    "working_set",  "duration_s",  "total_bytes",
                        "prefill",        "clones",       "seed",        "dedupe_ratio",
                        "compress_ratio", "zero_percent", "value_bytes", "keys",
                        "interval_s"}) {
    EXPECT_TRUE(d["options"].HasMember(k)) << k;
  }
  EXPECT_TRUE(d["elapsed_s"].IsNumber());
  EXPECT_TRUE(d["complete"].IsBool());
  for (const char* part : {"reads", "writes", "total"}) {
    const rapidjson::Value& p = d[part];
    for (const char* k : {"ops", "bytes", "errors", "iops", "mbps"}) {
      EXPECT_TRUE(p[k].IsNumber()) << part << "." << k;
    }
    for (const char* k : {"count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"}) {
      EXPECT_TRUE(p["latency_ns"][k].IsNumber()) << part << ".latency_ns." << k;
    }
    EXPECT_TRUE(p["latency_ns"]["buckets"].IsArray());
  }
  EXPECT_EQ(d["writes"]["latency_ns"]["count"].GetUint64(), 1000u);
  ASSERT_TRUE(d["timeline"].IsArray());
  for (const char* k : {"t_s", "iops", "mbps", "p50_ns", "p99_ns"}) {
    EXPECT_TRUE(d["timeline"][0][k].IsNumber()) << k;
  }
  for (const char* k : {"available", "logical_bytes", "saved_pattern", "saved_dedupe",
                        "saved_compression", "data_reduction_ratio", "live_reduction_ratio",
                        "dedupe_ratio", "compression_ratio", "host_pages", "nand_pages", "waf"}) {
    EXPECT_TRUE(d["reduction"].HasMember(k)) << k;
  }
  EXPECT_TRUE(d["client_cpu_s"].IsNumber());
  EXPECT_TRUE(d["server_cpu_s"].IsNumber());
  EXPECT_TRUE(d["throttled"].IsUint64());
}

TEST(BenchJson, RoundTripKeepsFiguresAndPercentiles) {
  BenchResult a = SampleResult(500, 100000);
  Result<BenchResult> b = FromJson(ToJson(a));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->machine.cpu_model, a.machine.cpu_model);
  EXPECT_EQ(b->options.profile, "oltp-4k");
  EXPECT_EQ(b->writes.ops, 1000u);
  EXPECT_DOUBLE_EQ(b->writes.iops, 500);
  for (double p : {0.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(b->writes.latency.Percentile(p), a.writes.latency.Percentile(p)) << p;
  }
  EXPECT_EQ(b->writes.latency.max(), a.writes.latency.max());
  EXPECT_EQ(b->timeline.size(), 2u);
  EXPECT_DOUBLE_EQ(b->reduction.waf, 1.25);
  EXPECT_EQ(b->server_cpu_s, -1);
  // The mean is rebuilt from the buckets: within their resolution.
  EXPECT_NEAR(b->writes.latency.mean(), a.writes.latency.mean(), a.writes.latency.mean() / 128);
}

TEST(BenchJson, RefusesOtherDocuments) {
  EXPECT_FALSE(FromJson("[]").ok());
  EXPECT_FALSE(FromJson("{\"schema\":\"other/1\"}").ok());
  EXPECT_FALSE(FromJson("{\"schema\":").ok());
  BenchResult r;
  EXPECT_EQ(ReadResultFile("/nonexistent/x.json", &r).code(), Code::kNotFound);
}

TEST(BenchJson, InfiniteRatioIsWrittenAsNull) {
  BenchResult r = SampleResult(1, 1000);
  r.reduction.data_reduction_ratio = INFINITY;  // all zero blocks: nothing stored
  std::string text = ToJson(r);
  EXPECT_NE(text.find("\"data_reduction_ratio\": null"), std::string::npos);
  Result<BenchResult> back = FromJson(text);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(std::isinf(back->reduction.data_reduction_ratio));
}

TEST(BenchCompare, PrintsRatiosOfBToA) {
  BenchResult a = SampleResult(500, 100000);
  BenchResult b = SampleResult(1000, 200000);
  std::string out = FormatCompare(a, b);
  EXPECT_NE(out.find("write IOPS"), std::string::npos) << out;
  // 1000 / 500 IOPS; latencies doubled.
  auto line = [&](const std::string& name) {
    size_t at = out.find(name);
    return at == std::string::npos ? "" : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_NE(line("write IOPS").find("2.000"), std::string::npos) << out;
  std::string p99 = line("write p99 ");
  double ratio = std::stod(p99.substr(p99.find_last_of(' ') + 1));
  EXPECT_NEAR(ratio, 2.0, 2.0 / 64) << p99;
  EXPECT_EQ(line("read IOPS"), "");  // no reads in either
}

TEST(BenchReduction, DeltasOfTheServerCounters) {
  ServerMetrics before, after;
  before.available = after.available = true;
  before.logical_bytes_written = 1000, after.logical_bytes_written = 11000;
  after.bytes_saved_pattern = 1000, after.bytes_saved_dedupe = 4000;
  after.bytes_saved_compression = 1000;
  before.host_pages_written = 10, after.host_pages_written = 110;
  before.nand_pages_written = 10, after.nand_pages_written = 160;
  after.data_reduction_ratio = 3;
  RunReduction r = ReductionBetween(before, after);
  ASSERT_TRUE(r.available);
  EXPECT_EQ(r.logical_bytes, 10000u);
  EXPECT_DOUBLE_EQ(r.data_reduction_ratio, 10000.0 / 4000);
  EXPECT_DOUBLE_EQ(r.waf, 1.5);
  EXPECT_EQ(r.live_reduction_ratio, 3);
  after.available = false;
  EXPECT_FALSE(ReductionBetween(before, after).available);
}

}  // namespace
}  // namespace pstorage::bench
