#include "api/server/services.h"

#include "api/server/router.h"

#include <algorithm>
#include <cmath>

namespace pstorage::api {

Reply JsonReply(int status, const rapidjson::StringBuffer& sb) {
  Reply r;
  r.status = status;
  r.body.assign(sb.GetString(), sb.GetSize());
  return r;
}

Status ParseBody(const Request& req, rapidjson::Document* doc) {
  if (!req.body.empty() && !req.content_type.empty() && req.content_type != "application/json") {
    return Status::InvalidArgument("Content-Type must be application/json, not " +
                                   req.content_type);
  }
  return ParseJsonObject(req.body, doc);
}

Status ValidateName(std::string_view name, std::string_view what) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  };
  bool ok = !name.empty() && name.size() <= 255 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && ok_char(c);
  if (!ok) {
    return Status::InvalidArgument(std::string(what) +
                                   " name must be 1-255 characters of letters, digits, '_', '.' "
                                   "and '-', starting with a letter or digit");
  }
  return Status::Ok();
}

Result<std::optional<uint64_t>> QueryUint(const Request& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return std::optional<uint64_t>();
  uint64_t v = 0;
  if (!ParseDecimal(it->second, 20, &v)) {
    return Status::InvalidArgument("query parameter '" + name +
                                   "' must be a non-negative integer below 2^64");
  }
  return std::optional<uint64_t>(v);
}

Result<uint64_t> SizeGbToBytes(double size_gb) {
  constexpr double kMaxGb = 1024;
  if (!(size_gb > 0) || size_gb > kMaxGb) {
    return Status::InvalidArgument("size_gb must be greater than 0 and at most 1024");
  }
  double bytes = std::ceil(size_gb * 1073741824.0 / 4096.0) * 4096.0;
  return static_cast<uint64_t>(bytes);
}

void WriteVolume(JsonWriter& w, const engine::VolumeInfo& v) {
  w.StartObject();
  KV(w, "id", v.id);
  KV(w, "name", v.name);
  KV(w, "size_bytes", v.size_bytes);
  KV(w, "used_bytes", v.used_bytes);
  KV(w, "state", v.state);
  KV(w, "description", v.description);
  KV(w, "created_at", IsoTime(v.created_at_ms));
  KV(w, "updated_at", IsoTime(v.updated_at_ms));
  Key(w, "tags");
  WriteTags(w, v.tags);
  KV(w, "reduction_ratio", v.reduction_ratio);
  if (!v.source_snapshot_id.empty()) KV(w, "source_snapshot_id", v.source_snapshot_id);
  w.EndObject();
}

void WriteSnapshot(JsonWriter& w, const engine::SnapshotInfo& s) {
  w.StartObject();
  KV(w, "id", s.id);
  KV(w, "name", s.name);
  KV(w, "volume_id", s.volume_id);
  KV(w, "volume_name", s.volume_name);
  KV(w, "size_bytes", s.size_bytes);
  KV(w, "used_bytes", s.used_bytes);
  KV(w, "state", s.state);
  KV(w, "description", s.description);
  KV(w, "created_at", IsoTime(s.created_at_ms));
  Key(w, "tags");
  WriteTags(w, s.tags);
  w.EndObject();
}

template <typename T>
Result<PageSpec> Paginate(const Request& req, std::vector<T>* items) {
  std::sort(items->begin(), items->end(), [](const T& a, const T& b) {
    return a.created_at_ms != b.created_at_ms ? a.created_at_ms < b.created_at_ms : a.id < b.id;
  });
  PageSpec page;
  page.end = items->size();
  Result<std::optional<uint64_t>> limit = QueryUint(req, "limit");
  if (!limit.ok()) return limit.status();
  auto cursor = req.query.find("cursor");
  if (cursor != req.query.end()) {
    // The cursor names the last item of the previous page: "<created_ms>_<id>".
    const std::string& c = cursor->second;
    size_t us = c.find('_');
    uint64_t digits = 0;  // at most 18 digits: fits int64_t
    if (us == std::string::npos || !ParseDecimal(std::string_view(c).substr(0, us), 18, &digits)) {
      return Status::InvalidArgument("invalid cursor; pass back a next_cursor value");
    }
    const int64_t ms = static_cast<int64_t>(digits);
    std::string id = c.substr(us + 1);
    page.begin = static_cast<size_t>(
        std::upper_bound(items->begin(), items->end(), std::make_pair(ms, id),
                         [](const std::pair<int64_t, std::string>& k, const T& t) {
                           return k.first != t.created_at_ms ? k.first < t.created_at_ms
                                                             : k.second < t.id;
                         }) -
        items->begin());
  }
  if (limit->has_value()) {
    uint64_t n = **limit;
    if (n < 1 || n > 1000) return Status::InvalidArgument("limit must be between 1 and 1000");
    if (items->size() - page.begin > n) {
      page.end = page.begin + n;
      const T& last = (*items)[page.end - 1];
      page.next_cursor = std::to_string(last.created_at_ms) + "_" + last.id;
    }
  }
  return page;
}

template Result<PageSpec> Paginate(const Request&, std::vector<engine::VolumeInfo>*);
template Result<PageSpec> Paginate(const Request&, std::vector<engine::SnapshotInfo>*);

}  // namespace pstorage::api
