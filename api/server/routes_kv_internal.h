// Internal to the KV routes (routes_kv.cc, routes_kv_batch.cc): what the
// single-key, batch and transaction handlers share.
#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "api/config.h"
#include "api/server/http_types.h"
#include "api/server/json.h"
#include "api/server/services.h"
#include "kv/kv.h"

namespace pstorage::api::kv_routes {

// Request bodies hold a value nested up to kv::kMaxJsonDepth inside
// {"operations": [{"value": ...}]}.
inline constexpr int kMaxKvBodyDepth = kv::kMaxJsonDepth + 4;
// JSON syntax and metadata of one item in a reply, an upper bound (tags aside).
inline constexpr size_t kEntryOverhead = 256;

// Keys, values and metadata a reply may carry: max_body_bytes, which the
// server's response buffer holds with room to spare (server.cc, Listen).
size_t ReplyBudget(const Services& s);
// The store of the request's project (resolved by server.cc, Authorize).
Result<std::shared_ptr<kv::KvStore>> StoreFor(Services& s, const Request& req);
Reply KvError(const Request& req, int status, std::string_view code, std::string_view detail);
// A JSON object body, nested up to kMaxKvBodyDepth.
Status ParseKvBody(const Request& req, rapidjson::Document* doc);

// The texts of the body's "value" members by path (numbers verbatim; see
// CaptureMemberTexts), read once the body parsed.
using ValueTexts = std::map<std::string, std::string>;
Result<ValueTexts> ValuesOf(const Request& req);
const std::string& ValueAt(const ValueTexts& texts, const std::string& path);

void WriteMetadata(JsonWriter& w, const kv::Entry& e);
void WriteValue(JsonWriter& w, const std::string& json);

// The fields of one put: {"value": ..., "ttl_seconds": N, "metadata": {...}}
// (plus "key" in batches and transactions).
struct PutFields {
  std::string key;
  std::string value_json;
  kv::PutOptions options;
};
// `value_text` is the value's text from ValueAt; *too_large is set when the
// refusal is the value's size (a 413, through BadPut).
Status ReadPut(const rapidjson::Value& obj, const KvConfig& limits, bool with_key,
               std::initializer_list<std::string_view> allowed, const std::string& value_text,
               PutFields* out, bool* too_large);
Reply BadPut(const Request& req, const Status& st, bool too_large);

// routes_kv_batch.cc
Reply BatchPut(Services& s, const Request& req);
Reply BatchGet(Services& s, const Request& req);
Reply BatchDelete(Services& s, const Request& req);
Reply Transaction(Services& s, const Request& req);

}  // namespace pstorage::api::kv_routes
