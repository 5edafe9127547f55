// The run loop of `pstorage bench`: prefill, then queue_depth workers each
// with one I/O in flight on its own session, until the duration or the byte
// budget is spent or an I/O fails. Every op is timed into the worker's
// histograms; the main thread folds them into one sample per interval
// (the time series) and draws the progress line.
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "bench/tool/bench.h"
#include "bench/tool/datagen.h"

namespace pstorage::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_interrupted{false};

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// User + system CPU seconds of process `pid` from /proc/PID/stat; -1 when
// it cannot be read (gone, not ours to see).
double ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');  // the command name may contain spaces
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; i++) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  if (!fields) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string NowIso() {
  time_t t = time(nullptr);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// xorshift-style generator per worker: cheap, seeded from (seed, worker).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  uint64_t Next() {
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Unit() { return (Next() >> 11) * (1.0 / 9007199254740992.0); }
};

// What one worker has measured; the interval part is taken and reset by
// the sampler under `mu`.
struct WorkerStats {
  std::mutex mu;
  OpStats reads, writes;      // whole run
  LatencyHistogram interval;  // both kinds, since the last sample
  uint64_t interval_ops = 0, interval_bytes = 0;
  uint64_t throttled = 0;  // the session's 429s, added when the worker ends
};

// Adds a session's throttle count to its worker's stats however the worker
// returns.
class ThrottleTally {
 public:
  ThrottleTally(const Session* s, WorkerStats* w) : s_(s), w_(w) {}
  ~ThrottleTally() {
    std::lock_guard<std::mutex> lock(w_->mu);
    w_->throttled += s_->throttled;
  }

 private:
  const Session* s_;
  WorkerStats* w_;
};

// Shared by the workers of one phase.
struct Phase {
  const BenchOptions* options = nullptr;
  Target* target = nullptr;
  const DataGenerator* data = nullptr;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> next_block{0};  // stream position for written data
  std::atomic<uint64_t> bytes_done{0};
  uint64_t byte_budget = 0;  // 0: none
  std::mutex error_mu;
  std::string error;  // first failure, guarded by error_mu

  void Fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (error.empty()) error = what;
    stop.store(true);
  }
};

uint64_t NanosSince(Clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

void Account(WorkerStats* w, bool read, uint64_t bytes, uint64_t ns) {
  std::lock_guard<std::mutex> lock(w->mu);
  OpStats& s = read ? w->reads : w->writes;
  s.ops++;
  s.bytes += bytes;
  s.latency.Record(ns);
  w->interval.Record(ns);
  w->interval_ops++;
  w->interval_bytes += bytes;
}

std::string KvKey(uint64_t n) { return "bench-" + std::to_string(n); }

// A JSON string value of about `bytes` bytes, different per (key, version).
std::string KvValue(uint64_t n, uint64_t version, uint64_t bytes) {
  Rng r(n * 1000003 + version);
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string v = "\"";
  uint64_t chars = bytes > 2 ? bytes - 2 : 1;
  for (uint64_t i = 0; i < chars; i++) v += kAlphabet[r.Next() % 36];
  v += '"';
  return v;
}

// Prefill: the working set written once, in order, in chunks of up to
// 1 MiB shared by all workers through next_block (large writes fill fastest;
// the bytes are the same blocks of the data stream either way).
void PrefillWorker(Phase* p, uint64_t chunk) {
  Result<std::unique_ptr<Session>> session = p->target->Connect();
  if (!session.ok()) return p->Fail(session.status().ToString());
  std::vector<uint8_t> buf(chunk);
  const uint64_t blocks = p->options->working_set / kBlock;
  while (!p->stop.load(std::memory_order_relaxed)) {
    uint64_t first = p->next_block.fetch_add(chunk / kBlock);
    if (first >= blocks) return;
    p->data->Fill(first, buf);
    Status s = (*session)->Write(0, first * kBlock, buf);
    if (!s.ok())
      return p->Fail("write at offset " + std::to_string(first * kBlock) + ": " + s.ToString());
  }
}

// One block-workload worker of the measured run.
void BlockWorker(Phase* p, int id, WorkerStats* w) {
  const BenchOptions& o = *p->options;
  Result<std::unique_ptr<Session>> session = p->target->Connect();
  if (!session.ok()) return p->Fail(session.status().ToString());
  ThrottleTally tally(session->get(), w);
  Rng rng(o.seed * 7919 + static_cast<uint64_t>(id) + 104729);
  std::vector<uint8_t> buf(o.block_size);
  const uint64_t slots = o.working_set / o.block_size;
  const int units = p->target->units();
  // Sequential: worker `id` streams through its own slice of the working set.
  const uint64_t per_worker = std::max<uint64_t>(1, slots / o.queue_depth);
  const uint64_t first_slot = (static_cast<uint64_t>(id) * per_worker) % slots;
  uint64_t cursor = 0;
  while (!p->stop.load(std::memory_order_relaxed)) {
    uint64_t slot = o.random ? rng.Next() % slots : (first_slot + cursor++ % per_worker) % slots;
    int unit = units <= 1 ? 0 : static_cast<int>(rng.Next() % units);
    bool read = rng.Unit() * 100 < o.read_percent;
    uint64_t offset = slot * o.block_size;
    Clock::time_point t0;
    Status s;
    if (read) {
      t0 = Clock::now();
      s = (*session)->Read(unit, offset, buf);
    } else {
      p->data->Fill(p->next_block.fetch_add(o.block_size / kBlock), buf);
      t0 = Clock::now();
      s = (*session)->Write(unit, offset, buf);
    }
    uint64_t ns = NanosSince(t0);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(w->mu);
      (read ? w->reads : w->writes).errors++;
      return p->Fail(std::string(read ? "read" : "write") + " at offset " + std::to_string(offset) +
                     ": " + s.ToString());
    }
    Account(w, read, o.block_size, ns);
    uint64_t done = p->bytes_done.fetch_add(o.block_size) + o.block_size;
    if (p->byte_budget && done >= p->byte_budget) p->stop.store(true);
  }
}

// One KV worker: gets and puts of random keys (prefill: every key once).
void KvWorker(Phase* p, int id, WorkerStats* w, bool measured_run) {
  const BenchOptions& o = *p->options;
  Result<std::unique_ptr<Session>> session = p->target->Connect();
  if (!session.ok()) return p->Fail(session.status().ToString());
  ThrottleTally tally(session->get(), w);
  Rng rng(o.seed * 7919 + static_cast<uint64_t>(id) + 1);
  std::string got;
  uint64_t version = 1;
  while (!p->stop.load(std::memory_order_relaxed)) {
    uint64_t n;
    bool read = false;
    if (!measured_run) {
      n = p->next_block.fetch_add(1);
      if (n >= o.key_count) return;
    } else {
      n = rng.Next() % o.key_count;
      read = rng.Unit() * 100 < o.read_percent;
    }
    std::string key = KvKey(n);
    std::string value = read ? std::string() : KvValue(n, version++, o.value_bytes);
    Clock::time_point t0 = Clock::now();
    Status s = read ? (*session)->Get(key, &got) : (*session)->Put(key, value);
    uint64_t ns = NanosSince(t0);
    if (s.ok() && read && got.empty()) s = Status::NotFound("empty value");
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(w->mu);
      (read ? w->reads : w->writes).errors++;
      return p->Fail(std::string(read ? "get " : "put ") + key + ": " + s.ToString());
    }
    uint64_t bytes = read ? got.size() : value.size();
    Account(w, read, bytes, ns);
    uint64_t done = p->bytes_done.fetch_add(bytes) + bytes;
    if (p->byte_budget && done >= p->byte_budget) p->stop.store(true);
  }
}

std::string Human(double v) {
  char buf[32];
  if (v >= 1e6) {
    snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  } else if (v >= 1e4) {
    snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

std::string Millis(uint64_t ns) {
  char buf[32];
  snprintf(buf, sizeof buf, ns >= 10000000 ? "%.0f ms" : "%.2f ms", ns / 1e6);
  return buf;
}

// Runs `workers` workers of one phase; when `samples` is set, samples every
// interval into it and draws the progress line. Returns the wall time.
double RunPhase(Phase* p, int workers, bool measured_run, double duration_s,
                std::vector<IntervalSample>* samples, std::vector<WorkerStats>* stats,
                bool progress) {
  const BenchOptions& o = *p->options;
  std::vector<std::thread> threads;
  Clock::time_point start = Clock::now();
  for (int i = 0; i < workers; i++) {
    threads.emplace_back([p, i, stats, measured_run, &o] {
      if (o.workload == "kv") {
        KvWorker(p, i, &(*stats)[i], measured_run);
      } else if (!measured_run) {
        uint64_t chunk = o.block_size;
        while (chunk * 2 <= (1u << 20) && o.working_set % (chunk * 2) == 0) chunk *= 2;
        PrefillWorker(p, chunk);
      } else {
        BlockWorker(p, i, &(*stats)[i]);
      }
    });
  }
  std::atomic<int> running{workers};
  std::thread watcher([&] {
    for (auto& t : threads) t.join();
    running.store(0);
  });
  auto interval = std::chrono::duration<double>(o.interval_s);
  Clock::time_point next = start + std::chrono::duration_cast<Clock::duration>(interval);
  Clock::time_point deadline = start + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(duration_s));
  Clock::time_point last = start;
  // One sample per interval while the run goes on; after the stop, one
  // last sample for the tail if it covers at least a quarter interval.
  auto sample = [&](Clock::time_point now) {
    LatencyHistogram h;
    uint64_t ops = 0, bytes = 0;
    for (WorkerStats& w : *stats) {
      std::lock_guard<std::mutex> lock(w.mu);
      h.Merge(w.interval);
      w.interval.Reset();
      ops += w.interval_ops, bytes += w.interval_bytes;
      w.interval_ops = w.interval_bytes = 0;
    }
    double secs = std::chrono::duration<double>(now - last).count();
    last = now;
    if (secs <= 0) return;
    IntervalSample s;
    s.t_s = std::chrono::duration<double>(now - start).count();
    s.iops = ops / secs;
    s.mbps = bytes / secs / 1e6;
    s.p50_ns = h.Percentile(50);
    s.p99_ns = h.Percentile(99);
    samples->push_back(s);
    if (progress) {
      fprintf(stderr, "\r  %6.1f s  %s %s  %8.1f MB/s  p99 %s   ", s.t_s, Human(s.iops).c_str(),
              o.workload == "kv" ? "ops/s" : "IOPS", s.mbps, Millis(s.p99_ns).c_str());
      fflush(stderr);
    }
  };
  while (running.load() > 0 && !p->stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    Clock::time_point now = Clock::now();
    if (g_interrupted.load()) p->Fail("interrupted");
    if (measured_run && now >= deadline) {
      p->stop.store(true);
      break;
    }
    if (samples && now >= next) {
      sample(now);
      next += std::chrono::duration_cast<Clock::duration>(interval);
    }
  }
  while (running.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (samples && (samples->empty() || Clock::now() - last >= interval / 4)) sample(Clock::now());
  watcher.join();
  if (progress) fprintf(stderr, "\n");
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void Finish(OpStats* s, double elapsed) {
  if (elapsed <= 0) return;
  s->iops = s->ops / elapsed;
  s->mbps = s->bytes / elapsed / 1e6;
}

}  // namespace

void InterruptRun() { g_interrupted.store(true); }

Status DataDir::Init(const std::string& given) {
  if (!given.empty()) {
    path_ = given;
    return Status::Ok();
  }
  const char* tmp = getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/var/tmp") + "/pstorage-bench-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    return Status::IoError("cannot create a temporary data dir " + templ + ": " + strerror(errno));
  }
  path_ = templ;
  owned_ = true;
  return Status::Ok();
}

void DataDir::Remove() {
  if (!owned_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  owned_ = false;
}

Machine ThisMachine() {
  Machine m;
  m.cores = static_cast<int>(std::thread::hardware_concurrency());
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos)
        m.cpu_model = line.substr(line.find_first_not_of(' ', colon + 1));
      break;
    }
  }
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
  return m;
}

RunReduction ReductionBetween(const ServerMetrics& before, const ServerMetrics& after) {
  RunReduction r;
  if (!before.available || !after.available) return r;
  auto delta = [](uint64_t a, uint64_t b) { return b > a ? b - a : 0; };
  r.available = true;
  r.logical_bytes = delta(before.logical_bytes_written, after.logical_bytes_written);
  r.saved_pattern = delta(before.bytes_saved_pattern, after.bytes_saved_pattern);
  r.saved_dedupe = delta(before.bytes_saved_dedupe, after.bytes_saved_dedupe);
  r.saved_compression = delta(before.bytes_saved_compression, after.bytes_saved_compression);
  uint64_t saved = r.saved_pattern + r.saved_dedupe + r.saved_compression;
  if (r.logical_bytes > saved) {
    r.data_reduction_ratio = static_cast<double>(r.logical_bytes) / (r.logical_bytes - saved);
  } else if (r.logical_bytes > 0) {
    r.data_reduction_ratio = INFINITY;  // nothing stored at all (e.g. all zeros)
  }
  r.live_reduction_ratio = after.data_reduction_ratio;
  r.dedupe_ratio = after.dedupe_ratio;
  r.compression_ratio = after.compression_ratio;
  r.host_pages = delta(before.host_pages_written, after.host_pages_written);
  r.nand_pages = delta(before.nand_pages_written, after.nand_pages_written);
  r.waf = r.host_pages ? static_cast<double>(r.nand_pages) / r.host_pages : 1;
  return r;
}

Result<BenchResult> Run(const BenchOptions& options, Target* target) {
  BenchResult result;
  result.options = options;
  result.machine = ThisMachine();
  result.started_at = NowIso();
  bool progress = !options.quiet && isatty(STDERR_FILENO);
  DataGenerator data(
      DataSpec{options.dedupe_ratio, options.compress_ratio, options.zero_percent, options.seed});
  ServerMetrics before = target->Metrics();

  // Prefill: the working set (or every key) written once, so that reads
  // find data, and the clones of vdi-clone-boot share it.
  bool kv = options.workload == "kv";
  bool fill = options.prefill && (options.read_percent > 0 || options.clones > 0);
  if (fill) {
    if (progress) {
      if (kv) {
        fprintf(stderr, "  prefill: writing %llu keys\n",
                static_cast<unsigned long long>(options.key_count));
      } else {
        fprintf(stderr, "  prefill: writing the %llu MiB working set\n",
                static_cast<unsigned long long>(options.working_set >> 20));
      }
    }
    Phase p;
    p.options = &options, p.target = target, p.data = &data;
    std::vector<WorkerStats> stats(options.queue_depth);
    RunPhase(&p, options.queue_depth, false, 1e9, nullptr, &stats, false);
    if (!p.error.empty()) return Status::IoError("prefill: " + p.error);
  }
  if (Status s = target->AfterPrefill(); !s.ok()) return s;
  ServerMetrics at_start = fill ? target->Metrics() : before;
  if (options.server_pid > 0) at_start.cpu_seconds = ProcessCpuSeconds(options.server_pid);

  Phase p;
  p.options = &options, p.target = target, p.data = &data;
  p.byte_budget = options.total_bytes;
  p.next_block.store(kv ? 0 : options.working_set / kBlock);  // fresh data after the prefill
  std::vector<WorkerStats> stats(options.queue_depth);
  double cpu0 = CpuSeconds();
  double elapsed = RunPhase(&p, options.queue_depth, true, options.duration_s, &result.timeline,
                            &stats, progress);
  result.client_cpu_s = CpuSeconds() - cpu0;
  result.elapsed_s = elapsed;
  for (WorkerStats& w : stats) {
    std::lock_guard<std::mutex> lock(w.mu);
    result.throttled += w.throttled;
    for (OpStats* dst : {&result.reads, &result.total}) {
      dst->ops += w.reads.ops, dst->bytes += w.reads.bytes, dst->errors += w.reads.errors;
      dst->latency.Merge(w.reads.latency);
    }
    for (OpStats* dst : {&result.writes, &result.total}) {
      dst->ops += w.writes.ops, dst->bytes += w.writes.bytes, dst->errors += w.writes.errors;
      dst->latency.Merge(w.writes.latency);
    }
  }
  Finish(&result.reads, elapsed), Finish(&result.writes, elapsed), Finish(&result.total, elapsed);
  if (!p.error.empty()) {
    result.complete = false;
    result.error = p.error;
  }
  ServerMetrics after = target->Metrics();
  if (options.server_pid > 0) after.cpu_seconds = ProcessCpuSeconds(options.server_pid);
  result.reduction = ReductionBetween(before, after);
  if (at_start.cpu_seconds >= 0 && after.cpu_seconds >= 0) {
    result.server_cpu_s = after.cpu_seconds - at_start.cpu_seconds;
  }
  return result;
}

}  // namespace pstorage::bench
