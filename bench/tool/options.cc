// Command line and profiles of `pstorage bench`.
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/tool/bench.h"

namespace pstorage::bench {
namespace {

// "4k", "1m", "256M", "1g", "4096" -> bytes. Binary units.
bool ParseSize(const std::string& text, uint64_t* out) {
  if (text.empty() || text[0] == '-') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str()) return false;
  std::string unit(end);
  if (unit == "b") unit = "";
  if (unit.size() == 3 && (unit[1] == 'i' || unit[1] == 'I') &&
      (unit[2] == 'B' || unit[2] == 'b')) {
    unit = unit.substr(0, 1);
  }
  int shift = 0;
  if (unit.empty()) {
    shift = 0;
  } else if (unit == "k" || unit == "K") {
    shift = 10;
  } else if (unit == "m" || unit == "M") {
    shift = 20;
  } else if (unit == "g" || unit == "G") {
    shift = 30;
  } else if (unit == "t" || unit == "T") {
    shift = 40;
  } else {
    return false;
  }
  if (shift > 0 && v > (~0ull >> shift)) return false;
  *out = static_cast<uint64_t>(v) << shift;
  return true;
}

bool ParseDouble(const std::string& text, double* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool ParseInt(const std::string& text, int64_t lo, int64_t hi, int64_t* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

Status Bad(const std::string& flag, const std::string& value, const std::string& want) {
  return Status::InvalidArgument(flag + ": '" + value + "' is not " + want);
}

// Applies one "--flag value" (or a boolean flag, value unused).
Status ApplyFlag(const std::string& flag, const std::string& value, BenchOptions* o) {
  uint64_t u = 0;
  int64_t i = 0;
  double d = 0;
  if (flag == "--target") {
    if (value != "engine" && value != "rest" && value != "nbd" && value != "redis" &&
        value != "etcd") {
      return Bad(flag, value, "one of engine, rest, nbd, redis, etcd");
    }
    o->target = value;
  } else if (flag == "--url") {
    o->url = value;
  } else if (flag == "--nbd-url") {
    o->nbd_url = value;
  } else if (flag == "--api-key") {
    o->api_key = value;
  } else if (flag == "--volume") {
    o->volume = value;
  } else if (flag == "--data-dir") {
    o->data_dir = value;
  } else if (flag == "--json") {
    o->json_path = value;
  } else if (flag == "--html") {
    o->html_path = value;
  } else if (flag == "--block-size" || flag == "--bs") {
    if (!ParseSize(value, &u) || u == 0 || u % kBlock != 0 || u > (32ull << 20)) {
      return Bad(flag, value, "a multiple of 4k up to 32m (e.g. 4k, 64k, 1m)");
    }
    o->block_size = u;
  } else if (flag == "--pattern") {
    if (value != "random" && value != "sequential") return Bad(flag, value, "random or sequential");
    o->random = value == "random";
  } else if (flag == "--read-percent") {
    if (!ParseDouble(value, &d) || d < 0 || d > 100) return Bad(flag, value, "a number 0..100");
    o->read_percent = d;
  } else if (flag == "--queue-depth" || flag == "--qd") {
    if (!ParseInt(value, 1, 256, &i)) return Bad(flag, value, "an integer 1..256");
    o->queue_depth = static_cast<int>(i);
  } else if (flag == "--working-set") {
    if (!ParseSize(value, &u) || u < kBlock || u % kBlock != 0) {
      return Bad(flag, value, "a size of at least 4k, a multiple of 4k (e.g. 256m, 1g)");
    }
    o->working_set = u;
  } else if (flag == "--duration") {
    if (!ParseDouble(value, &d) || d <= 0 || d > 86400)
      return Bad(flag, value, "seconds in (0, 86400]");
    o->duration_s = d;
  } else if (flag == "--total-bytes") {
    if (!ParseSize(value, &u) || u == 0) return Bad(flag, value, "a positive size (e.g. 1g)");
    o->total_bytes = u;
  } else if (flag == "--seed") {
    if (!ParseInt(value, 0, INT64_MAX, &i)) return Bad(flag, value, "a non-negative integer");
    o->seed = static_cast<uint64_t>(i);
  } else if (flag == "--dedupe-ratio") {
    if (!ParseDouble(value, &d) || d < 1 || d > 1000) return Bad(flag, value, "a ratio 1..1000");
    o->dedupe_ratio = d;
  } else if (flag == "--compress-ratio") {
    if (!ParseDouble(value, &d) || d < 1 || d > 16) return Bad(flag, value, "a ratio 1..16");
    o->compress_ratio = d;
  } else if (flag == "--zero-percent") {
    if (!ParseDouble(value, &d) || d < 0 || d > 100) return Bad(flag, value, "a number 0..100");
    o->zero_percent = d;
  } else if (flag == "--clones") {
    if (!ParseInt(value, 0, 1024, &i)) return Bad(flag, value, "an integer 0..1024");
    o->clones = static_cast<int>(i);
  } else if (flag == "--value-bytes") {
    if (!ParseSize(value, &u) || u == 0 || u > (1u << 20)) return Bad(flag, value, "1..1m bytes");
    o->value_bytes = u;
  } else if (flag == "--keys") {
    if (!ParseInt(value, 1, 100000000, &i)) return Bad(flag, value, "an integer 1..100000000");
    o->key_count = static_cast<uint64_t>(i);
  } else if (flag == "--server-pid") {
    if (!ParseInt(value, 1, INT32_MAX, &i)) return Bad(flag, value, "a process id");
    o->server_pid = static_cast<int>(i);
  } else if (flag == "--interval") {
    if (!ParseDouble(value, &d) || d < 0.1 || d > 3600)
      return Bad(flag, value, "seconds 0.1..3600");
    o->interval_s = d;
  } else {
    return Status::InvalidArgument("unknown option " + flag + " (see pstorage bench --help)");
  }
  return Status::Ok();
}

bool IsBooleanFlag(const std::string& flag) {
  return flag == "--no-prefill" || flag == "--prefill" || flag == "--quiet" || flag == "-q";
}

}  // namespace

const std::vector<Profile>& Profiles() {
  static const std::vector<Profile> profiles = {
      {"oltp-4k",
       "a database on a volume: 4 KiB random I/O, 70 % reads, queue depth 16 over a 256 MiB "
       "working set that is prefilled; data 2:1 compressible, few duplicates (1.2:1), 5 % "
       "zero blocks"},
      {"vdi-clone-boot",
       "virtual desktops booting: a 128 MiB golden image written once, 8 O(1) clones of it, "
       "then 4 KiB random I/O spread over the clones, 80 % reads, queue depth 8; data "
       "3:1 duplicate (shared OS files), 2:1 compressible, 10 % zero blocks"},
      {"backup-seq-1m",
       "a backup stream landing on a volume: 1 MiB sequential writes, queue depth 4, "
       "data 2:1 duplicate (repeated fulls), 2:1 compressible, 5 % zero blocks"},
      {"kv-small",
       "a key-value service: 100-byte JSON values over 10,000 keys, 50 % gets / 50 % puts, "
       "16 clients; every put durable before its reply"},
  };
  return profiles;
}

Status ApplyProfile(const std::string& name, BenchOptions* o) {
  if (name == "oltp-4k") {
    o->block_size = 4096, o->random = true, o->read_percent = 70, o->queue_depth = 16;
    o->working_set = 256ull << 20;
    o->dedupe_ratio = 1.2, o->compress_ratio = 2, o->zero_percent = 5;
  } else if (name == "vdi-clone-boot") {
    o->block_size = 4096, o->random = true, o->read_percent = 80, o->queue_depth = 8;
    o->working_set = 128ull << 20, o->clones = 8;
    o->dedupe_ratio = 3, o->compress_ratio = 2, o->zero_percent = 10;
  } else if (name == "backup-seq-1m") {
    o->block_size = 1 << 20, o->random = false, o->read_percent = 0, o->queue_depth = 4;
    o->working_set = 512ull << 20, o->prefill = false;
    o->dedupe_ratio = 2, o->compress_ratio = 2, o->zero_percent = 5;
  } else if (name == "kv-small") {
    o->workload = "kv", o->read_percent = 50, o->queue_depth = 16;
    o->value_bytes = 100, o->key_count = 10000;
  } else {
    std::string names;
    for (const Profile& p : Profiles()) names += (names.empty() ? "" : ", ") + std::string(p.name);
    return Status::InvalidArgument("--profile: unknown profile '" + name + "' (one of " + names +
                                   ")");
  }
  o->profile = name;
  return Status::Ok();
}

Status ValidateOptions(const BenchOptions& o) {
  bool kv = o.workload == "kv";
  if ((o.target == "redis" || o.target == "etcd") && !kv) {
    return Status::InvalidArgument("--target " + o.target +
                                   " is a key-value peer: use it with --profile kv-small");
  }
  if (kv && o.target == "nbd") {
    return Status::InvalidArgument("--profile kv-small needs --target engine, rest, redis or etcd");
  }
  if ((o.target == "rest" || o.target == "redis" || o.target == "etcd") && o.url.empty()) {
    return Status::InvalidArgument("--target " + o.target + " needs --url (e.g. " +
                                   (o.target == "redis"  ? "redis://127.0.0.1:6379"
                                    : o.target == "etcd" ? "http://127.0.0.1:2379"
                                                         : "http://127.0.0.1:8000") +
                                   ")");
  }
  if (o.target == "nbd" && o.url.empty() && o.nbd_url.empty()) {
    return Status::InvalidArgument(
        "--target nbd needs --url (the server, to create a volume and read metrics) or --nbd-url "
        "nbd://HOST:PORT/EXPORT (an existing export)");
  }
  if (o.target == "nbd" && o.clones > 0 && o.url.empty()) {
    return Status::InvalidArgument("--clones with --target nbd needs --url to create the clones");
  }
  if (!kv && o.working_set < o.block_size) {
    return Status::InvalidArgument("--working-set must be at least --block-size");
  }
  if (!kv && o.working_set % o.block_size != 0) {
    return Status::InvalidArgument("--working-set must be a multiple of --block-size");
  }
  if (o.target != "engine" && !o.data_dir.empty()) {
    return Status::InvalidArgument("--data-dir is for --target engine only");
  }
  if (o.server_pid > 0 &&
      access(("/proc/" + std::to_string(o.server_pid) + "/stat").c_str(), R_OK) != 0) {
    return Status::InvalidArgument("--server-pid: no process " + std::to_string(o.server_pid) +
                                   " on this machine");
  }
  if (o.target == "engine" && !o.volume.empty()) {
    return Status::InvalidArgument("--volume is for --target rest or nbd");
  }
  return Status::Ok();
}

std::string Usage() {
  std::string u =
      "usage: pstorage bench [--target engine|rest|nbd|redis|etcd] [--url URL] [--profile NAME]\n"
      "                      [--duration SECONDS] [--json FILE] [--html FILE] [options]\n"
      "       pstorage bench --compare A.json B.json\n"
      "\n"
      "Runs a workload and reports IOPS, MB/s, latency percentiles (p50..max), the data\n"
      "reduction and flash write amplification the server reports, and CPU seconds.\n"
      "\n"
      "targets:\n"
      "  engine   the engine in-process on a temporary data dir (no network; its ceiling)\n"
      "  rest     a running server's raw data endpoints       --url http://127.0.0.1:8000\n"
      "  nbd      a running server's NBD export               --url http://127.0.0.1:8000\n"
      "           (creates the volume; NBD at the URL's host, port 10809, or --nbd-url);\n"
      "           any NBD server: --url (or --nbd-url) nbd://HOST:PORT/EXPORT alone\n"
      "  redis    redis-server, for kv-small                  --url redis://127.0.0.1:6379\n"
      "  etcd     etcd's JSON gateway, for kv-small           --url http://127.0.0.1:2379\n"
      "\n"
      "workload:\n"
      "  --block-size SIZE      bytes per I/O, multiple of 4k (default 4k)\n"
      "  --pattern random|sequential                  (default random)\n"
      "  --read-percent P       share of reads, 0..100 (default 0)\n"
      "  --queue-depth N        I/Os in flight: N workers (default 1)\n"
      "  --working-set SIZE     bytes of the volume touched (default 256m)\n"
      "  --duration SECONDS     measured run length (default 10)\n"
      "  --total-bytes SIZE     stop after this many bytes instead (whichever first)\n"
      "  --no-prefill           do not write the working set before a run with reads\n"
      "  --clones N             write a golden volume, clone it N times, run over the clones\n"
      "  --seed N               data and offsets are a function of the seed (default 1)\n"
      "  --volume NAME          use this existing volume (rest, nbd) instead of a new one\n"
      "  --data-dir DIR         engine target: keep the data here (default a temp dir)\n"
      "  --api-key KEY          rest/nbd (default $PSTORAGE_API_KEY)\n"
      "  --nbd-url nbd://HOST:PORT[/EXPORT]\n"
      "\n"
      "data written (like vdbench dedupratio/compratio):\n"
      "  --dedupe-ratio X       non-zero blocks / distinct blocks (default 1)\n"
      "  --compress-ratio X     4096 / LZ4 size of a distinct block (default 1)\n"
      "  --zero-percent P       share of all-zero blocks (default 0)\n"
      "\n"
      "key-value (kv-small):\n"
      "  --value-bytes N        value size (default 100)\n"
      "  --keys N               distinct keys (default 10000)\n"
      "\n"
      "output:\n"
      "  --json FILE            the result for machines (schema pstorage-bench/1)\n"
      "  --html FILE            a self-contained report with charts\n"
      "  --interval SECONDS     time-series resolution (default 1)\n"
      "  --server-pid PID       a server on this machine whose CPU seconds to report (read\n"
      "                         from /proc; pstorage serve reports its own through /metrics)\n"
      "  --quiet                no progress line (it is off anyway when stderr is not a terminal)\n"
      "\n"
      "profiles (explicit options override them):\n";
  for (const Profile& p : Profiles())
    u += "  " + std::string(p.name) + "\n      " + p.models + "\n";
  return u;
}

Result<BenchOptions> ParseOptions(int argc, char** argv) {
  BenchOptions o;
  if (const char* key = std::getenv("PSTORAGE_API_KEY")) o.api_key = key;
  // The profile first, so that explicit flags override it wherever they are.
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    std::string value;
    if (a.rfind("--profile=", 0) == 0) {
      value = a.substr(10);
    } else if (a == "--profile") {
      if (i + 1 >= argc) return Status::InvalidArgument("--profile needs a value");
      value = argv[i + 1];
    } else {
      continue;
    }
    Status s = ApplyProfile(value, &o);
    if (!s.ok()) return s;
  }
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") return Status::FailedPrecondition("");
    if (a.rfind("--", 0) != 0) return Status::InvalidArgument("unexpected argument '" + a + "'");
    std::string flag = a, value;
    bool inline_value = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      flag = a.substr(0, eq), value = a.substr(eq + 1), inline_value = true;
    }
    if (IsBooleanFlag(flag)) {
      if (inline_value) return Status::InvalidArgument(flag + " takes no value");
      if (flag == "--no-prefill") o.prefill = false;
      if (flag == "--prefill") o.prefill = true;
      if (flag == "--quiet" || flag == "-q") o.quiet = true;
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) return Status::InvalidArgument(flag + " needs a value");
      value = argv[++i];
    }
    if (flag == "--profile") continue;
    Status s = ApplyFlag(flag, value, &o);
    if (!s.ok()) return s;
  }
  // `--target nbd --url nbd://...` names the export directly, like --nbd-url.
  if (o.target == "nbd" && o.url.rfind("nbd://", 0) == 0) {
    if (!o.nbd_url.empty())
      return Status::InvalidArgument("--url nbd://... and --nbd-url both given");
    o.nbd_url = o.url;
    o.url.clear();
  }
  Status s = ValidateOptions(o);
  if (!s.ok()) return s;
  return o;
}

}  // namespace pstorage::bench
