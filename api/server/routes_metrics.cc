// Metrics in the seed's JSON shapes (/api/v1/metrics/...).
#include <cmath>

#include "api/server/metrics_json.h"
#include "api/server/router.h"
#include "api/server/services.h"
#include "api/server/stats.h"

namespace pstorage::api {

void WriteReductionMetrics(JsonWriter& w, const engine::ReductionStats& r) {
  w.StartObject();
  KV(w, "overall_reduction_ratio", r.data_reduction_ratio);
  KV(w, "total_reduction_ratio", r.total_reduction_ratio);
  Key(w, "deduplication");
  w.StartObject();
  KV(w, "ratio", r.dedupe_ratio);
  KV(w, "unique_blocks", r.unique_blocks);
  KV(w, "duplicate_blocks", r.duplicate_blocks);
  w.EndObject();
  Key(w, "compression");
  w.StartObject();
  KV(w, "ratio", r.compression_ratio);
  KV(w, "algorithm", "lz4");
  w.EndObject();
  Key(w, "pattern_removal");
  w.StartObject();
  KV(w, "zero_blocks_found", r.zero_blocks_found);
  KV(w, "pattern_blocks_found", r.pattern_blocks_found);
  w.EndObject();
  Key(w, "bytes_saved");
  w.StartObject();
  KV(w, "pattern", r.bytes_saved_pattern);
  KV(w, "dedupe", r.bytes_saved_dedupe);
  KV(w, "compression", r.bytes_saved_compression);
  w.EndObject();
  Key(w, "bytes");
  w.StartObject();
  KV(w, "provisioned", r.provisioned_bytes);
  KV(w, "logical_written", r.logical_bytes_written);
  KV(w, "logical_live", r.logical_bytes_live);
  KV(w, "physical_used", r.physical_bytes_used);
  w.EndObject();
  w.EndObject();
}

void WriteFlashMetrics(JsonWriter& w, const flash::FlashMetrics& m) {
  w.StartObject();
  Key(w, "capacity");
  w.StartObject();
  KV(w, "total_bytes", m.total_bytes);
  KV(w, "used_bytes", m.used_bytes);
  KV(w, "free_bytes", m.free_bytes);
  KV(w, "utilization", m.utilization);
  KV(w, "physical_bytes", m.physical_bytes);
  w.EndObject();
  Key(w, "health");
  w.StartObject();
  KV(w, "health_percentage", m.health_percentage);
  KV(w, "avg_erase_count", m.avg_erase_count);
  KV(w, "max_erase_count", m.max_erase_count);
  KV(w, "min_erase_count", m.min_erase_count);
  KV(w, "blocks_retired", m.blocks_retired);
  KV(w, "program_failures", m.program_failures);
  KV(w, "erase_failures", m.erase_failures);
  KV(w, "read_errors", m.read_errors);
  w.EndObject();
  Key(w, "wear_leveling");
  w.StartObject();
  KV(w, "blocks_moved", m.blocks_moved);
  KV(w, "wear_variance", m.wear_variance);
  w.EndObject();
  Key(w, "garbage_collection");
  w.StartObject();
  KV(w, "state", m.gc_active ? "collecting" : "idle");
  KV(w, "blocks_reclaimed", m.blocks_reclaimed);
  KV(w, "gc_runs", m.gc_runs);
  KV(w, "pages_moved", m.gc_pages_moved);
  w.EndObject();
  Key(w, "write_amplification");
  w.StartObject();
  KV(w, "factor", m.write_amplification);
  KV(w, "host_pages_written", m.host_pages_written);
  KV(w, "nand_pages_written", m.nand_pages_written);
  w.EndObject();
  w.EndObject();
}

void WriteVolumeMetrics(JsonWriter& w, engine::Engine& e) {
  std::vector<engine::VolumeInfo> vols = e.ListVolumes();
  std::vector<engine::SnapshotInfo> snaps = e.ListAllSnapshots();
  uint64_t provisioned = 0, used = 0;
  for (const auto& v : vols) provisioned += v.size_bytes, used += v.used_bytes;
  std::map<std::string, uint64_t> by_volume;
  for (const auto& v : vols) by_volume[v.name] = 0;
  for (const auto& s : snaps) by_volume[s.volume_name]++;
  w.StartObject();
  Key(w, "volumes");
  w.StartObject();
  KV(w, "total", static_cast<uint64_t>(vols.size()));
  KV(w, "provisioned_bytes", provisioned);
  KV(w, "used_bytes", used);
  w.EndObject();
  Key(w, "snapshots");
  w.StartObject();
  KV(w, "total", static_cast<uint64_t>(snaps.size()));
  Key(w, "by_volume");
  w.StartObject();
  for (const auto& [name, n] : by_volume) KV(w, name, n);
  w.EndObject();
  w.EndObject();
  w.EndObject();
}

void WriteReplicationMetrics(JsonWriter& w) {
  w.StartObject();
  KV(w, "enabled", false);
  KV(w, "message", "Clustering is not enabled");
  w.EndObject();
}

namespace {

template <typename F>
Reply Render(F&& f) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  f(w);
  return JsonReply(200, sb);
}

Reply AllMetrics(Services& s, const Request&) {
  return Render([&](JsonWriter& w) {
    w.StartObject();
    Key(w, "reduction");
    WriteReductionMetrics(w, s.engine.Reduction());
    Key(w, "flash");
    WriteFlashMetrics(w, s.engine.FlashMetrics());
    Key(w, "volumes");
    WriteVolumeMetrics(w, s.engine);
    Key(w, "replication");
    WriteReplicationMetrics(w);
    Key(w, "cluster");
    WriteClusterStatus(w);
    KV(w, "uptime_seconds", static_cast<uint64_t>((NowMs() - s.started_ms) / 1000));
    KV(w, "requests_total", s.stats.total());
    KV(w, "timestamp", IsoTime(NowMs()));
    w.EndObject();
  });
}

Reply Reduction(Services& s, const Request&) {
  return Render([&](JsonWriter& w) { WriteReductionMetrics(w, s.engine.Reduction()); });
}
Reply Flash(Services& s, const Request&) {
  return Render([&](JsonWriter& w) { WriteFlashMetrics(w, s.engine.FlashMetrics()); });
}
Reply Volumes(Services& s, const Request&) {
  return Render([&](JsonWriter& w) { WriteVolumeMetrics(w, s.engine); });
}
Reply Replication(Services&, const Request&) {
  return Render([&](JsonWriter& w) { WriteReplicationMetrics(w); });
}

}  // namespace

void AddMetricsRoutes(std::vector<Route>* r) {
  r->push_back({"GET", "/api/v1/metrics", AllMetrics});
  r->push_back({"GET", "/api/v1/metrics/reduction", Reduction});
  r->push_back({"GET", "/api/v1/metrics/flash", Flash});
  r->push_back({"GET", "/api/v1/metrics/volumes", Volumes});
  r->push_back({"GET", "/api/v1/metrics/replication", Replication});
}

}  // namespace pstorage::api
