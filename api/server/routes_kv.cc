// Keys and values of a project: seed 000's KVStore semantics (versions, TTL,
// metadata, conditional writes, watch streams; batches and transactions are
// in routes_kv_batch.cc) on
// seed 002's paths (/api/v1/projects/{project_id}/...), and seed 000's own
// paths (/v1/...) acting on the project of the caller's key.
//
// The project is resolved before the handler runs (server.cc, Authorize)
// into Request::project_id.
#include <algorithm>

#include "api/base64.h"
#include "api/server/projects.h"
#include "api/server/router.h"
#include "api/server/routes_kv_internal.h"
#include "api/server/services.h"
#include "api/server/watch.h"

namespace pstorage::api {

namespace kv_routes {

size_t ReplyBudget(const Services& s) { return s.config.max_body_bytes; }

Result<std::shared_ptr<kv::KvStore>> StoreFor(Services& s, const Request& req) {
  return s.projects->Store(req.project_id);
}

Reply KvError(const Request& req, int status, std::string_view code, std::string_view detail) {
  return ErrorReply(status, code, detail, req.request_id);
}

Status ParseKvBody(const Request& req, rapidjson::Document* doc) {
  if (!req.body.empty() && !req.content_type.empty() && req.content_type != "application/json") {
    return Status::InvalidArgument("Content-Type must be application/json, not " +
                                   req.content_type);
  }
  return ParseJsonObject(req.body, doc, kMaxKvBodyDepth);
}

Result<ValueTexts> ValuesOf(const Request& req) { return CaptureMemberTexts(req.body, "value"); }

const std::string& ValueAt(const ValueTexts& texts, const std::string& path) {
  static const std::string kMissing;
  auto it = texts.find(path);
  return it == texts.end() ? kMissing : it->second;
}

void WriteMetadata(JsonWriter& w, const kv::Entry& e) {
  Key(w, "metadata");
  w.StartObject();
  KV(w, "created_at", IsoTime(e.created_at_ms));
  KV(w, "updated_at", IsoTime(e.updated_at_ms));
  if (e.expires_at_ms != 0) KV(w, "expires_at", IsoTime(e.expires_at_ms));
  KV(w, "version", e.version);
  if (!e.tags.empty()) {
    Key(w, "tags");
    WriteTags(w, e.tags);
  }
  w.EndObject();
}

void WriteValue(JsonWriter& w, const std::string& json) {
  Key(w, "value");
  w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

Status ReadPut(const rapidjson::Value& obj, const KvConfig& limits, bool with_key,
               std::initializer_list<std::string_view> allowed, const std::string& value_text,
               PutFields* out, bool* too_large) {
  FieldReader f(obj, allowed);
  if (with_key) {
    std::optional<std::string> k = f.String("key", true, limits.max_key_bytes + 1);
    if (k) out->key = *k;
  }
  const rapidjson::Value* value = f.Raw("value");
  if (value == nullptr && f.status().ok()) {
    return Status::InvalidArgument("missing required field 'value' (any JSON value)");
  }
  if (f.Has("ttl_seconds") && !f.IsNull("ttl_seconds")) {
    const rapidjson::Value* t = f.Raw("ttl_seconds");
    if (!t->IsInt64() || t->GetInt64() < 1 || t->GetInt64() > kv::kMaxTtlSeconds) {
      return Status::InvalidArgument("field 'ttl_seconds' must be an integer from 1 to " +
                                     std::to_string(kv::kMaxTtlSeconds));
    }
    out->options.ttl_seconds = t->GetInt64();
  }
  if (std::optional<std::map<std::string, std::string>> tags = f.Tags("metadata")) {
    out->options.tags = std::move(*tags);
  }
  PS_RETURN_IF_ERROR(f.status());
  for (const auto& [name, text] : out->options.tags) {
    if (name.size() > kv::kMaxTagBytes || text.size() > kv::kMaxTagBytes) {
      return Status::InvalidArgument("metadata: names and values must be at most " +
                                     std::to_string(kv::kMaxTagBytes) + " bytes ('" +
                                     ValidUtf8(name.substr(0, 64)) + "')");
    }
  }
  out->value_json = value_text;
  if (out->value_json.size() > limits.max_value_bytes) {
    *too_large = true;
    return Status::InvalidArgument("value is " + std::to_string(out->value_json.size()) +
                                   " bytes of JSON; the limit is " +
                                   std::to_string(limits.max_value_bytes) +
                                   " (kv.max_value_bytes)");
  }
  return Status::Ok();
}

Reply BadPut(const Request& req, const Status& st, bool too_large) {
  if (too_large) return KvError(req, 413, "VALUE_TOO_LARGE", st.message());
  return Error(req, st);
}

}  // namespace kv_routes

namespace {

using namespace kv_routes;

bool SeedPath(const Request& req) { return req.path.rfind("/v1/", 0) == 0; }


// The key from the path ({key*}): 400 for what the store refuses.
std::string PathKey(const Request& req) { return req.params.at("key"); }

bool QueryBool(const Request& req, const std::string& name, bool dflt, Status* st) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return dflt;
  if (it->second == "true" || it->second == "1" || it->second.empty()) return true;
  if (it->second == "false" || it->second == "0") return false;
  *st = Status::InvalidArgument("query parameter '" + name + "' must be true or false");
  return dflt;
}

std::string Etag(uint64_t version) {
  std::string tag(1, '"');
  tag += std::to_string(version);
  tag += '"';
  return tag;
}

// If-Match: <version> | "<version>" | *   If-None-Match: *
struct Precondition {
  bool must_exist = false;
  bool must_not_exist = false;
  std::optional<uint64_t> version;
};

Status ReadPrecondition(const Request& req, Precondition* p) {
  if (!req.if_match.empty()) {
    std::string v = req.if_match;
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    uint64_t n = 0;
    if (v == "*") {
      p->must_exist = true;
    } else if (ParseDecimal(v, 19, &n)) {
      p->version = n;
    } else {
      return Status::InvalidArgument("If-Match must be a version number (5 or \"5\") or *");
    }
  }
  if (!req.if_none_match.empty()) {
    if (req.if_none_match != "*") {
      return Status::InvalidArgument("If-None-Match supports only * (create if absent)");
    }
    p->must_not_exist = true;
  }
  if (p->must_not_exist && (p->must_exist || p->version)) {
    return Status::InvalidArgument("If-Match and If-None-Match: * cannot both hold");
  }
  return Status::Ok();
}

// The version a precondition asks the store to check (0 = must not exist),
// resolving If-Match: * to the key's current version.
Result<std::optional<uint64_t>> ExpectedVersion(kv::KvStore& store, const std::string& key,
                                                const Precondition& p, Reply* refusal,
                                                const Request& req) {
  if (p.must_not_exist) return std::optional<uint64_t>(0);
  if (p.version) return p.version;
  if (p.must_exist) {
    Result<kv::Entry> cur = store.Get(key);
    if (!cur.ok()) {
      *refusal = KvError(req, 412, "PRECONDITION_FAILED",
                         "If-Match: * but key " + ValidUtf8(key) + " does not exist");
      return Status::FailedPrecondition("");
    }
    return std::optional<uint64_t>(cur->version);
  }
  return std::optional<uint64_t>();
}

// The refusal for a store write that failed its version check.
Reply ConflictReply(kv::KvStore& store, const Request& req, const std::string& key,
                    const Precondition& p) {
  Result<kv::Entry> cur = store.Get(key);
  const std::string k = ValidUtf8(key);
  if (p.must_not_exist) {
    return KvError(req, 412, "ALREADY_EXISTS",
                   "If-None-Match: * but key " + k + " exists (version " +
                       std::to_string(cur.ok() ? cur->version : 0) + ")");
  }
  const std::string got = cur.ok() ? std::to_string(cur->version) : "none (key absent)";
  return KvError(req, 412, "VERSION_CONFLICT",
                 "Expected version " + (p.version ? std::to_string(*p.version) : "current") +
                     ", got " + got + " for key " + k);
}

// ---- Single keys ----

Reply PutKey(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  rapidjson::Document doc;
  if (Status st = ParseKvBody(req, &doc); !st.ok()) return Error(req, st);
  PutFields put;
  bool too_large = false;
  Result<ValueTexts> texts = ValuesOf(req);
  if (!texts.ok()) return Error(req, texts.status());
  Status st = ReadPut(doc, s.projects->limits(), false, {"value", "ttl_seconds", "metadata"},
                      ValueAt(*texts, "value"), &put, &too_large);
  if (!st.ok()) return BadPut(req, st, too_large);
  Precondition pre;
  if (Status p = ReadPrecondition(req, &pre); !p.ok()) return Error(req, p);
  const std::string key = PathKey(req);
  Reply refusal;
  Result<std::optional<uint64_t>> expected = ExpectedVersion(**store, key, pre, &refusal, req);
  if (!expected.ok()) return refusal;
  put.options.if_version = *expected;
  Result<kv::Entry> e = (*store)->Put(key, put.value_json, put.options);
  if (!e.ok()) {
    if (e.status().code() == Code::kFailedPrecondition) return ConflictReply(**store, req, key, pre);
    return Error(req, e.status());
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "success", true);
  KV(w, "key", key);
  KV(w, "version", e->version);
  w.EndObject();
  Reply r = JsonReply(e->version == 1 ? 201 : 200, sb);
  r.headers.emplace_back("ETag", Etag(e->version));
  return r;
}

Reply GetKey(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  Status qs;
  const bool meta = QueryBool(req, "include_metadata", false, &qs);
  if (!qs.ok()) return Error(req, qs);
  const std::string key = PathKey(req);
  Result<kv::Entry> e = (*store)->Get(key);
  if (!e.ok()) {
    if (e.status().code() == Code::kNotFound) {
      return KvError(req, 404, "KEY_NOT_FOUND", "Key " + ValidUtf8(key) + " not found");
    }
    return Error(req, e.status());
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "found", true);
  KV(w, "key", key);
  WriteValue(w, e->value);
  if (meta) WriteMetadata(w, *e);
  w.EndObject();
  Reply r = JsonReply(200, sb);
  r.headers.emplace_back("ETag", Etag(e->version));
  return r;
}

Reply DeleteKey(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  Precondition pre;
  if (Status p = ReadPrecondition(req, &pre); !p.ok()) return Error(req, p);
  if (pre.must_not_exist) return BadRequest(req, "If-None-Match makes no sense on DELETE");
  const std::string key = PathKey(req);
  Reply refusal;
  Result<std::optional<uint64_t>> expected = ExpectedVersion(**store, key, pre, &refusal, req);
  if (!expected.ok()) return refusal;
  Status st = (*store)->Delete(key, *expected);
  if (st.code() == Code::kNotFound) {
    return KvError(req, 404, "KEY_NOT_FOUND", "Key " + ValidUtf8(key) + " not found");
  }
  if (st.code() == Code::kFailedPrecondition) return ConflictReply(**store, req, key, pre);
  if (!st.ok()) return Error(req, st);
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "success", true);
  KV(w, "key", key);
  w.EndObject();
  return JsonReply(200, sb);
}

Reply DeleteAllKeys(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  const uint64_t before = (*store)->GetStats().keys;
  Status st = (*store)->DeleteAll();
  if (!st.ok()) return Error(req, st);
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "success", true);
  KV(w, "deleted", before);
  w.EndObject();
  return JsonReply(200, sb);
}

// ---- Listing ----

// Cursors are the last key returned, base64url-encoded: opaque to clients
// and safe in a query string.
std::string EncodeCursor(const std::string& key) {
  std::string b = Base64Encode(key);
  for (char& c : b) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!b.empty() && b.back() == '=') b.pop_back();
  return b;
}

Result<std::string> DecodeCursor(std::string c) {
  for (char& ch : c) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  while (c.size() % 4 != 0) c += '=';
  Result<std::string> out = Base64Decode(c);
  if (!out.ok()) {
    return Status::InvalidArgument("cursor is not one this server returned (next_cursor)");
  }
  return out;
}

Reply ListKeys(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  Status qs;
  // Seed 002's listing returns every key with its value; seed 000's asks
  // for values with include_values=true.
  const bool values = QueryBool(req, "include_values", !SeedPath(req), &qs);
  const bool meta = QueryBool(req, "include_metadata", true, &qs);
  if (!qs.ok()) return Error(req, qs);
  auto prefix_it = req.query.find("prefix");
  const std::string prefix = prefix_it == req.query.end() ? "" : prefix_it->second;
  Result<std::optional<uint64_t>> limit = QueryUint(req, "limit");
  if (!limit.ok()) return Error(req, limit.status());
  if (*limit && (**limit < 1 || **limit > kv::kMaxListLimit)) {
    return BadRequest(req, "limit must be from 1 to " + std::to_string(kv::kMaxListLimit));
  }
  std::string cursor;
  if (auto c = req.query.find("cursor"); c != req.query.end() && !c->second.empty()) {
    Result<std::string> k = DecodeCursor(c->second);
    if (!k.ok()) return Error(req, k.status());
    cursor = *k;
  }
  // Without a limit, every key (in pages of kMaxListLimit) — as far as one
  // reply can carry: past ReplyBudget() bytes the page ends early with
  // has_more and a cursor, whatever the limit.
  const size_t budget = ReplyBudget(s);
  std::vector<kv::Entry> entries;
  size_t bytes = 0;
  bool has_more = false;
  bool full = false;
  while (!full) {
    const size_t want = *limit ? static_cast<size_t>(**limit) - entries.size() : kv::kMaxListLimit;
    Result<kv::ListPage> page = (*store)->List(prefix, cursor, want);
    if (!page.ok()) return Error(req, page.status());
    has_more = page->has_more;
    for (size_t i = 0; i < page->entries.size(); i++) {
      kv::Entry& e = page->entries[i];
      const size_t size = e.key.size() * 2 + (values ? e.value.size() : 0) + kEntryOverhead;
      if (!entries.empty() && bytes + size > budget) {
        full = true;
        has_more = true;
        break;
      }
      bytes += size;
      entries.push_back(std::move(e));
    }
    if (!has_more || *limit || entries.empty()) break;
    cursor = entries.back().key;
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  Key(w, "items");
  w.StartArray();
  for (const kv::Entry& e : entries) {
    w.StartObject();
    KV(w, "key", e.key);
    if (values) WriteValue(w, e.value);
    if (meta) WriteMetadata(w, e);
    w.EndObject();
  }
  w.EndArray();
  KV(w, "count", static_cast<uint64_t>(entries.size()));
  KV(w, "has_more", has_more);
  Key(w, "next_cursor");
  if (has_more && !entries.empty()) {
    Str(w, EncodeCursor(entries.back().key));
  } else {
    w.Null();
  }
  w.EndObject();
  return JsonReply(200, sb);
}

// ---- Watch ----

Reply Watch(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  WatchSpec spec;
  if (auto p = req.params.find("prefix"); p != req.params.end()) spec.prefix = p->second;
  // Keys never hold control bytes, so neither does a useful prefix.
  for (char c : spec.prefix) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return BadRequest(req, "a watch prefix must not contain control characters");
    }
  }
  if (spec.prefix.size() > s.projects->limits().max_key_bytes) {
    return BadRequest(req, "a watch prefix is at most kv.max_key_bytes (" +
                               std::to_string(s.projects->limits().max_key_bytes) + ") bytes");
  }
  if (auto e = req.query.find("events"); e != req.query.end()) {
    spec.puts = spec.deletes = false;
    std::string_view list = e->second;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view one = list.substr(0, comma);
      if (one == "put") {
        spec.puts = true;
      } else if (one == "delete") {
        spec.deletes = true;
      } else {
        return BadRequest(req, "events must be a comma-separated list of put, delete");
      }
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  Status qs;
  spec.include_values = QueryBool(req, "include_values", false, &qs);
  if (!qs.ok()) return Error(req, qs);
  Result<std::shared_ptr<StreamReply>> stream = s.watches->Open(*store, std::move(spec));
  if (!stream.ok()) return Error(req, stream.status());
  Reply r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.stream = *stream;
  return r;
}

void AddKeyRoutes(std::vector<Route>* r, const std::string& base, Access access) {
  r->push_back({"GET", base + "/keys", ListKeys, access});
  r->push_back({"GET", base + "/keys/{key*}", GetKey, access});
  r->push_back({"HEAD", base + "/keys/{key*}", GetKey, access});
  r->push_back({"PUT", base + "/keys/{key*}", PutKey, access});
  r->push_back({"DELETE", base + "/keys/{key*}", DeleteKey, access});
  r->push_back({"POST", base + "/batch/put", BatchPut, access});
  r->push_back({"POST", base + "/batch/get", BatchGet, access});
  r->push_back({"POST", base + "/batch/delete", BatchDelete, access});
  r->push_back({"POST", base + "/transaction", Transaction, access});
  r->push_back({"GET", base + "/watch", Watch, access});
  r->push_back({"GET", base + "/watch/{prefix*}", Watch, access});
}

}  // namespace

void AddKvRoutes(std::vector<Route>* r) {
  const std::string project = "/api/v1/projects/{project_id}";
  AddKeyRoutes(r, project, Access::kProject);
  // Seed 002 writes with POST; seed 000 with PUT: both, on both paths.
  r->push_back({"POST", project + "/keys/{key*}", PutKey, Access::kProject});
  r->push_back({"DELETE", project + "/keys", DeleteAllKeys, Access::kProject});
  AddKeyRoutes(r, "/v1", Access::kKeyed);
  r->push_back({"POST", "/v1/keys/{key*}", PutKey, Access::kKeyed});
}

}  // namespace pstorage::api
