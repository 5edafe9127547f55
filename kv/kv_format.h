// On-disk format of a project's KV log, {dir}/{project_id}.log: records back
// to back, no file header, no padding. All integers little-endian; see
// docs/formats.md, "KV log and snapshot".
//
// frame:
// offset size            field
//   0     4              payload_bytes  1..kMaxPayloadBytes
//   4     4              checksum       low 32 bits of XXH3-64 (seed 0) of the payload
//   8     payload_bytes  payload        u8 record type + fields (below)
//
// str  := u32 length + bytes
// tags := u32 count + count x (str name, str value)
// put  := str key, str value, u64 version, i64 created_ms, i64 updated_ms,
//         i64 expires_ms, tags
// record payloads by type:
//   1 put     put
//   2 delete  str key
//   3 txn     u32 n, n x (u8 type (1, 2, 4 or 5), that type's fields)
//   4 expire  str key
//   5 clear   (no fields): every key removed
// Every record carries whole states, so replaying a record whose effect is
// already in the snapshot leaves the same state (replay is idempotent).
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <span>
#include <vector>

#include "common/endian.h"
#include "common/status.h"
#include "kv/kv.h"

namespace pstorage::kv::format {

inline constexpr uint32_t kLengthOffset = 0;
inline constexpr uint32_t kChecksumOffset = 4;
inline constexpr uint32_t kHeaderBytes = 8;
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;  // 64 MiB
inline constexpr uint32_t kMaxTxnOps = 1u << 20;
static_assert(kChecksumOffset == kLengthOffset + 4 && kHeaderBytes == kChecksumOffset + 4);
static_assert(uint64_t{kMaxPayloadBytes} + kHeaderBytes <= UINT32_MAX);

enum class RecordType : uint8_t {
  kPut = 1,
  kDelete = 2,
  kTxn = 3,
  kExpire = 4,
  kClear = 5,
};

inline uint32_t PayloadChecksum(std::span<const uint8_t> payload) {
  return static_cast<uint32_t>(XXH3_64bits(payload.data(), payload.size()));
}

// One state change. For kPut `entry` is the whole new state; for kDelete and
// kExpire only entry.key (and entry.version, not stored) matter; kClear has
// no fields.
struct LogOp {
  RecordType type = RecordType::kPut;
  Entry entry;
};

// One op encodes as its own record type, several as one txn record.
// Invariant: ops is not empty and holds no kTxn.
std::vector<uint8_t> EncodeRecord(const std::vector<LogOp>& ops);
// kCorruption when the payload does not decode exactly.
Status DecodeRecord(std::span<const uint8_t> payload, std::vector<LogOp>* ops);

// The frame around a payload: header + payload.
std::vector<uint8_t> EncodeFrame(std::span<const uint8_t> payload);

}  // namespace pstorage::kv::format
