#include "api/server/prometheus.h"

#include <sys/resource.h>

#include <cstdio>

#include "api/server/router.h"
#include "api/server/services.h"
#include "api/server/stats.h"

namespace pstorage::api {

namespace {

class Out {
 public:
  void Header(const char* name, const char* type, const char* help) {
    s_ += "# HELP ";
    s_ += name;
    s_ += ' ';
    s_ += help;
    s_ += "\n# TYPE ";
    s_ += name;
    s_ += ' ';
    s_ += type;
    s_ += '\n';
  }
  void Sample(const char* name, const std::string& labels, double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.15g", v);
    s_ += name;
    if (!labels.empty()) s_ += "{" + labels + "}";
    s_ += ' ';
    s_ += buf;
    s_ += '\n';
  }
  void Gauge(const char* name, const char* help, double v) {
    Header(name, "gauge", help);
    Sample(name, "", v);
  }
  void Counter(const char* name, const char* help, double v) {
    Header(name, "counter", help);
    Sample(name, "", v);
  }
  std::string& str() { return s_; }

 private:
  std::string s_;
};

void HttpMetrics(Services& s, Out& o) {
  const std::vector<Route>& routes = s.router->routes();
  auto labels = [&](size_t i) {
    if (i >= routes.size()) return std::string("method=\"\",route=\"unmatched\"");
    return "method=\"" + routes[i].method + "\",route=\"" + routes[i].pattern + "\"";
  };
  o.Header("pstorage_http_requests_total", "counter", "HTTP requests by route and status.");
  for (size_t i = 0; i < s.stats.slots(); i++) {
    const RequestStats::Slot& slot = s.stats.slot(i);
    for (size_t k = 0; k < RequestStats::kStatuses.size(); k++) {
      uint64_t n = slot.by_status[k].load(std::memory_order_relaxed);
      if (n == 0) continue;
      int code = RequestStats::kStatuses[k];
      std::string status = code == 0 ? "other" : std::to_string(code);
      o.Sample("pstorage_http_requests_total", labels(i) + ",status=\"" + status + "\"",
               static_cast<double>(n));
    }
  }
  o.Header("pstorage_http_request_duration_seconds", "histogram",
           "Time from request parsed to response handed to the socket.");
  for (size_t i = 0; i < s.stats.slots(); i++) {
    const RequestStats::Slot& slot = s.stats.slot(i);
    uint64_t count = slot.count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= RequestStats::kBuckets.size(); b++) {
      cumulative += slot.buckets[b].load(std::memory_order_relaxed);
      char le[32];
      if (b == RequestStats::kBuckets.size()) {
        std::snprintf(le, sizeof(le), "+Inf");
      } else {
        std::snprintf(le, sizeof(le), "%g", RequestStats::kBuckets[b]);
      }
      o.Sample("pstorage_http_request_duration_seconds_bucket",
               labels(i) + ",le=\"" + le + "\"", static_cast<double>(cumulative));
    }
    o.Sample("pstorage_http_request_duration_seconds_sum", labels(i),
             static_cast<double>(slot.sum_ns.load(std::memory_order_relaxed)) / 1e9);
    o.Sample("pstorage_http_request_duration_seconds_count", labels(i),
             static_cast<double>(count));
  }
}

void EngineMetrics(Services& s, Out& o) {
  engine::ReductionStats r = s.engine.Reduction();
  size_t volumes = s.engine.ListVolumes().size();
  size_t snapshots = s.engine.ListAllSnapshots().size();
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  o.Gauge("pstorage_volumes", "Volumes.", d(volumes));
  o.Gauge("pstorage_snapshots", "Snapshots.", d(snapshots));
  o.Gauge("pstorage_provisioned_bytes", "Sum of volume sizes.", d(r.provisioned_bytes));
  o.Gauge("pstorage_logical_live_bytes", "Mapped non-zero blocks of all volumes.",
          d(r.logical_bytes_live));
  o.Gauge("pstorage_physical_used_bytes", "Flash pages holding live data.",
          d(r.physical_bytes_used));
  o.Counter("pstorage_logical_written_bytes_total", "Bytes accepted by writes.",
            d(r.logical_bytes_written));
  o.Gauge("pstorage_unique_blocks", "Distinct stored blocks.", d(r.unique_blocks));
  o.Counter("pstorage_duplicate_blocks_total", "Blocks shared by dedupe.", d(r.duplicate_blocks));
  o.Counter("pstorage_zero_blocks_total", "Zero blocks removed.", d(r.zero_blocks_found));
  o.Counter("pstorage_pattern_blocks_total", "Non-zero pattern blocks removed.",
            d(r.pattern_blocks_found));
  o.Gauge("pstorage_data_reduction_ratio", "Logical live bytes / physical used bytes.",
          r.data_reduction_ratio);
  o.Gauge("pstorage_dedupe_ratio", "Dedupe ratio.", r.dedupe_ratio);
  o.Gauge("pstorage_compression_ratio", "Compression ratio.", r.compression_ratio);

  flash::FlashMetrics f = s.engine.FlashMetrics();
  o.Gauge("pstorage_flash_capacity_bytes", "Logical capacity of the flash device.",
          d(f.total_bytes));
  o.Gauge("pstorage_flash_used_bytes", "Mapped logical pages of the flash device.",
          d(f.used_bytes));
  o.Gauge("pstorage_flash_health_percent", "100 * (1 - average erase count / P/E limit).",
          f.health_percentage);
  o.Gauge("pstorage_flash_erase_count_max", "Highest erase count of a block.",
          d(f.max_erase_count));
  o.Gauge("pstorage_flash_erase_count_avg", "Average erase count.", f.avg_erase_count);
  o.Gauge("pstorage_flash_write_amplification", "NAND pages written / host pages written.",
          f.write_amplification);
  o.Counter("pstorage_flash_host_pages_written_total", "Pages written by the host.",
            d(f.host_pages_written));
  o.Counter("pstorage_flash_nand_pages_written_total", "Pages programmed, GC included.",
            d(f.nand_pages_written));
  o.Counter("pstorage_flash_gc_runs_total", "Blocks reclaimed by garbage collection.",
            d(f.gc_runs));
  o.Gauge("pstorage_flash_blocks_retired", "Blocks retired (wear or failures).",
          d(f.blocks_retired));
  o.Counter("pstorage_flash_read_errors_total", "Checksum failures seen by reads.",
            d(f.read_errors));
}

}  // namespace

std::string RenderPrometheus(Services& s) {
  Out o;
  HttpMetrics(s, o);
  EngineMetrics(s, o);
  o.Gauge("pstorage_uptime_seconds", "Seconds since the server started.",
          static_cast<double>(NowMs() - s.started_ms) / 1000);
  // The standard process metric (user + system), which `pstorage bench`
  // reads before and after a run to report the server's CPU cost.
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  o.Counter("process_cpu_seconds_total", "User and system CPU time of the server process.",
            static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return std::move(o.str());
}

}  // namespace pstorage::api
