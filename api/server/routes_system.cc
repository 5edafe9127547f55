// Open routes: /health, /metrics (Prometheus), /openapi.json; and the
// array listing.
#include "api/server/openapi.h"
#include "api/server/prometheus.h"
#include "api/server/router.h"
#include "api/server/services.h"

namespace pstorage::api {

namespace {

Reply Health(Services& s, const Request&) {
  bool stopping = s.shutting_down.load();
  Status engine = s.engine.Health();
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "status", stopping ? "shutting_down" : engine.ok() ? "healthy" : "degraded");
  if (!engine.ok()) KV(w, "detail", engine.message() + " (restart the server)");
  KV(w, "reduction_ratio", s.engine.Reduction().data_reduction_ratio);
  KV(w, "cluster_enabled", false);
  KV(w, "version", kVersion);
  KV(w, "timestamp", IsoTime(NowMs()));
  KV(w, "uptime_seconds", static_cast<uint64_t>((NowMs() - s.started_ms) / 1000));
  w.EndObject();
  return JsonReply(stopping || !engine.ok() ? 503 : 200, sb);
}

Reply Arrays(Services& s, const Request&) {
  engine::ReductionStats r = s.engine.Reduction();
  flash::FlashMetrics f = s.engine.FlashMetrics();
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  Key(w, "arrays");
  w.StartArray();
  w.StartObject();
  KV(w, "id", kNodeId);
  KV(w, "name", "PStorage");
  KV(w, "model", "PStorage Virtual Array");
  KV(w, "version", kVersion);
  Key(w, "capacity");
  w.StartObject();
  KV(w, "total_bytes", f.total_bytes);
  KV(w, "used_bytes", r.physical_bytes_used);
  KV(w, "free_bytes", f.total_bytes > r.physical_bytes_used ? f.total_bytes - r.physical_bytes_used
                                                            : uint64_t{0});
  KV(w, "provisioned_bytes", r.provisioned_bytes);
  KV(w, "reduction_ratio", r.data_reduction_ratio);
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return JsonReply(200, sb);
}

Reply Prometheus(Services& s, const Request&) {
  Reply r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = RenderPrometheus(s);
  return r;
}

Reply OpenApi(Services&, const Request&) {
  Reply r;
  r.body = std::string(OpenApiDocument());
  return r;
}

}  // namespace

void AddSystemRoutes(std::vector<Route>* r) {
  r->push_back({"GET", "/health", Health, Access::kOpen});
  r->push_back({"GET", "/metrics", Prometheus, Access::kOpen});
  r->push_back({"GET", "/openapi.json", OpenApi, Access::kOpen});
  r->push_back({"GET", "/api/v1/arrays", Arrays});
}

}  // namespace pstorage::api
