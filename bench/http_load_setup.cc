// pstorage-http-load's setup and teardown: what the server must hold before
// the scenarios run (the bench volume with its read region filled, the
// bench:N keys) and its removal afterwards. Every exchange here happens
// outside the timed window, on connections of its own.
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "bench/http_load.h"
#include "bench/http_load_kv.h"

namespace pstorage::bench {
namespace {

// One request of setup or teardown on `client`: an error unless it
// completes with a 2xx answer.
Status Send(api::HttpClient& client, const Target& t, const char* method, const std::string& path,
            std::string_view body, const char* content_type) {
  api::HttpHeaders headers = {{"Content-Type", content_type}};
  if (!t.api_key.empty()) headers.emplace_back("X-API-Key", t.api_key);
  Result<api::HttpResponse> r = client.Request(method, path, body, headers);
  if (!r.ok()) {
    return Status::IoError(std::string(method) + " " + path + ": " + r.status().message());
  }
  if (r->status < 200 || r->status > 299) {
    return Status::IoError(std::string(method) + " " + path + ": " + ErrorText(r->status, r->body));
  }
  return Status::Ok();
}

// Calls one(i, client, scratch) for every i in [0, count) on `threads`
// connections, each thread with its own client and scratch buffer. The first
// failure is returned and stops the others at their next item.
using ChunkFn = std::function<Status(uint64_t, api::HttpClient&, std::string&)>;
Status ForEachChunk(const Target& target, uint64_t count, int threads, const ChunkFn& one) {
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  Status first;  // guarded by mu
  auto loop = [&] {
    api::HttpClient client(target.host, target.port);
    std::string scratch;
    for (uint64_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      Status st = one(i, client, scratch);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = st;
        next.store(count);  // the others stop at their next item
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 0; i < std::max(1, threads); i++) pool.emplace_back(loop);
  for (auto& t : pool) t.join();
  return first;
}

// Creates the tool's volume; fills in the target's id and size.
Status CreateVolume(double volume_gb, Target* t) {
  const std::string name = "bench-" + std::to_string(::getpid());
  char size[64];
  std::snprintf(size, sizeof(size), "%.6g", volume_gb);
  Result<std::string> body =
      Call(*t, "POST", "/api/v1/volumes", "{\"name\":\"" + name + "\",\"size_gb\":" + size + "}");
  if (!body.ok()) return body.status();
  rapidjson::Document doc;
  doc.Parse(body->data(), body->size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("id") || !doc["id"].IsString() ||
      !doc.HasMember("size_bytes") || !doc["size_bytes"].IsUint64()) {
    return Status::Internal("unexpected answer to POST /api/v1/volumes: " + body->substr(0, 200));
  }
  t->volume_id = api::UrlEncode(doc["id"].GetString());
  t->volume_bytes = doc["size_bytes"].GetUint64();
  std::fprintf(stderr, "created volume %s (id %s, %llu bytes)\n", name.c_str(),
               doc["id"].GetString(), static_cast<unsigned long long>(t->volume_bytes));
  return Status::Ok();
}

}  // namespace

std::string ErrorText(int status, const std::string& body) {
  std::string text = "HTTP " + std::to_string(status) + ": " + body.substr(0, 200);
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

Status FillRegion(const Target& target, int threads) {
  auto one = [&target](uint64_t i, api::HttpClient& client, std::string& data) {
    const uint64_t offset = i * kMiB;
    data.resize(kMiB);
    FillSetupData(target, offset, reinterpret_cast<uint8_t*>(data.data()), kMiB);
    const std::string path =
        "/api/v1/volumes/" + target.volume_id + "/data?offset=" + std::to_string(offset);
    return Send(client, target, "PUT", path, data, "application/octet-stream");
  };
  return ForEachChunk(target, target.region_bytes / kMiB, threads, one);
}

Status FillKeys(const Target& target, int threads) {
  auto one = [&target](uint64_t i, api::HttpClient& client, std::string& body) {
    const uint64_t first = i * kKvSetupBatchItems;
    const uint64_t end = std::min(target.kv_keys, first + kKvSetupBatchItems);
    body.assign("{\"items\":[");
    for (uint64_t n = first; n < end; n++) {
      if (n != first) body.push_back(',');
      AppendKvItem(target.data_seed, n, 0, &body);
    }
    body.append("]}");
    return Send(client, target, "POST", "/v1/batch/put", body, "application/json");
  };
  return ForEachChunk(target, (target.kv_keys + kKvSetupBatchItems - 1) / kKvSetupBatchItems,
                      threads, one);
}

Status DeleteKeys(const Target& target) {
  auto one = [&target](uint64_t i, api::HttpClient& client, std::string& body) {
    const uint64_t first = i * kKvSetupBatchItems;
    const uint64_t end = std::min(target.kv_keys, first + kKvSetupBatchItems);
    body.assign("{\"keys\":[");
    for (uint64_t n = first; n < end; n++) {
      body.append(n == first ? "\"" : ",\"");
      AppendKvKey(n, &body);
      body.push_back('"');
    }
    body.append("]}");
    return Send(client, target, "POST", "/v1/batch/delete", body, "application/json");
  };
  return ForEachChunk(target, (target.kv_keys + kKvSetupBatchItems - 1) / kKvSetupBatchItems, 1,
                      one);
}

Result<std::string> Call(const Target& target, const std::string& method, const std::string& path,
                         const std::string& json_body) {
  api::HttpClient client(target.host, target.port);
  api::HttpHeaders headers;
  if (!target.api_key.empty()) headers.emplace_back("X-API-Key", target.api_key);
  if (!json_body.empty()) headers.emplace_back("Content-Type", "application/json");
  Result<api::HttpResponse> r = client.Request(method, path, json_body, headers);
  if (!r.ok()) return Status::IoError(method + " " + path + ": " + r.status().message());
  if (r->status < 200 || r->status > 299) {
    if (r->status == 429) return Status::Busy(method + " " + path + ": rate limited (429)");
    return Status::IoError(method + " " + path + ": " + ErrorText(r->status, r->body));
  }
  return std::move(r->body);
}

bool NeedsVolume(const std::vector<Scenario>& list) {
  for (const Scenario& s : list) {
    if (s.kind != Kind::kEmpty && !IsKv(s.kind)) return true;
  }
  return false;
}

bool NeedsKeys(const std::vector<Scenario>& list) {
  for (const Scenario& s : list) {
    if (IsKv(s.kind)) return true;
  }
  return false;
}

Status SetUpVolume(double volume_gb, int threads, Target* target) {
  if (Status st = CreateVolume(volume_gb, target); !st.ok()) {
    if (st.code() == Code::kBusy) {
      return Status::Busy(
          "the server answers 429 (rate limited): run it with \"rate_limit\": "
          "{\"enabled\": false} for benchmarking; " +
          st.message());
    }
    return Status(st.code(), "cannot create the bench volume: " + st.ToString());
  }
  Status st;
  if (target->volume_bytes < target->region_bytes + 16 * kMiB) {
    st = Status::InvalidArgument("the volume (" + std::to_string(target->volume_bytes) +
                                 " bytes) must hold --region-mb plus at least 16 MiB for "
                                 "writes; raise --volume-gb or lower --region-mb");
  } else {
    std::fprintf(stderr, "filling the read region (%llu MiB)...\n",
                 static_cast<unsigned long long>(target->region_bytes / kMiB));
    auto t0 = std::chrono::steady_clock::now();
    st = FillRegion(*target, threads);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (st.ok()) {
      std::fprintf(stderr, "filled in %.1f s (%.0f MB/s)\n", s,
                   static_cast<double>(target->region_bytes) / s / 1e6);
    }
  }
  if (!st.ok()) {
    (void)Call(*target, "DELETE", "/api/v1/volumes/" + target->volume_id, "");
    return Status(st.code(), "setup failed: " + st.ToString());
  }
  return Status::Ok();
}

Status SetUpKeys(uint64_t kv_keys, bool volume, int threads, Target* target) {
  target->kv_keys = kv_keys;
  std::fprintf(stderr, "writing keys bench:0 .. bench:%llu...\n",
               static_cast<unsigned long long>(kv_keys - 1));
  auto t0 = std::chrono::steady_clock::now();
  Status st = FillKeys(*target, threads);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (st.ok()) {
    std::fprintf(stderr, "wrote them in %.2f s (%.0f keys/s)\n", s,
                 static_cast<double>(kv_keys) / s);
    return Status::Ok();
  }
  (void)DeleteKeys(*target);
  if (volume) (void)Call(*target, "DELETE", "/api/v1/volumes/" + target->volume_id, "");
  return Status(st.code(),
                "setup failed: " + st.ToString() +
                    "\n(kv_* write to the project /v1 acts on: for the admin key, the first in "
                    "the server's config.json \"projects\"; see --help)");
}

void TearDown(const Target& server, bool volume, bool keys) {
  if (keys) {
    if (Status st = DeleteKeys(server); !st.ok()) {
      std::fprintf(stderr, "warning: cannot delete the bench keys: %s\n", st.ToString().c_str());
    }
  }
  if (volume) {
    Result<std::string> del = Call(server, "DELETE", "/api/v1/volumes/" + server.volume_id, "");
    if (!del.ok()) {
      std::fprintf(stderr, "warning: cannot delete the bench volume: %s\n",
                   del.status().ToString().c_str());
    }
  }
}

}  // namespace pstorage::bench
