// Snapshot files: written whole through temp + fsync + rename, read with
// RapidJSON.
#include "kv/snapshot.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>
#include <fstream>
#include <sstream>

namespace pstorage::kv {
namespace {

constexpr int kMetaFormat = 1;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

Status WriteFileSynced(const std::string& path, const rapidjson::StringBuffer& buf) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open " + path);
  const char* p = buf.GetString();
  size_t left = buf.GetSize();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Errno("write " + path);
      ::close(fd);
      return s;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = Errno("fsync " + path);
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return Errno("close " + path);
  return Status::Ok();
}

void WriteMeta(const Entry& e, JsonWriter* w) {
  w->StartObject();
  w->Key("version");
  w->Uint64(e.version);
  w->Key("created_at_ms");
  w->Int64(e.created_at_ms);
  w->Key("updated_at_ms");
  w->Int64(e.updated_at_ms);
  w->Key("expires_at_ms");
  w->Int64(e.expires_at_ms);
  w->Key("tags");
  w->StartObject();
  for (const auto& [name, value] : e.tags) {
    w->Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w->String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  w->EndObject();
  w->EndObject();
}

// kNotFound when the file does not exist.
Status ParseFile(const std::string& path, rapidjson::Document* doc) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return errno == ENOENT ? Status::NotFound(path) : Errno("open " + path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  doc->Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag>(
      text.data(), text.size());
  if (doc->HasParseError() || !doc->IsObject()) {
    return Status::Corruption(path + ": not a JSON object");
  }
  return Status::Ok();
}

void ApplyMeta(const rapidjson::Value& m, Entry* e) {
  if (!m.IsObject()) return;
  auto u64 = [&](const char* name, uint64_t* out) {
    auto it = m.FindMember(name);
    if (it != m.MemberEnd() && it->value.IsUint64()) *out = it->value.GetUint64();
  };
  auto i64 = [&](const char* name, int64_t* out) {
    auto it = m.FindMember(name);
    if (it != m.MemberEnd() && it->value.IsInt64()) *out = it->value.GetInt64();
  };
  u64("version", &e->version);
  i64("created_at_ms", &e->created_at_ms);
  i64("updated_at_ms", &e->updated_at_ms);
  i64("expires_at_ms", &e->expires_at_ms);
  auto tags = m.FindMember("tags");
  if (tags == m.MemberEnd() || !tags->value.IsObject()) return;
  for (const auto& t : tags->value.GetObject()) {
    if (!t.value.IsString()) continue;
    e->tags[std::string(t.name.GetString(), t.name.GetStringLength())] =
        std::string(t.value.GetString(), t.value.GetStringLength());
  }
}

}  // namespace

SnapshotPaths MakeSnapshotPaths(const std::string& dir, const std::string& project_id) {
  const std::string base = dir + "/" + project_id;
  return {dir, base + ".json", base + ".meta.json", base + ".json.tmp", base + ".meta.json.tmp"};
}

Status RemoveSnapshot(const SnapshotPaths& paths) {
  for (const std::string* path : {&paths.data, &paths.meta, &paths.data_tmp, &paths.meta_tmp}) {
    std::error_code ec;
    std::filesystem::remove(*path, ec);
    if (ec) return Status::IoError("remove " + *path + ": " + ec.message());
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open dir " + dir);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("fsync dir " + dir);
}

Status WriteSnapshot(const SnapshotPaths& paths, const std::map<std::string, Entry>& entries) {
  rapidjson::StringBuffer data, meta;
  JsonWriter dw(data), mw(meta);
  dw.StartObject();
  mw.StartObject();
  mw.Key("format");
  mw.Int(kMetaFormat);
  mw.Key("keys");
  mw.StartObject();
  for (const auto& [key, e] : entries) {
    auto n = static_cast<rapidjson::SizeType>(key.size());
    dw.Key(key.data(), n);
    // Invariant: e.value is compact JSON checked by CanonicalJson.
    dw.RawValue(e.value.data(), e.value.size(), rapidjson::kObjectType);
    mw.Key(key.data(), n);
    WriteMeta(e, &mw);
  }
  mw.EndObject();
  mw.EndObject();
  dw.EndObject();
  PS_RETURN_IF_ERROR(WriteFileSynced(paths.meta_tmp, meta));
  PS_RETURN_IF_ERROR(WriteFileSynced(paths.data_tmp, data));
  if (std::rename(paths.meta_tmp.c_str(), paths.meta.c_str()) != 0) return Errno("rename meta");
  if (std::rename(paths.data_tmp.c_str(), paths.data.c_str()) != 0) return Errno("rename data");
  return SyncDir(paths.dir);
}

Status LoadSnapshot(const SnapshotPaths& paths, std::map<std::string, Entry>* entries) {
  entries->clear();
  rapidjson::Document data;
  Status s = ParseFile(paths.data, &data);
  if (s.code() == Code::kNotFound) return Status::Ok();
  PS_RETURN_IF_ERROR(s);
  rapidjson::Document meta;
  s = ParseFile(paths.meta, &meta);
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  const rapidjson::Value* keys = nullptr;
  if (s.ok()) {
    // Const iterators: clang warns that C++20 finds the mutable ones'
    // comparison ambiguous.
    const rapidjson::Value& root = meta;
    auto it = root.FindMember("keys");
    if (it != root.MemberEnd() && it->value.IsObject()) keys = &it->value;
  }
  for (const auto& m : std::as_const(data).GetObject()) {
    Entry e;
    e.key.assign(m.name.GetString(), m.name.GetStringLength());
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    m.value.Accept(w);
    e.value.assign(buf.GetString(), buf.GetSize());
    e.version = 1;
    if (keys != nullptr) {
      auto k = keys->FindMember(m.name);
      if (k != keys->MemberEnd()) ApplyMeta(k->value, &e);
    }
    (*entries)[e.key] = std::move(e);
  }
  return Status::Ok();
}

}  // namespace pstorage::kv
