// /api/v1/volumes: create, list, get, update, delete, resize, clone.
#include "api/server/router.h"
#include "api/server/services.h"

namespace pstorage::api {

namespace {

Reply VolumeReply(int status, const engine::VolumeInfo& v) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  WriteVolume(w, v);
  return JsonReply(status, sb);
}

Reply CreateVolume(Services& s, const Request& req) {
  rapidjson::Document doc;
  if (Status st = ParseBody(req, &doc); !st.ok()) return Error(req, st);
  FieldReader f(doc, {"name", "size_gb", "description", "tags"});
  std::optional<std::string> name = f.String("name", true, 255);
  std::optional<double> size_gb = f.Number("size_gb", true);
  std::optional<std::string> description = f.String("description", false, 4096, true);
  std::optional<engine::Tags> tags = f.Tags("tags");
  if (!f.status().ok()) return Error(req, f.status());
  if (Status st = ValidateName(*name, "volume"); !st.ok()) return Error(req, st);
  Result<uint64_t> bytes = SizeGbToBytes(*size_gb);
  if (!bytes.ok()) return Error(req, bytes.status());
  engine::VolumeSpec spec;
  spec.name = *name;
  spec.size_bytes = *bytes;
  spec.description = description.value_or("");
  spec.tags = tags.value_or(engine::Tags{});
  Result<engine::VolumeInfo> v = s.engine.CreateVolume(spec);
  if (!v.ok()) return Error(req, v.status());
  return VolumeReply(201, *v);
}

Reply ListVolumes(Services& s, const Request& req) {
  return PagedList(req, s.engine.ListVolumes(), "volumes", &WriteVolume);
}

Reply GetVolume(Services& s, const Request& req) {
  Result<engine::VolumeInfo> v = s.engine.GetVolume(req.params.at("volume_id"));
  if (!v.ok()) return Error(req, v.status());
  return VolumeReply(200, *v);
}

Reply UpdateVolume(Services& s, const Request& req) {
  rapidjson::Document doc;
  if (Status st = ParseBody(req, &doc); !st.ok()) return Error(req, st);
  FieldReader f(doc, {"name", "description", "tags"});
  engine::VolumeUpdate u;
  u.name = f.String("name", false, 255);
  u.description = f.String("description", false, 4096);
  u.tags = f.Tags("tags");
  if (!f.status().ok()) return Error(req, f.status());
  if (u.name) {
    if (Status st = ValidateName(*u.name, "volume"); !st.ok()) return Error(req, st);
  }
  Result<engine::VolumeInfo> v = s.engine.UpdateVolume(req.params.at("volume_id"), u);
  if (!v.ok()) return Error(req, v.status());
  return VolumeReply(200, *v);
}

Reply DeleteVolume(Services& s, const Request& req) {
  if (Status st = s.engine.DeleteVolume(req.params.at("volume_id")); !st.ok()) {
    return Error(req, st);
  }
  return NoContent();
}

Reply ResizeVolume(Services& s, const Request& req) {
  rapidjson::Document doc;
  if (Status st = ParseBody(req, &doc); !st.ok()) return Error(req, st);
  FieldReader f(doc, {"size_gb"});
  std::optional<double> size_gb = f.Number("size_gb", true);
  if (!f.status().ok()) return Error(req, f.status());
  Result<uint64_t> bytes = SizeGbToBytes(*size_gb);
  if (!bytes.ok()) return Error(req, bytes.status());
  const std::string& id = req.params.at("volume_id");
  Result<engine::VolumeInfo> cur = s.engine.GetVolume(id);
  if (!cur.ok()) return Error(req, cur.status());
  if (*bytes <= cur->size_bytes) {
    return Error(req, Status::FailedPrecondition(
                          "only expansion is supported: the new size (" +
                          std::to_string(*bytes) + " bytes) must be larger than the current " +
                          std::to_string(cur->size_bytes) + " bytes"));
  }
  Result<engine::VolumeInfo> v = s.engine.ResizeVolume(id, *bytes);
  if (!v.ok()) return Error(req, v.status());
  return VolumeReply(200, *v);
}

Reply CloneVolume(Services& s, const Request& req) {
  rapidjson::Document doc;
  if (Status st = ParseBody(req, &doc); !st.ok()) return Error(req, st);
  FieldReader f(doc, {"name", "description"});
  std::optional<std::string> name = f.String("name", true, 255);
  std::optional<std::string> description = f.String("description", false, 4096, true);
  if (!f.status().ok()) return Error(req, f.status());
  if (Status st = ValidateName(*name, "volume"); !st.ok()) return Error(req, st);
  Result<engine::VolumeInfo> v =
      s.engine.CloneVolume(req.params.at("volume_id"), *name, description.value_or(""));
  if (!v.ok()) return Error(req, v.status());
  return VolumeReply(201, *v);
}

}  // namespace

void AddVolumeRoutes(std::vector<Route>* r) {
  r->push_back({"POST", "/api/v1/volumes", CreateVolume});
  r->push_back({"GET", "/api/v1/volumes", ListVolumes});
  r->push_back({"GET", "/api/v1/volumes/{volume_id}", GetVolume});
  r->push_back({"PUT", "/api/v1/volumes/{volume_id}", UpdateVolume});
  r->push_back({"DELETE", "/api/v1/volumes/{volume_id}", DeleteVolume});
  r->push_back({"POST", "/api/v1/volumes/{volume_id}/resize", ResizeVolume});
  r->push_back({"POST", "/api/v1/volumes/{volume_id}/clone", CloneVolume});
}

}  // namespace pstorage::api
