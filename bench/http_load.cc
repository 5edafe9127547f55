// pstorage-http-load: drives a running `pstorage serve` over HTTP and, in the
// same run, a minimal in-process Pistache server (the `empty` baseline), so
// that the REST server's throughput can be judged against the transport's
// own ceiling on the same machine at the same moment.
//
// Usage: pstorage-http-load --url http://127.0.0.1:PORT [--api-key KEY]
//          [--threads N] [--seconds S] [--warmup S] [--volume-gb G]
//          [--region-mb M] [--kv-keys N] [--scenarios a,b,c] [--markdown FILE]
//          [--json]
//
// The tool creates its own volume `bench-<pid>` (size_gb G), fills its first
// M MiB with 1 MiB PUTs, runs each scenario (N closed-loop client threads,
// one keep-alive connection each, a warm-up and then S timed seconds) and
// deletes the volume. Reads stay inside the filled region and check 1 in 64
// answers against the data setup wrote; writes go to the rest of the volume.
// Any non-2xx answer, transport failure or wrong data is an error: errors
// are reported per scenario and make the exit code 3.
//
// The KV scenarios (kv_put, kv_get, kv_batch100) run only when named: they
// act through /v1 on the project of the caller's key, which for the admin key
// (or with authentication off) is the first project in the server's
// config.json "projects". Setup writes keys bench:0 .. bench:<N-1> of that
// project in batches of 500; kv_get reads them and checks 1 in 64 values
// byte for byte; kv_put and kv_batch100 overwrite them; the keys are deleted
// at the end. The volume is only created when a volume scenario runs.
//
// --api-key defaults to $PSTORAGE_API_KEY. The server must run with its rate
// limit off (or high): answers 429 are errors and are reported loudly.
#include "bench/http_load.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "bench/http_load_kv.h"

namespace pstorage::bench {
namespace {

struct Args {
  std::string url;
  std::string api_key;
  RunOptions run;
  double volume_gb = 1;
  uint64_t region_mb = 256;
  uint64_t kv_keys = 10000;
  std::vector<Scenario> scenarios = DefaultScenarios();
  std::string markdown_path;
  bool json = false;
};

[[noreturn]] void Die(const std::string& message, int code = 1) {
  std::fprintf(stderr, "pstorage-http-load: %s\n", message.c_str());
  std::exit(code);
}

void Usage() {
  std::fprintf(stderr,
               "usage: pstorage-http-load --url http://127.0.0.1:PORT [--api-key KEY]\n"
               "         [--threads N (16)] [--seconds S (5)] [--warmup S (1)]\n"
               "         [--volume-gb G (1)] [--region-mb M (256)] [--kv-keys N (10000)]\n"
               "         [--scenarios a,b,c] [--markdown FILE] [--json]\n"
               "scenarios (\"default\" in --scenarios stands for the default set):");
  for (const Scenario& s : AllScenarios()) std::fprintf(stderr, " %s", s.name);
  std::fprintf(stderr, "\ndefault set:");
  for (const Scenario& s : DefaultScenarios()) std::fprintf(stderr, " %s", s.name);
  std::fprintf(stderr,
               "\nkv_* run only when named. They need a project on the server: they use /v1,\n"
               "which acts on the project of the key sent, and for the admin key (or with\n"
               "authentication off) on the first project in the server's config.json\n"
               "\"projects\", e.g. {\"id\": \"bench\", \"storage\": {\"on_disk\": true}}.\n"
               "They overwrite keys bench:0 .. bench:<N-1> of it (--kv-keys, >= 100) and\n"
               "delete them at the end.\n");
}

double ParseNumber(const std::string& flag, const std::string& text, double min, double max) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= min && v <= max)) {
    Die(flag + " must be a number in [" + std::to_string(min) + ", " + std::to_string(max) +
            "], got '" + text + "'",
        2);
  }
  return v;
}

std::vector<Scenario> ParseScenarios(const std::string& list) {
  std::vector<Scenario> out;
  const std::vector<Scenario> defaults = DefaultScenarios();
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    std::string name = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    bool found = name == "default";
    if (found) out.insert(out.end(), defaults.begin(), defaults.end());
    for (const Scenario& s : AllScenarios()) {
      if (name == s.name) out.push_back(s), found = true;
    }
    if (!found) {
      Usage();
      Die("unknown scenario '" + name + "'", 2);
    }
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  if (const char* key = std::getenv("PSTORAGE_API_KEY")) a.api_key = key;
  for (int i = 1; i < argc; i++) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      Usage();
      std::exit(0);
    }
    if (flag == "--json") {
      a.json = true;
      continue;
    }
    if (i + 1 >= argc) {
      Usage();
      Die("unknown option or missing value: " + flag, 2);
    }
    std::string v = argv[++i];
    if (flag == "--url") {
      a.url = v;
    } else if (flag == "--api-key") {
      a.api_key = v;
    } else if (flag == "--threads") {
      a.run.threads = static_cast<int>(ParseNumber(flag, v, 1, kMaxThreads));
    } else if (flag == "--seconds") {
      a.run.seconds = ParseNumber(flag, v, 0.1, 3600);
    } else if (flag == "--warmup") {
      a.run.warmup_seconds = ParseNumber(flag, v, 0, 3600);
    } else if (flag == "--volume-gb") {
      a.volume_gb = ParseNumber(flag, v, 0.02, 1024);
    } else if (flag == "--region-mb") {
      a.region_mb = static_cast<uint64_t>(ParseNumber(flag, v, 1, 1 << 20));
    } else if (flag == "--kv-keys") {
      a.kv_keys = static_cast<uint64_t>(ParseNumber(flag, v, 100, 1e8));
    } else if (flag == "--scenarios") {
      a.scenarios = ParseScenarios(v);
    } else if (flag == "--markdown") {
      a.markdown_path = v;
    } else {
      Usage();
      Die("unknown option " + flag, 2);
    }
  }
  if (a.url.empty()) {
    Usage();
    Die("--url is required", 2);
  }
  return a;
}

// "http://HOST[:PORT][/]" into the target's host and port.
void ParseUrl(const std::string& url, Target* t) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) Die("--url must start with http://", 2);
  std::string rest = url.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) Die("--url must not have a path: " + url, 2);
  size_t colon = rest.rfind(':');
  t->host = rest.substr(0, colon);
  t->port = colon == std::string::npos
                ? 80
                : static_cast<int>(ParseNumber("--url port", rest.substr(colon + 1), 1, 65535));
  if (t->host.empty()) Die("--url has no host: " + url, 2);
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

int Nproc() {  // what `nproc` prints: the CPUs this process may run on
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return CPU_COUNT(&set);
}

// The 1-minute load average: other work on the machine shows up here, and
// these numbers are only worth comparing when it was low.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string first;
  in >> first;
  return first.empty() ? "unknown" : first;
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string Describe(const Scenario& s) {
  const std::string size = s.size_bytes == kMiB ? "1 MiB" : "4 KiB";
  switch (s.kind) {
    case Kind::kEmpty:
      return "baseline: in-process Pistache, " + std::to_string(DefaultServerThreads()) +
             " threads, empty 200";
    case Kind::kRead:
      return "GET .../data, " + size + " raw";
    case Kind::kWrite:
      return "PUT .../data, " + size + " raw, unique";
    case Kind::kReadJson:
      return "GET .../read, " + size + " as base64 JSON";
    case Kind::kWriteJson:
      return "POST .../write, " + size + " as base64 JSON, unique";
    case Kind::kKvPut:
      return "PUT /v1/keys/{key}, ~100 B JSON value";
    case Kind::kKvGet:
      return "GET /v1/keys/{key}, ~100 B JSON value";
    case Kind::kKvBatchPut:
      return "POST /v1/batch/put, " + std::to_string(s.items) + " keys x ~100 B JSON values";
  }
  return "";
}

std::string ErrorSummary(const ScenarioResult& r) {
  std::string s;
  for (const auto& [status, count] : r.status_errors) {
    s += " HTTP " + std::to_string(status) + " x" + std::to_string(count) + ";";
  }
  if (r.transport_errors) s += " transport x" + std::to_string(r.transport_errors) + ";";
  if (r.mismatches) s += " wrong size/data x" + std::to_string(r.mismatches) + ";";
  return s + " first: " + r.first_error;
}

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

const ScenarioResult* Find(const std::vector<ScenarioResult>& results, const char* name) {
  for (const ScenarioResult& r : results) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

const Scenario& ScenarioOf(const ScenarioResult& r) {
  for (const Scenario& s : AllScenarios()) {
    if (r.name == s.name) return s;
  }
  Die("no scenario named " + r.name);
}

// "read4k / empty" when both ran.
std::optional<double> Ratio(const std::vector<ScenarioResult>& results, const char* a) {
  const ScenarioResult* x = Find(results, a);
  const ScenarioResult* base = Find(results, "empty");
  if (x == nullptr || base == nullptr || base->requests == 0) return std::nullopt;
  return x->requests_per_second() / base->requests_per_second();
}

void PrintTable(std::FILE* out, const std::vector<ScenarioResult>& results) {
  std::fprintf(out, "%-13s %10s %9s %9s %9s %9s %8s\n", "scenario", "req/s", "MB/s", "p50 ms",
               "p99 ms", "p99.9 ms", "errors");
  for (const ScenarioResult& r : results) {
    std::fprintf(out, "%-13s %10.0f %9.1f %9.3f %9.3f %9.3f %8llu\n", r.name.c_str(),
                 r.requests_per_second(), r.megabytes_per_second(), Ms(r.p50_ns), Ms(r.p99_ns),
                 Ms(r.p999_ns), static_cast<unsigned long long>(r.errors()));
  }
  if (auto q = Ratio(results, "read4k")) {
    std::fprintf(out, "read4k / empty  = %.3f (target >= 0.6: %s)\n", *q,
                 *q >= 0.6 ? "met" : "MISSED");
  }
  if (auto q = Ratio(results, "write4k")) std::fprintf(out, "write4k / empty = %.3f\n", *q);
  for (const ScenarioResult& r : results) {
    if (!IsKv(ScenarioOf(r).kind)) continue;
    if (auto q = Ratio(results, r.name.c_str())) {
      std::fprintf(out, "%s / empty = %.3f\n", r.name.c_str(), *q);
    }
    if (ScenarioOf(r).items > 1) {
      std::fprintf(out, "%s: %.0f items/s (%llu keys per request)\n", r.name.c_str(),
                   r.items_per_second(), static_cast<unsigned long long>(ScenarioOf(r).items));
    }
  }
  for (const ScenarioResult& r : results) {
    if (r.errors()) {
      std::fprintf(out, "%s: %llu errors:%s\n", r.name.c_str(),
                   static_cast<unsigned long long>(r.errors()), ErrorSummary(r).c_str());
    }
    if (r.dedupe_hits) {
      std::fprintf(out, "%s: %llu writes were dedupe hits (the payloads are meant to be unique)\n",
                   r.name.c_str(), static_cast<unsigned long long>(r.dedupe_hits));
    }
    if (r.connection_closes) {
      std::fprintf(out, "%s: %llu answers carried Connection: close (keep-alive lost)\n",
                   r.name.c_str(), static_cast<unsigned long long>(r.connection_closes));
    }
  }
}

void PrintJson(const std::vector<ScenarioResult>& results, const Args& a) {
  for (const ScenarioResult& r : results) {
    std::printf(
        "{\"scenario\":\"%s\",\"threads\":%d,\"seconds\":%.3f,\"requests\":%llu,"
        "\"req_per_s\":%.1f,\"items\":%llu,\"items_per_s\":%.1f,\"mb_per_s\":%.3f,"
        "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
        "\"errors\":%llu,\"mismatches\":%llu,"
        "\"transport_errors\":%llu,\"verified\":%llu,\"connection_closes\":%llu,"
        "\"dedupe_hits\":%llu,"
        "\"status_errors\":{",
        r.name.c_str(), a.run.threads, r.seconds, static_cast<unsigned long long>(r.requests),
        r.requests_per_second(), static_cast<unsigned long long>(r.items), r.items_per_second(),
        r.megabytes_per_second(), r.p50_ns / 1e3, r.p99_ns / 1e3, r.p999_ns / 1e3, r.max_ns / 1e3,
        static_cast<unsigned long long>(r.errors()), static_cast<unsigned long long>(r.mismatches),
        static_cast<unsigned long long>(r.transport_errors),
        static_cast<unsigned long long>(r.verified),
        static_cast<unsigned long long>(r.connection_closes),
        static_cast<unsigned long long>(r.dedupe_hits));
    const char* sep = "";
    for (const auto& [status, count] : r.status_errors) {
      std::printf("%s\"%d\":%llu", sep, status, static_cast<unsigned long long>(count));
      sep = ",";
    }
    std::printf("}}\n");
  }
  std::fflush(stdout);
}

void AppendMarkdown(const std::vector<ScenarioResult>& results, const Args& a,
                    const std::string& load_before) {
  std::FILE* f = std::fopen(a.markdown_path.c_str(), "a");
  if (f == nullptr) Die("cannot open " + a.markdown_path + " for appending");
  const bool keys = NeedsKeys(a.scenarios);
  std::fprintf(f,
               "Machine: %d CPUs (nproc), %s; %s; 1-minute load average %s before the "
               "run. Client: %d threads, one keep-alive "
               "connection each, on the same machine; %.3g s warm-up, then %.3g s timed per "
               "scenario. ",
               Nproc(), CpuModel().c_str(), UtcNow().c_str(), load_before.c_str(), a.run.threads,
               a.run.warmup_seconds, a.run.seconds);
  if (NeedsVolume(a.scenarios) || !keys) {
    std::fprintf(f,
                 "Volume of %g GiB: reads over its first %llu MiB (filled at setup), "
                 "writes over the rest. ",
                 a.volume_gb, static_cast<unsigned long long>(a.region_mb));
  }
  if (keys) {
    std::fprintf(f,
                 "Keys `bench:0` .. `bench:%llu` of the server's first project, all written at "
                 "setup (batches of %llu); a random key per request (`kv_batch100`: 100 "
                 "consecutive ones); values are ~100-byte JSON objects, and 1 in 64 `kv_get` "
                 "answers are checked byte for byte. The server fdatasyncs every acknowledged "
                 "key write (group commit). ",
                 static_cast<unsigned long long>(a.kv_keys - 1),
                 static_cast<unsigned long long>(kKvSetupBatchItems));
  }
  std::fprintf(f,
               "MB/s counts block data%s (10^6 bytes); latencies are "
               "exact percentiles over every request of the timed window.\n\n",
               keys ? " or KV value text" : " only");
  std::fprintf(f,
               "| scenario | request | req/s | MB/s | p50 ms | p99 ms | p99.9 ms | errors |\n"
               "|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (const ScenarioResult& r : results) {
    const Scenario& s = ScenarioOf(r);
    std::string request = Describe(s);
    if (s.items > 1) {
      char items[64];
      std::snprintf(items, sizeof(items), ": **%.0f items/s**", r.items_per_second());
      request += items;
    }
    std::fprintf(f, "| `%s` | %s | %.0f | %.1f | %.3f | %.3f | %.3f | %s%llu%s |\n", r.name.c_str(),
                 request.c_str(), r.requests_per_second(), r.megabytes_per_second(), Ms(r.p50_ns),
                 Ms(r.p99_ns), Ms(r.p999_ns), r.errors() ? "**" : "",
                 static_cast<unsigned long long>(r.errors()), r.errors() ? "**" : "");
  }
  auto read = Ratio(results, "read4k"), write = Ratio(results, "write4k");
  bool any_kv_ratio = false;
  for (const ScenarioResult& r : results) {
    any_kv_ratio |= IsKv(ScenarioOf(r).kind) && Ratio(results, r.name.c_str());
  }
  if (read || write || any_kv_ratio) {
    std::fprintf(f, "\n| ratio | this run | target | |\n|---|---:|---:|---|\n");
  }
  if (read) {
    std::fprintf(f, "| `read4k` / `empty` req/s | %.3f | >= 0.60 | %s |\n", *read,
                 *read >= 0.6 ? "met" : "**missed**");
  }
  if (write) std::fprintf(f, "| `write4k` / `empty` req/s | %.3f | none | |\n", *write);
  for (const ScenarioResult& r : results) {
    auto q = Ratio(results, r.name.c_str());
    if (IsKv(ScenarioOf(r).kind) && q) {
      std::fprintf(f, "| `%s` / `empty` req/s | %.3f | none | |\n", r.name.c_str(), *q);
    }
  }
  for (const ScenarioResult& r : results) {
    if (r.errors()) {
      std::fprintf(f, "\n**%s: %llu errors.**%s\n", r.name.c_str(),
                   static_cast<unsigned long long>(r.errors()), ErrorSummary(r).c_str());
    }
    if (r.dedupe_hits || r.connection_closes) {
      std::fprintf(f,
                   "\n**%s: %llu writes were dedupe hits, %llu answers closed the connection "
                   "(both should be 0).**\n",
                   r.name.c_str(), static_cast<unsigned long long>(r.dedupe_hits),
                   static_cast<unsigned long long>(r.connection_closes));
    }
  }
  std::fprintf(f, "\n");
  std::fclose(f);
}

int Main(int argc, char** argv) {
  Args a = ParseArgs(argc, argv);
  const std::string load_before = LoadAverage();
  Target server;
  ParseUrl(a.url, &server);
  server.api_key = a.api_key;
  server.region_bytes = a.region_mb * kMiB;
  server.data_seed =
      (static_cast<uint64_t>(::getpid()) << 32) ^
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  const bool needs_volume = NeedsVolume(a.scenarios);
  const bool needs_keys = NeedsKeys(a.scenarios);

  if (needs_volume) {
    if (Status st = SetUpVolume(a.volume_gb, a.run.threads, &server); !st.ok()) Die(st.message());
  }
  if (needs_keys) {
    if (Status st = SetUpKeys(a.kv_keys, needs_volume, a.run.threads, &server); !st.ok()) {
      Die(st.message());
    }
  }

  std::vector<ScenarioResult> results;
  for (const Scenario& s : a.scenarios) {
    if (s.kind != Kind::kEmpty) {
      results.push_back(RunScenario(s, server, a.run));
      continue;
    }
    Result<std::unique_ptr<EmptyServer>> empty = EmptyServer::Start(DefaultServerThreads());
    if (!empty.ok()) Die(empty.status().ToString());
    Target baseline = server;
    baseline.host = "127.0.0.1";
    baseline.port = (*empty)->port();
    results.push_back(RunScenario(s, baseline, a.run));
  }

  TearDown(server, needs_volume, needs_keys);
  PrintTable(a.json ? stderr : stdout, results);
  if (a.json) PrintJson(results, a);
  if (!a.markdown_path.empty()) AppendMarkdown(results, a, load_before);
  uint64_t errors = 0;
  for (const ScenarioResult& r : results) errors += r.errors();
  bool rate_limited = false;
  for (const ScenarioResult& r : results) rate_limited |= r.status_errors.count(429) != 0;
  if (rate_limited) {
    std::fprintf(stderr,
                 "!!! the server rate-limited this run (HTTP 429): the numbers are the "
                 "limiter's, not the server's. Use \"rate_limit\": {\"enabled\": false}.\n");
  }
  if (errors) {
    std::fprintf(stderr, "pstorage-http-load: %llu errors (see above)\n",
                 static_cast<unsigned long long>(errors));
    return 3;
  }
  return 0;
}

}  // namespace
}  // namespace pstorage::bench

int main(int argc, char** argv) { return pstorage::bench::Main(argc, argv); }
