#include "api/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string_view>
#include <string>
#include <system_error>
#include <utility>

#include "api/auth.h"
#include "api/config_json.h"

namespace pstorage::api {
namespace {

namespace fs = std::filesystem;
using config_internal::Invalid;
using config_internal::KeyLines;
using rapidjson::SizeType;
using rapidjson::Value;

constexpr size_t kMaxFileBytes = 16 << 20;
constexpr int64_t kMiB = 1 << 20;
constexpr double kMaxRequestsPerSecond = 1e9;
constexpr int64_t kMaxBurst = 1000000000;
constexpr SizeType kMaxNbdExports = 4096;

std::string SysError(const std::string& file, std::string_view what, int err) {
  return file + ": " + std::string(what) + ": " + std::generic_category().message(err);
}

// ---- Reading the settings ----

struct Source {
  const std::string& file;  // as the caller named it, for messages
  const KeyLines& lines;
};

// Typed access to one object of the config, named by its key path
// ("default.authentication"). A null object stands for an absent section:
// every field keeps its default. A getter leaves `*out` alone when the key is
// absent and returns an error naming the key's line when its value is bad.
class Section {
 public:
  Section(const Source& src, const Value* obj, std::string path)
      : src_(src), obj_(obj), path_(std::move(path)) {}

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  Status Error(std::string_view key, std::string_view problem) const {
    const std::string path = Path(key);
    const auto it = src_.lines.find(path);
    return Invalid(src_.file, it == src_.lines.end() ? 1 : it->second, path, problem);
  }
  const Value* Find(const char* key) const {
    if (obj_ == nullptr) return nullptr;
    const auto it = obj_->FindMember(key);
    return it == obj_->MemberEnd() ? nullptr : &it->value;
  }

  // Typos must not become silent defaults.
  Status OnlyKeys(std::initializer_list<std::string_view> allowed) const {
    if (obj_ == nullptr) return Status::Ok();
    for (const auto& m : obj_->GetObject()) {
      const std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      std::string problem = "unknown key (allowed: ";
      for (std::string_view a : allowed) {
        if (a != *allowed.begin()) problem += ", ";
        problem += a;
      }
      return Error(name, problem + ")");
    }
    return Status::Ok();
  }

  Result<Section> Child(const char* key) const {
    const Value* v = Find(key);
    if (v != nullptr && !v->IsObject()) return Error(key, "expected an object");
    return Section(src_, v, Path(key));
  }

  // Only JSON integers: 8000.0 and "8000" are refused like any other type.
  template <typename T>
  Status Integer(const char* key, int64_t lo, int64_t hi, int64_t multiple, T* out) const {
    const Value* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->IsInt64() || v->GetInt64() < lo || v->GetInt64() > hi ||
        v->GetInt64() % multiple != 0) {
      const std::string m = multiple > 1 ? " multiple of " + std::to_string(multiple) : "";
      return Error(key, "expected an integer" + m + " in [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "]");
    }
    *out = static_cast<T>(v->GetInt64());
    return Status::Ok();
  }

  Status Number(const char* key, double lo, double hi, std::string_view problem,
                double* out) const {
    const Value* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->IsNumber() || !(v->GetDouble() >= lo && v->GetDouble() <= hi)) {
      return Error(key, problem);
    }
    *out = v->GetDouble();
    return Status::Ok();
  }

  Status Bool(const char* key, bool* out) const {
    const Value* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->IsBool()) return Error(key, "expected true or false");
    *out = v->GetBool();
    return Status::Ok();
  }

  // A null value (when `nullable`) reads as "".
  Status String(const char* key, bool nullable, std::string* out) const {
    const Value* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (nullable && v->IsNull()) {
      out->clear();
      return Status::Ok();
    }
    if (!v->IsString()) {
      return Error(key, nullable ? "expected a string or null" : "expected a string");
    }
    std::string s(v->GetString(), v->GetStringLength());
    // C APIs (inet_pton, open) would read only up to an embedded NUL.
    if (s.find('\0') != std::string::npos) return Error(key, "string contains \\u0000");
    *out = std::move(s);
    return Status::Ok();
  }

  const Source& source() const { return src_; }

  Status PathString(const char* key, std::string* out) const {
    PS_RETURN_IF_ERROR(String(key, false, out));
    return out->empty() ? Error(key, "expected a non-empty path") : Status::Ok();
  }

 private:
  const Source& src_;
  const Value* obj_;
  std::string path_;
};

// The settings as the file holds them: paths stay as the user wrote them and
// the plain key is kept only while it belongs in the file.
struct FileConfig {
  FileConfig() {
    server.persistent_file_path = "storage_data/";
    server.array.data_dir = "pstorage-data/";
  }
  ServerConfig server;
  std::string api_key;  // "" when absent
};

Status ReadRateLimit(const Section& top, RateLimitConfig* rl) {
  Result<Section> s = top.Child("rate_limit");
  if (!s.ok()) return s.status();
  PS_RETURN_IF_ERROR(s->OnlyKeys({"enabled", "requests_per_second", "burst"}));
  PS_RETURN_IF_ERROR(s->Bool("enabled", &rl->enabled));
  PS_RETURN_IF_ERROR(s->Number("requests_per_second", std::numeric_limits<double>::denorm_min(),
                               kMaxRequestsPerSecond, "expected a number > 0 and <= 1e9",
                               &rl->requests_per_second));
  return s->Integer("burst", 1, kMaxBurst, 1, &rl->burst);
}

// An "authentication" object, of the defaults or of a project.
Status ReadAuthSection(const Section& parent, AuthConfig* a, std::string* api_key) {
  Result<Section> s = parent.Child("authentication");
  if (!s.ok()) return s.status();
  PS_RETURN_IF_ERROR(
      s->OnlyKeys({"enabled", "save_api_key_to_file", "api_key", "api_key_hash"}));
  PS_RETURN_IF_ERROR(s->Bool("enabled", &a->enabled));
  PS_RETURN_IF_ERROR(s->Bool("save_api_key_to_file", &a->save_api_key_to_file));
  PS_RETURN_IF_ERROR(s->String("api_key", true, api_key));
  // Leading or trailing blanks would be trimmed from an HTTP header and the
  // key could then never match.
  for (char c : *api_key) {
    if (c < 0x21 || c > 0x7e) {
      return s->Error("api_key", "expected null or a string of visible ASCII characters");
    }
  }
  PS_RETURN_IF_ERROR(s->String("api_key_hash", true, &a->api_key_hash));
  if (!a->api_key_hash.empty() && !IsValidKeyHash(a->api_key_hash)) {
    return s->Error("api_key_hash", "expected null or \"sha256:\" and 64 lower-case hex digits");
  }
  return Status::Ok();
}

Status ReadAuth(const Section& d, FileConfig* f) {
  return ReadAuthSection(d, &f->server.auth, &f->api_key);
}

Status ReadKv(const Section& top, KvConfig* kv) {
  Result<Section> s = top.Child("kv");
  if (!s.ok()) return s.status();
  PS_RETURN_IF_ERROR(s->OnlyKeys(
      {"max_key_bytes", "max_value_bytes", "max_batch_items", "expiry_interval_ms"}));
  PS_RETURN_IF_ERROR(s->Integer("max_key_bytes", 1, 65536, 1, &kv->max_key_bytes));
  PS_RETURN_IF_ERROR(s->Integer("max_value_bytes", 16, 64 * kMiB, 1, &kv->max_value_bytes));
  PS_RETURN_IF_ERROR(s->Integer("max_batch_items", 1, 100000, 1, &kv->max_batch_items));
  return s->Integer("expiry_interval_ms", 10, 3600000, 1, &kv->expiry_interval_ms);
}

Status ReadProjects(const Section& top, std::vector<ProjectConfig>* out) {
  const Value* list = top.Find("projects");
  if (list == nullptr) return Status::Ok();
  if (!list->IsArray()) return top.Error("projects", "expected an array");
  out->clear();
  for (SizeType i = 0; i < list->Size(); i++) {
    const std::string at = "[" + std::to_string(i) + "]";
    if (!(*list)[i].IsObject()) return top.Error("projects", "entry " + at + " is not an object");
    const Section p(top.source(), &(*list)[i], top.Path("projects") + at);
    PS_RETURN_IF_ERROR(p.OnlyKeys({"id", "storage", "authentication"}));
    ProjectConfig pc;
    if (p.Find("id") == nullptr) return p.Error("id", "missing (every project needs an id)");
    PS_RETURN_IF_ERROR(p.String("id", false, &pc.id));
    if (!ValidProjectId(pc.id)) {
      return p.Error("id", "expected 1-64 characters of A-Z a-z 0-9 _ -");
    }
    for (const ProjectConfig& other : *out) {
      if (other.id == pc.id) return p.Error("id", "duplicate project id \"" + pc.id + "\"");
    }
    Result<Section> storage = p.Child("storage");
    if (!storage.ok()) return storage.status();
    PS_RETURN_IF_ERROR(storage->OnlyKeys({"on_disk", "cache_in_memory"}));
    PS_RETURN_IF_ERROR(storage->Bool("on_disk", &pc.on_disk));
    PS_RETURN_IF_ERROR(storage->Bool("cache_in_memory", &pc.cache_in_memory));
    PS_RETURN_IF_ERROR(ReadAuthSection(p, &pc.auth, &pc.api_key));
    out->push_back(std::move(pc));
  }
  return Status::Ok();
}

Status ReadDefault(const Section& top, FileConfig* f) {
  Result<Section> d = top.Child("default");
  if (!d.ok()) return d.status();
  PS_RETURN_IF_ERROR(d->OnlyKeys({"storage", "authentication"}));
  Result<Section> storage = d->Child("storage");
  if (!storage.ok()) return storage.status();
  PS_RETURN_IF_ERROR(storage->OnlyKeys({"persistent_file_path"}));
  PS_RETURN_IF_ERROR(storage->PathString("persistent_file_path", &f->server.persistent_file_path));
  return ReadAuth(*d, f);
}

Status ReadArray(const Section& top, ArrayConfig* a) {
  Result<Section> s = top.Child("array");
  if (!s.ok()) return s.status();
  PS_RETURN_IF_ERROR(s->OnlyKeys({"data_dir", "flash_capacity_bytes", "pages_per_block",
                                  "over_provisioning", "dedupe_verify", "compression",
                                  "cache_bytes"}));
  PS_RETURN_IF_ERROR(s->PathString("data_dir", &a->data_dir));
  PS_RETURN_IF_ERROR(s->Integer("flash_capacity_bytes", 16 * kMiB, 64 * 1024 * kMiB, kMiB,
                                &a->flash_capacity_bytes));
  PS_RETURN_IF_ERROR(s->Integer("pages_per_block", 16, 4096, 1, &a->pages_per_block));
  PS_RETURN_IF_ERROR(s->Number("over_provisioning", 0.02, 0.50,
                               "expected a number in [0.02, 0.5]", &a->over_provisioning));
  PS_RETURN_IF_ERROR(s->Bool("dedupe_verify", &a->dedupe_verify));
  PS_RETURN_IF_ERROR(s->Integer("cache_bytes", 4 * kMiB, 64 * 1024 * kMiB, kMiB, &a->cache_bytes));
  PS_RETURN_IF_ERROR(s->String("compression", false, &a->compression));
  if (a->compression != "lz4") return s->Error("compression", "expected \"lz4\"");
  return Status::Ok();
}

// `p` made absolute against the folder of the config file `file`.
std::string ResolveAgainstConfig(const std::string& file, const std::string& p) {
  if (fs::path(p).is_absolute()) return fs::path(p).lexically_normal().string();
  std::error_code ec;
  const fs::path dir = fs::absolute(fs::path(file), ec).parent_path();
  return (dir / p).lexically_normal().string();
}

Status ReadNbdTls(const Section& top, ServerConfig* c) {
  PS_RETURN_IF_ERROR(top.String("nbd_tls", false, &c->nbd_tls));
  if (c->nbd_tls != "off" && c->nbd_tls != "on" && c->nbd_tls != "require") {
    return top.Error("nbd_tls", "expected \"off\", \"on\" or \"require\"");
  }
  PS_RETURN_IF_ERROR(top.String("nbd_tls_certificate", false, &c->nbd_tls_certificate));
  PS_RETURN_IF_ERROR(top.String("nbd_tls_key", false, &c->nbd_tls_key));
  if (c->nbd_tls == "off") return Status::Ok();
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{
                                       "nbd_tls_certificate", &c->nbd_tls_certificate},
                                   {"nbd_tls_key", &c->nbd_tls_key}}) {
    if (value->empty()) {
      return top.Error(key, "a PEM file is required when nbd_tls is \"" + c->nbd_tls + "\"");
    }
    const std::string path = ResolveAgainstConfig(top.source().file, *value);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return top.Error(key, "cannot read " + path + ": " + std::strerror(errno));
    ::close(fd);
  }
  return Status::Ok();
}

Status ReadNbd(const Section& top, ServerConfig* c) {
  PS_RETURN_IF_ERROR(top.Bool("nbd_enabled", &c->nbd_enabled));
  PS_RETURN_IF_ERROR(top.Integer("nbd_port", 0, 65535, 1, &c->nbd_port));
  PS_RETURN_IF_ERROR(top.String("nbd_bind_address", false, &c->nbd_bind_address));
  in_addr addr;
  if (inet_pton(AF_INET, c->nbd_bind_address.c_str(), &addr) != 1) {
    return top.Error("nbd_bind_address", "expected a numeric IPv4 address such as 127.0.0.1");
  }
  PS_RETURN_IF_ERROR(ReadNbdTls(top, c));
  const Value* list = top.Find("nbd_allowed_exports");
  if (list == nullptr) return Status::Ok();
  if (!list->IsArray() || list->Size() > kMaxNbdExports) {
    return top.Error("nbd_allowed_exports", "expected an array of at most 4096 export names");
  }
  std::vector<std::string> names;
  for (const Value& v : list->GetArray()) {
    const std::string at = "entry [" + std::to_string(names.size()) + "] ";
    if (!v.IsString() || v.GetStringLength() == 0 || v.GetStringLength() > 4096) {
      return top.Error("nbd_allowed_exports", at + "is not a string of 1-4096 bytes");
    }
    std::string name(v.GetString(), v.GetStringLength());
    if (name.find('\0') != std::string::npos) {
      return top.Error("nbd_allowed_exports", at + "contains \\u0000");
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return top.Error("nbd_allowed_exports", at + "duplicates \"" + name + "\"");
    }
    names.push_back(std::move(name));
  }
  c->nbd_allowed_exports = std::move(names);
  return Status::Ok();
}

Status ReadTop(const Section& top, FileConfig* f) {
  PS_RETURN_IF_ERROR(top.OnlyKeys({"version", "server_port", "bind_address", "nbd_enabled",
                                   "nbd_port", "nbd_bind_address", "nbd_allowed_exports",
                                   "nbd_tls", "nbd_tls_certificate", "nbd_tls_key",
                                   "server_threads", "max_body_bytes", "log_level", "rate_limit",
                                   "default", "array", "kv", "projects"}));
  ServerConfig& c = f->server;
  if (const Value* v = top.Find("version"); v != nullptr && !(v->IsInt() && v->GetInt() == 1)) {
    return top.Error("version", "unsupported version (expected 1)");
  }
  PS_RETURN_IF_ERROR(top.Integer("server_port", 0, 65535, 1, &c.server_port));
  PS_RETURN_IF_ERROR(top.String("bind_address", false, &c.bind_address));
  in_addr addr;
  if (inet_pton(AF_INET, c.bind_address.c_str(), &addr) != 1) {
    return top.Error("bind_address", "expected a numeric IPv4 address such as 127.0.0.1");
  }
  PS_RETURN_IF_ERROR(ReadNbd(top, &c));
  PS_RETURN_IF_ERROR(top.Integer("server_threads", 0, 256, 1, &c.server_threads));
  PS_RETURN_IF_ERROR(top.Integer("max_body_bytes", 4096, 256 * kMiB, 4096, &c.max_body_bytes));
  PS_RETURN_IF_ERROR(top.String("log_level", false, &c.log_level));
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error") {
    return top.Error("log_level", "expected one of debug, info, warn, error");
  }
  PS_RETURN_IF_ERROR(ReadRateLimit(top, &c.rate_limit));
  PS_RETURN_IF_ERROR(ReadDefault(top, f));
  PS_RETURN_IF_ERROR(ReadArray(top, &c.array));
  PS_RETURN_IF_ERROR(ReadKv(top, &c.kv));
  // A value travels inside a request body: past max_body_bytes no request
  // could carry it.
  if (c.kv.max_value_bytes > c.max_body_bytes) {
    Result<Section> kv = top.Child("kv");
    if (kv->Find("max_value_bytes") != nullptr) {
      return kv->Error("max_value_bytes", "must not exceed max_body_bytes (" +
                                              std::to_string(c.max_body_bytes) + ")");
    }
    c.kv.max_value_bytes = c.max_body_bytes;  // the default, lowered to fit
  }
  return ReadProjects(top, &c.projects);
}

Status ParseConfig(const std::string& file, std::string_view text, FileConfig* f) {
  rapidjson::Document doc;
  KeyLines lines;
  PS_RETURN_IF_ERROR(config_internal::ParseJsonWithKeyLines(file, text, &doc, &lines));
  if (!doc.IsObject()) return Invalid(file, 1, "(root)", "expected a JSON object");
  const Source src{file, lines};
  return ReadTop(Section(src, &doc, ""), f);
}

// ---- The admin key ----

// Applies the key rules of config.h to one (auth, plain key) pair; true when
// the file must be rewritten.
bool ApplyKeyRulesTo(AuthConfig* a, std::string* api_key, std::string* generated_key) {
  if (!api_key->empty()) {
    // Also when authentication is disabled, so that enabling it later uses
    // this key and the plain key does not linger in the file.
    bool changed = false;
    const std::string hash = HashApiKey(*api_key);
    if (a->api_key_hash != hash) {
      a->api_key_hash = hash;
      changed = true;
    }
    if (!a->save_api_key_to_file) {
      api_key->clear();
      changed = true;
    }
    return changed;
  }
  if (!a->enabled || !a->api_key_hash.empty()) return false;
  *generated_key = GenerateApiKey();
  a->api_key_hash = HashApiKey(*generated_key);
  if (a->save_api_key_to_file) *api_key = *generated_key;
  return true;
}

bool ApplyKeyRules(FileConfig* f, LoadedConfig* out) {
  bool changed = ApplyKeyRulesTo(&f->server.auth, &f->api_key, &out->generated_api_key);
  for (ProjectConfig& p : f->server.projects) {
    std::string key;
    changed |= ApplyKeyRulesTo(&p.auth, &p.api_key, &key);
    if (!key.empty()) out->generated_project_keys.emplace_back(p.id, key);
  }
  return changed;
}

// A key opens one thing: the admin's or one project's.
Status CheckKeysDistinct(const std::string& file, const ServerConfig& c) {
  std::vector<std::pair<std::string, std::string>> owners;  // (hash, who)
  if (!c.auth.api_key_hash.empty()) owners.emplace_back(c.auth.api_key_hash, "the admin key");
  for (size_t i = 0; i < c.projects.size(); i++) {
    const std::string& hash = c.projects[i].auth.api_key_hash;
    if (hash.empty()) continue;
    const std::string who = "projects[" + std::to_string(i) + "] (" + c.projects[i].id + ")";
    for (const auto& [other_hash, other] : owners) {
      if (other_hash == hash) {
        return Status::InvalidArgument(file + ": " + who + " has the same API key as " + other +
                                       "; every project needs its own key");
      }
    }
    owners.emplace_back(hash, who);
  }
  return Status::Ok();
}

// ---- Writing ----

using Pretty = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

// An empty string is written as null: "no key", "no hash".
void PutString(Pretty& w, const char* key, const std::string& v) {
  w.Key(key);
  if (v.empty()) {
    w.Null();
  } else {
    w.String(v.c_str(), static_cast<SizeType>(v.size()));
  }
}

void PutRateLimit(Pretty& w, const RateLimitConfig& rl) {
  w.Key("rate_limit");
  w.StartObject();
  w.Key("enabled");
  w.Bool(rl.enabled);
  w.Key("requests_per_second");
  // Whole rates are written as integers: "5000", not "5000.0".
  if (rl.requests_per_second == std::floor(rl.requests_per_second)) {
    w.Uint64(static_cast<uint64_t>(rl.requests_per_second));
  } else {
    w.Double(rl.requests_per_second);
  }
  w.Key("burst");
  w.Uint64(rl.burst);
  w.EndObject();
}

void PutAuth(Pretty& w, const AuthConfig& a, const std::string& api_key) {
  w.Key("authentication");
  w.StartObject();
  w.Key("enabled");
  w.Bool(a.enabled);
  w.Key("save_api_key_to_file");
  w.Bool(a.save_api_key_to_file);
  PutString(w, "api_key", api_key);
  PutString(w, "api_key_hash", a.api_key_hash);
  w.EndObject();
}

void PutDefault(Pretty& w, const FileConfig& f) {
  w.Key("default");
  w.StartObject();
  w.Key("storage");
  w.StartObject();
  PutString(w, "persistent_file_path", f.server.persistent_file_path);
  w.EndObject();
  PutAuth(w, f.server.auth, f.api_key);
  w.EndObject();
}

void PutKv(Pretty& w, const KvConfig& kv) {
  w.Key("kv");
  w.StartObject();
  w.Key("max_key_bytes");
  w.Uint64(kv.max_key_bytes);
  w.Key("max_value_bytes");
  w.Uint64(kv.max_value_bytes);
  w.Key("max_batch_items");
  w.Uint64(kv.max_batch_items);
  w.Key("expiry_interval_ms");
  w.Uint64(kv.expiry_interval_ms);
  w.EndObject();
}

void PutProject(Pretty& w, const ProjectConfig& p) {
  w.StartObject();
  PutString(w, "id", p.id);
  w.Key("storage");
  w.StartObject();
  w.Key("on_disk");
  w.Bool(p.on_disk);
  w.Key("cache_in_memory");
  w.Bool(p.cache_in_memory);
  w.EndObject();
  PutAuth(w, p.auth, p.api_key);
  w.EndObject();
}

void PutArray(Pretty& w, const ArrayConfig& a) {
  w.Key("array");
  w.StartObject();
  PutString(w, "data_dir", a.data_dir);
  w.Key("flash_capacity_bytes");
  w.Uint64(a.flash_capacity_bytes);
  w.Key("pages_per_block");
  w.Uint(a.pages_per_block);
  w.Key("over_provisioning");
  w.Double(a.over_provisioning);
  w.Key("dedupe_verify");
  w.Bool(a.dedupe_verify);
  PutString(w, "compression", a.compression);
  w.Key("cache_bytes");
  w.Uint64(a.cache_bytes);
  w.EndObject();
}

// The full effective config in the canonical shape of config.h, 2-space indented.
std::string Render(const FileConfig& f) {
  const ServerConfig& c = f.server;
  rapidjson::StringBuffer buf;
  Pretty w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("version");
  w.Int(c.version);
  w.Key("server_port");
  w.Int(c.server_port);
  PutString(w, "bind_address", c.bind_address);
  w.Key("nbd_enabled");
  w.Bool(c.nbd_enabled);
  w.Key("nbd_port");
  w.Int(c.nbd_port);
  PutString(w, "nbd_bind_address", c.nbd_bind_address);
  if (c.nbd_allowed_exports.has_value()) {  // absent means every export
    w.Key("nbd_allowed_exports");
    w.StartArray();
    for (const std::string& name : *c.nbd_allowed_exports) {
      w.String(name.c_str(), static_cast<SizeType>(name.size()));
    }
    w.EndArray();
  }
  if (c.nbd_tls != "off") PutString(w, "nbd_tls", c.nbd_tls);
  if (!c.nbd_tls_certificate.empty()) PutString(w, "nbd_tls_certificate", c.nbd_tls_certificate);
  if (!c.nbd_tls_key.empty()) PutString(w, "nbd_tls_key", c.nbd_tls_key);
  w.Key("server_threads");
  w.Int(c.server_threads);
  w.Key("max_body_bytes");
  w.Uint64(c.max_body_bytes);
  PutString(w, "log_level", c.log_level);
  PutRateLimit(w, c.rate_limit);
  PutDefault(w, f);
  PutArray(w, c.array);
  PutKv(w, c.kv);
  w.Key("projects");
  w.StartArray();
  for (const ProjectConfig& p : c.projects) PutProject(w, p);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

// 0 or the errno of the failed write.
int WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// Replaces `path` atomically: readers and crashes see the old file or the new
// one, never a mix. mkostemp creates the temp file with mode 0600, which the
// config keeps: it holds a key hash and maybe a key.
Status WriteFileAtomic(const std::string& label, const fs::path& path, std::string_view data) {
  const fs::path dir = path.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return Status::IoError(label + ": cannot create folder " + dir.string() + ": " + ec.message());
  }
  std::string tmp = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return Status::IoError(SysError(label, "cannot create temp file", errno));
  int err = WriteAll(fd, data);
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return Status::IoError(SysError(label, "cannot write", err));
  }
  // The rename is durable only once the folder's entry is on disk.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Status::IoError(SysError(label, "cannot open folder", errno));
  err = ::fsync(dir_fd) == 0 ? 0 : errno;
  ::close(dir_fd);
  if (err != 0) return Status::IoError(SysError(label, "cannot sync folder", err));
  return Status::Ok();
}

// The file's bytes, or nullopt when it does not exist.
Result<std::optional<std::string>> ReadFile(const std::string& label, const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return std::optional<std::string>();
  if (fd < 0) return Status::IoError(SysError(label, "cannot open", errno));
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::IoError(SysError(label, "cannot read", err));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxFileBytes) {
      ::close(fd);
      return Status::InvalidArgument(label + ": larger than 16 MiB");
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(text));
}

// Absolute and normalized, without a trailing '/'.
std::string AbsoluteDir(const fs::path& base, const std::string& p) {
  fs::path r = (fs::path(p).is_absolute() ? fs::path(p) : base / p).lexically_normal();
  if (!r.has_filename() && r.has_relative_path()) r = r.parent_path();
  return r.string();
}

}  // namespace

Result<LoadedConfig> LoadOrCreateConfig(const std::string& path) {
  std::error_code ec;
  const fs::path file = path.empty() ? fs::path() : fs::absolute(path, ec).lexically_normal();
  if (ec) return Status::IoError(path + ": " + ec.message());
  if (!file.has_filename()) return Status::InvalidArgument("'" + path + "' does not name a file");

  Result<std::optional<std::string>> text = ReadFile(path, file);
  if (!text.ok()) return text.status();
  LoadedConfig out;
  FileConfig f;
  if (text->has_value()) {
    PS_RETURN_IF_ERROR(ParseConfig(path, **text, &f));
  } else {
    out.file_created = true;
    ProjectConfig first;
    first.id = "first_project";
    f.server.projects.push_back(first);
  }
  // Written before the keys are returned: a key whose hash is not on disk
  // would stop working at the next start.
  const bool changed = ApplyKeyRules(&f, &out);
  PS_RETURN_IF_ERROR(CheckKeysDistinct(path, f.server));
  if (out.file_created || changed) {
    PS_RETURN_IF_ERROR(WriteFileAtomic(path, file, Render(f)));
    out.file_rewritten = !out.file_created;
  }
  out.config = f.server;
  out.config.path = file.string();
  out.config.file_persistent_file_path = f.server.persistent_file_path;
  out.config.file_data_dir = f.server.array.data_dir;
  out.config.file_nbd_tls_certificate = f.server.nbd_tls_certificate;
  out.config.file_nbd_tls_key = f.server.nbd_tls_key;
  for (std::string* p : {&out.config.nbd_tls_certificate, &out.config.nbd_tls_key}) {
    if (!p->empty()) *p = ResolveAgainstConfig(file.string(), *p);
  }
  out.config.file_api_key = f.api_key;
  out.config.persistent_file_path = AbsoluteDir(file.parent_path(), f.server.persistent_file_path);
  out.config.array.data_dir = AbsoluteDir(file.parent_path(), f.server.array.data_dir);
  return out;
}

Status SaveConfig(const ServerConfig& config) {
  FileConfig f;
  f.server = config;
  f.server.persistent_file_path = config.file_persistent_file_path;
  f.server.array.data_dir = config.file_data_dir;
  f.server.nbd_tls_certificate = config.file_nbd_tls_certificate;
  f.server.nbd_tls_key = config.file_nbd_tls_key;
  f.api_key = config.file_api_key;
  return WriteFileAtomic(config.path, fs::path(config.path), Render(f));
}

bool ValidProjectId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string ApplyProjectKeyRules(ProjectConfig* project, bool* changed) {
  std::string key;
  *changed = ApplyKeyRulesTo(&project->auth, &project->api_key, &key);
  return key;
}

}  // namespace pstorage::api
