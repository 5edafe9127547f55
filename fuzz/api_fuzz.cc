// libFuzzer target for the REST handlers: one input is one request, run
// through Router::Match and the matched handler exactly as
// HttpServer::Impl::Dispatch does (minus authentication and rate limiting),
// against an engine that lives in memory. Every reply is checked; a broken
// invariant abort()s so that libFuzzer saves the input. Run with
// `make fuzz FUZZ_SECONDS=600`; seeds in fuzz/corpus/api, dictionary
// fuzz/api.dict; fixed reproducers stay in the corpus as regress-*.
//
// Input encoding (STR = one length byte L, then L bytes; cut short at the
// end of the input):
//   byte 0   route selector. Below 0xF0: the route AllRoutes()[b % routes],
//            its pattern with the {volume_id} / {snapshot_id} segments
//            filled in. 0xF0 and up: a fuzzed request line, method
//            kMethods[b & 7] and path STR (where "{volume_id}" and
//            "{snapshot_id}" are filled in the same way).
//   byte 1   flags:
//            bits 0-1  {volume_id}: 0 fixture volume 0 (has the snapshot),
//                      1 fixture volume 1, 2 STR, 3 the last volume a
//                      request created (fixture volume 0 when none)
//            bits 2-3  {snapshot_id}: 0 the fixture snapshot, 1 STR,
//                      2 the last snapshot a request created (the fixture
//                      one when none), 3 the fixture volume 1's id
//            bits 4-5  Content-Type: 0 application/json, 1 none,
//                      2 application/octet-stream, 3 STR
//            bit 6     a Range header: STR
//            bit 7     a query string: STR, raw ("offset=0&length=4096"),
//                      percent-decoded as the server does
//   byte 2   flags: bit 0 puts STR ids into the path as they are instead of
//            percent-encoded (so '/', '%' and '?' reach the router).
//   Then the STR fields the bytes above call for, in this order: path,
//   volume id, snapshot id, Content-Type, Range, query. The rest of the
//   input is the body.
//
// Invariants: the status is one of kKnownStatuses; every non-2xx body is a
// JSON object with string fields error (the reason phrase), code, detail,
// request_id (this request's) and timestamp; 2xx application/json bodies
// parse; 204 has no body; 405 carries Allow. "Parses" means strict JSON,
// UTF-8 validated, as a client would read it; PSTORAGE_FUZZ_LAX_UTF8=1 in
// the environment skips the UTF-8 validation; PSTORAGE_FUZZ_VERBOSE=1 prints
// every request and its status (to see what an input decodes to).
//
// State: the engine, two fixture volumes and one snapshot are made once.
// Every kCleanupEvery inputs (or after kMaxCreated creations) the volumes and
// snapshots the requests made are deleted, and the fixtures rebuilt when a
// request deleted, grew or filled them. A crash input normally reproduces
// alone; one that needs earlier state may not.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "api/config.h"
#include "api/server/http_types.h"
#include "api/server/projects.h"
#include "api/server/router.h"
#include "api/server/services.h"
#include "api/server/stats.h"
#include "api/server/watch.h"
#include "engine/engine.h"
#include "engine/memory_env.h"
#include "flash_sim/flash.h"

namespace pstorage::api {
namespace {

constexpr int kKnownStatuses[] = {200, 201, 204, 206, 400, 404, 405, 409, 413, 415, 416, 503};
constexpr const char* kMethods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
                                    "get"};
constexpr const char* kRequestId = "fuzz-request-1";
constexpr const char* kProjectId = "fz";
constexpr uint64_t kFlashBytes = 32ull << 20;
constexpr uint64_t kFixtureVolumeBytes = 4ull << 20;
constexpr uint64_t kFixtureMaxBytes = 64ull << 20;      // rebuilt when grown past this
constexpr uint64_t kFixtureMaxUsedBytes = 4ull << 20;   // or filled past this
constexpr uint64_t kCleanupEvery = 64;                  // inputs
constexpr uint64_t kMaxCreated = 16;                    // volumes + snapshots between cleanups

// Reads the input front to back; past the end every read is empty.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string Str() {
    size_t n = std::min<size_t>(Byte(), size_ - pos_);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::string_view Rest() const {
    return {reinterpret_cast<const char*>(data_ + pos_), size_ - pos_};
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct Fixture {
  std::unique_ptr<engine::MemoryEnv> env;
  std::unique_ptr<flash::Medium> medium;
  std::unique_ptr<engine::Engine> engine;
  ServerConfig config;
  std::unique_ptr<Router> router;
  std::unique_ptr<RequestStats> stats;
  std::unique_ptr<ProjectRegistry> projects;
  std::unique_ptr<WatchHub> watches;
  std::unique_ptr<Services> services;
  std::string volumes[2];
  std::string snapshot;
  std::string last_volume, last_snapshot;  // made by requests since the last cleanup
  uint64_t inputs = 0, created = 0, generation = 0;
  bool lax_utf8 = false;
  bool verbose = false;
};

Fixture* g_fixture = nullptr;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "api_fuzz: %s\n", what.c_str());
  std::abort();
}

void DieIf(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

// Drops every volume and snapshot but the fixtures (all of them when
// `everything`). Deletions may depend on each other (a volume with
// snapshots), so a few passes.
void DeleteExtras(Fixture& f, bool everything) {
  engine::Engine& e = *f.engine;
  for (int pass = 0; pass < 4; pass++) {
    bool left = false;
    for (const engine::SnapshotInfo& s : e.ListAllSnapshots()) {
      if (!everything && s.id == f.snapshot) continue;
      left = !e.DeleteSnapshot(s.id).ok() || left;
    }
    for (const engine::VolumeInfo& v : e.ListVolumes()) {
      if (!everything && (v.id == f.volumes[0] || v.id == f.volumes[1])) continue;
      left = !e.DeleteVolume(v.id).ok() || left;
    }
    if (!left) return;
  }
  Die("cannot delete the volumes and snapshots the requests made");
}

void MakeFixtures(Fixture& f) {
  f.generation++;
  for (int i = 0; i < 2; i++) {
    engine::VolumeSpec spec;
    spec.name = "fixture-" + std::to_string(i) + "-g" + std::to_string(f.generation);
    spec.size_bytes = kFixtureVolumeBytes;
    Result<engine::VolumeInfo> v = f.engine->CreateVolume(spec);
    DieIf(v.status(), "create fixture volume");
    f.volumes[i] = v->id;
  }
  std::vector<uint8_t> block(4096, 0x5A);
  DieIf(f.engine->Write(f.volumes[0], 0, block).status(), "write fixture volume");
  Result<engine::SnapshotInfo> s = f.engine->CreateSnapshot(
      f.volumes[0], "fixture-snap-g" + std::to_string(f.generation), "");
  DieIf(s.status(), "create fixture snapshot");
  f.snapshot = s->id;
}

bool FixturesIntact(const Fixture& f) {
  for (const std::string& id : f.volumes) {
    Result<engine::VolumeInfo> v = f.engine->GetVolume(id);
    if (!v.ok() || v->size_bytes > kFixtureMaxBytes || v->used_bytes > kFixtureMaxUsedBytes) {
      return false;
    }
  }
  Result<engine::SnapshotInfo> s = f.engine->GetSnapshot(f.snapshot);
  return s.ok() && s->volume_id == f.volumes[0];
}

void Cleanup(Fixture& f) {
  bool rebuild = !FixturesIntact(f);
  DeleteExtras(f, rebuild);
  if (rebuild) MakeFixtures(f);
  // Deleted data is given back to the flash at a checkpoint.
  DieIf(f.engine->Checkpoint(), "checkpoint");
  f.last_volume.clear();
  f.last_snapshot.clear();
  f.created = 0;
}

Fixture* NewFixture() {
  auto f = std::make_unique<Fixture>();
  f->env = std::make_unique<engine::MemoryEnv>();
  engine::EngineOptions o;
  o.data_dir = "/mem";
  o.flash.logical_capacity_bytes = kFlashBytes;
  o.flash.pages_per_block = 64;
  o.flash.background_gc_idle_ms = 0;  // no thread: runs stay deterministic
  o.cache_bytes = 4ull << 20;
  o.checkpoint_journal_bytes = 4ull << 20;
  o.env = f->env.get();
  Result<flash::MediumGeometry> g = flash::GeometryFor(o.flash);
  DieIf(g.status(), "flash geometry");
  f->medium = flash::NewMemoryMedium(*g);
  o.medium = f->medium.get();
  Result<std::unique_ptr<engine::Engine>> e = engine::Engine::Open(o);
  DieIf(e.status(), "open engine");
  f->engine = std::move(*e);

  f->config.max_body_bytes = 64u << 10;
  f->config.auth.enabled = false;
  f->config.rate_limit.enabled = false;
  f->router = std::make_unique<Router>(AllRoutes());
  f->stats = std::make_unique<RequestStats>(f->router->routes().size());
  // One memory-only project for the KV routes; the expiry thread sleeps for
  // the whole run so that runs stay deterministic.
  ProjectConfig project;
  project.id = kProjectId;
  project.on_disk = false;
  project.auth.enabled = false;
  f->config.projects.push_back(project);
  f->config.kv.expiry_interval_ms = 3600000;
  f->config.kv.max_value_bytes = 16u << 10;
  Result<std::unique_ptr<ProjectRegistry>> projects = ProjectRegistry::Open(f->config);
  DieIf(projects.status(), "open projects");
  f->projects = std::move(*projects);
  f->watches = std::make_unique<WatchHub>();
  f->services = std::make_unique<Services>(*f->engine, f->config, *f->stats);
  f->services->router = f->router.get();
  f->services->projects = f->projects.get();
  f->services->watches = f->watches.get();
  f->services->started_ms = NowMs();
  auto env_flag = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && std::string_view(v) == "1";
  };
  f->lax_utf8 = env_flag("PSTORAGE_FUZZ_LAX_UTF8");
  f->verbose = env_flag("PSTORAGE_FUZZ_VERBOSE");
  MakeFixtures(*f);
  return f.release();
}

std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out += {'%', kHex[u >> 4], kHex[u & 15]};
    }
  }
  return out;
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

// The media type as server.cc's MediaType() leaves it.
std::string MediaType(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t semi = s.find(';');
  if (semi != std::string::npos) s.resize(semi);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

struct Decoded {
  Request req;
  std::string body;  // owns what req.body points to
  bool query_ok = true;
};

Decoded Decode(Fixture& f, const uint8_t* data, size_t size) {
  Cursor in(data, size);
  Decoded d;
  Request& req = d.req;
  uint8_t selector = in.Byte(), flags = in.Byte(), flags2 = in.Byte();
  const std::vector<Route>& routes = f.router->routes();
  if (selector < 0xF0) {
    const Route& r = routes[selector % routes.size()];
    req.method = r.method;
    req.path = r.pattern;
  } else {
    req.method = kMethods[selector & 7];
    req.path = in.Str();
  }
  auto fuzz_id = [&](std::string id) {
    return (flags2 & 1) ? id : PercentEncode(id);
  };
  std::string volume;
  switch (flags & 3) {
    case 0: volume = f.volumes[0]; break;
    case 1: volume = f.volumes[1]; break;
    case 2: volume = fuzz_id(in.Str()); break;
    default: volume = f.last_volume.empty() ? f.volumes[0] : f.last_volume;
  }
  std::string snapshot;
  switch ((flags >> 2) & 3) {
    case 0: snapshot = f.snapshot; break;
    case 1: snapshot = fuzz_id(in.Str()); break;
    case 2: snapshot = f.last_snapshot.empty() ? f.snapshot : f.last_snapshot; break;
    default: snapshot = f.volumes[1];
  }
  ReplaceAll(&req.path, "{volume_id}", volume);
  ReplaceAll(&req.path, "{snapshot_id}", snapshot);
  if (req.path.find("{project_id}") != std::string::npos) {
    ReplaceAll(&req.path, "{project_id}", (flags2 & 2) ? fuzz_id(in.Str()) : kProjectId);
  }
  if (req.path.find("{key*}") != std::string::npos) {
    std::string key = in.Str();
    ReplaceAll(&req.path, "{key*}", key.empty() ? "k" : fuzz_id(key));
  }
  switch ((flags >> 4) & 3) {
    case 0: req.content_type = "application/json"; break;
    case 1: break;
    case 2: req.content_type = "application/octet-stream"; break;
    default: req.content_type = MediaType(in.Str());
  }
  if (flags & 0x40) req.range = in.Str();
  if (flags & 0x80) {
    // As HttpServer::Impl::Handle does.
    d.query_ok = ParseQuery(in.Str(), &req.query);
  }
  d.body = std::string(in.Rest());
  req.body = d.body;
  req.request_id = kRequestId;
  return d;
}

// HttpServer::Impl::Dispatch without the shutdown, auth and rate-limit steps.
Reply Dispatch(Fixture& f, Request& req, int* route_index) {
  RouteMatch m = f.router->Match(req.method, req.path);
  *route_index = m.index;
  if (m.index < 0) return NoRouteReply(m, req);
  const Route& route = f.router->routes()[static_cast<size_t>(m.index)];
  // Watch streams outlive the request; they are tested over HTTP instead.
  if (route.pattern.find("/watch") != std::string::npos) return NoRouteReply(RouteMatch{}, req);
  // Creating, changing and deleting projects rewrites config.json; those
  // routes are tested over HTTP against a real file.
  const bool project_admin = route.pattern.rfind("/api/v1/projects", 0) == 0 &&
                             route.method != "GET" &&
                             route.pattern.find("/keys") == std::string::npos &&
                             route.pattern.find("/batch") == std::string::npos &&
                             route.pattern.find("/transaction") == std::string::npos;
  if (project_admin) return NoRouteReply(RouteMatch{}, req);
  req.params = std::move(m.params);
  // As Authorize does: the path's project, or the caller's (here always
  // the one project) on the /v1 routes.
  auto pid = req.params.find("project_id");
  req.project_id = pid != req.params.end() ? pid->second : kProjectId;
  return route.handler(*f.services, req);
}

std::string Printable(std::string_view s, size_t max_bytes = 512) {
  std::string out;
  for (char c : s.substr(0, max_bytes)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F && c != '\\') {
      out.push_back(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    }
  }
  if (s.size() > max_bytes) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

[[noreturn]] void Broken(const Request& req, const Reply& reply, const std::string& what) {
  std::string q;
  for (const auto& [k, v] : req.query) q += " " + Printable(k) + "=" + Printable(v);
  Die("invariant broken: " + what + "\n  request: " + req.method + " " + Printable(req.path) +
      "\n  query:" + q + "\n  content-type: " + Printable(req.content_type) +
      "\n  range: " + Printable(req.range) + "\n  body: " + Printable(req.body) +
      "\n  reply: " + std::to_string(reply.status) + " " + reply.content_type + "\n  " +
      Printable(reply.body));
}

bool ParsesAsJson(const Fixture& f, std::string_view body, rapidjson::Document* doc) {
  if (f.lax_utf8) {
    doc->Parse(body.data(), body.size());
  } else {
    doc->Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  }
  return !doc->HasParseError();
}

void CheckReply(const Fixture& f, const Request& req, const Reply& reply) {
  bool known = false;
  for (int s : kKnownStatuses) known = known || s == reply.status;
  if (!known) Broken(req, reply, "unexpected status");
  if (reply.status == 204 && !reply.body.empty()) Broken(req, reply, "204 with a body");
  bool is_json = reply.content_type == "application/json";
  if (reply.status < 200 || reply.status > 299) {
    if (!is_json) Broken(req, reply, "error reply is not application/json");
    rapidjson::Document doc;
    if (!ParsesAsJson(f, reply.body, &doc)) Broken(req, reply, "error body is not JSON");
    if (!doc.IsObject()) Broken(req, reply, "error body is not an object");
    for (const char* key : {"error", "code", "detail", "request_id", "timestamp"}) {
      if (!doc.HasMember(key) || !doc[key].IsString()) {
        Broken(req, reply, std::string("error field '") + key + "' missing or not a string");
      }
    }
    if (doc["error"].GetString() != ReasonPhrase(reply.status)) {
      Broken(req, reply, "'error' is not the reason phrase");
    }
    if (std::string_view(doc["request_id"].GetString()) != kRequestId) {
      Broken(req, reply, "'request_id' is not the request's");
    }
    if (reply.status == 405) {
      bool allow = false;
      for (const auto& h : reply.headers) allow = allow || h.first == "Allow";
      if (!allow) Broken(req, reply, "405 without Allow");
    }
  } else if (is_json && reply.status != 204) {
    rapidjson::Document doc;
    if (!ParsesAsJson(f, reply.body, &doc)) Broken(req, reply, "2xx JSON body is not JSON");
  }
}

// What a successful request made, for later inputs to aim at.
void Remember(Fixture& f, const Request& req, const Reply& reply) {
  if (reply.status != 201 && reply.status != 200) return;
  if (req.method != "POST") return;
  rapidjson::Document doc;
  doc.Parse(reply.body.data(), reply.body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("id") || !doc["id"].IsString()) {
    return;
  }
  std::string id = doc["id"].GetString();
  if (doc.HasMember("volume_name")) {
    f.last_snapshot = id;
  } else if (doc.HasMember("size_bytes")) {
    f.last_volume = id;
  }
  if (reply.status == 201) f.created++;
}

}  // namespace
}  // namespace pstorage::api

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pstorage::api::g_fixture = pstorage::api::NewFixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pstorage::api;
  Fixture& f = *g_fixture;
  Decoded d = Decode(f, data, size);
  Reply reply;
  int route_index = -1;
  try {
    if (!d.query_ok) {
      reply = ErrorReply(400, "INVALID_ARGUMENT", "malformed percent-escape in the query string",
                         d.req.request_id);
    } else {
      reply = Dispatch(f, d.req, &route_index);
    }
  } catch (const std::exception& e) {
    // The server turns this into a 500; handlers must report errors as values.
    Broken(d.req, reply, std::string("exception escaped the handler: ") + e.what());
  }
  f.stats->Record(route_index, reply.status, 0.0);
  if (f.verbose) {
    std::fprintf(stderr, "api_fuzz: %s %s -> %d %s\n", d.req.method.c_str(),
                 Printable(d.req.path, 200).c_str(), reply.status,
                 Printable(reply.body, 200).c_str());
  }
  CheckReply(f, d.req, reply);
  Remember(f, d.req, reply);
  if (++f.inputs % kCleanupEvery == 0 || f.created >= kMaxCreated) Cleanup(f);
  return 0;
}
