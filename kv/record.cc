// Encoding and decoding of KV log record payloads (kv/kv_format.h).
#include <cassert>
#include <string>

#include "kv/kv_format.h"

namespace pstorage::kv::format {
namespace {

void PutStr(std::vector<uint8_t>* out, const std::string& s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->insert(out->end(), s.begin(), s.end());
}

void EncodeOp(const LogOp& op, std::vector<uint8_t>* out) {
  assert(op.type != RecordType::kTxn);
  out->push_back(static_cast<uint8_t>(op.type));
  if (op.type == RecordType::kClear) return;
  PutStr(out, op.entry.key);
  if (op.type != RecordType::kPut) return;
  const Entry& e = op.entry;
  PutStr(out, e.value);
  PutU64(out, e.version);
  PutU64(out, static_cast<uint64_t>(e.created_at_ms));
  PutU64(out, static_cast<uint64_t>(e.updated_at_ms));
  PutU64(out, static_cast<uint64_t>(e.expires_at_ms));
  PutU32(out, static_cast<uint32_t>(e.tags.size()));
  for (const auto& [name, value] : e.tags) {
    PutStr(out, name);
    PutStr(out, value);
  }
}

// Reads fields off the front of a payload; any overrun sets ok = false.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  uint8_t U8() { return Have(1) ? in_[pos_++] : 0; }
  uint32_t U32() {
    if (!Have(4)) return 0;
    uint32_t v = GetU32(in_.data() + pos_);
    pos_ += 4;
    return v;
  }
  uint64_t U64() {
    if (!Have(8)) return 0;
    uint64_t v = GetU64(in_.data() + pos_);
    pos_ += 8;
    return v;
  }
  std::string Str() {
    uint32_t n = U32();
    if (!Have(n)) return {};
    std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  bool Have(size_t n) {
    if (ok_ && in_.size() - pos_ >= n) return true;
    ok_ = false;
    return false;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

bool DecodeOp(uint8_t type, Reader* r, LogOp* op) {
  op->type = static_cast<RecordType>(type);
  switch (op->type) {
    case RecordType::kClear:
      return true;
    case RecordType::kDelete:
    case RecordType::kExpire:
      op->entry.key = r->Str();
      return r->ok();
    case RecordType::kPut: {
      Entry& e = op->entry;
      e.key = r->Str();
      e.value = r->Str();
      e.version = r->U64();
      e.created_at_ms = static_cast<int64_t>(r->U64());
      e.updated_at_ms = static_cast<int64_t>(r->U64());
      e.expires_at_ms = static_cast<int64_t>(r->U64());
      uint32_t n = r->U32();
      for (uint32_t i = 0; i < n && r->ok(); i++) {
        std::string name = r->Str();
        e.tags[name] = r->Str();
      }
      return r->ok();
    }
    case RecordType::kTxn:
      return false;
  }
  return false;
}

}  // namespace

std::vector<uint8_t> EncodeRecord(const std::vector<LogOp>& ops) {
  assert(!ops.empty());
  std::vector<uint8_t> out;
  if (ops.size() == 1) {
    EncodeOp(ops[0], &out);
    return out;
  }
  out.push_back(static_cast<uint8_t>(RecordType::kTxn));
  PutU32(&out, static_cast<uint32_t>(ops.size()));
  for (const LogOp& op : ops) EncodeOp(op, &out);
  return out;
}

Status DecodeRecord(std::span<const uint8_t> payload, std::vector<LogOp>* ops) {
  ops->clear();
  Reader r(payload);
  uint8_t type = r.U8();
  if (type == static_cast<uint8_t>(RecordType::kTxn)) {
    uint32_t n = r.U32();
    if (n > kMaxTxnOps) return Status::Corruption("kv record: too many txn ops");
    for (uint32_t i = 0; i < n && r.ok(); i++) {
      LogOp op;
      if (!DecodeOp(r.U8(), &r, &op)) return Status::Corruption("kv record: bad txn op");
      ops->push_back(std::move(op));
    }
  } else {
    LogOp op;
    if (!DecodeOp(type, &r, &op)) return Status::Corruption("kv record: bad record");
    ops->push_back(std::move(op));
  }
  if (!r.ok() || !r.done()) return Status::Corruption("kv record: bad length");
  return Status::Ok();
}

std::vector<uint8_t> EncodeFrame(std::span<const uint8_t> payload) {
  assert(!payload.empty() && payload.size() <= kMaxPayloadBytes);
  std::vector<uint8_t> frame(kHeaderBytes);
  PutU32(frame.data() + kLengthOffset, static_cast<uint32_t>(payload.size()));
  PutU32(frame.data() + kChecksumOffset, PayloadChecksum(payload));
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

}  // namespace pstorage::kv::format
