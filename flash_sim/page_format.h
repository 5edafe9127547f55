// On-medium formats of the flash device: the spare area (out-of-band
// metadata) written with every physical page, the trim record page, and the
// device label. All integers little-endian; see docs/formats.md.
#pragma once

#include "common/endian.h"
#include <cstdint>
#include <cstring>
#include <optional>

#include "flash_sim/flash.h"

namespace pstorage::flash {

// --- little-endian helpers -------------------------------------------------
using ::pstorage::GetU32;
using ::pstorage::GetU64;
using ::pstorage::PutU32;
using ::pstorage::PutU64;

// XXH3-64 of `n` bytes; the checksum of every on-medium structure.
uint64_t Checksum(const uint8_t* data, size_t n);

// --- spare area --------------------------------------------------------------
// offset size field
//   0     4   magic            kSpareMagic
//   4     1   version          1
//   5     1   kind             PageKind
//   6     2   reserved         0
//   8     8   lpn              logical page (data pages); 0 for trim records
//  16     8   seq              device-wide program sequence number, from 1
//  24     4   erase_epoch      the block's erase count when programmed
//  28     4   reserved         0
//  32     8   data_checksum    Checksum(page data, 4096)
//  40     8   header_checksum  Checksum(spare[0..40))
//  48   464   zero
inline constexpr uint32_t kSpareMagic = 0x50465350;  // "PSFP"
inline constexpr uint32_t kSpareVersion = 1;
inline constexpr uint32_t kSpareUsedBytes = 48;
static_assert(kSpareUsedBytes <= kSpareBytes);

enum class PageKind : uint8_t {
  kData = 1,        // a logical page's content
  kTrimRecord = 2,  // a list of logical pages unmapped as of `seq`
};

struct SpareArea {
  PageKind kind = PageKind::kData;
  uint64_t lpn = 0;
  uint64_t seq = 0;
  uint32_t erase_epoch = 0;
  uint64_t data_checksum = 0;
};

// Writes the spare area into slot[kPageBytes .. kSlotBytes).
void EncodeSpare(const SpareArea& spare, uint8_t* slot);

// Decodes the spare area of `slot`. Returns nothing when the header is not a
// valid spare area (never written, torn, or corrupt). Does not check the data.
std::optional<SpareArea> DecodeSpare(const uint8_t* slot);

// True when the slot's data matches its spare area's data checksum.
inline bool DataChecksumMatches(const SpareArea& spare, const uint8_t* slot) {
  return Checksum(slot, kPageBytes) == spare.data_checksum;
}

// --- trim record page data ------------------------------------------------------
//   0  4  count   number of entries, <= kTrimRecordMaxEntries
//   4  4  reserved
//   8  8*count    logical pages
inline constexpr uint32_t kTrimRecordMaxEntries = (kPageBytes - 8) / 8;

// --- device label (the 4 KiB label of the medium) ---------------------------------
//   0  8  magic            kLabelMagic
//   8  4  version          1
//  12  4  page_bytes       4096
//  16  4  pages_per_block
//  20  4  block_count
//  24  8  logical_pages
//  32  8  checksum         Checksum(label[0..32))
inline constexpr uint64_t kLabelMagic = 0x314853414c465350ull;  // "PSFLASH1"
inline constexpr uint32_t kLabelVersion = 1;

struct DeviceLabel {
  uint32_t pages_per_block = 0;
  uint32_t block_count = 0;
  uint64_t logical_pages = 0;
};

void EncodeLabel(const DeviceLabel& label, uint8_t* out4096);
// Returns nothing for an all-zero (unformatted) label; kCorruption for a
// label that is neither zero nor valid.
Result<std::optional<DeviceLabel>> DecodeLabel(const uint8_t* in4096);

}  // namespace pstorage::flash
