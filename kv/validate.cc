// Argument checks. JSON is validated by a SAX pass that writes the compact form as it goes and
// refuses nesting past the limit (no DOM, no recursion).
#include "kv/validate.h"

#include <algorithm>

#include <rapidjson/encodings.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace pstorage::kv {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Forwards every SAX event to a writer; fails once depth passes the limit.
struct DepthLimitedCopy {
  JsonWriter* w;
  int max_depth;
  int depth = 0;

  bool Null() { return w->Null(); }
  bool Bool(bool b) { return w->Bool(b); }
  bool Int(int i) { return w->Int(i); }
  bool Uint(unsigned u) { return w->Uint(u); }
  bool Int64(int64_t i) { return w->Int64(i); }
  bool Uint64(uint64_t u) { return w->Uint64(u); }
  bool Double(double d) { return w->Double(d); }
  // Numbers arrive as their text (kParseNumbersAsStringsFlag) and are kept
  // verbatim: no conversion to double and back can change them.
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return w->RawValue(s, n, rapidjson::kNumberType);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return w->String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return w->Key(s, n, copy); }
  bool StartObject() { return ++depth <= max_depth && w->StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    depth--;
    return w->EndObject(n);
  }
  bool StartArray() { return ++depth <= max_depth && w->StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    depth--;
    return w->EndArray(n);
  }
};

}  // namespace

Result<std::string> CanonicalJson(std::string_view text, int max_depth) {
  rapidjson::StringBuffer out;
  JsonWriter writer(out);
  DepthLimitedCopy copy{&writer, max_depth};
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  rapidjson::Reader reader;
  // Numbers as text, kept exactly as sent (RapidJSON 1.1.0's full-precision
  // conversion turns some long numbers into garbage: 184467440737095516156
  // became -2.0e264); validate UTF-8 so the snapshot stays valid JSON.
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::ParseResult r = reader.Parse<kFlags>(in, copy);
  if (!r) {
    if (copy.depth > max_depth) {
      return Status::InvalidArgument("value nests deeper than " + std::to_string(max_depth));
    }
    return Status::InvalidArgument("value is not one JSON value (error at offset " +
                                   std::to_string(r.Offset()) + ")");
  }
  return std::string(out.GetString(), out.GetSize());
}

bool IsCleanUtf8(std::string_view s) {
  rapidjson::MemoryStream ms(s.data(), s.size());
  rapidjson::StringBuffer sink;
  while (ms.Tell() < s.size()) {
    if (static_cast<unsigned char>(ms.Peek()) < 0x20) return false;
    if (!rapidjson::UTF8<>::Validate(ms, sink)) return false;
  }
  return true;
}

bool ValidProjectId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

Status ValidateKey(const std::string& key, size_t max_key_bytes) {
  if (key.empty() || key.size() > max_key_bytes || !IsCleanUtf8(key)) {
    return Status::InvalidArgument("key must be 1.." + std::to_string(max_key_bytes) +
                                   " bytes of UTF-8 without control characters");
  }
  return Status::Ok();
}

Status ValidatePutOptions(const PutOptions& o) {
  if (o.ttl_seconds && (*o.ttl_seconds < 1 || *o.ttl_seconds > kMaxTtlSeconds)) {
    return Status::InvalidArgument("ttl_seconds must be 1.." + std::to_string(kMaxTtlSeconds));
  }
  if (o.tags.size() > kMaxTags) return Status::InvalidArgument("too many tags");
  for (const auto& [name, value] : o.tags) {
    if (name.empty() || name.size() > kMaxTagBytes || value.size() > kMaxTagBytes ||
        !IsCleanUtf8(name) || !IsCleanUtf8(value)) {
      return Status::InvalidArgument("tag names and values must be short clean UTF-8");
    }
  }
  return Status::Ok();
}

Result<std::string> ValidateValue(const std::string& value_json, size_t max_value_bytes) {
  if (value_json.size() > max_value_bytes) {
    return Status::InvalidArgument("value larger than " + std::to_string(max_value_bytes) +
                                   " bytes");
  }
  return CanonicalJson(value_json, kMaxJsonDepth);
}

}  // namespace pstorage::kv
