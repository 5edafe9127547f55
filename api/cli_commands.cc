// health, metrics, volume and snapshot commands, and the lookup that lets a
// person type a name where the API wants an id.
#include <cstdio>

#include "api/cli_internal.h"

namespace pstorage::api::cli {
namespace {

// Every item of a paged list endpoint, in order.
struct Listing {
  int exit_code = kExitOk;
  rapidjson::Document items{rapidjson::kArrayType};
  std::string first_page;  // the body of the first response, as sent
  int pages = 0;
};

// GETs `target` and follows next_cursor until the server says there is no
// more. `limit` (page size) is passed on every request when given.
Listing ListAll(Session& s, const std::string& target, const char* key,
                std::optional<uint64_t> limit) {
  Listing out;
  std::string cursor;
  for (;;) {
    std::string query = limit ? "limit=" + std::to_string(*limit) : "";
    if (!cursor.empty()) query += (query.empty() ? "cursor=" : "&cursor=") + UrlEncode(cursor);
    Reply r = s.Call("GET", query.empty() ? target : target + "?" + query);
    if (!r.ok()) {
      out.exit_code = r.exit_code;
      return out;
    }
    rapidjson::Document page;
    if (!ParseBody(r.http, &page)) {
      out.exit_code = kExitServerError;
      return out;
    }
    if (!page.IsObject() || !page.HasMember(key) || !page[key].IsArray()) {
      std::fprintf(stderr, "error: the server's list has no \"%s\" array\n", key);
      out.exit_code = kExitServerError;
      return out;
    }
    for (const auto& item : page[key].GetArray()) {
      out.items.PushBack(rapidjson::Value(item, out.items.GetAllocator()),
                         out.items.GetAllocator());
    }
    if (out.pages++ == 0) out.first_page = std::move(r.http.body);
    std::string next = StrField(page, "next_cursor");
    if (next.empty()) return out;
    if (next == cursor) {
      std::fprintf(stderr, "error: the server returned the same next_cursor twice\n");
      out.exit_code = kExitServerError;
      return out;
    }
    cursor = std::move(next);
  }
}

// --json prints the server's body as is; a list that took several pages is
// merged into one document of the same shape.
void PrintListJson(const Listing& l, const char* key) {
  if (l.pages == 1) {
    std::printf("%s\n", l.first_page.c_str());
    return;
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key(key);
  l.items.Accept(w);
  w.Key("total");
  w.Uint64(l.items.Size());
  w.Key("next_cursor");
  w.Null();
  w.EndObject();
  std::printf("%s\n", sb.GetString());
}

std::string Ratio(double r) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f:1", r);
  return buf;
}

// GET base/{arg}; on 404, the single item of the list at `base` whose name
// is `arg`.
Found Resolve(Session& s, const std::string& base, const char* key, const std::string& kind,
              const std::string& arg) {
  Found f;
  Reply r = s.Call("GET", base + "/" + UrlEncode(arg), {}, {}, /*quiet_status=*/404);
  if (r.ok() || r.http.status != 404) {
    rapidjson::Document doc;
    doc.Parse(r.http.body.data(), r.http.body.size());
    f.exit_code = r.exit_code;
    f.id = doc.HasParseError() || StrField(doc, "id").empty() ? arg : StrField(doc, "id");
    f.http = std::move(r.http);
    return f;
  }
  Listing l = ListAll(s, base, key, std::nullopt);
  if (l.exit_code != kExitOk) {
    f.exit_code = l.exit_code;
    return f;
  }
  std::vector<std::string> ids;
  for (const auto& item : l.items.GetArray()) {
    if (StrField(item, "name") == arg) ids.push_back(StrField(item, "id"));
  }
  f.exit_code = kExitServerError;
  if (ids.empty()) {
    std::fprintf(stderr, "error: no %s has the id or name '%s'\n", kind.c_str(), arg.c_str());
    return f;
  }
  if (ids.size() > 1) {
    std::string list;
    for (const std::string& id : ids) list += (list.empty() ? "" : ", ") + id;
    std::fprintf(stderr, "error: %zu %ss are named '%s'; give one of their ids: %s\n",
                 ids.size(), kind.c_str(), arg.c_str(), list.c_str());
    return f;
  }
  r = s.Call("GET", base + "/" + UrlEncode(ids[0]));
  f.exit_code = r.exit_code;
  f.id = ids[0];
  f.http = std::move(r.http);
  return f;
}

std::string VolumePath(const std::string& id) { return "/volumes/" + UrlEncode(id); }

// "--tag k=v" options; nullopt when one has no '=' or an empty key.
std::optional<std::map<std::string, std::string>> ParseTags(const Args& a) {
  std::map<std::string, std::string> tags;
  for (const std::string& t : a.All("--tag")) {
    size_t eq = t.find('=');
    if (eq == std::string::npos || eq == 0) return std::nullopt;
    tags[t.substr(0, eq)] = t.substr(eq + 1);
  }
  return tags;
}

std::optional<uint64_t> PageLimit(const Args& a, bool* bad) {
  *bad = false;
  std::optional<std::string> text = a.Get("--limit");
  if (!text) return std::nullopt;
  std::optional<uint64_t> n = ParseU64(*text);
  *bad = !n || *n == 0;
  return n;
}

}  // namespace

Found ResolveVolume(Session& s, const std::string& volume) {
  return Resolve(s, s.Api("/volumes"), "volumes", "volume", volume);
}

Found ResolveSnapshot(Session& s, const Found& volume, const std::string& snapshot) {
  return Resolve(s, s.Api(VolumePath(volume.id) + "/snapshots"), "snapshots",
                 "snapshot of volume " + NameOf(volume.http), snapshot);
}

std::string NameOf(const HttpResponse& r) {
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.body.size());
  return doc.HasParseError() ? "" : StrField(doc, "name");
}

int RunHealth(Session& s, const Args&) {
  Reply r = s.Call("GET", s.Root("/health"));
  return r.ok() ? PrintReply(s, r.http) : r.exit_code;
}

int RunMetrics(Session& s, const Args& a) {
  std::string path = "/metrics";
  if (!a.positional.empty()) {
    const std::string& group = a.positional[0];
    if (group != "reduction" && group != "flash" && group != "volumes" &&
        group != "replication") {
      return UsageError("metrics", "unknown metrics group '" + group + "'");
    }
    path += "/" + group;
  }
  Reply r = s.Call("GET", s.Api(path));
  return r.ok() ? PrintReply(s, r.http) : r.exit_code;
}

int RunVolumeCreate(Session& s, const Args& a) {
  std::optional<double> size_gb = ParseSizeGb(a.Get("--size-gb").value_or(""));
  if (!size_gb) return UsageError("volume create", "--size-gb N is required: a positive number");
  std::optional<std::map<std::string, std::string>> tags = ParseTags(a);
  if (!tags) return UsageError("volume create", "--tag expects KEY=VALUE");
  JsonBody body;
  body.Str("name", a.positional[0]).Number("size_gb", *size_gb);
  if (std::optional<std::string> d = a.Get("--description")) body.Str("description", *d);
  if (!tags->empty()) body.Tags("tags", *tags);
  Reply r = s.Call("POST", s.Api("/volumes"), body.Finish());
  return r.ok() ? PrintReply(s, r.http) : r.exit_code;
}

int RunVolumeList(Session& s, const Args& a) {
  bool bad_limit = false;
  std::optional<uint64_t> limit = PageLimit(a, &bad_limit);
  if (bad_limit) return UsageError("volume list", "--limit expects a positive integer");
  Listing l = ListAll(s, s.Api("/volumes"), "volumes", limit);
  if (l.exit_code != kExitOk) return l.exit_code;
  if (s.json()) {
    PrintListJson(l, "volumes");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "NAME", "SIZE", "USED", "RATIO", "CREATED"}};
  for (const auto& v : l.items.GetArray()) {
    rows.push_back({StrField(v, "id"), StrField(v, "name"), HumanBytes(U64Field(v, "size_bytes")),
                    HumanBytes(U64Field(v, "used_bytes")), Ratio(NumField(v, "reduction_ratio")),
                    StrField(v, "created_at")});
  }
  PrintTable(rows);
  return kExitOk;
}

int RunVolumeGet(Session& s, const Args& a) {
  Found v = ResolveVolume(s, a.positional[0]);
  return v.exit_code == kExitOk ? PrintReply(s, v.http) : v.exit_code;
}

int RunVolumeDelete(Session& s, const Args& a) {
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  Reply r = s.Call("DELETE", s.Api(VolumePath(v.id)));
  if (!r.ok()) return r.exit_code;
  if (s.json()) return PrintReply(s, r.http);
  std::printf("deleted volume %s (%s)\n", NameOf(v.http).c_str(), v.id.c_str());
  return kExitOk;
}

int RunVolumeResize(Session& s, const Args& a) {
  std::optional<double> size_gb = ParseSizeGb(a.Get("--size-gb").value_or(""));
  if (!size_gb) return UsageError("volume resize", "--size-gb N is required: a positive number");
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  Reply r = s.Call("POST", s.Api(VolumePath(v.id) + "/resize"),
                   JsonBody().Number("size_gb", *size_gb).Finish());
  return r.ok() ? PrintReply(s, r.http) : r.exit_code;
}

int RunVolumeClone(Session& s, const Args& a) {
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  JsonBody body;
  body.Str("name", a.positional[1]);
  if (std::optional<std::string> d = a.Get("--description")) body.Str("description", *d);
  Reply r = s.Call("POST", s.Api(VolumePath(v.id) + "/clone"), body.Finish());
  return r.ok() ? PrintReply(s, r.http) : r.exit_code;
}

int RunVolumeUpdate(Session& s, const Args& a) {
  std::optional<std::map<std::string, std::string>> tags = ParseTags(a);
  if (!tags) return UsageError("volume update", "--tag expects KEY=VALUE");
  std::optional<std::string> name = a.Get("--name"), description = a.Get("--description");
  if (!name && !description && tags->empty()) {
    return UsageError("volume update", "nothing to change: give --name, --description or --tag");
  }
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  JsonBody body;
  if (name) body.Str("name", *name);
  if (description) body.Str("description", *description);
  if (!tags->empty()) body.Tags("tags", *tags);
  Reply r = s.Call("PUT", s.Api(VolumePath(v.id)), body.Finish());
  return r.ok() ? PrintReply(s, r.http) : r.exit_code;
}

int RunSnapshotCreate(Session& s, const Args& a) {
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  JsonBody body;
  body.Str("name", a.positional[1]);
  if (std::optional<std::string> d = a.Get("--description")) body.Str("description", *d);
  Reply r = s.Call("POST", s.Api(VolumePath(v.id) + "/snapshots"), body.Finish());
  return r.ok() ? PrintReply(s, r.http) : r.exit_code;
}

int RunSnapshotList(Session& s, const Args& a) {
  bool bad_limit = false;
  std::optional<uint64_t> limit = PageLimit(a, &bad_limit);
  if (bad_limit) return UsageError("snapshot list", "--limit expects a positive integer");
  std::string target = s.Api("/snapshots");
  if (!a.positional.empty()) {
    Found v = ResolveVolume(s, a.positional[0]);
    if (v.exit_code != kExitOk) return v.exit_code;
    target = s.Api(VolumePath(v.id) + "/snapshots");
  }
  Listing l = ListAll(s, target, "snapshots", limit);
  if (l.exit_code != kExitOk) return l.exit_code;
  if (s.json()) {
    PrintListJson(l, "snapshots");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "VOLUME", "SIZE", "USED", "CREATED"}};
  for (const auto& snap : l.items.GetArray()) {
    std::string volume = StrField(snap, "volume_name");
    rows.push_back({StrField(snap, "id"), StrField(snap, "name"),
                    volume.empty() ? StrField(snap, "volume_id") : volume,
                    HumanBytes(U64Field(snap, "size_bytes")),
                    HumanBytes(U64Field(snap, "used_bytes")), StrField(snap, "created_at")});
  }
  PrintTable(rows);
  return kExitOk;
}

int RunSnapshotGet(Session& s, const Args& a) {
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  Found snap = ResolveSnapshot(s, v, a.positional[1]);
  return snap.exit_code == kExitOk ? PrintReply(s, snap.http) : snap.exit_code;
}

int RunSnapshotDelete(Session& s, const Args& a) {
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  Found snap = ResolveSnapshot(s, v, a.positional[1]);
  if (snap.exit_code != kExitOk) return snap.exit_code;
  Reply r = s.Call("DELETE", s.Api(VolumePath(v.id) + "/snapshots/" + UrlEncode(snap.id)));
  if (!r.ok()) return r.exit_code;
  if (s.json()) return PrintReply(s, r.http);
  std::printf("deleted snapshot %s (%s) of volume %s\n", NameOf(snap.http).c_str(),
              snap.id.c_str(), NameOf(v.http).c_str());
  return kExitOk;
}

int RunSnapshotRestore(Session& s, const Args& a) {
  std::optional<std::string> target = a.Get("--target"), name = a.Get("--name");
  if (target && name) {
    return UsageError("snapshot restore",
                      "give --target (restore onto that volume) or --name (a new volume), "
                      "not both");
  }
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  Found snap = ResolveSnapshot(s, v, a.positional[1]);
  if (snap.exit_code != kExitOk) return snap.exit_code;
  JsonBody body;
  if (target) {
    Found t = ResolveVolume(s, *target);
    if (t.exit_code != kExitOk) return t.exit_code;
    body.Str("target_volume_id", t.id);
  } else {
    body.Null("target_volume_id");
  }
  if (name) body.Str("name", *name);
  Reply r = s.Call("POST",
                   s.Api(VolumePath(v.id) + "/snapshots/" + UrlEncode(snap.id) + "/restore"),
                   body.Finish());
  return r.ok() ? PrintReply(s, r.http) : r.exit_code;
}

}  // namespace pstorage::api::cli
