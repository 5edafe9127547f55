// KV log file I/O: replay with torn-tail truncation, append, fdatasync.
#include "kv/kv_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kv/kv_format.h"

namespace pstorage::kv {
namespace {

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

Status ReadAll(int fd, std::vector<uint8_t>* out) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Errno("fstat kv log");
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = pread(fd, out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read kv log");
    if (n == 0) break;  // shrank underneath us: treat the rest as absent
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<KvLog>> KvLog::Open(const std::string& path,
                                           std::vector<std::vector<uint8_t>>* payloads) {
  namespace f = format;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open " + path);
  std::unique_ptr<KvLog> log(new KvLog(fd, 0));
  std::vector<uint8_t> bytes;
  PS_RETURN_IF_ERROR(ReadAll(fd, &bytes));
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t left = bytes.size() - pos;
    bool torn = left < f::kHeaderBytes;
    uint32_t length = 0;
    if (!torn) {
      length = GetU32(bytes.data() + pos + f::kLengthOffset);
      // A zero or oversized length cannot be trusted to find the next
      // record, so whatever follows is treated as a torn tail.
      if (length == 0 || length > f::kMaxPayloadBytes) break;
      torn = left - f::kHeaderBytes < length;
    }
    if (torn) break;
    std::span<const uint8_t> payload(bytes.data() + pos + f::kHeaderBytes, length);
    if (f::PayloadChecksum(payload) != GetU32(bytes.data() + pos + f::kChecksumOffset)) {
      if (pos + f::kHeaderBytes + length < bytes.size()) {
        return Status::Corruption(path + ": bad checksum at offset " + std::to_string(pos));
      }
      break;  // the last record: a torn append
    }
    payloads->emplace_back(payload.begin(), payload.end());
    pos += f::kHeaderBytes + length;
  }
  if (pos < bytes.size()) {
    if (ftruncate(fd, static_cast<off_t>(pos)) != 0) return Errno("truncate " + path);
    if (fdatasync(fd) != 0) return Errno("sync " + path);
  }
  log->size_bytes_ = pos;
  return log;
}

KvLog::~KvLog() { ::close(fd_); }

Status KvLog::Append(std::span<const uint8_t> payload) {
  if (payload.empty() || payload.size() > format::kMaxPayloadBytes) {
    return Status::InvalidArgument("kv record too large");
  }
  std::vector<uint8_t> frame = format::EncodeFrame(payload);
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = pwrite(fd_, frame.data() + done, frame.size() - done,
                       static_cast<off_t>(size_bytes_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("append kv log");
    done += static_cast<size_t>(n);
  }
  size_bytes_ += frame.size();
  return Status::Ok();
}

Status KvLog::Sync() {
  if (fdatasync(fd_) != 0) return Errno("sync kv log");
  return Status::Ok();
}

Status KvLog::Truncate() {
  if (ftruncate(fd_, 0) != 0) return Errno("truncate kv log");
  size_bytes_ = 0;
  return Sync();
}

}  // namespace pstorage::kv
