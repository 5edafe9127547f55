#include "api/config_json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <cassert>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

namespace pstorage::api::config_internal {
namespace {

using rapidjson::SizeType;

constexpr size_t kMaxDepth = 64;  // bounds the recursion of RapidJSON's parser and writer
// No kParseStopWhenDoneFlag: text after the root value is an error.
constexpr unsigned kParseFlags = rapidjson::kParseValidateEncodingFlag;

// The file text as a RapidJSON input stream that counts lines as the reader
// consumes it, so the handler knows the line of the token just read.
class LineStream {
 public:
  using Ch = char;
  explicit LineStream(std::string_view text) : text_(text) {}
  Ch Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  Ch Take() {
    if (pos_ >= text_.size()) return '\0';
    const char c = text_[pos_++];
    if (c == '\n') ++line_;
    return c;
  }
  size_t Tell() const { return pos_; }
  int line() const { return line_; }
  // The write half of the stream concept; only in-situ parsing uses it.
  Ch* PutBegin() { assert(false); return nullptr; }
  void Put(Ch) { assert(false); }
  void Flush() { assert(false); }
  size_t PutEnd(Ch*) { assert(false); return 0; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
};

// SAX handler recording the line of each object key by path
// ("array.pages_per_block", "projects[0].id"). It also refuses what a
// Document would silently accept: duplicate keys, and nesting deep enough to
// exhaust the stack of the recursive parser and writer.
class KeyLineRecorder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, KeyLineRecorder> {
 public:
  struct Error {
    int line = 0;
    std::string key;
    std::string problem;
  };

  explicit KeyLineRecorder(const LineStream& stream) : stream_(stream) {}

  bool Default() {
    if (!frames_.empty() && frames_.back().is_array) ++frames_.back().next_index;
    return true;
  }
  bool StartObject() { return Open(false); }
  bool StartArray() { return Open(true); }
  bool EndObject(SizeType) { return Close(); }
  bool EndArray(SizeType) { return Close(); }
  bool Key(const char* s, SizeType n, bool) {
    Frame& f = frames_.back();
    std::string name(s, n);
    f.key_path = f.path.empty() ? name : f.path + "." + name;
    if (!f.keys.insert(std::move(name)).second) {
      error_ = Error{stream_.line(), f.key_path, "duplicate key"};
      return false;
    }
    lines_.emplace(f.key_path, stream_.line());
    return true;
  }

  const std::optional<Error>& error() const { return error_; }
  KeyLines TakeLines() { return std::move(lines_); }

 private:
  struct Frame {
    bool is_array = false;
    std::string path;
    size_t next_index = 0;                 // arrays: index of the next element
    std::string key_path;                  // objects: path of the last key
    std::unordered_set<std::string> keys;  // objects: keys seen so far
  };

  bool Open(bool is_array) {
    std::string path;
    if (!frames_.empty()) {
      Frame& parent = frames_.back();
      path = parent.is_array ? parent.path + "[" + std::to_string(parent.next_index++) + "]"
                             : parent.key_path;
    }
    if (frames_.size() >= kMaxDepth) {
      error_ = Error{stream_.line(), path, "nested deeper than 64 levels"};
      return false;
    }
    frames_.push_back(Frame{is_array, std::move(path)});
    return true;
  }
  bool Close() {
    frames_.pop_back();
    return true;
  }

  const LineStream& stream_;
  std::vector<Frame> frames_;
  KeyLines lines_;
  std::optional<Error> error_;
};

// "file:line:column: message" for a syntax error at byte `offset`.
Status SyntaxError(const std::string& file, std::string_view text, size_t offset,
                   std::string_view message) {
  offset = std::min(offset, text.size());
  const std::string_view before = text.substr(0, offset);
  const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
  const size_t line_start = before.rfind('\n');
  const size_t column = offset - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
  return Status::InvalidArgument(file + ":" + std::to_string(line) + ":" + std::to_string(column) +
                                 ": " + std::string(message));
}

}  // namespace

Status ParseJsonWithKeyLines(const std::string& file, std::string_view text,
                             rapidjson::Document* doc, KeyLines* lines) {
  // The reader takes '\0' for the end of input and would ignore what follows.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return SyntaxError(file, text, nul, "NUL byte in the file");
  }
  LineStream stream(text);
  KeyLineRecorder recorder(stream);
  rapidjson::Reader reader;
  if (!reader.Parse<kParseFlags>(stream, recorder)) {
    if (const auto& e = recorder.error()) return Invalid(file, e->line, e->key, e->problem);
    return SyntaxError(file, text, reader.GetErrorOffset(),
                       rapidjson::GetParseError_En(reader.GetParseErrorCode()));
  }
  LineStream again(text);
  doc->ParseStream<kParseFlags>(again);
  if (doc->HasParseError()) {  // cannot happen: the same text just parsed
    return SyntaxError(file, text, doc->GetErrorOffset(),
                       rapidjson::GetParseError_En(doc->GetParseError()));
  }
  *lines = recorder.TakeLines();
  return Status::Ok();
}

Status Invalid(const std::string& file, int line, std::string_view key, std::string_view problem) {
  return Status::InvalidArgument(file + ":" + std::to_string(line) + ": " + std::string(key) +
                                 ": " + std::string(problem));
}

}  // namespace pstorage::api::config_internal
