// The load generator's request loops. Each thread owns one keep-alive
// HttpClient and its buffers, issues requests back to back (closed loop) and
// records the latency of every 2xx answer completed inside the timed window;
// the main thread only prints progress and merges the results afterwards.
//
// Payloads: every 4 KiB block is 2 KiB of pseudo-random bytes followed by
// 2 KiB of zeros (about 2x compressible by LZ4, never a dedupe hit), made
// from a 64-bit seed. Setup's blocks take their seed from the run's data seed
// and the block's offset, so a read can recompute what it must return;
// written blocks take theirs from a per-thread counter, so each differs.
// KV values are made the same way from the key and a revision
// (http_load_kv.h); each write carries a revision unique within the run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "api/http_client.h"
#include "bench/http_load.h"
#include "bench/http_load_kv.h"

namespace pstorage::bench {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kVerifyEvery = 64;               // reads whose data is checked: 1 in 64
constexpr int kMaxConsecutiveTransportErrors = 50;  // then the thread gives up
constexpr size_t kLatencyReserve = 1 << 17;         // per thread, preallocated

void FillBlock(uint64_t seed, uint8_t* out) {
  uint64_t s = seed;
  for (size_t i = 0; i < kBlockBytes / 2; i += 8) {
    s += 0x9e3779b97f4a7c15ull;
    uint64_t v = Mix64(s);
    std::memcpy(out + i, &v, 8);
  }
  std::memset(out + kBlockBytes / 2, 0, kBlockBytes / 2);
}

uint64_t SetupSeed(const Target& t, uint64_t offset) { return Mix64(t.data_seed ^ offset); }

}  // namespace

void FillSetupData(const Target& t, uint64_t offset, uint8_t* out, uint64_t n) {
  for (uint64_t i = 0; i < n; i += kBlockBytes) FillBlock(SetupSeed(t, offset + i), out + i);
}

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void Base64Append(const uint8_t* p, size_t n, std::string* out) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = uint32_t{p[i]} << 16 | uint32_t{p[i + 1]} << 8 | p[i + 2];
    const char q[4] = {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], kB64[v & 63]};
    out->append(q, 4);
  }
  if (i < n) {
    uint32_t v = uint32_t{p[i]} << 16 | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0);
    out->push_back(kB64[v >> 18]);
    out->push_back(kB64[(v >> 12) & 63]);
    out->push_back(i + 1 < n ? kB64[(v >> 6) & 63] : '=');
    out->push_back('=');
  }
}

// Strict base64 (padded, no whitespace); false on any other character.
bool Base64Decode(std::string_view in, std::string* out) {
  out->clear();
  if (in.size() % 4 != 0) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.size(); i++) {
    char c = in[i];
    if (c == '=') {
      if (i + 2 < in.size()) return false;
      continue;
    }
    const char* at = std::strchr(kB64, c);
    if (c == '\0' || at == nullptr) return false;
    acc = acc << 6 | static_cast<uint32_t>(at - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

// The value of the first "key":"..." string in a JSON body. The server's
// base64 strings carry no escapes; this avoids a DOM parse per request on
// the cores the server shares with the load generator.
std::string_view JsonStringField(std::string_view body, std::string_view key) {
  std::string pattern = "\"" + std::string(key) + "\":\"";
  size_t at = body.find(pattern);
  if (at == std::string_view::npos) return {};
  at += pattern.size();
  size_t end = body.find('"', at);
  return end == std::string_view::npos ? std::string_view() : body.substr(at, end - at);
}

// One client thread: its connection, buffers and tallies.
class Worker {
 public:
  // `write_seed` differs per scenario run, so that no two runs write alike.
  Worker(const Scenario& s, const Target& t, int index, uint64_t write_seed)
      : scenario_(s),
        target_(t),
        client_(t.host, t.port),
        rng_(Mix64(t.data_seed + static_cast<uint64_t>(index))),
        // Seeds of written blocks: distinct per thread (the index in the top
        // bits) and per block (a counter below), unrelated to setup's.
        write_seed_(write_seed + (static_cast<uint64_t>(index) << 40)) {
    if (!t.api_key.empty()) headers_.emplace_back("X-API-Key", t.api_key);
    if (s.kind == Kind::kWrite) headers_.emplace_back("Content-Type", "application/octet-stream");
    if (s.kind == Kind::kWriteJson || s.kind == Kind::kKvPut || s.kind == Kind::kKvBatchPut) {
      headers_.emplace_back("Content-Type", "application/json");
    }
    data_.resize(std::max<uint64_t>(s.size_bytes, kBlockBytes));
    expected_.resize(data_.size());
    latencies_ns_.reserve(kLatencyReserve);
    path_.reserve(128);
    body_.reserve(s.size_bytes / 3 * 4 + 160 * s.items + 128);
    // Revisions index + 1, + kMaxThreads, ...: distinct between the threads.
    next_rev_ = static_cast<uint64_t>(index) + 1;
    batch_count_ = "\"count\":" + std::to_string(s.items) + ",";
  }

  // Closed loop until `end`; records answers completed in [start, end).
  void Run(Clock::time_point start, Clock::time_point end) {
    int transport_in_a_row = 0;
    for (;;) {
      const Clock::time_point t0 = Clock::now();
      if (t0 >= end) break;
      const bool ok = One();
      const Clock::time_point t1 = Clock::now();
      if (ok && t1 >= start && t1 < end) {
        latencies_ns_.push_back(static_cast<uint64_t>((t1 - t0).count()));
        result_.payload_bytes += moved_bytes_;
        done_.fetch_add(1, std::memory_order_relaxed);
      }
      transport_in_a_row = last_was_transport_error_ ? transport_in_a_row + 1 : 0;
      if (transport_in_a_row >= kMaxConsecutiveTransportErrors) break;  // server gone
    }
    result_.requests = latencies_ns_.size();
  }

  uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  const ScenarioResult& result() const { return result_; }
  const std::vector<uint64_t>& latencies_ns() const { return latencies_ns_; }

 private:
  bool One();
  uint64_t RandomOffset(uint64_t base, uint64_t span, uint64_t unit) {
    rng_ += 0x9e3779b97f4a7c15ull;
    return base + Mix64(rng_) % (span / unit) * unit;
  }
  void BuildPath(const char* verb, uint64_t offset, bool with_length);
  void FillWriteData() {
    for (uint64_t i = 0; i < scenario_.size_bytes; i += kBlockBytes) {
      FillBlock(Mix64(write_seed_ + write_count_++), data_.data() + i);
    }
  }
  bool Fail(std::string what) {
    if (result_.first_error.empty()) result_.first_error = std::move(what);
    return false;
  }
  bool CheckData(uint64_t offset, std::string_view got);
  uint64_t RandomKey() { return RandomOffset(0, target_.kv_keys, 1); }
  void BuildKvPut();
  void BuildKvBatch();
  bool CheckKvValue(std::string_view body);

  const Scenario& scenario_;
  const Target& target_;
  api::HttpClient client_;
  api::HttpHeaders headers_;
  uint64_t rng_;
  const uint64_t write_seed_;
  uint64_t write_count_ = 0;
  uint64_t reads_ = 0;
  uint64_t moved_bytes_ = 0;  // payload of the last request: block data or value text
  uint64_t key_ = 0;          // the key of the last KV request
  uint64_t next_rev_;         // the revision the next KV write carries
  std::string batch_count_;   // "count":<items>, in a batch's answer
  bool last_was_transport_error_ = false;
  std::string path_, body_, decoded_, expected_text_;
  std::vector<uint8_t> data_, expected_;
  std::vector<uint64_t> latencies_ns_;
  ScenarioResult result_;
  alignas(64) std::atomic<uint64_t> done_{0};  // read by the progress line
  static inline std::atomic<bool> saw_429_{false};
};

void Worker::BuildPath(const char* verb, uint64_t offset, bool with_length) {
  path_.assign("/api/v1/volumes/").append(target_.volume_id).append("/").append(verb);
  path_.append("?offset=").append(std::to_string(offset));
  if (with_length) path_.append("&length=").append(std::to_string(scenario_.size_bytes));
}

bool Worker::CheckData(uint64_t offset, std::string_view got) {
  if (got.size() != scenario_.size_bytes) {
    result_.mismatches++;
    return Fail("offset " + std::to_string(offset) + ": got " + std::to_string(got.size()) +
                " bytes, asked for " + std::to_string(scenario_.size_bytes));
  }
  if (reads_++ % kVerifyEvery != 0) return true;
  result_.verified++;
  FillSetupData(target_, offset, expected_.data(), scenario_.size_bytes);
  if (std::memcmp(got.data(), expected_.data(), got.size()) != 0) {
    result_.mismatches++;
    return Fail("offset " + std::to_string(offset) + ": data differs from what setup wrote");
  }
  return true;
}

void Worker::BuildKvPut() {
  key_ = RandomKey();
  path_.assign("/v1/keys/");
  AppendKvKey(key_, &path_);
  body_.assign("{\"value\":");
  AppendKvValue(target_.data_seed, key_, next_rev_, &body_);
  body_.push_back('}');
  next_rev_ += kMaxThreads;
  moved_bytes_ = body_.size() - 10;  // less {"value": and }
}

// `items` consecutive keys (wrapping) from a random one: distinct, since
// --kv-keys is at least kv_batch100's 100.
void Worker::BuildKvBatch() {
  key_ = RandomKey();
  path_.assign("/v1/batch/put");
  body_.assign("{\"items\":[");
  moved_bytes_ = 0;
  for (uint64_t i = 0; i < scenario_.items; i++) {
    if (i != 0) body_.push_back(',');
    moved_bytes_ +=
        AppendKvItem(target_.data_seed, (key_ + i) % target_.kv_keys, next_rev_, &body_);
  }
  body_.append("]}");
  next_rev_ += kMaxThreads;
}

// The answer must be exactly {"found":true,"key":"bench:N","value":<value>}
// with a value of key N; 1 in kVerifyEvery is checked byte for byte against
// the revision it carries.
bool Worker::CheckKvValue(std::string_view body) {
  expected_text_.assign("{\"found\":true,\"key\":\"");
  AppendKvKey(key_, &expected_text_);
  expected_text_.append("\",\"value\":");
  const size_t value_at = expected_text_.size();
  expected_text_.append("{\"id\":\"");
  AppendKvKey(key_, &expected_text_);
  expected_text_.append("\",");
  if (body.size() < expected_text_.size() + 1 || body.back() != '}' ||
      body.compare(0, expected_text_.size(), expected_text_) != 0) {
    result_.mismatches++;
    return Fail(path_ + ": unexpected answer " + std::string(body.substr(0, 160)));
  }
  const std::string_view value = body.substr(value_at, body.size() - 1 - value_at);
  moved_bytes_ = value.size();
  if (reads_++ % kVerifyEvery != 0) return true;
  result_.verified++;
  const int64_t rev = KvValueRevision(value);
  expected_text_.clear();
  if (rev >= 0) AppendKvValue(target_.data_seed, key_, static_cast<uint64_t>(rev), &expected_text_);
  if (rev < 0 || value != expected_text_) {
    result_.mismatches++;
    return Fail(path_ + ": value differs from revision " + std::to_string(rev) +
                " as written: " + std::string(value.substr(0, 160)));
  }
  return true;
}

bool Worker::One() {
  const uint64_t size = scenario_.size_bytes;
  moved_bytes_ = size;
  const uint64_t write_base = target_.region_bytes;
  const uint64_t write_span = target_.volume_bytes - target_.region_bytes;
  uint64_t offset = 0;
  const char* method = "GET";
  std::string_view body;
  switch (scenario_.kind) {
    case Kind::kEmpty:
      path_.assign("/empty");
      break;
    case Kind::kRead:
    case Kind::kReadJson:
      offset = RandomOffset(0, target_.region_bytes, size);
      BuildPath(scenario_.kind == Kind::kRead ? "data" : "read", offset, true);
      break;
    case Kind::kWrite:
      offset = RandomOffset(write_base, write_span, size);
      BuildPath("data", offset, false);
      FillWriteData();
      method = "PUT";
      body = std::string_view(reinterpret_cast<const char*>(data_.data()), size);
      break;
    case Kind::kWriteJson:
      offset = RandomOffset(write_base, write_span, size);
      path_.assign("/api/v1/volumes/").append(target_.volume_id).append("/write");
      FillWriteData();
      body_.assign("{\"offset\":").append(std::to_string(offset)).append(",\"data\":\"");
      Base64Append(data_.data(), size, &body_);
      body_.append("\"}");
      method = "POST";
      body = body_;
      break;
    case Kind::kKvPut:
      BuildKvPut();
      method = "PUT";
      body = body_;
      break;
    case Kind::kKvGet:
      key_ = RandomKey();
      path_.assign("/v1/keys/");
      AppendKvKey(key_, &path_);
      break;
    case Kind::kKvBatchPut:
      BuildKvBatch();
      method = "POST";
      body = body_;
      break;
  }
  Result<api::HttpResponse> r = client_.Request(method, path_, body, headers_);
  last_was_transport_error_ = !r.ok();
  if (!r.ok()) {
    result_.transport_errors++;
    return Fail(r.status().ToString());
  }
  auto connection = r->headers.find("connection");
  if (connection != r->headers.end() && connection->second.find("close") != std::string::npos) {
    result_.connection_closes++;
  }
  if (r->status < 200 || r->status > 299) {
    result_.status_errors[r->status]++;
    if (r->status == 429 && !saw_429_.exchange(true)) {
      std::fprintf(stderr,
                   "\n!!! HTTP 429 (rate limited): the server's rate limit is on. Run the bench "
                   "against a config with \"rate_limit\": {\"enabled\": false} (or a high "
                   "limit); these numbers measure the limiter, not the server.\n");
    }
    return Fail(ErrorText(r->status, r->body));
  }
  switch (scenario_.kind) {
    case Kind::kRead:
      return CheckData(offset, r->body);
    case Kind::kReadJson:
      if (!Base64Decode(JsonStringField(r->body, "data"), &decoded_)) {
        result_.mismatches++;
        return Fail("offset " + std::to_string(offset) + ": no valid base64 \"data\" in " +
                    r->body.substr(0, 120));
      }
      return CheckData(offset, decoded_);
    case Kind::kWrite:
    case Kind::kWriteJson:
      // Written data is meant to be unique: a hit means the payloads repeat.
      if (r->body.find("\"was_deduplicated\":true") != std::string::npos) result_.dedupe_hits++;
      return true;
    case Kind::kKvPut:
      if (r->status == 200 || r->status == 201) return true;
      result_.mismatches++;
      return Fail(path_ + ": " + ErrorText(r->status, r->body) + " (expected 200 or 201)");
    case Kind::kKvGet:
      return CheckKvValue(r->body);
    case Kind::kKvBatchPut:
      if (r->body.find(batch_count_) != std::string::npos) return true;
      result_.mismatches++;
      return Fail(path_ + ": no " + batch_count_ + " in " + r->body.substr(0, 160));
    default:
      return true;
  }
}

// Nearest-rank percentile of sorted values.
uint64_t Percentile(const std::vector<uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

void PrintProgress(const char* name, double elapsed, double warmup, double seconds, uint64_t done) {
  if (elapsed < warmup) {
    std::fprintf(stderr, "\r%-13s warm-up %4.1f/%.3g s                    ", name, elapsed, warmup);
  } else {
    double timed = elapsed - warmup;
    std::fprintf(stderr, "\r%-13s %5.1f/%.3g s %10.0f req/s         ", name, timed, seconds,
                 timed > 0 ? static_cast<double>(done) / timed : 0.0);
  }
  std::fflush(stderr);
}

}  // namespace

uint64_t ScenarioResult::errors() const {
  uint64_t n = transport_errors + mismatches;
  for (const auto& [status, count] : status_errors) n += count;
  return n;
}

const std::vector<Scenario>& AllScenarios() {
  static const std::vector<Scenario> all = {
      {"empty", Kind::kEmpty, 0},
      {"read4k", Kind::kRead, kBlockBytes},
      {"write4k", Kind::kWrite, kBlockBytes},
      {"read4k_json", Kind::kReadJson, kBlockBytes},
      {"write4k_json", Kind::kWriteJson, kBlockBytes},
      {"read1m", Kind::kRead, kMiB},
      {"write1m", Kind::kWrite, kMiB},
      {"kv_put", Kind::kKvPut, 0},
      {"kv_get", Kind::kKvGet, 0},
      {"kv_batch100", Kind::kKvBatchPut, 0, 100},
  };
  return all;
}

std::vector<Scenario> DefaultScenarios() {
  std::vector<Scenario> out;
  for (const Scenario& s : AllScenarios()) {
    if (!IsKv(s.kind)) out.push_back(s);
  }
  return out;
}

ScenarioResult RunScenario(const Scenario& scenario, const Target& target,
                           const RunOptions& options) {
  static std::atomic<uint64_t> runs{0};
  const uint64_t write_seed = Mix64(~target.data_seed + runs.fetch_add(1));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < options.threads; i++) {
    workers.push_back(std::make_unique<Worker>(scenario, target, i, write_seed));
  }
  const auto to_clock = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const Clock::time_point begin = Clock::now();
  const Clock::time_point start = begin + to_clock(options.warmup_seconds);
  const Clock::time_point end = start + to_clock(options.seconds);
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w, start, end] { w->Run(start, end); });

  const auto total = [&workers] {
    uint64_t n = 0;
    for (const auto& w : workers) n += w->done();
    return n;
  };
  for (int tick = 1;; tick++) {
    std::this_thread::sleep_until(std::min(begin + std::chrono::seconds(tick), end));
    const Clock::time_point now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - begin).count();
    if (options.progress) {
      PrintProgress(scenario.name, elapsed, options.warmup_seconds, options.seconds, total());
    }
    if (now >= end) break;
  }
  for (auto& t : threads) t.join();
  if (options.progress) std::fprintf(stderr, "\n");

  ScenarioResult r;
  r.name = scenario.name;
  r.seconds = options.seconds;
  std::vector<uint64_t> all;
  for (const auto& w : workers) {
    const ScenarioResult& one = w->result();
    all.insert(all.end(), w->latencies_ns().begin(), w->latencies_ns().end());
    r.requests += one.requests;
    r.items += one.requests * scenario.items;
    r.payload_bytes += one.payload_bytes;
    for (const auto& [status, count] : one.status_errors) r.status_errors[status] += count;
    r.transport_errors += one.transport_errors;
    r.mismatches += one.mismatches;
    r.verified += one.verified;
    r.connection_closes += one.connection_closes;
    r.dedupe_hits += one.dedupe_hits;
    if (r.first_error.empty()) r.first_error = one.first_error;
  }
  std::sort(all.begin(), all.end());
  r.p50_ns = Percentile(all, 0.50);
  r.p99_ns = Percentile(all, 0.99);
  r.p999_ns = Percentile(all, 0.999);
  r.max_ns = all.empty() ? 0 : all.back();
  return r;
}

}  // namespace pstorage::bench
