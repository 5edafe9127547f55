// Internal: byte-level encoding of the engine's journal records and
// checkpoint (layouts in docs/formats.md). Little-endian, field by field;
// strings are u32 length + bytes; tags are u32 count + (key, value) strings.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/content_store.h"
#include "engine/engine.h"

namespace pstorage::engine {

enum class RecordType : uint8_t {
  kCreateVolume = 1,  // also clones and restores into a new volume
  kUpdateVolume = 2,
  kDeleteVolume = 3,
  kResizeVolume = 4,
  kCreateSnapshot = 5,
  kDeleteSnapshot = 6,
  kRestoreOnto = 7,
  kWrite = 8,         // one batch of block map updates (+ new contents)
};

// Where a new volume's blocks come from.
enum class SourceKind : uint8_t { kEmpty = 0, kVolume = 1, kSnapshot = 2 };

inline constexpr uint64_t kCheckpointMagic = 0x314b504353505350ull;  // "PSPSCPK1"
inline constexpr uint32_t kCheckpointVersion = 1;

// Cumulative write-path counters (persisted in checkpoints, replayed).
struct WriteCounters {
  uint64_t logical_bytes = 0;
  uint64_t zero_blocks = 0;
  uint64_t pattern_blocks = 0;
  uint64_t duplicate_blocks = 0;
  uint64_t stored_blocks = 0;
  uint64_t stored_bytes = 0;  // fragment bytes after compression
  void Add(const WriteCounters& o) {
    logical_bytes += o.logical_bytes;
    zero_blocks += o.zero_blocks;
    pattern_blocks += o.pattern_blocks;
    duplicate_blocks += o.duplicate_blocks;
    stored_blocks += o.stored_blocks;
    stored_bytes += o.stored_bytes;
  }
};

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; i++) out_->push_back(uint8_t(v >> (8 * i)));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; i++) out_->push_back(uint8_t(v >> (8 * i)));
  }
  void I64(int64_t v) { U64(uint64_t(v)); }
  void F64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    U64(bits);
  }
  void Str(const std::string& s) {
    U32(uint32_t(s.size()));
    Raw(s.data(), s.size());
  }
  void Raw(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  void TagMap(const Tags& tags) {
    U32(uint32_t(tags.size()));
    for (const auto& [k, v] : tags) {
      Str(k);
      Str(v);
    }
  }
  void Content(const ContentRecord& c) {
    U32(c.id);
    Raw(c.hash.data(), c.hash.size());
    U32(c.page);
    U32(uint32_t(c.offset) | uint32_t(c.length) << 16);
    U8(uint8_t(c.codec));
    U32(c.next_page);
  }
  // The fields of a volume shared by the create record and the checkpoint.
  void Volume(const VolumeInfo& v) {
    Str(v.id);
    Str(v.name);
    Str(v.description);
    TagMap(v.tags);
    U64(v.size_bytes);
    I64(v.created_at_ms);
    I64(v.updated_at_ms);
    Str(v.source_snapshot_id);
  }
  void Counters(const WriteCounters& c) {
    U64(c.logical_bytes);
    U64(c.zero_blocks);
    U64(c.pattern_blocks);
    U64(c.duplicate_blocks);
    U64(c.stored_blocks);
    U64(c.stored_bytes);
  }
  size_t size() const { return out_->size(); }

 private:
  std::vector<uint8_t>* out_;
};

// Reads what ByteWriter wrote. Any read past the end sets ok() to false and
// returns zeros; callers check ok() once at the end.
class ByteReader {
 public:
  ByteReader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  bool ok() const { return ok_; }
  bool done() const { return p_ == end_; }
  size_t remaining() const { return size_t(end_ - p_); }
  uint8_t U8() { return Take(1) ? p_[-1] : 0; }
  uint32_t U32() {
    if (!Take(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= uint32_t(p_[i - 4]) << (8 * i);
    return v;
  }
  uint64_t U64() {
    if (!Take(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= uint64_t(p_[i - 8]) << (8 * i);
    return v;
  }
  int64_t I64() { return int64_t(U64()); }
  double F64() {
    uint64_t bits = U64();
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  std::string Str() {
    uint32_t n = U32();
    if (!Take(n)) return {};
    return std::string(reinterpret_cast<const char*>(p_ - n), n);
  }
  const uint8_t* Raw(size_t n) { return Take(n) ? p_ - n : nullptr; }
  Tags TagMap() {
    Tags tags;
    uint32_t n = U32();
    for (uint32_t i = 0; i < n && ok_; i++) {
      std::string k = Str();
      tags[k] = Str();
    }
    return tags;
  }
  VolumeInfo Volume() {
    VolumeInfo v;
    v.id = Str();
    v.name = Str();
    v.description = Str();
    v.tags = TagMap();
    v.size_bytes = U64();
    v.created_at_ms = I64();
    v.updated_at_ms = I64();
    v.source_snapshot_id = Str();
    return v;
  }
  WriteCounters Counters() {
    WriteCounters c;
    c.logical_bytes = U64();
    c.zero_blocks = U64();
    c.pattern_blocks = U64();
    c.duplicate_blocks = U64();
    c.stored_blocks = U64();
    c.stored_bytes = U64();
    return c;
  }
  ContentRecord Content() {
    ContentRecord c;
    c.id = U32();
    if (const uint8_t* h = Raw(16)) std::memcpy(c.hash.data(), h, 16);
    c.page = U32();
    uint32_t ol = U32();
    c.offset = uint16_t(ol);
    c.length = uint16_t(ol >> 16);
    c.codec = static_cast<Codec>(U8());
    c.next_page = U32();
    return c;
  }

 private:
  bool Take(size_t n) {
    if (!ok_ || size_t(end_ - p_) < n) {
      ok_ = false;
      return false;
    }
    p_ += n;
    return true;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

}  // namespace pstorage::engine
