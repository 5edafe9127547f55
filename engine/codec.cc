#include "engine/codec.h"

#include <lz4.h>
#include <zstd.h>

#include <cstring>
#include <memory>

// Call the dispatching entry points by name; never let the header rename
// the plain ones behind our back (PLATFORM_NOTES.md).
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>

namespace pstorage::engine {

static_assert(kBlockBytes % 8 == 0);

bool IsPatternBlock(const uint8_t* block, uint64_t* pattern) {
  // One 8-byte word repeated <=> every word equals the next one: compare
  // the block with itself shifted by one word. libc's memcmp does that with
  // the widest vectors the CPU has and stops at the first difference (for
  // almost any non-pattern block, within the first 32 bytes): 39 ns for a
  // whole zero block here, against 86 ns for a loop over 8-byte words.
  if (std::memcmp(block, block + 8, kBlockBytes - 8) != 0) return false;
  std::memcpy(pattern, block, 8);
  return true;
}

void FillPattern(uint64_t pattern, uint8_t* out) {
  for (uint32_t off = 0; off < kBlockBytes; off += 8) std::memcpy(out + off, &pattern, 8);
}

Hash128 HashBlock(const uint8_t* block, bool constant) {
  Hash128 h{};
  if (constant) {
    h.fill(0x5a);
    return h;
  }
  const XXH128_hash_t raw = XXH3_128bits_dispatch(block, kBlockBytes);
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, raw);
  static_assert(sizeof(canonical.digest) == sizeof(h));
  std::memcpy(h.data(), canonical.digest, h.size());
  return h;
}

uint32_t CompressLz4(const uint8_t* block, uint8_t* out) {
  // A bound below the block size makes LZ4 give up (return 0) as soon as the
  // output would not save kMinSavedBytes.
  const int n = LZ4_compress_default(reinterpret_cast<const char*>(block),
                                     reinterpret_cast<char*>(out), kBlockBytes, kMaxFragmentBytes);
  return n > 0 ? uint32_t(n) : 0;
}

uint32_t CompressZstd(const uint8_t* block, int level, uint8_t* out, uint32_t capacity) {
  // One context per thread: ZSTD_compress would allocate one per call.
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(),
                                                                       ZSTD_freeCCtx);
  const size_t n = ZSTD_compressCCtx(cctx.get(), out, capacity, block, kBlockBytes, level);
  return ZSTD_isError(n) ? 0 : uint32_t(n);
}

Status DecodeFragment(Codec codec, const uint8_t* fragment, uint32_t length, const Hash128& hash,
                      bool constant_hash, uint8_t* out) {
  size_t decoded = 0;
  switch (codec) {
    case Codec::kRaw:
      if (length != kBlockBytes) return Status::Corruption("raw fragment of wrong length");
      std::memcpy(out, fragment, kBlockBytes);
      decoded = kBlockBytes;
      break;
    case Codec::kLz4: {
      const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(fragment),
                                        reinterpret_cast<char*>(out), int(length), kBlockBytes);
      if (n < 0) return Status::Corruption("LZ4 fragment does not decode");
      decoded = size_t(n);
      break;
    }
    case Codec::kZstd: {
      const size_t n = ZSTD_decompress(out, kBlockBytes, fragment, length);
      if (ZSTD_isError(n)) return Status::Corruption("zstd fragment does not decode");
      decoded = n;
      break;
    }
    default:
      return Status::Corruption("unknown codec");
  }
  if (decoded != kBlockBytes) return Status::Corruption("fragment decodes to a short block");
  if (HashBlock(out, constant_hash) != hash) return Status::Corruption("block hash mismatch");
  return Status::Ok();
}

}  // namespace pstorage::engine
