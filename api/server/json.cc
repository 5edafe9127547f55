#include "api/server/json.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <optional>
#include <vector>

#include <chrono>
#include <cmath>
#include <ctime>

#include <rapidjson/error/en.h>

namespace pstorage::api {

namespace {

// Depth of the deepest array/object nesting, stopping early past `limit`.
// Runs before the parse so a body of a million '[' never reaches the
// recursive parser.
int NestingDepth(std::string_view s, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
      if (max_depth > limit) return max_depth;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return max_depth;
}

}  // namespace

Status ParseJsonObject(std::string_view body, rapidjson::Document* doc, int max_depth) {
  if (body.empty()) {
    return Status::InvalidArgument("request body is empty; expected a JSON object");
  }
  if (NestingDepth(body, max_depth) > max_depth) {
    return Status::InvalidArgument("request body nests deeper than " +
                                   std::to_string(max_depth) + " levels");
  }
  // Not kParseFullPrecisionFlag: RapidJSON 1.1.0 computes some long
  // numbers wrongly with it (UB in DiyFp::Normalize). KV values are taken
  // from the body's text instead (CaptureMemberTexts).
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag;
  doc->Parse<kFlags>(body.data(), body.size());
  if (doc->HasParseError()) {
    return Status::InvalidArgument(
        "request body is not valid JSON at offset " + std::to_string(doc->GetErrorOffset()) +
        ": " + rapidjson::GetParseError_En(doc->GetParseError()));
  }
  if (!doc->IsObject()) return Status::InvalidArgument("request body must be a JSON object");
  return Status::Ok();
}

FieldReader::FieldReader(const rapidjson::Value& object,
                         std::initializer_list<std::string_view> allowed)
    : object_(object) {
  for (auto m = object_.MemberBegin(); m != object_.MemberEnd(); ++m) {
    std::string_view name(m->name.GetString(), m->name.GetStringLength());
    bool known = false;
    for (std::string_view a : allowed) known = known || a == name;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      Fail("unknown field '" + std::string(name.substr(0, 64)) + "'; allowed fields: " + list);
      return;
    }
    for (auto n = object_.MemberBegin(); n != m; ++n) {
      if (std::string_view(n->name.GetString(), n->name.GetStringLength()) == name) {
        Fail("field '" + std::string(name) + "' appears twice");
        return;
      }
    }
  }
}

const rapidjson::Value* FieldReader::Find(std::string_view name) const {
  for (auto m = object_.MemberBegin(); m != object_.MemberEnd(); ++m) {
    if (std::string_view(m->name.GetString(), m->name.GetStringLength()) == name) {
      return &m->value;
    }
  }
  return nullptr;
}

void FieldReader::Fail(std::string message) {
  if (status_.ok()) status_ = Status::InvalidArgument(std::move(message));
}

bool FieldReader::Has(std::string_view name) const { return Find(name) != nullptr; }

bool FieldReader::IsNull(std::string_view name) const {
  const rapidjson::Value* v = Find(name);
  return v != nullptr && v->IsNull();
}

std::optional<std::string> FieldReader::String(std::string_view name, bool required,
                                               size_t max_len, bool null_ok) {
  const rapidjson::Value* v = Find(name);
  if (v == nullptr || (null_ok && v->IsNull())) {
    if (required) Fail("missing required field '" + std::string(name) + "'");
    return std::nullopt;
  }
  if (!v->IsString()) {
    Fail("field '" + std::string(name) + "' must be a string");
    return std::nullopt;
  }
  if (v->GetStringLength() > max_len) {
    Fail("field '" + std::string(name) + "' is longer than " + std::to_string(max_len) +
         " bytes");
    return std::nullopt;
  }
  return std::string(v->GetString(), v->GetStringLength());
}

std::optional<uint64_t> FieldReader::Uint64(std::string_view name, bool required) {
  const rapidjson::Value* v = Find(name);
  if (v == nullptr) {
    if (required) Fail("missing required field '" + std::string(name) + "'");
    return std::nullopt;
  }
  if (!v->IsUint64()) {
    Fail("field '" + std::string(name) + "' must be a non-negative integer below 2^64");
    return std::nullopt;
  }
  return v->GetUint64();
}

std::optional<double> FieldReader::Number(std::string_view name, bool required) {
  const rapidjson::Value* v = Find(name);
  if (v == nullptr) {
    if (required) Fail("missing required field '" + std::string(name) + "'");
    return std::nullopt;
  }
  if (!v->IsNumber()) {
    Fail("field '" + std::string(name) + "' must be a number");
    return std::nullopt;
  }
  return v->GetDouble();
}

std::optional<std::map<std::string, std::string>> FieldReader::Tags(std::string_view name) {
  constexpr size_t kMaxTags = 64, kMaxKey = 128, kMaxValue = 1024;
  const rapidjson::Value* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->IsObject()) {
    Fail("field '" + std::string(name) + "' must be an object of string values");
    return std::nullopt;
  }
  std::map<std::string, std::string> tags;
  for (auto m = v->MemberBegin(); m != v->MemberEnd(); ++m) {
    std::string key(m->name.GetString(), m->name.GetStringLength());
    if (!m->value.IsString()) {
      Fail("tag '" + key.substr(0, 64) + "' must have a string value");
      return std::nullopt;
    }
    if (key.empty() || key.size() > kMaxKey || m->value.GetStringLength() > kMaxValue) {
      Fail("tag keys must be 1-128 bytes and values at most 1024 bytes");
      return std::nullopt;
    }
    tags[key] = std::string(m->value.GetString(), m->value.GetStringLength());
  }
  if (tags.size() > kMaxTags) {
    Fail("at most " + std::to_string(kMaxTags) + " tags");
    return std::nullopt;
  }
  return tags;
}

std::optional<bool> FieldReader::Bool(std::string_view name) {
  const rapidjson::Value* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->IsBool()) {
    Fail("field '" + std::string(name) + "' must be true or false");
    return std::nullopt;
  }
  return v->GetBool();
}

void KV(JsonWriter& w, std::string_view k, double v) {
  Key(w, k);
  if (!std::isfinite(v)) v = 0;
  w.Double(std::round(v * 10000) / 10000);
}

void WriteTags(JsonWriter& w, const std::map<std::string, std::string>& tags) {
  w.StartObject();
  for (const auto& [k, v] : tags) KV(w, k, v);
  w.EndObject();
}

std::string IsoTime(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// SAX handler for CaptureMemberTexts: tracks the path of the value being
// read; inside a captured value, forwards every event to a writer.
class MemberCapture {
 public:
  explicit MemberCapture(std::string_view member) : member_(member) {}

  std::map<std::string, std::string>& texts() { return texts_; }

  bool Null() { return Scalar([](JsonWriter& w) { return w.Null(); }); }
  bool Bool(bool b) { return Scalar([b](JsonWriter& w) { return w.Bool(b); }); }
  bool Int(int) { return false; }  // numbers arrive as text
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return Scalar([&](JsonWriter& w) { return w.RawValue(s, n, rapidjson::kNumberType); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return Scalar([&](JsonWriter& w) { return w.String(s, n); });
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ > 0) return writer_->Key(s, n);
    frames_.back().key.assign(s, n);
    return true;
  }
  bool StartObject() { return Open(false, [](JsonWriter& w) { return w.StartObject(); }); }
  bool EndObject(rapidjson::SizeType n) {
    return Close([n](JsonWriter& w) { return w.EndObject(n); });
  }
  bool StartArray() { return Open(true, [](JsonWriter& w) { return w.StartArray(); }); }
  bool EndArray(rapidjson::SizeType n) {
    return Close([n](JsonWriter& w) { return w.EndArray(n); });
  }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;
    std::string key;
  };

  // The path of the value starting now ("items[2].value"); advances the
  // enclosing array's index.
  std::string NextPath() {
    std::string path;
    for (size_t i = 0; i < frames_.size(); i++) {
      const Frame& f = frames_[i];
      const bool last = i + 1 == frames_.size();
      if (f.array) {
        path += "[" + std::to_string(last ? f.index : f.index - 1) + "]";
      } else {
        path += (path.empty() ? "" : ".") + f.key;
      }
    }
    if (!frames_.empty() && frames_.back().array) frames_.back().index++;
    return path;
  }

  bool Wanted() const {
    return !frames_.empty() && !frames_.back().array && frames_.back().key == member_;
  }

  void Begin() {
    path_ = NextPath();
    buffer_.Clear();
    writer_.emplace(buffer_);
  }
  void Finish() {
    texts_[path_].assign(buffer_.GetString(), buffer_.GetSize());
    writer_.reset();
  }

  template <typename F>
  bool Scalar(F write) {
    if (depth_ > 0) return write(*writer_);
    if (!Wanted()) {
      NextPath();
      return true;
    }
    Begin();
    const bool ok = write(*writer_);
    Finish();
    return ok;
  }

  template <typename F>
  bool Open(bool array, F write) {
    if (depth_ > 0) {
      depth_++;
      return write(*writer_);
    }
    if (Wanted()) {
      Begin();
      depth_ = 1;
      return write(*writer_);
    }
    NextPath();
    frames_.push_back(Frame{array, 0, {}});
    return true;
  }

  template <typename F>
  bool Close(F write) {
    if (depth_ > 0) {
      const bool ok = write(*writer_);
      if (--depth_ == 0) Finish();
      return ok;
    }
    frames_.pop_back();
    return true;
  }

  std::string member_;
  std::vector<Frame> frames_;
  int depth_ = 0;  // > 0 while inside a captured value
  std::string path_;
  rapidjson::StringBuffer buffer_;
  std::optional<JsonWriter> writer_;
  std::map<std::string, std::string> texts_;
};

}  // namespace

Result<std::map<std::string, std::string>> CaptureMemberTexts(std::string_view body,
                                                              std::string_view member) {
  MemberCapture capture(member);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(body.data(), body.size());
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::ParseResult r = reader.Parse<kFlags>(ms, capture);
  if (!r) {
    return Status::InvalidArgument("request body is not valid JSON at offset " +
                                   std::to_string(r.Offset()));
  }
  return std::move(capture.texts());
}

}  // namespace pstorage::api
