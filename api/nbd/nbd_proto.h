// The NBD wire protocol (newstyle fixed handshake, transmission phase):
// constants and big-endian field access. Grammar in the upstream spec,
// NetworkBlockDevice/nbd doc/proto.md; the parts PStorage serves are listed
// in docs/operations.md ("NBD").
#pragma once

#include <cstddef>
#include <cstdint>

namespace pstorage::api::nbd {

// --- handshake ---
inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943ull;  // "NBDMAGIC"
inline constexpr uint64_t kIHaveOpt = 0x49484156454F5054ull;  // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x3e889045565a9ull;
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;  // server handshake flags
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFixedNewstyle = 1 << 0;  // client flags
inline constexpr uint32_t kClientNoZeroes = 1 << 1;

enum Option : uint32_t {
  kOptExportName = 1,
  kOptAbort = 2,
  kOptList = 3,
  kOptStartTls = 5,
  kOptInfo = 6,
  kOptGo = 7,
  kOptStructuredReply = 8,
  kOptListMetaContext = 9,
  kOptSetMetaContext = 10,
};

inline constexpr uint32_t kRepErr = 1u << 31;
enum OptionReply : uint32_t {
  kRepAck = 1,
  kRepServer = 2,
  kRepInfo = 3,
  kRepMetaContext = 4,
  kRepErrUnsup = kRepErr | 1,
  kRepErrPolicy = kRepErr | 2,
  kRepErrInvalid = kRepErr | 3,
  kRepErrTlsReqd = kRepErr | 5,
  kRepErrUnknown = kRepErr | 6,
  kRepErrTooBig = kRepErr | 9,
};

enum Info : uint16_t { kInfoExport = 0, kInfoName = 1, kInfoDescription = 2, kInfoBlockSize = 3 };

// Transmission flags (sent with the export's size).
enum TransmissionFlag : uint16_t {
  kHasFlags = 1 << 0,
  kReadOnly = 1 << 1,
  kSendFlush = 1 << 2,
  kSendFua = 1 << 3,
  kSendTrim = 1 << 5,
  kSendWriteZeroes = 1 << 6,
  kCanMultiConn = 1 << 8,
  kSendFastZero = 1 << 11,
};

// --- transmission ---
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;
inline constexpr size_t kRequestBytes = 28;  // magic, flags, type, handle, offset, length
inline constexpr size_t kSimpleReplyBytes = 16;
inline constexpr size_t kStructuredHeaderBytes = 20;

enum Command : uint16_t {
  kCmdRead = 0,
  kCmdWrite = 1,
  kCmdDisc = 2,
  kCmdFlush = 3,
  kCmdTrim = 4,
  kCmdWriteZeroes = 6,
  kCmdBlockStatus = 7,
};

enum CommandFlag : uint16_t {
  kCmdFlagFua = 1 << 0,
  kCmdFlagNoHole = 1 << 1,
  kCmdFlagDf = 1 << 2,
  kCmdFlagReqOne = 1 << 3,
  kCmdFlagFastZero = 1 << 4,
};

inline constexpr uint16_t kReplyFlagDone = 1 << 0;
enum ReplyType : uint16_t {
  kReplyNone = 0,
  kReplyOffsetData = 1,
  kReplyBlockStatus = 5,
  kReplyError = (1 << 15) | 1,
};

// Errors on the wire (Linux values, whatever the host).
enum Error : uint32_t {
  kEPerm = 1,
  kEIo = 5,
  kENoMem = 12,
  kEInval = 22,
  kENoSpc = 28,
  kEOverflow = 75,
  kENotSup = 95,
  kEShutdown = 108,
};

// base:allocation status bits.
inline constexpr uint32_t kStateHole = 1 << 0;
inline constexpr uint32_t kStateZero = 1 << 1;
inline constexpr uint32_t kAllocationContextId = 1;
inline constexpr char kAllocationContext[] = "base:allocation";

// --- limits ---
inline constexpr uint32_t kMaxRequestBytes = 32u << 20;  // READ/WRITE payload
inline constexpr uint32_t kPreferredBlockBytes = 4096;
inline constexpr uint32_t kMaxOptionBytes = 64u << 10;  // one option's data
inline constexpr int kMaxOptions = 1024;                // options per handshake

// --- big-endian fields ---
inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint64_t Get64(const uint8_t* p) { return uint64_t{Get32(p)} << 32 | Get32(p + 4); }
inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}
inline void Put64(uint8_t* p, uint64_t v) {
  Put32(p, static_cast<uint32_t>(v >> 32));
  Put32(p + 4, static_cast<uint32_t>(v));
}

// One transmission request header, decoded.
struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t handle = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// Decodes a kRequestBytes header; false on a bad magic.
inline bool DecodeRequest(const uint8_t* p, Request* r) {
  if (Get32(p) != kRequestMagic) return false;
  r->flags = Get16(p + 4);
  r->type = Get16(p + 6);
  r->handle = Get64(p + 8);
  r->offset = Get64(p + 16);
  r->length = Get32(p + 24);
  return true;
}

}  // namespace pstorage::api::nbd
