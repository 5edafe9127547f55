// Strict JSON for request bodies, and small helpers to read typed fields.
//
// RapidJSON is permissive in ways a server must not be: it has no depth
// limit, and some modes accept trailing bytes. ParseJsonObject parses the
// whole body (trailing non-space is an error), validates UTF-8, bounds the
// nesting depth and requires an object at the root. FieldReader then reads
// typed fields and refuses unknown or duplicated ones, so a typo in a field
// name is a 400 and not a silently ignored setting.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/status.h"

namespace pstorage::api {

constexpr int kMaxJsonDepth = 16;

// kInvalidArgument with a message a person can act on ("request body is not
// valid JSON at offset 12: Missing a colon after a name of object member.").
Status ParseJsonObject(std::string_view body, rapidjson::Document* doc,
                       int max_depth = kMaxJsonDepth);

// Reads the fields of one JSON object. Every getter returns the first error
// seen so far by all calls; check status() once at the end.
class FieldReader {
 public:
  // `allowed` lists every field the object may have.
  FieldReader(const rapidjson::Value& object, std::initializer_list<std::string_view> allowed);

  const Status& status() const { return status_; }
  bool Has(std::string_view name) const;
  bool IsNull(std::string_view name) const;

  // Absent (or null when `null_ok`) -> nullopt. Strings are 0..max_len bytes.
  std::optional<std::string> String(std::string_view name, bool required, size_t max_len,
                                    bool null_ok = false);
  std::optional<uint64_t> Uint64(std::string_view name, bool required);
  std::optional<double> Number(std::string_view name, bool required);
  std::optional<std::map<std::string, std::string>> Tags(std::string_view name);
  std::optional<bool> Bool(std::string_view name);
  // The field's value of any type; null when absent.
  const rapidjson::Value* Raw(std::string_view name) const { return Find(name); }

 private:
  const rapidjson::Value* Find(std::string_view name) const;
  void Fail(std::string message);

  const rapidjson::Value& object_;
  Status status_;
};

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

inline void Key(JsonWriter& w, std::string_view k) {
  w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
}
inline void Str(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void KV(JsonWriter& w, std::string_view k, std::string_view v) { Key(w, k), Str(w, v); }
inline void KV(JsonWriter& w, std::string_view k, const char* v) { Key(w, k), Str(w, v); }
inline void KV(JsonWriter& w, std::string_view k, const std::string& v) { Key(w, k), Str(w, v); }
inline void KV(JsonWriter& w, std::string_view k, uint64_t v) { Key(w, k), w.Uint64(v); }
inline void KV(JsonWriter& w, std::string_view k, int64_t v) { Key(w, k), w.Int64(v); }
inline void KV(JsonWriter& w, std::string_view k, int v) { Key(w, k), w.Int(v); }
inline void KV(JsonWriter& w, std::string_view k, uint32_t v) { Key(w, k), w.Uint(v); }
inline void KV(JsonWriter& w, std::string_view k, bool v) { Key(w, k), w.Bool(v); }
// Ratios and percentages: rounded to 4 decimal places, finite.
void KV(JsonWriter& w, std::string_view k, double v);
void WriteTags(JsonWriter& w, const std::map<std::string, std::string>& tags);

// The compact JSON text of every member named `member` in a body that
// ParseJsonObject accepted, by path: "value", "items[2].value",
// "operations[0].conditions[1].value" (not those inside a captured value).
// Numbers keep the exact text they were sent with.
Result<std::map<std::string, std::string>> CaptureMemberTexts(std::string_view body,
                                                              std::string_view member);

// ISO 8601 UTC with second precision, "2024-01-15T10:30:00Z".
std::string IsoTime(int64_t unix_ms);
int64_t NowMs();

}  // namespace pstorage::api
