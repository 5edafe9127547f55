// On-disk format of the engine journal: a file of records, no file header.
// All integers little-endian; see docs/formats.md, "Engine journal".
//
// record:
// offset size            field
//   0     4              magic          kRecordMagic ("PSJR")
//   4     4              payload_bytes  <= kMaxPayloadBytes
//   8     8              seq            1 for the file's first record, then +1
//  16     8              checksum       XXH3-64 of header[0..16) followed by the payload
//  24     payload_bytes  payload
//
// Records follow each other with no padding. The file ends after the last
// record; anything after the last record that decodes is a torn tail.
#pragma once

#include "common/endian.h"
#ifndef XXH_STATIC_LINKING_ONLY
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack: no allocation per record
#endif
#include <xxhash.h>

#include <cstdint>
#include <optional>
#include <span>

namespace pstorage::engine::journal_format {

inline constexpr uint32_t kRecordMagic = 0x524a5350;  // bytes "PSJR"
inline constexpr uint32_t kMagicOffset = 0;
inline constexpr uint32_t kLengthOffset = 4;
inline constexpr uint32_t kSeqOffset = 8;
inline constexpr uint32_t kChecksumOffset = 16;
inline constexpr uint32_t kHeaderBytes = 24;
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;  // 64 MiB
inline constexpr uint64_t kFirstSeq = 1;                 // seq restarts at 1 after Reset

static_assert(kLengthOffset == kMagicOffset + 4 && kSeqOffset == kLengthOffset + 4);
static_assert(kChecksumOffset == kSeqOffset + 8 && kHeaderBytes == kChecksumOffset + 8);
static_assert(uint64_t{kMaxPayloadBytes} + kHeaderBytes <= UINT32_MAX);

// --- little-endian helpers ---------------------------------------------------
using ::pstorage::GetU32;
using ::pstorage::GetU64;
using ::pstorage::PutU32;
using ::pstorage::PutU64;

// XXH3-64 over header[0..kChecksumOffset) and then the payload, as one stream.
inline uint64_t RecordChecksum(const uint8_t* header, std::span<const uint8_t> payload) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  XXH3_64bits_update(&state, header, kChecksumOffset);
  XXH3_64bits_update(&state, payload.data(), payload.size());
  return XXH3_64bits_digest(&state);
}

// Writes magic and payload length; seq and checksum are stamped later by
// StampRecord, once the record's place in the file is known.
inline void EncodeHeaderPrefix(uint32_t payload_bytes, uint8_t* header) {
  PutU32(header + kMagicOffset, kRecordMagic);
  PutU32(header + kLengthOffset, payload_bytes);
  PutU64(header + kSeqOffset, 0);
  PutU64(header + kChecksumOffset, 0);
}

// `record` is header + payload, with the prefix already encoded.
inline void StampRecord(std::span<uint8_t> record, uint64_t seq) {
  uint8_t* header = record.data();
  PutU64(header + kSeqOffset, seq);
  PutU64(header + kChecksumOffset, RecordChecksum(header, record.subspan(kHeaderBytes)));
}

struct RecordHeader {
  uint32_t payload_bytes = 0;
  uint64_t seq = 0;
  uint64_t checksum = 0;
};

// Decodes a header; nothing when the magic is wrong or the length is over
// the limit (garbage, or a torn record). Does not check the checksum.
inline std::optional<RecordHeader> DecodeHeader(const uint8_t* header) {
  if (GetU32(header + kMagicOffset) != kRecordMagic) return std::nullopt;
  RecordHeader h;
  h.payload_bytes = GetU32(header + kLengthOffset);
  if (h.payload_bytes > kMaxPayloadBytes) return std::nullopt;
  h.seq = GetU64(header + kSeqOffset);
  h.checksum = GetU64(header + kChecksumOffset);
  return h;
}

}  // namespace pstorage::engine::journal_format
