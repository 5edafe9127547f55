// pstorage-http-load: an HTTP load generator for a running `pstorage serve`
// (see http_load.cc for the usage). This header is internal to the tool: it
// joins the driver (http_load_driver.cc: request loops, payloads, timing),
// setup and teardown (http_load_setup.cc), the baseline server
// (http_load_baseline.cc) and the main program.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace pstorage::bench {

constexpr uint64_t kBlockBytes = 4096;
constexpr uint64_t kMiB = 1 << 20;

enum class Kind {
  kEmpty,      // GET on the baseline server, empty 200
  kRead,       // GET .../data?offset=N&length=L (raw bytes)
  kWrite,      // PUT .../data?offset=N, application/octet-stream
  kReadJson,   // GET .../read?offset=N&length=L, base64 in JSON
  kWriteJson,  // POST .../write {"offset":N,"data":"<base64>"}
  // Keys of the project /v1 acts on (http_load_kv.h has keys and values):
  kKvPut,       // PUT /v1/keys/bench:N {"value":{...}}, a random key
  kKvGet,       // GET /v1/keys/bench:N, a random key
  kKvBatchPut,  // POST /v1/batch/put {"items":[...]}, `items` consecutive keys
};

inline bool IsKv(Kind k) {
  return k == Kind::kKvPut || k == Kind::kKvGet || k == Kind::kKvBatchPut;
}

struct Scenario {
  const char* name;
  Kind kind;
  uint64_t size_bytes;  // payload per request; 0 for kEmpty and the KV kinds
  uint64_t items = 1;   // keys per request (kKvBatchPut); 1 otherwise
};

// Every scenario the tool knows: the default set (DefaultScenarios) in its
// order, then the KV scenarios, which need a project on the server.
const std::vector<Scenario>& AllScenarios();

// What runs without --scenarios: the baseline first, reads before the
// writes of the same size, and write1m last, because its gigabyte of
// overwrites can leave a small array collecting garbage for whatever runs
// next. No KV scenario: a server need not have a project.
std::vector<Scenario> DefaultScenarios();

// Where the requests go; constant while a scenario runs.
struct Target {
  std::string host;
  int port = 0;
  std::string api_key;    // sent as X-API-Key when not empty
  std::string volume_id;  // already URL-encoded
  // Reads hit [0, region_bytes), which setup filled; writes hit
  // [region_bytes, volume_bytes), so they never change what reads verify.
  uint64_t region_bytes = 0;
  uint64_t volume_bytes = 0;
  uint64_t data_seed = 0;  // the seed of everything setup wrote
  // KV scenarios use keys bench:0 .. bench:<kv_keys - 1>, all written by setup.
  uint64_t kv_keys = 0;
};

// The most client threads (--threads). KV writes number their revisions
// thread index + 1 + k * kMaxThreads, so no two threads write the same one.
constexpr int kMaxThreads = 1024;

struct RunOptions {
  int threads = 16;
  double warmup_seconds = 1;
  double seconds = 5;
  bool progress = true;  // the `\r` line on stderr
};

// What one scenario measured. Requests and latencies count 2xx answers
// (verified where sampled) completed inside the timed window.
struct ScenarioResult {
  std::string name;
  double seconds = 0;
  uint64_t requests = 0;
  uint64_t items = 0;          // keys written or read: requests x Scenario::items
  uint64_t payload_bytes = 0;  // block data or KV value text moved (not headers or base64)
  uint64_t p50_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
  // Errors: non-2xx answers by status, transport failures, and answers with
  // a wrong size or wrong data (mismatches). All count, warm-up included.
  std::map<int, uint64_t> status_errors;
  uint64_t transport_errors = 0;
  uint64_t mismatches = 0;
  uint64_t verified = 0;           // reads whose data was checked byte for byte
  uint64_t connection_closes = 0;  // answers carrying Connection: close
  uint64_t dedupe_hits = 0;        // writes the server found duplicate (should be 0)
  std::string first_error;         // one example, for the report

  uint64_t errors() const;
  double requests_per_second() const { return seconds > 0 ? requests / seconds : 0; }
  double items_per_second() const { return seconds > 0 ? items / seconds : 0; }
  double megabytes_per_second() const { return seconds > 0 ? payload_bytes / seconds / 1e6 : 0; }
};

// Runs one scenario: `options.threads` threads, each with its own
// keep-alive connection, for the warm-up and then the timed window.
ScenarioResult RunScenario(const Scenario& scenario, const Target& target,
                           const RunOptions& options);

// Fills `n` bytes (a multiple of 4 KiB) at `out` with setup's data for
// `offset`: what FillRegion writes there and reads verify.
void FillSetupData(const Target& t, uint64_t offset, uint8_t* out, uint64_t n);

// "HTTP <status>: <the body's first 200 bytes>" on one line, for reports.
std::string ErrorText(int status, const std::string& body);

// Setup and teardown (http_load_setup.cc), outside the timed window.

// Fills [0, target.region_bytes) with 1 MiB PUTs of the data reads verify,
// on `threads` connections. Stops at the first failure.
Status FillRegion(const Target& target, int threads);

// Writes revision 0 of keys bench:0 .. bench:<target.kv_keys - 1> with
// POST /v1/batch/put of kKvSetupBatchItems keys, on `threads` connections.
// Stops at the first failure.
Status FillKeys(const Target& target, int threads);

// Deletes those keys (POST /v1/batch/delete, one connection).
Status DeleteKeys(const Target& target);

// One HTTP exchange outside the timed loops (setup, teardown): the body of
// a 2xx answer, else an error naming the status and the server's message.
Result<std::string> Call(const Target& target, const std::string& method, const std::string& path,
                         const std::string& json_body);

// What the run needs the server to hold: a volume, keys.
bool NeedsVolume(const std::vector<Scenario>& list);
bool NeedsKeys(const std::vector<Scenario>& list);

// Creates the bench volume bench-<pid> of `volume_gb` GiB (setting the
// target's volume_id and volume_bytes) and fills its read region with
// FillRegion on `threads` connections. On failure deletes the volume; the
// error's message is the whole report for the user.
Status SetUpVolume(double volume_gb, int threads, Target* target);

// Sets the target's kv_keys and writes those keys with FillKeys on `threads`
// connections. On failure deletes them and, when `volume`, the bench volume;
// the error's message is the whole report for the user.
Status SetUpKeys(uint64_t kv_keys, bool volume, int threads, Target* target);

// Deletes what setup made (the keys when `keys`, the volume when `volume`);
// failures are warnings on stderr.
void TearDown(const Target& server, bool volume, bool keys);

// The baseline: a minimal in-process Pistache server on 127.0.0.1, port 0,
// whose handler answers every request 200 with an empty body and sets
// Connection: keep-alive explicitly. Stops when destroyed.
class EmptyServer {
 public:
  static Result<std::unique_ptr<EmptyServer>> Start(int threads);
  ~EmptyServer();
  EmptyServer(const EmptyServer&) = delete;
  EmptyServer& operator=(const EmptyServer&) = delete;
  int port() const { return port_; }

 private:
  struct Impl;
  explicit EmptyServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

// The pistache thread count `pstorage serve` uses by default.
int DefaultServerThreads();

}  // namespace pstorage::bench
