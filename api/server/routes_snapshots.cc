// Snapshots: per volume and across volumes; restore to a new volume or onto
// an existing one.
#include "api/server/router.h"
#include "api/server/services.h"

namespace pstorage::api {

namespace {

Reply SnapshotReply(int status, const engine::SnapshotInfo& snap) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  WriteSnapshot(w, snap);
  return JsonReply(status, sb);
}

// The snapshot named by the path, which must belong to the path's volume.
Result<engine::SnapshotInfo> PathSnapshot(Services& s, const Request& req) {
  const std::string& vol = req.params.at("volume_id");
  const std::string& sid = req.params.at("snapshot_id");
  if (Result<engine::VolumeInfo> v = s.engine.GetVolume(vol); !v.ok()) return v.status();
  Result<engine::SnapshotInfo> snap = s.engine.GetSnapshot(sid);
  if (!snap.ok() || snap->volume_id != vol) {
    return Status::NotFound("Snapshot " + sid + " not found on volume " + vol);
  }
  return snap;
}

Reply CreateSnapshot(Services& s, const Request& req) {
  rapidjson::Document doc;
  if (Status st = ParseBody(req, &doc); !st.ok()) return Error(req, st);
  FieldReader f(doc, {"name", "description", "tags"});
  std::optional<std::string> name = f.String("name", false, 255);
  std::optional<std::string> description = f.String("description", false, 4096, true);
  std::optional<engine::Tags> tags = f.Tags("tags");
  if (!f.status().ok()) return Error(req, f.status());
  // Like most arrays, an unnamed snapshot is named after its time.
  std::string n = name.value_or("snap-" + std::to_string(NowMs()));
  if (Status st = ValidateName(n, "snapshot"); !st.ok()) return Error(req, st);
  Result<engine::SnapshotInfo> snap = s.engine.CreateSnapshot(
      req.params.at("volume_id"), n, description.value_or(""), tags.value_or(engine::Tags{}));
  if (!snap.ok()) return Error(req, snap.status());
  return SnapshotReply(201, *snap);
}

Reply ListVolumeSnapshots(Services& s, const Request& req) {
  Result<std::vector<engine::SnapshotInfo>> snaps =
      s.engine.ListSnapshots(req.params.at("volume_id"));
  if (!snaps.ok()) return Error(req, snaps.status());
  return PagedList(req, std::move(*snaps), "snapshots", &WriteSnapshot);
}

Reply ListAllSnapshots(Services& s, const Request& req) {
  return PagedList(req, s.engine.ListAllSnapshots(), "snapshots", &WriteSnapshot);
}

Reply GetSnapshot(Services& s, const Request& req) {
  Result<engine::SnapshotInfo> snap = PathSnapshot(s, req);
  if (!snap.ok()) return Error(req, snap.status());
  return SnapshotReply(200, *snap);
}

Reply DeleteSnapshot(Services& s, const Request& req) {
  Result<engine::SnapshotInfo> snap = PathSnapshot(s, req);
  if (!snap.ok()) return Error(req, snap.status());
  if (Status st = s.engine.DeleteSnapshot(snap->id); !st.ok()) return Error(req, st);
  return NoContent();
}

Reply RestoreSnapshot(Services& s, const Request& req) {
  // The seed sends {"target_volume_id": null}; an empty body means the same.
  rapidjson::Document doc;
  if (req.body.empty()) {
    doc.SetObject();
  } else if (Status st = ParseBody(req, &doc); !st.ok()) {
    return Error(req, st);
  }
  FieldReader f(doc, {"target_volume_id", "name"});
  std::optional<std::string> target = f.String("target_volume_id", false, 255, true);
  std::optional<std::string> name = f.String("name", false, 255);
  if (!f.status().ok()) return Error(req, f.status());
  if (target && name) {
    return BadRequest(req, "give either target_volume_id (restore onto that volume) or name "
                           "(restore into a new volume), not both");
  }
  if (name) {
    if (Status st = ValidateName(*name, "volume"); !st.ok()) return Error(req, st);
  }
  Result<engine::SnapshotInfo> snap = PathSnapshot(s, req);
  if (!snap.ok()) return Error(req, snap.status());
  Result<engine::VolumeInfo> v =
      s.engine.RestoreSnapshot(snap->id, target.value_or(""), name.value_or(""));
  if (!v.ok()) return Error(req, v.status());
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  WriteVolume(w, *v);
  return JsonReply(target ? 200 : 201, sb);
}

}  // namespace

void AddSnapshotRoutes(std::vector<Route>* r) {
  r->push_back({"POST", "/api/v1/volumes/{volume_id}/snapshots", CreateSnapshot});
  r->push_back({"GET", "/api/v1/volumes/{volume_id}/snapshots", ListVolumeSnapshots});
  r->push_back({"GET", "/api/v1/snapshots", ListAllSnapshots});
  r->push_back({"GET", "/api/v1/volumes/{volume_id}/snapshots/{snapshot_id}", GetSnapshot});
  r->push_back({"DELETE", "/api/v1/volumes/{volume_id}/snapshots/{snapshot_id}", DeleteSnapshot});
  r->push_back(
      {"POST", "/api/v1/volumes/{volume_id}/snapshots/{snapshot_id}/restore", RestoreSnapshot});
}

}  // namespace pstorage::api
