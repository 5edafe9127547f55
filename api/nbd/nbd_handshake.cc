// The newstyle fixed handshake: greeting, then options until the client
// picks an export (GO or EXPORT_NAME), aborts, or breaks the protocol.
#include <cstring>
#include <string>
#include <vector>

#include "api/nbd/nbd_connection.h"

namespace pstorage::api::nbd {
namespace {

// Reads a u32-length-prefixed string at *pos of `d`; false when it overruns.
bool TakeString(std::span<const uint8_t> d, size_t* pos, std::string* out) {
  if (d.size() - *pos < 4) return false;
  const uint32_t n = Get32(d.data() + *pos);
  *pos += 4;
  if (d.size() - *pos < n) return false;
  out->assign(reinterpret_cast<const char*>(d.data() + *pos), n);
  *pos += n;
  return true;
}

}  // namespace

uint16_t Connection::TransmissionFlags() const {
  uint16_t flags = kHasFlags | kSendFlush | kSendFua | kCanMultiConn;
  if (export_.snapshot) return flags | kReadOnly;
  return flags | kSendTrim | kSendWriteZeroes | kSendFastZero;
}

bool Connection::SendOptionReply(uint32_t option, uint32_t type, std::span<const uint8_t> data) {
  uint8_t h[20];
  Put64(h, kOptReplyMagic);
  Put32(h + 8, option);
  Put32(h + 12, type);
  Put32(h + 16, static_cast<uint32_t>(data.size()));
  return transport_.Write({h, sizeof(h)}, data);
}

bool Connection::SendOptionError(uint32_t option, uint32_t type, const std::string& message) {
  return SendOptionReply(option, type,
                         {reinterpret_cast<const uint8_t*>(message.data()), message.size()});
}

bool Connection::SendExportNameReply() {
  uint8_t r[10 + 124] = {};
  Put64(r, export_.size_bytes);
  Put16(r + 8, TransmissionFlags());
  return transport_.Write({r, no_zeroes_ ? size_t{10} : sizeof(r)});
}

// NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, u16 info types.
bool Connection::HandleInfoOrGo(uint32_t option, std::span<const uint8_t> d, bool* go) {
  size_t pos = 0;
  std::string name;
  if (!TakeString(d, &pos, &name) || d.size() - pos < 2) {
    return SendOptionError(option, kRepErrInvalid, "malformed request");
  }
  const uint16_t count = Get16(d.data() + pos);
  pos += 2;
  if (d.size() - pos != size_t{count} * 2) {
    return SendOptionError(option, kRepErrInvalid, "malformed information request list");
  }
  bool want_name = false;
  for (uint16_t i = 0; i < count; i++) {
    const uint16_t type = Get16(d.data() + pos + 2 * i);
    want_name |= type == kInfoName;
  }
  Result<Export> e = ResolveExport(engine_, options_, name);
  if (!e.ok()) return SendOptionError(option, kRepErrUnknown, "no export named \"" + name + "\"");
  export_ = *e;

  uint8_t info[14];
  Put16(info, kInfoExport);
  Put64(info + 2, export_.size_bytes);
  Put16(info + 10, TransmissionFlags());
  if (!SendOptionReply(option, kRepInfo, {info, 12})) return false;
  Put16(info, kInfoBlockSize);
  Put32(info + 2, 1);
  Put32(info + 6, kPreferredBlockBytes);
  Put32(info + 10, kMaxRequestBytes);
  if (!SendOptionReply(option, kRepInfo, {info, 14})) return false;
  if (want_name) {
    std::vector<uint8_t> n(2 + export_.name.size());
    Put16(n.data(), kInfoName);
    std::memcpy(n.data() + 2, export_.name.data(), export_.name.size());
    if (!SendOptionReply(option, kRepInfo, n)) return false;
  }
  if (!SendOptionReply(option, kRepAck)) return false;
  *go = option == kOptGo;
  return true;
}

// LIST/SET_META_CONTEXT: u32 name length, name, u32 count, count strings.
// Only base:allocation exists (context id kAllocationContextId).
bool Connection::HandleMetaContext(uint32_t option, std::span<const uint8_t> d) {
  size_t pos = 0;
  std::string name;
  if (!TakeString(d, &pos, &name) || d.size() - pos < 4) {
    return SendOptionError(option, kRepErrInvalid, "malformed request");
  }
  const uint32_t count = Get32(d.data() + pos);
  pos += 4;
  bool allocation = option == kOptListMetaContext && count == 0;  // list everything
  for (uint32_t i = 0; i < count; i++) {
    std::string query;
    if (!TakeString(d, &pos, &query)) {
      return SendOptionError(option, kRepErrInvalid, "malformed query list");
    }
    allocation |=
        query == kAllocationContext || (option == kOptListMetaContext && query == "base:");
  }
  if (pos != d.size()) return SendOptionError(option, kRepErrInvalid, "trailing bytes");
  if (option == kOptSetMetaContext && !structured_) {
    return SendOptionError(option, kRepErrInvalid, "structured replies are not negotiated");
  }
  if (!ResolveExport(engine_, options_, name).ok()) {
    return SendOptionError(option, kRepErrUnknown, "no export named \"" + name + "\"");
  }
  if (option == kOptSetMetaContext) allocation_context_ = allocation;
  if (allocation) {
    const size_t n = sizeof(kAllocationContext) - 1;
    std::vector<uint8_t> r(4 + n);
    Put32(r.data(), kAllocationContextId);
    std::memcpy(r.data() + 4, kAllocationContext, n);
    if (!SendOptionReply(option, kRepMetaContext, r)) return false;
  }
  return SendOptionReply(option, kRepAck);
}

int Connection::RequireTls(uint32_t option) {
  if (options_.tls != TlsMode::kRequire || transport_.tls()) return 0;
  if (option == kOptStartTls || option == kOptAbort) return 0;
  if (option == kOptExportName) return -1;  // no error reply exists: close
  return SendOptionError(option, kRepErrTlsReqd, "TLS is required: use STARTTLS") ? 1 : -1;
}

bool Connection::HandleStartTls(uint32_t length) {
  if (length != 0) return SendOptionError(kOptStartTls, kRepErrInvalid, "STARTTLS takes no data");
  if (tls_context_ == nullptr) {
    return SendOptionError(kOptStartTls, kRepErrPolicy, "TLS is not enabled on this server");
  }
  if (transport_.tls()) {
    return SendOptionError(kOptStartTls, kRepErrInvalid, "TLS is already negotiated");
  }
  if (!SendOptionReply(kOptStartTls, kRepAck) || !transport_.StartTls(tls_context_)) return false;
  // Only what the client negotiates under TLS counts.
  structured_ = false;
  allocation_context_ = false;
  return true;
}

bool Connection::Handshake() {
  uint8_t hello[18];
  Put64(hello, kNbdMagic);
  Put64(hello + 8, kIHaveOpt);
  Put16(hello + 16, kFlagFixedNewstyle | kFlagNoZeroes);
  uint8_t client_flags[4];
  if (!transport_.Write(hello) || !transport_.Read(client_flags, 4)) return false;
  const uint32_t cf = Get32(client_flags);
  if ((cf & ~(kClientFixedNewstyle | kClientNoZeroes)) != 0) return false;  // spec: close
  no_zeroes_ = (cf & kClientNoZeroes) != 0;

  std::vector<uint8_t> data;
  for (int i = 0; i < kMaxOptions; i++) {
    uint8_t h[16];
    if (!transport_.Read(h, sizeof(h)) || Get64(h) != kIHaveOpt) return false;
    const uint32_t option = Get32(h + 8);
    const uint32_t length = Get32(h + 12);
    // Too large to be a real option: no point reading it all.
    if (length > kMaxOptionBytes) return false;
    data.resize(length);
    if (!transport_.Read(data.data(), length)) return false;
    if (const int refused = RequireTls(option); refused != 0) {
      if (refused < 0) return false;
      continue;
    }
    bool ok = true;
    bool go = false;
    switch (option) {
      case kOptExportName: {
        const std::string name(data.begin(), data.end());
        Result<Export> e = ResolveExport(engine_, options_, name);
        if (!e.ok()) return false;  // this option has no error reply: close
        export_ = *e;
        return SendExportNameReply();
      }
      case kOptAbort:
        SendOptionReply(option, kRepAck);
        return false;
      case kOptList:
        if (length != 0) {
          ok = SendOptionError(option, kRepErrInvalid, "LIST takes no data");
          break;
        }
        for (const std::string& name : ListExports(engine_, options_)) {
          std::vector<uint8_t> r(4 + name.size());
          Put32(r.data(), static_cast<uint32_t>(name.size()));
          std::memcpy(r.data() + 4, name.data(), name.size());
          if (!SendOptionReply(option, kRepServer, r)) return false;
        }
        ok = SendOptionReply(option, kRepAck);
        break;
      case kOptInfo:
      case kOptGo:
        ok = HandleInfoOrGo(option, data, &go);
        break;
      case kOptStructuredReply:
        if (length != 0) {
          ok = SendOptionError(option, kRepErrInvalid, "STRUCTURED_REPLY takes no data");
          break;
        }
        structured_ = true;
        ok = SendOptionReply(option, kRepAck);
        break;
      case kOptListMetaContext:
      case kOptSetMetaContext:
        ok = HandleMetaContext(option, data);
        break;
      case kOptStartTls:
        ok = HandleStartTls(length);
        break;
      default:  // anything newer
        ok = SendOptionError(option, kRepErrUnsup, "option not supported");
        break;
    }
    if (!ok) return false;
    if (go) return true;
  }
  return false;
}

}  // namespace pstorage::api::nbd
