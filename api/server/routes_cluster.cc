// /api/v1/cluster: this build runs a single node, and says so. Status and
// replication answer for that node; membership and failover changes are
// refused with 409 until cluster mode exists, after their bodies are checked.
#include "api/server/metrics_json.h"
#include "api/server/router.h"
#include "api/server/services.h"

namespace pstorage::api {

void WriteClusterStatus(JsonWriter& w) {
  w.StartObject();
  KV(w, "node_id", kNodeId);
  KV(w, "state", "healthy");
  KV(w, "current_primary", kNodeId);
  KV(w, "has_quorum", true);
  KV(w, "node_count", 1);
  KV(w, "healthy_nodes", 1);
  KV(w, "replication_lag_ms", 0.0);
  KV(w, "cluster_enabled", false);
  w.EndObject();
}

namespace {

Reply ClusterStatus(Services&, const Request&) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  WriteClusterStatus(w);
  return JsonReply(200, sb);
}

Reply ClusterReplication(Services&, const Request&) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "mode", "none");
  KV(w, "node_id", kNodeId);
  KV(w, "is_primary", true);
  Key(w, "peers");
  w.StartArray();
  w.EndArray();
  KV(w, "operations_replicated", uint64_t{0});
  KV(w, "operations_pending", uint64_t{0});
  KV(w, "avg_latency_ms", 0.0);
  w.EndObject();
  return JsonReply(200, sb);
}

Reply NotClustered(const Request& req) {
  return ErrorReply(409, "CLUSTER_DISABLED",
                    "cluster mode is not enabled on this node: it runs alone and is its own "
                    "primary, so there are no peers to add, remove or fail over to",
                    req.request_id);
}

Reply AddPeer(Services&, const Request& req) {
  rapidjson::Document doc;
  if (Status st = ParseBody(req, &doc); !st.ok()) return Error(req, st);
  FieldReader f(doc, {"node_id", "url"});
  f.String("node_id", true, 255);
  f.String("url", true, 2048);
  if (!f.status().ok()) return Error(req, f.status());
  return NotClustered(req);
}

Reply RemovePeer(Services&, const Request& req) {
  return ErrorReply(404, "NOT_FOUND",
                    "Peer " + req.params.at("node_id") + " not found (this node has no peers)",
                    req.request_id);
}

Reply Failover(Services&, const Request& req) {
  rapidjson::Document doc;
  if (req.body.empty()) {
    doc.SetObject();
  } else if (Status st = ParseBody(req, &doc); !st.ok()) {
    return Error(req, st);
  }
  FieldReader f(doc, {"target_node"});
  f.String("target_node", false, 255, true);
  if (!f.status().ok()) return Error(req, f.status());
  return NotClustered(req);
}

Reply Failback(Services&, const Request& req) { return NotClustered(req); }

Reply Heartbeat(Services&, const Request& req) {
  if (!req.body.empty()) {
    rapidjson::Document doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Error(req, st);
  }
  return NotClustered(req);
}

}  // namespace

void AddClusterRoutes(std::vector<Route>* r) {
  r->push_back({"GET", "/api/v1/cluster/status", ClusterStatus});
  r->push_back({"GET", "/api/v1/cluster/replication", ClusterReplication});
  r->push_back({"POST", "/api/v1/cluster/peers", AddPeer});
  r->push_back({"DELETE", "/api/v1/cluster/peers/{node_id}", RemovePeer});
  r->push_back({"POST", "/api/v1/cluster/failover", Failover});
  r->push_back({"POST", "/api/v1/cluster/failback", Failback});
  r->push_back({"POST", "/api/v1/cluster/heartbeat", Heartbeat});
}

}  // namespace pstorage::api
