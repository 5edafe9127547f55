// Crash harness for the KV store behind the HTTP API: writers stream puts,
// deletes and batches, the server is killed with SIGKILL at a random moment,
// restarted on the same config, and the store must hold every acknowledged
// write (an oracle of 2xx replies) and nothing that was never sent. The one
// write in flight per writer at the kill may or may not be there; a batch is
// all there or not at all.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

const std::string kKey = "p1-key-0123456789abcdefABCDEF";

// The state of one key: absent, or the sequence number its value holds.
using KeyState = std::optional<int64_t>;

// One request of a writer: the states it gives its keys (a batch sets
// several; a delete sets nullopt).
struct Write {
  std::vector<std::pair<std::string, KeyState>> effects;
  bool acked = false;
  bool refused = false;  // 503 SHUTTING_DOWN: refused before it ran
};

std::string Value(int64_t seq, size_t pad) {
  return "{\"s\": " + std::to_string(seq) + ", \"p\": \"" + std::string(pad, 'p') + "\"}";
}

// What the store must hold: for every key the state after its last
// acknowledged write, and the states the in-flight write may have left;
// and every key's version: the one read at the last check plus one per put
// applied since (a delete restarts versions).
struct Oracle {
  std::map<std::string, KeyState> expected;
  std::map<std::string, std::vector<KeyState>> maybe;
  std::vector<std::vector<std::string>> batches;  // keys that must appear together
  std::map<std::string, uint64_t> version;        // as read at the last check
  std::map<std::string, uint64_t> acked_puts;     // since the last check
  std::set<std::string> deleted;                  // since the last check

  void Apply(const std::vector<Write>& log) {
    for (const Write& w : log) {
      if (w.refused) continue;
      for (const auto& [key, state] : w.effects) {
        if (!state) deleted.insert(key);
        if (w.acked) {
          expected[key] = state;
          maybe.erase(key);
          if (state) acked_puts[key]++;
        } else {
          maybe[key].push_back(state);
        }
      }
      if (w.effects.size() > 1) {
        std::vector<std::string> keys;
        for (const auto& e : w.effects) keys.push_back(e.first);
        batches.push_back(keys);
      }
    }
  }
};

// A writer thread: runs requests until one fails (the kill) or `stop`.
class Writer {
 public:
  Writer(int port, std::atomic<int64_t>* seq) : client_("127.0.0.1", port), seq_(seq) {
    client_.set_timeout(std::chrono::seconds(5));
  }

  // false once the server is gone: the write is then in flight (not acked).
  bool Put(const std::string& key, size_t pad) {
    const int64_t s = seq_->fetch_add(1);
    log_.push_back({{{key, s}}, false});
    return Send("PUT", "/api/v1/projects/p1/keys/" + key, "{\"value\": " + Value(s, pad) + "}");
  }
  bool Delete(const std::string& key) {
    log_.push_back({{{key, std::nullopt}}, false});
    return Send("DELETE", "/v1/keys/" + key, "");
  }
  bool Batch(const std::vector<std::string>& keys) {
    Write w;
    std::string items;
    for (const std::string& k : keys) {
      const int64_t s = seq_->fetch_add(1);
      w.effects.emplace_back(k, s);
      items += std::string(items.empty() ? "" : ", ") + "{\"key\": \"" + k +
               "\", \"value\": " + Value(s, 8) + "}";
    }
    log_.push_back(std::move(w));
    return Send("POST", "/v1/batch/put", "{\"items\": [" + items + "]}");
  }
  const std::vector<Write>& log() const { return log_; }

 private:
  bool Send(const char* method, const std::string& target, const std::string& body) {
    HttpHeaders h = {{"X-API-Key", kKey}};
    if (!body.empty()) h.emplace_back("Content-Type", "application/json");
    Result<HttpResponse> r = client_.Request(method, target, body, h);
    if (r.ok() && r->status == 503 && r->body.find("SHUTTING_DOWN") != std::string::npos) {
      log_.back().refused = true;
      return false;
    }
    if (!r.ok() || r->status >= 300) {
      if (r.ok()) {
        ADD_FAILURE() << method << " " << target << ": " << r->status << " " << r->body;
      }
      return false;
    }
    log_.back().acked = true;
    return true;
  }

  HttpClient client_;
  std::atomic<int64_t>* seq_;
  std::vector<Write> log_;
};

struct Held {
  int64_t seq = 0;
  uint64_t version = 0;
};

// Every key the server holds, with the sequence number of its value.
std::map<std::string, Held> ReadAll(ServerProcess& server) {
  std::map<std::string, Held> out;
  HttpResponse r = server.Call("GET", "/api/v1/projects/p1/keys?include_values=true");
  EXPECT_EQ(200, r.status) << r.body.substr(0, 300);
  rapidjson::Document d = Json(r);
  if (!d.HasMember("items")) return out;
  for (const auto& item : d["items"].GetArray()) {
    const rapidjson::Value& v = item["value"];
    EXPECT_TRUE(v.IsObject() && v.HasMember("s")) << item["key"].GetString();
    if (!v.IsObject() || !v.HasMember("s")) continue;
    out[item["key"].GetString()] = {v["s"].GetInt64(), item["metadata"]["version"].GetUint64()};
  }
  return out;
}

// Checks the server against the oracle, then makes what it holds the new
// baseline (what was read after a restart must stay).
void Verify(ServerProcess& server, Oracle* o, int cycle) {
  SCOPED_TRACE("cycle " + std::to_string(cycle));
  const std::map<std::string, Held> got = ReadAll(server);
  auto in_flight = [&](const std::string& key, KeyState have) {
    auto m = o->maybe.find(key);
    if (m == o->maybe.end()) return false;
    for (const KeyState& s : m->second) {
      if (s == have) return true;
    }
    return false;
  };
  int maybe_present = 0;
  for (const auto& [key, want] : o->expected) {
    auto g = got.find(key);
    const KeyState have = g == got.end() ? KeyState() : KeyState(g->second.seq);
    const bool ok = have == want || in_flight(key, have);
    maybe_present += have != want && ok;
    EXPECT_TRUE(ok) << key << ": holds " << (have ? std::to_string(*have) : "nothing")
                    << ", last acknowledged " << (want ? std::to_string(*want) : "delete");
  }
  for (const auto& [key, held] : got) {
    if (o->expected.count(key) != 0) continue;
    const bool ok = in_flight(key, held.seq);
    maybe_present += ok;
    EXPECT_TRUE(ok) << key << " holds " << held.seq << ", which was never written there";
  }
  for (const auto& [key, held] : got) {
    if (o->deleted.count(key) != 0) continue;
    auto e = o->expected.find(key);
    const bool applied_in_flight = e == o->expected.end() || e->second != KeyState(held.seq);
    const uint64_t want = o->version[key] + o->acked_puts[key] + (applied_in_flight ? 1 : 0);
    EXPECT_EQ(want, held.version) << key << " holds " << held.seq;
  }
  for (const auto& keys : o->batches) {
    size_t present = 0;
    for (const std::string& k : keys) present += got.count(k);
    EXPECT_TRUE(present == 0 || present == keys.size())
        << "a batch is half there: " << present << " of " << keys.size() << " from " << keys[0];
  }
  HttpResponse st = server.Call("GET", "/api/v1/projects/p1/stats");
  EXPECT_EQ(got.size(), Json(st)["keys"].GetUint64()) << st.body;
  std::printf(
      "cycle %d: %zu keys, %d in-flight writes present, counter at version %llu\n", cycle,
      got.size(), maybe_present,
      static_cast<unsigned long long>(got.count("counter") ? got.at("counter").version : 0));
  *o = Oracle();
  for (const auto& [key, held] : got) {
    o->expected[key] = held.seq;
    o->version[key] = held.version;
  }
}

// The project's files, "name:bytes" each.
std::string Files(const std::string& dir) {
  std::string out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out += " " + e.path().filename().string() + ":" + std::to_string(e.file_size());
  }
  return out;
}

// `cycles` times: start, stream writes, stop with `sig` 50-300 ms in,
// check. SIGTERM must exit 0 however busy the server is.
void StopCycles(int sig, int cycles, const std::string& name, uint32_t default_seed) {
  uint32_t seed = default_seed;
  if (const char* env = std::getenv("KV_CRASH_SEED")) seed = static_cast<uint32_t>(std::atoi(env));
  std::printf("seed %u (set KV_CRASH_SEED to repeat another)\n", seed);
  std::mt19937 rng(seed);
  ServerOptions opts;
  opts.projects_json = "[" + ProjectEntry("p1", kKey) + "]";
  ServerProcess server(name, opts);
  Oracle oracle;
  std::atomic<int64_t> seq{1};
  int snapshots = 0;       // cycles that ended with a snapshot on disk
  size_t total_acked = 0;  // acknowledged writes over all cycles
  const auto t0 = std::chrono::steady_clock::now();
  for (int cycle = 0; cycle < cycles; cycle++) {
    ASSERT_TRUE(server.Start()) << "cycle " << cycle;
    ASSERT_NO_FATAL_FAILURE(Verify(server, &oracle, cycle));
    if (::testing::Test::HasFailure()) return;  // ~ServerProcess kills it

    std::atomic<bool> stop{false};  // set after the stop signal
    Writer keys(server.port(), &seq), counter(server.port(), &seq), blobs(server.port(), &seq);
    const std::string c = std::to_string(cycle);
    std::jthread a([&] {
      std::vector<std::string> mine;
      for (int i = 0; !stop.load(); i++) {
        bool ok;
        if (i % 10 == 9) {
          ok = keys.Batch({"b" + c + "-" + std::to_string(i) + "-0",
                           "b" + c + "-" + std::to_string(i) + "-1",
                           "b" + c + "-" + std::to_string(i) + "-2"});
        } else if (i % 7 == 6 && !mine.empty()) {
          const size_t at = static_cast<size_t>(i) % mine.size();
          ok = keys.Delete(mine[at]);
          mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(at));
        } else {
          mine.push_back("d" + c + "-" + std::to_string(i));
          ok = keys.Put(mine.back(), static_cast<size_t>(i % 200));
        }
        if (!ok) break;
      }
    });
    std::jthread b([&] {
      while (!stop.load() && counter.Put("counter", 0)) {
      }
    });
    std::jthread d([&] {
      for (int i = 0; !stop.load() && blobs.Put("blob" + std::to_string(i % 8), 48 << 10); i++) {
      }
    });
    const int stop_ms = std::uniform_int_distribution<int>(50, 300)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(stop_ms));
    const int code = server.Stop(sig);
    if (sig == SIGTERM) {
      EXPECT_EQ(0, code) << "cycle " << cycle << ": " << server.stderr_text().substr(0, 3000);
    }
    stop = true;
    a.join();
    b.join();
    d.join();
    size_t acked = 0;
    for (const Writer* w : {&keys, &counter, &blobs}) {
      for (const Write& x : w->log()) acked += x.acked;
      oracle.Apply(w->log());
    }
    const std::string files = Files(server.dir() + "/kv");
    snapshots += files.find(" p1.json:") != std::string::npos;
    std::printf("cycle %d: stopped after %d ms, %zu writes acknowledged; files%s\n", cycle, stop_ms,
                acked, files.c_str());
    total_acked += acked;
  }
  // A slow machine may stop a cycle before its first write; not all of them.
  EXPECT_GT(total_acked, static_cast<size_t>(10 * cycles));
  // The blobs outgrow the log's compaction threshold: some stops found a
  // snapshot next to the log, so recovery read both.
  EXPECT_GT(snapshots, 0) << "no snapshot was ever written";
  // A last restart, then a clean stop (snapshot) and one more start.
  ASSERT_TRUE(server.Start());
  Verify(server, &oracle, cycles);
  ASSERT_EQ(0, server.Stop()) << server.stderr_text();
  ASSERT_TRUE(server.Start());
  Verify(server, &oracle, cycles + 1);
  const std::string err = server.stderr_text();
  EXPECT_EQ(std::string::npos, err.find("terminate")) << err.substr(0, 2000);
  EXPECT_EQ(0, server.Stop());
  std::printf("%.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

TEST(KvCrashTest, AcknowledgedWritesSurviveSigkillAtRandomMoments) {
  StopCycles(SIGKILL, 20, "kvcrash", 20240515);
}

// A clean stop in the middle of the same load: drained, compacted, exit 0,
// and every acknowledged write is there afterwards.
TEST(KvCrashTest, SigtermUnderLoadKeepsEveryAcknowledgedWrite) {
  StopCycles(SIGTERM, 6, "kvterm", 20240516);
}

}  // namespace
}  // namespace pstorage::api::testing
