// On-disk format of the file medium's backing file. All integers are
// little-endian; see docs/formats.md, "Backing file (file medium)".
//
// offset                      size                          content
//   0                         4096                          medium header
//   4096                      4096                          label (Medium::ReadLabel)
//   8192                      BlockTableBytes(block_count)  block table
//   SlotsBase(block_count)    slot_count * kSlotBytes       slots, slot i at
//                                                           SlotsBase + i * kSlotBytes
//
// Every region starts 4096-aligned, and kSlotBytes is a multiple of 512, so
// each slot is a valid O_DIRECT transfer on devices with 512-byte sectors.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "flash_sim/flash.h"
#include "flash_sim/page_format.h"  // PutU32 / GetU32 / PutU64 / GetU64

namespace pstorage::flash::file_format {

inline constexpr uint64_t kHeaderOffset = 0;
inline constexpr uint64_t kLabelOffset = 4096;
inline constexpr uint64_t kBlockTableOffset = 8192;
inline constexpr uint32_t kRegionAlignBytes = 4096;
inline constexpr uint32_t kHeaderBytes = 4096;

// --- medium header -------------------------------------------------------------
// offset size field
//   0     8   magic            kMagic ("PSMEDIA1")
//   8     4   version          kVersion
//  12     4   slot_bytes       kSlotBytes (4608)
//  16     4   pages_per_block  > 0
//  20     4   block_count      > 0
//  24     8   checksum         XXH3_64bits(header[0..24))
//  32  4064   zero
inline constexpr uint64_t kMagic = 0x31414944454d5350ull;  // "PSMEDIA1"
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kHeaderChecksumOffset = 24;
inline constexpr uint32_t kHeaderUsedBytes = 32;
static_assert(kHeaderUsedBytes <= kHeaderBytes);
static_assert(kHeaderBytes == kLabelOffset - kHeaderOffset);
static_assert(kPageBytes == kBlockTableOffset - kLabelOffset);
static_assert(kSlotBytes % 512 == 0);

// --- block table -----------------------------------------------------------------
// One 8-byte entry per block, entry b at kBlockTableOffset + 8 * b:
//   0  4  erase_count
//   4  4  flags        bit 0: retired; other bits zero
// The table is padded with zeros to a multiple of 4096 bytes; updates write
// the one aligned 4096-byte chunk holding the entry.
inline constexpr uint32_t kBlockEntryBytes = 8;
inline constexpr uint32_t kRetiredFlag = 1;
inline constexpr uint32_t kBlocksPerChunk = kRegionAlignBytes / kBlockEntryBytes;

// Backing files larger than this are refused: a limit well past any test or
// demo, and far from overflowing off_t.
inline constexpr uint64_t kMaxFileBytes = 1ull << 46;  // 64 TiB

inline uint64_t BlockTableBytes(uint32_t block_count) {
  const uint64_t raw = uint64_t{block_count} * kBlockEntryBytes;
  return (raw + kRegionAlignBytes - 1) / kRegionAlignBytes * kRegionAlignBytes;
}
inline uint64_t SlotsBase(uint32_t block_count) {
  return kBlockTableOffset + BlockTableBytes(block_count);
}
inline uint64_t SlotOffset(uint32_t block_count, uint64_t slot) {
  return SlotsBase(block_count) + slot * kSlotBytes;
}
inline uint64_t FileBytes(const MediumGeometry& g) {
  return SlotsBase(g.block_count) + g.slot_count() * kSlotBytes;
}
// Both dimensions nonzero and the file within kMaxFileBytes.
inline bool GeometryValid(const MediumGeometry& g) {
  return g.pages_per_block > 0 && g.block_count > 0 &&
         g.slot_count() <= kMaxFileBytes / kSlotBytes && FileBytes(g) <= kMaxFileBytes;
}
inline std::string GeometryString(const MediumGeometry& g) {
  return std::to_string(g.block_count) + " blocks x " + std::to_string(g.pages_per_block) +
         " pages";
}

// Writes the whole 4096-byte header block.
inline void EncodeHeader(const MediumGeometry& g, uint8_t* out4096) {
  std::memset(out4096, 0, kHeaderBytes);
  PutU64(out4096 + 0, kMagic);
  PutU32(out4096 + 8, kVersion);
  PutU32(out4096 + 12, kSlotBytes);
  PutU32(out4096 + 16, g.pages_per_block);
  PutU32(out4096 + 20, g.block_count);
  PutU64(out4096 + kHeaderChecksumOffset, XXH3_64bits(out4096, kHeaderChecksumOffset));
}

// kCorruption unless `in4096` is a valid header of a supported version.
inline Result<MediumGeometry> DecodeHeader(const uint8_t* in4096) {
  if (GetU64(in4096) != kMagic) return Status::Corruption("not a PStorage medium file (magic)");
  if (GetU64(in4096 + kHeaderChecksumOffset) != XXH3_64bits(in4096, kHeaderChecksumOffset)) {
    return Status::Corruption("medium header checksum mismatch");
  }
  if (GetU32(in4096 + 8) != kVersion) {
    return Status::Corruption("unsupported medium version " + std::to_string(GetU32(in4096 + 8)));
  }
  if (GetU32(in4096 + 12) != kSlotBytes) return Status::Corruption("unsupported slot size");
  MediumGeometry g;
  g.pages_per_block = GetU32(in4096 + 16);
  g.block_count = GetU32(in4096 + 20);
  if (!GeometryValid(g)) return Status::Corruption("medium header has an invalid geometry");
  return g;
}

inline void EncodeBlockEntry(const BlockInfo& info, uint8_t* out8) {
  PutU32(out8, info.erase_count);
  PutU32(out8 + 4, info.retired ? kRetiredFlag : 0);
}

// kCorruption for unknown flag bits.
inline Result<BlockInfo> DecodeBlockEntry(const uint8_t* in8) {
  const uint32_t flags = GetU32(in8 + 4);
  if ((flags & ~kRetiredFlag) != 0) return Status::Corruption("unknown block flags");
  BlockInfo info;
  info.erase_count = GetU32(in8);
  info.retired = (flags & kRetiredFlag) != 0;
  return info;
}

}  // namespace pstorage::flash::file_format
