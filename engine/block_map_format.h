// The block map checkpoint image (NodeStore::Serialize / Load): every node
// reachable from the checkpointed roots, once each, with its id and count.
// Little-endian, field by field; see docs/formats.md, "Block map image".
//
// image  := header record* trailer
// header :  0  8  magic       kImageMagic ("PSBMAP01")
//           8  4  version     kImageVersion
//          12  4  height      levels of nodes (1 = a single leaf)
//          16  8  node_count  number of records
// record :  0  4  id          node id, != 0, unique in the image
//           4  4  count       reference count (parents + roots), >= 1
//           8  1  kind        kLeafRecord or kInteriorRecord
//           9 32  bitmap      bit i (byte i / 8, bit i % 8) = slot i present
//          41  .  slots       for each present slot, in slot order:
//                               leaf:     entry kind u8 (1 pattern, 2 content), value u64
//                               interior: child id u32 (!= 0)
// trailer:  0  8  checksum    XXH3-64 of every image byte before it
#pragma once

#include "common/endian.h"
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/block_map.h"

namespace pstorage::engine::block_map_format {

inline constexpr uint64_t kImageMagic = 0x313050414d425350;  // "PSBMAP01" read as LE u64
inline constexpr uint32_t kImageVersion = 1;
inline constexpr size_t kHeaderBytes = 24;
inline constexpr size_t kTrailerBytes = 8;
inline constexpr size_t kBitmapBytes = kFanout / 8;
inline constexpr size_t kRecordHeadBytes = 4 + 4 + 1 + kBitmapBytes;
inline constexpr size_t kEntryBytes = 1 + 8;
inline constexpr size_t kChildBytes = 4;
inline constexpr uint8_t kLeafRecord = 1;
inline constexpr uint8_t kInteriorRecord = 2;
inline constexpr uint8_t kMaxEntryKind = 2;  // leaf entry kinds: 1 pattern, 2 content
static_assert(kMaxEntryKind == static_cast<uint8_t>(MapEntry::Kind::kContent));
static_assert(kRecordHeadBytes == 41);
static_assert(kBitmapBytes * 8 == kFanout);

using ::pstorage::GetU32;
using ::pstorage::GetU64;
using ::pstorage::PutU32;
using ::pstorage::PutU64;
inline bool BitSet(const uint8_t* bitmap, uint32_t i) { return (bitmap[i / 8] >> (i % 8)) & 1; }

}  // namespace pstorage::engine::block_map_format
