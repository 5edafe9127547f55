// Batches (POST .../batch/put|get|delete) and transactions (POST
// .../transaction) of the KV routes; shared pieces in routes_kv_internal.h.
#include <string>
#include <vector>

#include "api/server/projects.h"
#include "api/server/router.h"
#include "api/server/routes_kv_internal.h"

namespace pstorage::api::kv_routes {

namespace {

const rapidjson::Value* ArrayField(const rapidjson::Value& doc, const char* name,
                                   const KvConfig& limits, const Request& req, Reply* refusal) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd() || !it->value.IsArray()) {
    *refusal = BadRequest(req, std::string("field '") + name + "' must be an array");
    return nullptr;
  }
  if (it->value.Empty()) {
    *refusal = BadRequest(req, std::string("field '") + name + "' must not be empty");
    return nullptr;
  }
  if (it->value.Size() > limits.max_batch_items) {
    *refusal = KvError(req, 413, "BATCH_TOO_LARGE",
                       std::to_string(it->value.Size()) + " items; at most " +
                           std::to_string(limits.max_batch_items) + " per request (kv.max_batch_items)");
    return nullptr;
  }
  return &it->value;
}

Status KeyList(const rapidjson::Value& arr, std::vector<std::string>* keys) {
  for (rapidjson::SizeType i = 0; i < arr.Size(); i++) {
    if (!arr[i].IsString()) {
      return Status::InvalidArgument("keys[" + std::to_string(i) + "] must be a string");
    }
    keys->emplace_back(arr[i].GetString(), arr[i].GetStringLength());
  }
  return Status::Ok();
}

// One condition of an operation: {"type": "version_match", "value": "5"},
// {"type": "exists"}, {"type": "not_exists"}, {"type": "value_equals", "value": ...}.
Status ReadCondition(const rapidjson::Value& c, const std::string& key,
                     const std::string& value_text, kv::Condition* out) {
  if (!c.IsObject()) return Status::InvalidArgument("a condition must be an object");
  FieldReader f(c, {"type", "value"});
  std::optional<std::string> type = f.String("type", true, 32);
  PS_RETURN_IF_ERROR(f.status());
  out->key = key;
  const rapidjson::Value* v = f.Raw("value");
  if (*type == "version_match") {
    out->kind = kv::Condition::Kind::kVersionEquals;
    uint64_t n = 0;
    if (v != nullptr && v->IsUint64()) {
      n = v->GetUint64();
    } else if (v == nullptr || !v->IsString() ||
               !ParseDecimal(std::string_view(v->GetString(), v->GetStringLength()), 19, &n)) {
      return Status::InvalidArgument("version_match needs 'value': a version (5 or \"5\")");
    }
    out->version = n;
  } else if (*type == "exists" || *type == "not_exists") {
    if (v != nullptr) return Status::InvalidArgument(*type + " takes no 'value'");
    out->kind = *type == "exists" ? kv::Condition::Kind::kExists : kv::Condition::Kind::kNotExists;
  } else if (*type == "value_equals") {
    if (v == nullptr) return Status::InvalidArgument("value_equals needs 'value'");
    out->kind = kv::Condition::Kind::kValueEquals;
    out->value_json = value_text;
  } else {
    return Status::InvalidArgument("unknown condition type '" + type->substr(0, 32) +
                                   "'; expected version_match, exists, not_exists, value_equals");
  }
  return Status::Ok();
}

std::string DescribeCondition(const kv::Condition& c) {
  switch (c.kind) {
    case kv::Condition::Kind::kExists: return "exists";
    case kv::Condition::Kind::kNotExists: return "not_exists";
    case kv::Condition::Kind::kVersionEquals: return "version_match " + std::to_string(c.version);
    case kv::Condition::Kind::kValueEquals: return "value_equals";
  }
  return "?";
}

}  // namespace

Reply BatchPut(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  rapidjson::Document doc;
  if (Status st = ParseKvBody(req, &doc); !st.ok()) return Error(req, st);
  if (Status st = FieldReader(doc, {"items"}).status(); !st.ok()) return Error(req, st);
  Reply refusal;
  const rapidjson::Value* items = ArrayField(doc, "items", s.projects->limits(), req, &refusal);
  if (items == nullptr) return refusal;
  Result<ValueTexts> texts = ValuesOf(req);
  if (!texts.ok()) return Error(req, texts.status());
  std::vector<kv::BatchPut> puts;
  for (rapidjson::SizeType i = 0; i < items->Size(); i++) {
    const rapidjson::Value& it = (*items)[i];
    if (!it.IsObject()) return BadRequest(req, "items[" + std::to_string(i) + "] must be an object");
    PutFields f;
    bool too_large = false;
    Status st = ReadPut(it, s.projects->limits(), true, {"key", "value", "ttl_seconds", "metadata"},
                        ValueAt(*texts, "items[" + std::to_string(i) + "].value"), &f,
                        &too_large);
    if (!st.ok()) {
      return BadPut(req, Status(st.code(), "items[" + std::to_string(i) + "]: " + st.message()),
                    too_large);
    }
    puts.push_back({std::move(f.key), std::move(f.value_json), std::move(f.options)});
  }
  Result<std::vector<kv::Entry>> done = (*store)->PutBatch(puts);
  if (!done.ok()) return Error(req, done.status());
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "success", true);
  KV(w, "count", static_cast<uint64_t>(done->size()));
  Key(w, "results");
  w.StartArray();
  for (const kv::Entry& e : *done) {
    w.StartObject();
    KV(w, "key", e.key);
    KV(w, "version", e.version);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return JsonReply(200, sb);
}

Reply BatchGet(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  rapidjson::Document doc;
  if (Status st = ParseKvBody(req, &doc); !st.ok()) return Error(req, st);
  FieldReader f(doc, {"keys", "include_metadata"});
  const bool meta = f.Bool("include_metadata").value_or(false);
  if (!f.status().ok()) return Error(req, f.status());
  Reply refusal;
  const rapidjson::Value* arr = ArrayField(doc, "keys", s.projects->limits(), req, &refusal);
  if (arr == nullptr) return refusal;
  std::vector<std::string> keys;
  if (Status st = KeyList(*arr, &keys); !st.ok()) return Error(req, st);
  std::vector<Result<kv::Entry>> got = (*store)->GetBatch(keys);
  size_t bytes = 0;
  for (size_t i = 0; i < keys.size(); i++) {
    bytes += keys[i].size() * 2 + kEntryOverhead + (got[i].ok() ? got[i]->value.size() : 0);
  }
  if (bytes > ReplyBudget(s)) {
    return KvError(req, 413, "RESPONSE_TOO_LARGE",
                   "the values asked for add up to about " + std::to_string(bytes) +
                       " bytes, more than one reply carries (" +
                       std::to_string(ReplyBudget(s)) + "); ask for fewer keys per request");
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  Key(w, "items");
  w.StartArray();
  uint64_t found = 0;
  for (size_t i = 0; i < keys.size(); i++) {
    w.StartObject();
    KV(w, "key", keys[i]);
    KV(w, "found", got[i].ok());
    if (got[i].ok()) {
      found++;
      WriteValue(w, got[i]->value);
      if (meta) WriteMetadata(w, *got[i]);
    } else if (got[i].status().code() != Code::kNotFound) {
      KV(w, "error", got[i].status().message());
    }
    w.EndObject();
  }
  w.EndArray();
  KV(w, "found", found);
  w.EndObject();
  return JsonReply(200, sb);
}

Reply BatchDelete(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  rapidjson::Document doc;
  if (Status st = ParseKvBody(req, &doc); !st.ok()) return Error(req, st);
  if (Status st = FieldReader(doc, {"keys"}).status(); !st.ok()) return Error(req, st);
  Reply refusal;
  const rapidjson::Value* arr = ArrayField(doc, "keys", s.projects->limits(), req, &refusal);
  if (arr == nullptr) return refusal;
  std::vector<std::string> keys;
  if (Status st = KeyList(*arr, &keys); !st.ok()) return Error(req, st);
  Result<size_t> n = (*store)->DeleteBatch(keys);
  if (!n.ok()) return Error(req, n.status());
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "success", true);
  KV(w, "deleted", static_cast<uint64_t>(*n));
  w.EndObject();
  return JsonReply(200, sb);
}


Reply Transaction(Services& s, const Request& req) {
  auto store = StoreFor(s, req);
  if (!store.ok()) return Error(req, store.status());
  rapidjson::Document doc;
  if (Status st = ParseKvBody(req, &doc); !st.ok()) return Error(req, st);
  if (Status st = FieldReader(doc, {"operations"}).status(); !st.ok()) return Error(req, st);
  Reply refusal;
  const rapidjson::Value* ops = ArrayField(doc, "operations", s.projects->limits(), req, &refusal);
  if (ops == nullptr) return refusal;
  Result<ValueTexts> texts = ValuesOf(req);
  if (!texts.ok()) return Error(req, texts.status());
  kv::Txn txn;
  std::vector<size_t> condition_op;  // condition index -> operation index
  for (rapidjson::SizeType i = 0; i < ops->Size(); i++) {
    const std::string at = "operations[" + std::to_string(i) + "]: ";
    const rapidjson::Value& o = (*ops)[i];
    if (!o.IsObject()) return BadRequest(req, at + "must be an object");
    auto type_it = o.FindMember("type");
    if (type_it == o.MemberEnd() || !type_it->value.IsString()) {
      return BadRequest(req, at + "missing 'type' (put or delete)");
    }
    const std::string type(type_it->value.GetString(), type_it->value.GetStringLength());
    kv::TxnOp op;
    if (type == "put") {
      PutFields f;
      bool too_large = false;
      Status st = ReadPut(o, s.projects->limits(), true,
                          {"type", "key", "value", "ttl_seconds", "metadata", "conditions"},
                          ValueAt(*texts, "operations[" + std::to_string(i) + "].value"), &f,
                          &too_large);
      if (!st.ok()) return BadPut(req, Status(st.code(), at + st.message()), too_large);
      op.kind = kv::TxnOp::Kind::kPut;
      op.key = std::move(f.key);
      op.value_json = std::move(f.value_json);
      op.options = std::move(f.options);
    } else if (type == "delete") {
      FieldReader f(o, {"type", "key", "conditions"});
      std::optional<std::string> key = f.String("key", true, s.projects->limits().max_key_bytes + 1);
      if (!f.status().ok()) return BadRequest(req, at + f.status().message());
      op.kind = kv::TxnOp::Kind::kDelete;
      op.key = *key;
    } else {
      return BadRequest(req, at + "unknown type '" + ValidUtf8(type.substr(0, 32)) +
                                 "'; expected put or delete");
    }
    if (auto c = o.FindMember("conditions"); c != o.MemberEnd()) {
      if (!c->value.IsArray()) return BadRequest(req, at + "'conditions' must be an array");
      for (rapidjson::SizeType j = 0; j < c->value.Size(); j++) {
        kv::Condition cond;
        const std::string path = "operations[" + std::to_string(i) + "].conditions[" +
                                 std::to_string(j) + "].value";
        if (Status st = ReadCondition(c->value[j], op.key, ValueAt(*texts, path), &cond);
            !st.ok()) {
          return BadRequest(req, at + st.message());
        }
        txn.conditions.push_back(std::move(cond));
        condition_op.push_back(i);
      }
    }
    txn.ops.push_back(std::move(op));
  }
  Result<kv::TxnResult> r = (*store)->Transact(txn);
  if (!r.ok()) return Error(req, r.status());
  if (!r->succeeded) {
    const kv::Condition& c = txn.conditions[r->failed_condition];
    const size_t op = condition_op[r->failed_condition];
    Result<kv::Entry> cur = (*store)->Get(c.key);
    const std::string now =
        cur.ok() ? "is at version " + std::to_string(cur->version) : "does not exist";
    std::string detail = "operations[" + std::to_string(op) + "]: condition " +
                         DescribeCondition(c) + " failed: key " + ValidUtf8(c.key) + " " + now +
                         "; nothing was changed";
    if (c.kind == kv::Condition::Kind::kVersionEquals) {
      detail = "Expected version " + std::to_string(c.version) + ", got " +
               (cur.ok() ? std::to_string(cur->version) : "none") + " (operations[" +
               std::to_string(op) + "], key " + ValidUtf8(c.key) + "); nothing was changed";
    }
    return KvError(req, 409,
                   c.kind == kv::Condition::Kind::kVersionEquals ? "VERSION_CONFLICT"
                                                                 : "CONDITION_FAILED",
                   detail);
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "success", true);
  Key(w, "results");
  w.StartArray();
  for (size_t i = 0; i < txn.ops.size(); i++) {
    w.StartObject();
    KV(w, "type", txn.ops[i].kind == kv::TxnOp::Kind::kPut ? "put" : "delete");
    KV(w, "key", txn.ops[i].key);
    if (i < r->entries.size()) {
      const kv::Entry& e = r->entries[i];
      if (txn.ops[i].kind == kv::TxnOp::Kind::kPut) {
        KV(w, "version", e.version);
      } else {
        KV(w, "deleted", e.version != 0);
      }
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return JsonReply(200, sb);
}

}  // namespace pstorage::api::kv_routes
