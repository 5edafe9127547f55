// CLI output and request bodies: JSON built with RapidJSON (so names and
// descriptions are escaped properly), and the human formats: `key: value`
// lines, aligned tables, sizes in binary units.
#include <algorithm>
#include <cmath>

#include "api/cli_internal.h"

namespace pstorage::api::cli {
namespace {

std::string Scalar(const rapidjson::Value& v, std::string_view key) {
  char buf[64];
  if (v.IsString()) return v.GetStringLength() == 0 ? "-" : v.GetString();
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsNull()) return "-";
  if (v.IsUint64() && key.size() >= 6 && key.substr(key.size() - 6) == "_bytes") {
    return HumanBytes(v.GetUint64()) + " (" + std::to_string(v.GetUint64()) + ")";
  }
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  double d = v.GetDouble();
  std::snprintf(buf, sizeof(buf), d == std::floor(d) && std::fabs(d) < 1e15 ? "%.0f" : "%.6g", d);
  return buf;
}

void FlattenInto(const rapidjson::Value& v, const std::string& key, FILE* out) {
  // A string, not a view: substr() returns a temporary.
  std::string leaf = key.substr(key.find_last_of('.') + 1);
  if (v.IsObject() && (leaf == "tags" || v.MemberCount() == 0)) {
    std::string line;
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      line += line.empty() ? "" : ", ";
      line += std::string(m->name.GetString()) + "=" + Scalar(m->value, "");
    }
    std::fprintf(out, "%s: %s\n", key.c_str(), line.empty() ? "-" : line.c_str());
  } else if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      std::string name(m->name.GetString(), m->name.GetStringLength());
      FlattenInto(m->value, key.empty() ? name : key + "." + name, out);
    }
  } else if (v.IsArray()) {
    bool scalars = true;
    for (const auto& e : v.GetArray()) scalars = scalars && !e.IsObject() && !e.IsArray();
    if (scalars) {
      std::string line;
      for (const auto& e : v.GetArray()) line += (line.empty() ? "" : ", ") + Scalar(e, leaf);
      std::fprintf(out, "%s: %s\n", key.c_str(), line.empty() ? "-" : line.c_str());
    } else {
      for (rapidjson::SizeType i = 0; i < v.Size(); i++) {
        FlattenInto(v[i], key + "[" + std::to_string(i) + "]", out);
      }
    }
  } else {
    std::fprintf(out, "%s: %s\n", key.c_str(), Scalar(v, leaf).c_str());
  }
}

}  // namespace

JsonBody& JsonBody::Str(const char* key, std::string_view value) {
  writer_.Key(key);
  writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  return *this;
}

JsonBody& JsonBody::Number(const char* key, double value) {
  writer_.Key(key);
  // A whole number goes out as an integer for servers that read integers.
  if (value >= 0 && value < 9e15 && value == std::floor(value)) {
    writer_.Uint64(static_cast<uint64_t>(value));
  } else {
    writer_.Double(value);
  }
  return *this;
}

JsonBody& JsonBody::Uint(const char* key, uint64_t value) {
  writer_.Key(key);
  writer_.Uint64(value);
  return *this;
}

JsonBody& JsonBody::Null(const char* key) {
  writer_.Key(key);
  writer_.Null();
  return *this;
}

JsonBody& JsonBody::Tags(const char* key, const std::map<std::string, std::string>& tags) {
  writer_.Key(key);
  writer_.StartObject();
  for (const auto& [k, v] : tags) {
    writer_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    writer_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  writer_.EndObject();
  return *this;
}

std::string JsonBody::Finish() {
  writer_.EndObject();
  return std::string(buffer_.GetString(), buffer_.GetSize());
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  uint64_t scale = 1;
  while (unit < 6 && bytes / scale >= 1024) {
    scale *= 1024;
    unit++;
  }
  char buf[32];
  if (bytes % scale == 0) {
    std::snprintf(buf, sizeof(buf), "%llu %s", (unsigned long long)(bytes / scale), kUnits[unit]);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", static_cast<double>(bytes) / scale, kUnits[unit]);
  }
  return buf;
}

std::string StrField(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return "";
  auto m = obj.FindMember(key);
  if (m == obj.MemberEnd() || !m->value.IsString()) return "";
  return std::string(m->value.GetString(), m->value.GetStringLength());
}

uint64_t U64Field(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return 0;
  auto m = obj.FindMember(key);
  return m != obj.MemberEnd() && m->value.IsUint64() ? m->value.GetUint64() : 0;
}

double NumField(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return 0;
  auto m = obj.FindMember(key);
  return m != obj.MemberEnd() && m->value.IsNumber() ? m->value.GetDouble() : 0;
}

bool ParseBody(const HttpResponse& r, rapidjson::Document* doc) {
  doc->Parse(r.body.data(), r.body.size());
  if (!doc->HasParseError()) return true;
  std::fprintf(stderr, "error: the server's %d response is not JSON\n", r.status);
  return false;
}

void PrintObject(const rapidjson::Value& obj, FILE* out) { FlattenInto(obj, "", out); }

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size());
    for (size_t i = 0; i < row.size(); i++) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); i++) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

int PrintReply(const Session& s, const HttpResponse& r) {
  if (s.json()) {
    std::fwrite(r.body.data(), 1, r.body.size(), stdout);
    if (!r.body.empty() && r.body.back() != '\n') std::fputc('\n', stdout);
    return kExitOk;
  }
  if (r.body.empty()) return kExitOk;
  rapidjson::Document doc;
  if (!ParseBody(r, &doc)) return kExitServerError;
  PrintObject(doc);
  return kExitOk;
}

}  // namespace pstorage::api::cli
