#include "api/server/http_types.h"
#include "api/server/json.h"

namespace pstorage::api {

std::string_view ReasonPhrase(int s) {
  switch (s) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kFailedPrecondition: return 409;
    case Code::kNoSpace: return 503;
    case Code::kBusy: return 503;
    case Code::kCorruption: return 500;
    case Code::kIoError: return 500;
    case Code::kInternal: return 500;
  }
  return 500;
}

std::string_view ErrorCodeFor(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Code::kNoSpace: return "NO_SPACE";
    case Code::kBusy: return "BUSY";
    case Code::kCorruption: return "CORRUPTION";
    case Code::kIoError: return "IO_ERROR";
    case Code::kInternal: return "INTERNAL";
  }
  return "INTERNAL";
}

namespace {

// Length of the valid UTF-8 sequence at s[i], 0 if there is none.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  if (c >= 0xe0 && c <= 0xef) n = 3;
  if (c >= 0xf0 && c <= 0xf4) n = 4;  // 0xc0, 0xc1 and 0xf5-0xff never start one
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  }
  // Overlong forms, surrogates and code points past U+10FFFF.
  if (n == 3 && ((c == 0xe0 && b(i + 1) < 0xa0) || (c == 0xed && b(i + 1) >= 0xa0))) return 0;
  if (n == 4 && ((c == 0xf0 && b(i + 1) < 0x90) || (c == 0xf4 && b(i + 1) >= 0x90))) return 0;
  return n;
}

}  // namespace

// Error details quote request bytes (ids from the path, header values):
// anything that is not UTF-8 becomes U+FFFD, so the body stays valid JSON.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i++;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

Reply ErrorReply(int http_status, std::string_view code, std::string_view detail,
                 std::string_view request_id) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "error", ReasonPhrase(http_status));
  KV(w, "code", code);
  const std::string text = ValidUtf8(detail);
  KV(w, "detail", text);
  KV(w, "details", text);
  KV(w, "request_id", request_id);
  KV(w, "trace_id", request_id);
  KV(w, "timestamp", IsoTime(NowMs()));
  w.EndObject();
  Reply r;
  r.status = http_status;
  r.body.assign(sb.GetString(), sb.GetSize());
  return r;
}

Reply StatusReply(const Status& status, std::string_view request_id) {
  std::string detail = status.message();
  if (status.code() == Code::kNoSpace) {
    detail += " (the array is out of flash space: delete volumes or snapshots, or trim data)";
  }
  return ErrorReply(HttpStatusFor(status.code()), ErrorCodeFor(status.code()), detail,
                    request_id);
}

}  // namespace pstorage::api
