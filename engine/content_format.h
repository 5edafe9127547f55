// The content table checkpoint image (ContentStore::Serialize / Load).
// Grammar and rationale: docs/formats.md, "Content table".
//
//   image   := header record{count} checksum
//   header  := magic u64 | version u32 | record_bytes u32 | count u64 |
//              id_limit u32 | reserved u32 (0)
//   record  := id u32 | hash 16 bytes | page u32 | next_page u32 |
//              offset u16 | length u16 | codec u8 | reserved 3 bytes (0) |
//              refcount u32
//   checksum:= XXH3-64 (seed 0) of every byte before it, u64
// All integers little-endian, encoded field by field. next_page is
// 0xffffffff (kNoNextPage) unless the fragment spans two pages. Version 2
// added next_page; version 1 images are not read.
#pragma once

#include "common/endian.h"
#include <cstdint>
#include <cstring>

#include "engine/content_store.h"

namespace pstorage::engine::content_format {

inline constexpr uint64_t kMagic = 0x3130424154435350ull;  // "PSCTAB01"
inline constexpr uint32_t kVersion = 2;
inline constexpr size_t kHeaderBytes = 32;
inline constexpr size_t kRecordBytes = 40;
inline constexpr size_t kChecksumBytes = 8;
static_assert(kHeaderBytes == 8 + 4 + 4 + 8 + 4 + 4);
static_assert(kRecordBytes == 4 + 16 + 4 + 4 + 2 + 2 + 1 + 3 + 4);

using ::pstorage::GetU16;
using ::pstorage::GetU32;
using ::pstorage::GetU64;
using ::pstorage::PutU16;
using ::pstorage::PutU32;
using ::pstorage::PutU64;

struct Header {
  uint64_t count = 0;     // records that follow
  uint32_t id_limit = 1;  // one past the highest id the store had handed out
};

inline void EncodeHeader(const Header& h, uint8_t* p) {
  PutU64(p, kMagic);
  PutU32(p + 8, kVersion);
  PutU32(p + 12, uint32_t(kRecordBytes));
  PutU64(p + 16, h.count);
  PutU32(p + 24, h.id_limit);
  PutU32(p + 28, 0);
}

// False when magic, version or record size is not ours.
inline bool DecodeHeader(const uint8_t* p, Header* h) {
  if (GetU64(p) != kMagic || GetU32(p + 8) != kVersion || GetU32(p + 12) != kRecordBytes) {
    return false;
  }
  h->count = GetU64(p + 16);
  h->id_limit = GetU32(p + 24);
  return true;
}

inline void EncodeRecord(const ContentRecord& r, uint32_t refcount, uint8_t* p) {
  PutU32(p, r.id);
  std::memcpy(p + 4, r.hash.data(), 16);  // already a byte string (canonical XXH128)
  PutU32(p + 20, r.page);
  PutU32(p + 24, r.next_page);
  PutU16(p + 28, r.offset);
  PutU16(p + 30, r.length);
  p[32] = uint8_t(r.codec);
  p[33] = p[34] = p[35] = 0;
  PutU32(p + 36, refcount);
}

inline void DecodeRecord(const uint8_t* p, ContentRecord* r, uint32_t* refcount) {
  r->id = GetU32(p);
  std::memcpy(r->hash.data(), p + 4, 16);
  r->page = GetU32(p + 20);
  r->next_page = GetU32(p + 24);
  r->offset = GetU16(p + 28);
  r->length = GetU16(p + 30);
  r->codec = Codec(p[32]);  // range-checked by the loader
  *refcount = GetU32(p + 36);
}

}  // namespace pstorage::engine::content_format
