// `pstorage bench`: the workload generator people use to size and compare
// the array. This header joins its parts:
//   options.cc      command line and the named profiles
//   datagen.h       deterministic block contents with target dedupe /
//                   compression ratios and a zero-block share
//   histogram.h     HDR-style latency histogram
//   runner.cc       worker threads, timing, progress line, time series
//   target_*.cc     where the I/O goes: engine (in-process), rest, nbd, and
//                   the KV targets (kv-small: engine store, rest, redis, etcd)
//   result_*.cc     table, JSON (schema "pstorage-bench/1"), --compare, HTML
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench/tool/histogram.h"
#include "common/status.h"

namespace pstorage::bench {

constexpr uint64_t kBlock = 4096;

// What one run does. Every field has a command-line flag (options.cc);
// a profile sets several at once and explicit flags override it.
struct BenchOptions {
  std::string target = "engine";  // engine | rest | nbd | redis | etcd
  std::string url;                // rest/etcd: http://host:port; redis: redis://host:port;
                                  // nbd: the REST server (setup and metrics), optional
  std::string nbd_url;            // nbd://host:port[/export]; default host of --url, port 10809
  std::string api_key;            // X-API-Key for rest (default $PSTORAGE_API_KEY)
  std::string profile;            // oltp-4k | vdi-clone-boot | backup-seq-1m | kv-small | ""
  std::string volume;             // existing volume (rest/nbd); default: a new one, deleted after
  std::string data_dir;           // engine target; default a temporary directory, removed after
  int server_pid = 0;             // a local server whose CPU to measure from /proc (any target)

  // Workload.
  std::string workload = "block";       // block | kv (set by kv-small)
  uint64_t block_size = 4096;           // bytes per I/O, multiple of 4096
  bool random = true;                   // random offsets, else sequential per worker
  double read_percent = 0;              // 0..100
  int queue_depth = 1;                  // concurrent I/Os: workers, each with one in flight
  uint64_t working_set = 256ull << 20;  // bytes of the volume the I/O touches
  double duration_s = 10;               // stop after this...
  uint64_t total_bytes = 0;             // ...or after this many bytes (0: duration only)
  bool prefill = true;                  // write the working set once before a read/mixed run
  int clones = 0;  // vdi-clone-boot: clones of a golden volume, I/O spread over them
  uint64_t seed = 1;

  // Data (writes): as vdbench's dedupratio / compratio.
  double dedupe_ratio = 1;    // written non-zero blocks / distinct non-zero blocks
  double compress_ratio = 1;  // 4096 / LZ4 size of a distinct block
  double zero_percent = 0;    // share of written blocks that are all zeros

  // KV workload (kv-small).
  uint64_t value_bytes = 100;
  uint64_t key_count = 10000;

  // Output.
  std::string json_path;
  std::string html_path;
  bool quiet = false;     // no progress line even on a terminal
  double interval_s = 1;  // time-series resolution
};

// Server-side counters read before and after a run (from /api/v1/metrics,
// or from the engine in-process). Deltas are after - before.
struct ServerMetrics {
  bool available = false;
  // reduction (cumulative counters and the live ratios after the run)
  uint64_t logical_bytes_written = 0;
  uint64_t logical_bytes_live = 0;
  uint64_t physical_bytes_used = 0;
  uint64_t zero_blocks = 0;
  uint64_t duplicate_blocks = 0;
  uint64_t unique_blocks = 0;
  uint64_t bytes_saved_pattern = 0;
  uint64_t bytes_saved_dedupe = 0;
  uint64_t bytes_saved_compression = 0;
  double data_reduction_ratio = 1;
  double dedupe_ratio = 1;
  double compression_ratio = 1;
  // flash
  uint64_t host_pages_written = 0;
  uint64_t nand_pages_written = 0;
  double write_amplification = 1;
  double flash_utilization = 0;
  // server process CPU (Prometheus process_cpu_seconds_total), -1 unknown
  double cpu_seconds = -1;
};

// Reduction and wear achieved by this run: from the metric deltas.
struct RunReduction {
  bool available = false;
  uint64_t logical_bytes = 0;  // bytes written during the run (delta)
  uint64_t saved_pattern = 0;  // deltas of bytes_saved
  uint64_t saved_dedupe = 0;
  uint64_t saved_compression = 0;
  double data_reduction_ratio = 1;  // logical / (logical - saved), this run's writes
  double live_reduction_ratio = 1;  // server's live ratio after the run
  double dedupe_ratio = 1;          // server's ratios after the run
  double compression_ratio = 1;
  uint64_t host_pages = 0;  // flash deltas
  uint64_t nand_pages = 0;
  double waf = 1;  // nand / host pages during the run (1 when none)
};

struct OpStats {
  uint64_t ops = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  double iops = 0;
  double mbps = 0;           // 10^6 bytes per second
  LatencyHistogram latency;  // nanoseconds
};

struct IntervalSample {
  double t_s = 0;  // end of the interval since the start of the measured run
  double iops = 0;
  double mbps = 0;
  uint64_t p50_ns = 0;
  uint64_t p99_ns = 0;
};

struct Machine {
  int cores = 0;
  std::string cpu_model;
  std::string kernel;
};

struct BenchResult {
  std::string schema = "pstorage-bench/1";
  std::string tool_version;
  std::string started_at;  // ISO 8601 UTC
  Machine machine;
  BenchOptions options;
  double elapsed_s = 0;
  bool complete = true;  // false: stopped early (error), the numbers are partial
  std::string error;     // why, when !complete
  OpStats reads, writes, total;
  std::vector<IntervalSample> timeline;
  RunReduction reduction;
  double client_cpu_s = 0;  // this process, user + system (includes the engine for --target engine)
  double server_cpu_s = -1;  // the server's, from its metrics; -1 unknown
  uint64_t throttled = 0;    // 429 replies from the server's rate limit, waited out
};

// One worker's connection to the target. Created per worker thread;
// never shared between threads.
class Session {
 public:
  virtual ~Session() = default;
  // Block workload: `offset` and `data.size()` are multiples of 4096 inside
  // the working set of volume `unit` (0..units-1; clones for vdi-clone-boot).
  virtual Status Write(int unit, uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual Status Read(int unit, uint64_t offset, std::span<uint8_t> out) = 0;
  // KV workload.
  virtual Status Put(const std::string& key, const std::string& value_json) {
    (void)key, (void)value_json;
    return Status::InvalidArgument("this target has no KV path");
  }
  virtual Status Get(const std::string& key, std::string* value_json) {
    (void)key, (void)value_json;
    return Status::InvalidArgument("this target has no KV path");
  }
  // Replies that asked this session to slow down (HTTP 429), each waited
  // out and retried; the wait is part of that operation's latency.
  uint64_t throttled = 0;
};

// Where the I/O goes. Setup creates what the run needs (volumes, clones,
// a project), Teardown removes what Setup created.
class Target {
 public:
  virtual ~Target() = default;
  virtual Status Setup(const BenchOptions& options) = 0;
  virtual Result<std::unique_ptr<Session>> Connect() = 0;
  // After the prefill: vdi-clone-boot clones the golden volume here.
  virtual Status AfterPrefill() { return Status::Ok(); }
  // Volumes the measured run spreads its I/O over (its clones, else 1).
  virtual int units() const { return 1; }
  // Counters before/after the run; `available` false when the target has none.
  virtual ServerMetrics Metrics() = 0;
  virtual void Teardown() = 0;
};

// The data directory of the in-process targets: --data-dir when given (kept),
// else a new directory under $TMPDIR (default /var/tmp), removed by Remove().
class DataDir {
 public:
  Status Init(const std::string& given);
  const std::string& path() const { return path_; }
  void Remove();

 private:
  std::string path_;
  bool owned_ = false;
};

Result<std::unique_ptr<Target>> MakeTarget(const BenchOptions& options);
std::unique_ptr<Target> MakeEngineTarget();
std::unique_ptr<Target> MakeRestTarget();
std::unique_ptr<Target> MakeNbdTarget();
std::unique_ptr<Target> MakeKvTarget(const std::string& kind);  // engine | rest | redis | etcd

// options.cc: parses argv (after "bench"); on --help prints usage and
// returns a kFailedPrecondition status with an empty message.
Result<BenchOptions> ParseOptions(int argc, char** argv);
std::string Usage();
// The named profiles with what they model (for --help and docs).
struct Profile {
  const char* name;
  const char* models;
};
const std::vector<Profile>& Profiles();
Status ApplyProfile(const std::string& name, BenchOptions* options);
Status ValidateOptions(const BenchOptions& options);

// runner.cc
Result<BenchResult> Run(const BenchOptions& options, Target* target);
// Ends a run early, as a failed I/O would (async-signal-safe: SIGINT).
void InterruptRun();
RunReduction ReductionBetween(const ServerMetrics& before, const ServerMetrics& after);
Machine ThisMachine();

// result_text.cc / result_json.cc / result_html.cc
std::string FormatTable(const BenchResult& result);
std::string ToJson(const BenchResult& result);
Result<BenchResult> FromJson(const std::string& text);
Status ReadResultFile(const std::string& path, BenchResult* out);
std::string FormatCompare(const BenchResult& a, const BenchResult& b);
std::string ToHtml(const BenchResult& result);

// The `pstorage bench` command.
int RunBenchCommand(int argc, char** argv);

}  // namespace pstorage::bench
