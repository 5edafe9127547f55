// The machine-readable result: schema "pstorage-bench/1" (docs/formats.md).
// Percentiles are written for people and scripts; the histogram's buckets
// are written too, so that --compare and the HTML report can be rebuilt
// from a file.
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "bench/tool/bench.h"

namespace pstorage::bench {
namespace {

using Writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

void Num(Writer& w, const char* key, double v) {
  w.Key(key);
  if (std::isfinite(v)) {
    w.Double(v);
  } else {
    w.Null();  // JSON has no infinity (e.g. a reduction ratio when nothing was stored)
  }
}
void U64(Writer& w, const char* key, uint64_t v) { w.Key(key), w.Uint64(v); }
void Str(Writer& w, const char* key, const std::string& v) { w.Key(key), w.String(v.c_str()); }
void Bool(Writer& w, const char* key, bool v) { w.Key(key), w.Bool(v); }

void WriteOps(Writer& w, const char* key, const OpStats& s) {
  w.Key(key);
  w.StartObject();
  U64(w, "ops", s.ops), U64(w, "bytes", s.bytes), U64(w, "errors", s.errors);
  Num(w, "iops", s.iops), Num(w, "mbps", s.mbps);
  w.Key("latency_ns");
  w.StartObject();
  const LatencyHistogram& h = s.latency;
  U64(w, "count", h.count()), U64(w, "min", h.min()), Num(w, "mean", h.mean());
  U64(w, "p50", h.Percentile(50)), U64(w, "p90", h.Percentile(90));
  U64(w, "p99", h.Percentile(99)), U64(w, "p99_9", h.Percentile(99.9));
  U64(w, "max", h.max());
  w.Key("buckets");
  w.StartArray();
  for (const auto& [value, count] : h.Buckets()) {
    w.StartArray(), w.Uint64(value), w.Uint64(count), w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  w.EndObject();
}

void WriteOptions(Writer& w, const BenchOptions& o) {
  w.Key("options");
  w.StartObject();
  Str(w, "target", o.target), Str(w, "url", o.url), Str(w, "nbd_url", o.nbd_url);
  Str(w, "profile", o.profile), Str(w, "volume", o.volume), Str(w, "workload", o.workload);
  U64(w, "block_size", o.block_size), Str(w, "pattern", o.random ? "random" : "sequential");
  Num(w, "read_percent", o.read_percent), U64(w, "queue_depth", o.queue_depth);
  U64(w, "working_set", o.working_set), Num(w, "duration_s", o.duration_s);
  U64(w, "total_bytes", o.total_bytes), Bool(w, "prefill", o.prefill);
  U64(w, "clones", o.clones), U64(w, "seed", o.seed);
  Num(w, "dedupe_ratio", o.dedupe_ratio), Num(w, "compress_ratio", o.compress_ratio);
  Num(w, "zero_percent", o.zero_percent);
  U64(w, "value_bytes", o.value_bytes), U64(w, "keys", o.key_count);
  Num(w, "interval_s", o.interval_s);
  U64(w, "server_pid", static_cast<uint64_t>(o.server_pid));
  w.EndObject();
}

// Reading: absent or mistyped members read as defaults; the schema string
// is checked by the caller.
const rapidjson::Value* Member(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(key);
  return it == v.MemberEnd() ? nullptr : &it->value;
}
double GetD(const rapidjson::Value& v, const char* key, double dflt = 0) {
  const rapidjson::Value* m = Member(v, key);
  if (m && m->IsNull()) return INFINITY;
  return m && m->IsNumber() ? m->GetDouble() : dflt;
}
uint64_t GetU(const rapidjson::Value& v, const char* key) {
  const rapidjson::Value* m = Member(v, key);
  return m && m->IsUint64() ? m->GetUint64() : 0;
}
std::string GetS(const rapidjson::Value& v, const char* key) {
  const rapidjson::Value* m = Member(v, key);
  return m && m->IsString() ? m->GetString() : "";
}
bool GetB(const rapidjson::Value& v, const char* key, bool dflt) {
  const rapidjson::Value* m = Member(v, key);
  return m && m->IsBool() ? m->GetBool() : dflt;
}

OpStats ReadOps(const rapidjson::Value& doc, const char* key) {
  OpStats s;
  const rapidjson::Value* v = Member(doc, key);
  if (!v) return s;
  s.ops = GetU(*v, "ops"), s.bytes = GetU(*v, "bytes"), s.errors = GetU(*v, "errors");
  s.iops = GetD(*v, "iops"), s.mbps = GetD(*v, "mbps");
  const rapidjson::Value* lat = Member(*v, "latency_ns");
  if (!lat) return s;
  std::vector<std::pair<uint64_t, uint64_t>> buckets;
  if (const rapidjson::Value* b = Member(*lat, "buckets"); b && b->IsArray()) {
    for (const auto& e : b->GetArray()) {
      if (e.IsArray() && e.Size() == 2 && e[0].IsUint64() && e[1].IsUint64()) {
        buckets.emplace_back(e[0].GetUint64(), e[1].GetUint64());
      }
    }
  }
  s.latency = LatencyHistogram::FromBuckets(buckets, GetU(*lat, "min"), GetU(*lat, "max"));
  return s;
}

}  // namespace

std::string ToJson(const BenchResult& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.SetIndent(' ', 1);
  w.SetFormatOptions(rapidjson::kFormatSingleLineArray);  // buckets: one line each
  w.StartObject();
  Str(w, "schema", r.schema), Str(w, "tool_version", r.tool_version);
  Str(w, "started_at", r.started_at);
  w.Key("machine");
  w.StartObject();
  U64(w, "cores", r.machine.cores), Str(w, "cpu_model", r.machine.cpu_model);
  Str(w, "kernel", r.machine.kernel);
  w.EndObject();
  WriteOptions(w, r.options);
  Num(w, "elapsed_s", r.elapsed_s), Bool(w, "complete", r.complete), Str(w, "error", r.error);
  WriteOps(w, "reads", r.reads), WriteOps(w, "writes", r.writes), WriteOps(w, "total", r.total);
  w.Key("timeline");
  w.StartArray();
  for (const IntervalSample& s : r.timeline) {
    w.StartObject();
    Num(w, "t_s", s.t_s), Num(w, "iops", s.iops), Num(w, "mbps", s.mbps);
    U64(w, "p50_ns", s.p50_ns), U64(w, "p99_ns", s.p99_ns);
    w.EndObject();
  }
  w.EndArray();
  const RunReduction& red = r.reduction;
  w.Key("reduction");
  w.StartObject();
  Bool(w, "available", red.available), U64(w, "logical_bytes", red.logical_bytes);
  U64(w, "saved_pattern", red.saved_pattern), U64(w, "saved_dedupe", red.saved_dedupe);
  U64(w, "saved_compression", red.saved_compression);
  Num(w, "data_reduction_ratio", red.data_reduction_ratio);
  Num(w, "live_reduction_ratio", red.live_reduction_ratio);
  Num(w, "dedupe_ratio", red.dedupe_ratio), Num(w, "compression_ratio", red.compression_ratio);
  U64(w, "host_pages", red.host_pages), U64(w, "nand_pages", red.nand_pages);
  Num(w, "waf", red.waf);
  w.EndObject();
  Num(w, "client_cpu_s", r.client_cpu_s), Num(w, "server_cpu_s", r.server_cpu_s);
  U64(w, "throttled", r.throttled);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Result<BenchResult> FromJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject()) return Status::InvalidArgument("not a JSON object");
  BenchResult r;
  if (GetS(d, "schema") != r.schema) {
    return Status::InvalidArgument("not a pstorage bench result (schema '" + GetS(d, "schema") +
                                   "', expected '" + r.schema + "')");
  }
  r.tool_version = GetS(d, "tool_version"), r.started_at = GetS(d, "started_at");
  if (const rapidjson::Value* m = Member(d, "machine")) {
    r.machine.cores = static_cast<int>(GetU(*m, "cores"));
    r.machine.cpu_model = GetS(*m, "cpu_model"), r.machine.kernel = GetS(*m, "kernel");
  }
  if (const rapidjson::Value* o = Member(d, "options")) {
    BenchOptions& b = r.options;
    b.target = GetS(*o, "target"), b.url = GetS(*o, "url"), b.nbd_url = GetS(*o, "nbd_url");
    b.profile = GetS(*o, "profile"), b.volume = GetS(*o, "volume");
    b.workload = GetS(*o, "workload");
    b.block_size = GetU(*o, "block_size"), b.random = GetS(*o, "pattern") != "sequential";
    b.read_percent = GetD(*o, "read_percent");
    b.queue_depth = static_cast<int>(GetU(*o, "queue_depth"));
    b.working_set = GetU(*o, "working_set"), b.duration_s = GetD(*o, "duration_s");
    b.total_bytes = GetU(*o, "total_bytes"), b.prefill = GetB(*o, "prefill", true);
    b.clones = static_cast<int>(GetU(*o, "clones")), b.seed = GetU(*o, "seed");
    b.dedupe_ratio = GetD(*o, "dedupe_ratio", 1), b.compress_ratio = GetD(*o, "compress_ratio", 1);
    b.zero_percent = GetD(*o, "zero_percent");
    b.value_bytes = GetU(*o, "value_bytes"), b.key_count = GetU(*o, "keys");
    b.interval_s = GetD(*o, "interval_s", 1);
    b.server_pid = static_cast<int>(GetU(*o, "server_pid"));
  }
  r.elapsed_s = GetD(d, "elapsed_s"), r.complete = GetB(d, "complete", true);
  r.error = GetS(d, "error");
  r.reads = ReadOps(d, "reads"), r.writes = ReadOps(d, "writes"), r.total = ReadOps(d, "total");
  if (const rapidjson::Value* t = Member(d, "timeline"); t && t->IsArray()) {
    for (const auto& e : t->GetArray()) {
      IntervalSample s;
      s.t_s = GetD(e, "t_s"), s.iops = GetD(e, "iops"), s.mbps = GetD(e, "mbps");
      s.p50_ns = GetU(e, "p50_ns"), s.p99_ns = GetU(e, "p99_ns");
      r.timeline.push_back(s);
    }
  }
  if (const rapidjson::Value* v = Member(d, "reduction")) {
    RunReduction& red = r.reduction;
    red.available = GetB(*v, "available", false), red.logical_bytes = GetU(*v, "logical_bytes");
    red.saved_pattern = GetU(*v, "saved_pattern"), red.saved_dedupe = GetU(*v, "saved_dedupe");
    red.saved_compression = GetU(*v, "saved_compression");
    red.data_reduction_ratio = GetD(*v, "data_reduction_ratio", 1);
    red.live_reduction_ratio = GetD(*v, "live_reduction_ratio", 1);
    red.dedupe_ratio = GetD(*v, "dedupe_ratio", 1);
    red.compression_ratio = GetD(*v, "compression_ratio", 1);
    red.host_pages = GetU(*v, "host_pages"), red.nand_pages = GetU(*v, "nand_pages");
    red.waf = GetD(*v, "waf", 1);
  }
  r.client_cpu_s = GetD(d, "client_cpu_s"), r.server_cpu_s = GetD(d, "server_cpu_s", -1);
  r.throttled = GetU(d, "throttled");
  return r;
}

Status ReadResultFile(const std::string& path, BenchResult* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  Result<BenchResult> r = FromJson(ss.str());
  if (!r.ok()) return Status::InvalidArgument(path + ": " + r.status().message());
  *out = std::move(*r);
  return Status::Ok();
}

}  // namespace pstorage::bench
