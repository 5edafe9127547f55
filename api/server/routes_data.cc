// Block data: the seed's base64 JSON path (POST .../write, GET .../read) and
// the raw path (PUT/GET .../data with application/octet-stream bodies and
// HTTP Range support), which skips base64's third more bytes and the parse.
#include "api/base64.h"
#include "api/server/router.h"
#include "api/server/services.h"

namespace pstorage::api {

namespace {

constexpr uint64_t kBlockBytes = 4096;

Status CheckAligned(uint64_t offset) {
  if (offset % kBlockBytes != 0) {
    return Status::InvalidArgument("Offset must be aligned to block size (4096)");
  }
  return Status::Ok();
}

Reply WriteReply(const std::string& volume_id, uint64_t offset, const engine::WriteResult& r) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "volume_id", volume_id);
  KV(w, "offset", offset);
  KV(w, "size", r.bytes);
  KV(w, "reduction_ratio", r.reduction_ratio);
  KV(w, "was_deduplicated", r.was_deduplicated);
  KV(w, "was_compressed", r.was_compressed);
  w.EndObject();
  return JsonReply(200, sb);
}

// Clamps [offset, offset + length) to the volume: reads past the end return
// what exists, like a file; a start at or past the end is an error.
Result<uint64_t> ReadableLength(Services& s, const std::string& id, uint64_t offset,
                                uint64_t length) {
  Result<engine::VolumeInfo> v = s.engine.GetVolume(id);
  if (!v.ok()) return v.status();
  if (offset >= v->size_bytes) {
    return Status::InvalidArgument("offset " + std::to_string(offset) +
                                   " is at or past the end of the volume (" +
                                   std::to_string(v->size_bytes) + " bytes)");
  }
  return std::min(length, v->size_bytes - offset);
}

Status CheckReadLength(Services& s, uint64_t length) {
  if (length == 0) return Status::InvalidArgument("length must be at least 1");
  if (length > s.config.max_body_bytes) {
    return Status::InvalidArgument("length must be at most " +
                                   std::to_string(s.config.max_body_bytes) +
                                   " bytes (max_body_bytes); read in several requests");
  }
  return Status::Ok();
}

Reply WriteJson(Services& s, const Request& req) {
  rapidjson::Document doc;
  if (Status st = ParseBody(req, &doc); !st.ok()) return Error(req, st);
  FieldReader f(doc, {"offset", "data"});
  std::optional<uint64_t> offset = f.Uint64("offset", true);
  std::optional<std::string> data = f.String("data", true, SIZE_MAX);
  if (!f.status().ok()) return Error(req, f.status());
  if (data->size() > s.config.max_body_bytes / 3 * 4 + 4) {
    return ErrorReply(413, "PAYLOAD_TOO_LARGE",
                      "data decodes to more than max_body_bytes (" +
                          std::to_string(s.config.max_body_bytes) + "); split the write",
                      req.request_id);
  }
  if (Status st = CheckAligned(*offset); !st.ok()) return Error(req, st);
  Result<std::string> bytes = Base64Decode(*data);
  if (!bytes.ok()) return Error(req, bytes.status());
  if (bytes->empty()) return BadRequest(req, "data must not be empty");
  const std::string& id = req.params.at("volume_id");
  Result<engine::WriteResult> r = s.engine.Write(
      id, *offset,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
  if (!r.ok()) return Error(req, r.status());
  return WriteReply(id, *offset, *r);
}

Reply ReadJson(Services& s, const Request& req) {
  Result<std::optional<uint64_t>> offset = QueryUint(req, "offset");
  if (!offset.ok()) return Error(req, offset.status());
  Result<std::optional<uint64_t>> length = QueryUint(req, "length");
  if (!length.ok()) return Error(req, length.status());
  uint64_t want = length->value_or(kBlockBytes);
  if (Status st = CheckReadLength(s, want); !st.ok()) return Error(req, st);
  const std::string& id = req.params.at("volume_id");
  uint64_t off = offset->value_or(0);
  Result<uint64_t> n = ReadableLength(s, id, off, want);
  if (!n.ok()) return Error(req, n.status());
  std::string buf(*n, '\0');
  Status st = s.engine.Read(
      id, off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
  if (!st.ok()) return Error(req, st);
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "volume_id", id);
  KV(w, "offset", off);
  KV(w, "size", *n);
  KV(w, "data", Base64Encode(buf));
  w.EndObject();
  return JsonReply(200, sb);
}

Reply PutData(Services& s, const Request& req) {
  if (req.content_type != "application/octet-stream") {
    return ErrorReply(415, "UNSUPPORTED_MEDIA_TYPE",
                      "Content-Type must be application/octet-stream for raw data "
                      "(use POST .../write for base64 JSON)",
                      req.request_id);
  }
  Result<std::optional<uint64_t>> offset = QueryUint(req, "offset");
  if (!offset.ok()) return Error(req, offset.status());
  if (!offset->has_value()) return BadRequest(req, "missing required query parameter 'offset'");
  if (Status st = CheckAligned(**offset); !st.ok()) return Error(req, st);
  if (req.body.empty() || req.body.size() % kBlockBytes != 0) {
    return BadRequest(req, "body length must be a non-zero multiple of 4096 bytes (got " +
                               std::to_string(req.body.size()) + ")");
  }
  if (req.body.size() > s.config.max_body_bytes) {
    return ErrorReply(413, "PAYLOAD_TOO_LARGE",
                      "body is larger than max_body_bytes (" +
                          std::to_string(s.config.max_body_bytes) + "); split the write",
                      req.request_id);
  }
  const std::string& id = req.params.at("volume_id");
  Result<engine::WriteResult> r = s.engine.Write(
      id, **offset,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(req.body.data()),
                               req.body.size()));
  if (!r.ok()) return Error(req, r.status());
  return WriteReply(id, **offset, *r);
}

// "bytes=a-b", "bytes=a-" or "bytes=-n" against a volume of `size` bytes.
// Returns false for a malformed or multi-range header (the caller answers
// 400: a block device client asking for ranges wants exactly those bytes)
// and sets `unsatisfiable` when the range lies outside the volume (416).
bool ParseRange(std::string_view h, uint64_t size, uint64_t* first, uint64_t* last,
                bool* unsatisfiable) {
  *unsatisfiable = false;
  if (h.substr(0, 6) != "bytes=" || h.find(',') != std::string_view::npos) return false;
  h.remove_prefix(6);
  size_t dash = h.find('-');
  if (dash == std::string_view::npos) return false;
  auto num = [](std::string_view t, uint64_t* v) { return ParseDecimal(t, 19, v); };
  uint64_t a = 0, b = 0;
  if (dash == 0) {
    if (!num(h.substr(1), &b)) return false;
    if (b == 0 || size == 0) {
      *unsatisfiable = true;
      return false;
    }
    *first = b >= size ? 0 : size - b;
    *last = size - 1;
    return true;
  }
  if (!num(h.substr(0, dash), &a)) return false;
  if (dash + 1 == h.size()) {
    b = size == 0 ? 0 : size - 1;
  } else if (!num(h.substr(dash + 1), &b) || b < a) {
    return false;
  }
  if (a >= size) {
    *unsatisfiable = true;
    return false;
  }
  *first = a;
  *last = std::min(b, size - 1);
  return true;
}

Reply GetData(Services& s, const Request& req) {
  const std::string& id = req.params.at("volume_id");
  uint64_t off = 0, len = kBlockBytes;
  bool partial = false;
  uint64_t volume_size = 0;
  if (!req.range.empty()) {
    Result<engine::VolumeInfo> v = s.engine.GetVolume(id);
    if (!v.ok()) return Error(req, v.status());
    volume_size = v->size_bytes;
    uint64_t first = 0, last = 0;
    bool unsatisfiable = false;
    if (ParseRange(req.range, volume_size, &first, &last, &unsatisfiable)) {
      partial = true;
      off = first;
      // A range longer than one response may carry is cut short; the
      // Content-Range header says what was sent.
      len = std::min(last - first + 1, s.config.max_body_bytes);
    } else if (unsatisfiable) {
      Reply r = ErrorReply(416, "RANGE_NOT_SATISFIABLE",
                           "range lies outside the volume (" + std::to_string(volume_size) +
                               " bytes)",
                           req.request_id);
      r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(volume_size));
      return r;
    } else {
      return BadRequest(req, "malformed Range header; use one range, bytes=FIRST-LAST");
    }
  }
  if (!partial) {
    Result<std::optional<uint64_t>> offset = QueryUint(req, "offset");
    if (!offset.ok()) return Error(req, offset.status());
    Result<std::optional<uint64_t>> length = QueryUint(req, "length");
    if (!length.ok()) return Error(req, length.status());
    off = offset->value_or(0);
    len = length->value_or(kBlockBytes);
    if (Status st = CheckReadLength(s, len); !st.ok()) return Error(req, st);
    Result<uint64_t> n = ReadableLength(s, id, off, len);
    if (!n.ok()) return Error(req, n.status());
    len = *n;
  }
  Reply r;
  r.content_type = "application/octet-stream";
  r.body.resize(len);
  Status st = s.engine.Read(
      id, off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(r.body.data()), r.body.size()));
  if (!st.ok()) return Error(req, st);
  if (partial) {
    r.status = 206;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(off) + "-" +
                                                std::to_string(off + len - 1) + "/" +
                                                std::to_string(volume_size));
  }
  return r;
}

}  // namespace

void AddDataRoutes(std::vector<Route>* r) {
  r->push_back({"POST", "/api/v1/volumes/{volume_id}/write", WriteJson});
  r->push_back({"GET", "/api/v1/volumes/{volume_id}/read", ReadJson});
  r->push_back({"PUT", "/api/v1/volumes/{volume_id}/data", PutData});
  r->push_back({"GET", "/api/v1/volumes/{volume_id}/data", GetData});
}

}  // namespace pstorage::api
