// Internal to the content store: the per-block CPU steps (pattern check,
// hash, compression, decoding). Stateless functions; callers own buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "engine/content_store.h"

namespace pstorage::engine {

// A compressed fragment is kept only when it saves at least this much: 1/16
// of a page. Below that the saving (< 6%) does not pay for an LZ4 decode on
// every cache-missing read (~2.3 us, PLATFORM_NOTES.md) nor for giving up
// the raw layout (a whole, aligned page that reads without decoding). It
// also bounds fragments to kMaxFragmentBytes, so two always share a page
// when both are at most half full.
inline constexpr uint32_t kMinSavedBytes = 256;
inline constexpr uint32_t kMaxFragmentBytes = kBlockBytes - kMinSavedBytes;  // 3840

// XXH3-128 of one block through the CPU-dispatching entry point, in the
// canonical (big-endian) byte order. `constant` is the test hook of
// ContentStoreOptions: every block then hashes to the same value.
Hash128 HashBlock(const uint8_t* block, bool constant);

// LZ4 into `out` (room for kMaxFragmentBytes). Returns the fragment length,
// or 0 when the block does not compress by kMinSavedBytes (store it raw).
uint32_t CompressLz4(const uint8_t* block, uint8_t* out);

// Zstandard at `level` into `out` (room for `capacity` bytes). Returns the
// fragment length, or 0 when it does not fit in `capacity`.
uint32_t CompressZstd(const uint8_t* block, int level, uint8_t* out, uint32_t capacity);

// Decodes one fragment into `out` (kBlockBytes) and checks that it decodes
// to exactly kBlockBytes whose hash is `hash`. kCorruption otherwise.
Status DecodeFragment(Codec codec, const uint8_t* fragment, uint32_t length, const Hash128& hash,
                      bool constant_hash, uint8_t* out);

// Fills `out` (kBlockBytes) with the 8-byte `pattern` repeated.
void FillPattern(uint64_t pattern, uint8_t* out);

}  // namespace pstorage::engine
