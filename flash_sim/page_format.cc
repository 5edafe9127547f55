#include "flash_sim/page_format.h"

// The dispatching entry point picks AVX2 at run time (the plain inline one
// is compiled for SSE2): a tenth of the cost of a unique-block write.
#include <xxh_x86dispatch.h>

#include <algorithm>

namespace pstorage::flash {

uint64_t Checksum(const uint8_t* data, size_t n) { return XXH3_64bits_dispatch(data, n); }

void EncodeSpare(const SpareArea& spare, uint8_t* slot) {
  uint8_t* p = slot + kPageBytes;
  std::memset(p, 0, kSpareBytes);
  PutU32(p + 0, kSpareMagic);
  p[4] = kSpareVersion;
  p[5] = static_cast<uint8_t>(spare.kind);
  PutU64(p + 8, spare.lpn);
  PutU64(p + 16, spare.seq);
  PutU32(p + 24, spare.erase_epoch);
  PutU64(p + 32, spare.data_checksum);
  PutU64(p + 40, Checksum(p, 40));
}

std::optional<SpareArea> DecodeSpare(const uint8_t* slot) {
  const uint8_t* p = slot + kPageBytes;
  if (GetU32(p) != kSpareMagic || p[4] != kSpareVersion) return std::nullopt;
  if (GetU64(p + 40) != Checksum(p, 40)) return std::nullopt;
  SpareArea s;
  if (p[5] != uint8_t(PageKind::kData) && p[5] != uint8_t(PageKind::kTrimRecord)) return std::nullopt;
  s.kind = static_cast<PageKind>(p[5]);
  s.lpn = GetU64(p + 8);
  s.seq = GetU64(p + 16);
  s.erase_epoch = GetU32(p + 24);
  s.data_checksum = GetU64(p + 32);
  return s;
}

void EncodeLabel(const DeviceLabel& label, uint8_t* out) {
  std::memset(out, 0, kPageBytes);
  PutU64(out + 0, kLabelMagic);
  PutU32(out + 8, kLabelVersion);
  PutU32(out + 12, kPageBytes);
  PutU32(out + 16, label.pages_per_block);
  PutU32(out + 20, label.block_count);
  PutU64(out + 24, label.logical_pages);
  PutU64(out + 32, Checksum(out, 32));
}

Result<std::optional<DeviceLabel>> DecodeLabel(const uint8_t* in) {
  if (std::all_of(in, in + kPageBytes, [](uint8_t b) { return b == 0; })) {
    return std::optional<DeviceLabel>();
  }
  if (GetU64(in) != kLabelMagic || GetU64(in + 32) != Checksum(in, 32)) {
    return Status::Corruption("flash device label is damaged (bad magic or checksum)");
  }
  if (GetU32(in + 8) != kLabelVersion || GetU32(in + 12) != kPageBytes) {
    return Status::Corruption("flash device label has an unsupported version or page size");
  }
  DeviceLabel label;
  label.pages_per_block = GetU32(in + 16);
  label.block_count = GetU32(in + 20);
  label.logical_pages = GetU64(in + 24);
  return std::optional<DeviceLabel>(label);
}

}  // namespace pstorage::flash
