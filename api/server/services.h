// What a handler may use: the engine, the configuration, the request
// statistics and the server's lifecycle state. Handlers are plain functions
// of (Services, Request) -> Reply and hold no state of their own.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "api/config.h"
#include "api/server/http_types.h"
#include "api/server/json.h"
#include "engine/engine.h"

namespace pstorage::api {

class ProjectRegistry;
class RequestStats;
class Router;
class WatchHub;

inline constexpr const char* kVersion = "0.1.0";
inline constexpr const char* kNodeId = "node-1";

struct Services {
  engine::Engine& engine;
  const ServerConfig& config;
  RequestStats& stats;
  const Router* router = nullptr;
  ProjectRegistry* projects = nullptr;  // null when the server runs without KV
  WatchHub* watches = nullptr;
  int64_t started_ms = 0;
  std::atomic<bool> shutting_down{false};

  Services(engine::Engine& e, const ServerConfig& c, RequestStats& s)
      : engine(e), config(c), stats(s) {}
};

// --- helpers shared by the routes_*.cc files ---

Reply JsonReply(int status, const rapidjson::StringBuffer& sb);
// 204, no body, no Content-Type.
inline Reply NoContent() {
  Reply r;
  r.status = 204;
  r.content_type.clear();
  return r;
}
inline Reply Error(const Request& req, const Status& s) { return StatusReply(s, req.request_id); }
inline Reply BadRequest(const Request& req, std::string_view detail) {
  return ErrorReply(400, "INVALID_ARGUMENT", detail, req.request_id);
}
Status ParseBody(const Request& req, rapidjson::Document* doc);

// Volume and snapshot names: 1-255 of [A-Za-z0-9_.-], starting with a letter
// or digit, so a name is never a path and is safe as an NBD export name.
Status ValidateName(std::string_view name, std::string_view what);

// Strict decimal parse of a query parameter; nullopt when absent.
Result<std::optional<uint64_t>> QueryUint(const Request& req, const std::string& name);

// "size_gb" (GiB, > 0, <= the array's maximum volume size) to bytes,
// rounded up to a whole 4 KiB block.
Result<uint64_t> SizeGbToBytes(double size_gb);

void WriteVolume(JsonWriter& w, const engine::VolumeInfo& v);
void WriteSnapshot(JsonWriter& w, const engine::SnapshotInfo& s);

// Cursor pagination over items ordered by (created_at_ms, id): `limit`
// (1-1000) and `cursor` query parameters; without `limit` every item is
// returned, as the seed API does. Sorts `items` in place.
struct PageSpec {
  size_t begin = 0, end = 0;
  std::string next_cursor;  // "" at the last page
};
template <typename T>
Result<PageSpec> Paginate(const Request& req, std::vector<T>* items);

// {"<key>": [page of items], "total": N, "next_cursor": "..." | null}
template <typename T>
Reply PagedList(const Request& req, std::vector<T> items, std::string_view key,
                void (*write_item)(JsonWriter&, const T&)) {
  Result<PageSpec> page = Paginate(req, &items);
  if (!page.ok()) return Error(req, page.status());
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  Key(w, key);
  w.StartArray();
  for (size_t i = page->begin; i < page->end; i++) write_item(w, items[i]);
  w.EndArray();
  KV(w, "total", static_cast<uint64_t>(items.size()));
  Key(w, "next_cursor");
  if (page->next_cursor.empty()) {
    w.Null();
  } else {
    Str(w, page->next_cursor);
  }
  w.EndObject();
  return JsonReply(200, sb);
}

}  // namespace pstorage::api
