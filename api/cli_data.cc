// `write` and `read`: volume data between a file (or stdin/stdout) and the
// raw data endpoint, kChunkBytes per request so a request stays well under
// the server's body limit (max_body_bytes, 8 MiB by default).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "api/base64.h"
#include "api/cli_internal.h"

namespace pstorage::api::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Closes a file descriptor it opened; stdin and stdout stay open.
class File {
 public:
  explicit File(int fd) : fd_(fd) {}
  ~File() {
    if (fd_ > STDERR_FILENO) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Reads until `n` bytes or end of file (a pipe delivers short reads).
// Returns the count, or -1 with errno set.
ssize_t ReadFull(int fd, char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::read(fd, buf + done, n - done);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += static_cast<size_t>(got);
  }
  return static_cast<ssize_t>(done);
}

bool WriteFull(int fd, const char* buf, size_t n) {
  while (n > 0) {
    ssize_t put = ::write(fd, buf, n);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    buf += put;
    n -= static_cast<size_t>(put);
  }
  return true;
}

void PrintSummary(const Session& s, FILE* out, const char* verb, const char* preposition,
                  const Found& volume, uint64_t offset, uint64_t bytes, Clock::duration took) {
  const double seconds = std::chrono::duration<double>(took).count();
  const double mb_per_s = seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0;
  if (s.json()) {
    std::fprintf(out, "%s\n",
                 JsonBody()
                     .Str("volume_id", volume.id)
                     .Uint("offset", offset)
                     .Uint("bytes", bytes)
                     .Number("seconds", std::round(seconds * 1e6) / 1e6)
                     .Number("mb_per_s", std::round(mb_per_s * 10) / 10)
                     .Finish()
                     .c_str());
    return;
  }
  std::fprintf(out, "%s %llu bytes (%s) %s volume %s at offset %llu in %.3f s: %.1f MB/s\n", verb,
               (unsigned long long)bytes, HumanBytes(bytes).c_str(), preposition,
               NameOf(volume.http).c_str(), (unsigned long long)offset, seconds, mb_per_s);
}

std::string DataPath(const Session& s, const std::string& volume_id, const char* leaf) {
  return s.Api("/volumes/" + UrlEncode(volume_id) + leaf);
}

}  // namespace

int RunWrite(Session& s, const Args& a) {
  std::optional<uint64_t> offset = ParseU64(a.Get("--offset").value_or("0"));
  if (!offset || *offset % kBlockBytes != 0) {
    return UsageError("write", "--offset must be a multiple of 4096");
  }
  const std::string& path = a.positional[1];
  File in(path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd() < 0) {
    std::fprintf(stderr, "error: cannot open %s: %s\n", path.c_str(), std::strerror(errno));
    return kExitUsage;
  }
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;

  const std::string raw_target = DataPath(s, v.id, "/data");
  std::string buf(kChunkBytes, '\0');
  size_t put_bytes = kChunkBytes;  // shrinks if the server refuses a body as too large
  uint64_t at = *offset;
  const auto start = Clock::now();
  for (;;) {
    ssize_t n = ReadFull(in.fd(), buf.data(), buf.size());
    if (n < 0) {
      std::fprintf(stderr, "error: reading %s: %s\n", path.c_str(), std::strerror(errno));
      return kExitServerError;
    }
    const size_t len = static_cast<size_t>(n);
    const size_t whole = len - len % kBlockBytes;
    for (size_t done = 0; done < whole;) {
      const size_t part = std::min<size_t>(put_bytes, whole - done);
      Reply r = s.Call("PUT", raw_target + "?offset=" + std::to_string(at),
                       std::string_view(buf.data() + done, part), "application/octet-stream",
                       /*quiet_status=*/part > kBlockBytes ? 413 : 0);
      if (r.http.status == 413 && part > kBlockBytes) {
        // The server's max_body_bytes is smaller than our chunk: halve it.
        put_bytes = std::max<size_t>(kBlockBytes, part / 2 / kBlockBytes * kBlockBytes);
        continue;
      }
      if (!r.ok()) return r.exit_code;
      at += part;
      done += part;
    }
    if (whole < len) {
      // The raw path takes whole blocks only; the seed's base64 JSON write
      // takes any length, so the file's last partial block goes that way.
      std::string body =
          JsonBody()
              .Uint("offset", at)
              .Str("data", Base64Encode(std::string_view(buf.data() + whole, len - whole)))
              .Finish();
      Reply r = s.Call("POST", DataPath(s, v.id, "/write"), body);
      if (!r.ok()) return r.exit_code;
      at += len - whole;
    }
    if (len < buf.size()) break;  // ReadFull stops short only at end of file
  }
  PrintSummary(s, stdout, "wrote", "to", v, *offset, at - *offset, Clock::now() - start);
  return kExitOk;
}

int RunRead(Session& s, const Args& a) {
  std::optional<uint64_t> offset = ParseU64(a.Get("--offset").value_or("0"));
  if (!offset) return UsageError("read", "--offset expects a byte offset");
  std::optional<uint64_t> length;
  if (std::optional<std::string> text = a.Get("--length")) {
    length = ParseU64(*text);
    if (!length) return UsageError("read", "--length expects a byte count");
  }
  Found v = ResolveVolume(s, a.positional[0]);
  if (v.exit_code != kExitOk) return v.exit_code;
  rapidjson::Document doc;
  if (!ParseBody(v.http, &doc)) return kExitServerError;
  const uint64_t size = U64Field(doc, "size_bytes");
  if (*offset > size) {
    return UsageError("read", "--offset " + std::to_string(*offset) + " is past the end of " +
                                  "the volume (" + std::to_string(size) + " bytes)");
  }
  uint64_t remaining = std::min(length.value_or(UINT64_MAX), size - *offset);

  // Opened only now so that a failed lookup leaves an existing file alone.
  const std::string& path = a.positional[1];
  const bool to_stdout = path == "-";
  File out(to_stdout ? STDOUT_FILENO
                     : ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.fd() < 0) {
    std::fprintf(stderr, "error: cannot open %s: %s\n", path.c_str(), std::strerror(errno));
    return kExitUsage;
  }
  const std::string target = DataPath(s, v.id, "/data");
  uint64_t at = *offset;
  const auto start = Clock::now();
  uint64_t get_bytes = kChunkBytes;  // shrinks if the server's max_body_bytes is smaller
  while (remaining > 0) {
    const uint64_t want = std::min(remaining, get_bytes);
    Reply r = s.Call("GET", target + "?offset=" + std::to_string(at) +
                                "&length=" + std::to_string(want),
                     {}, "application/json", /*quiet_status=*/want > kBlockBytes ? 400 : 0);
    if (r.http.status == 400 && want > kBlockBytes) {
      if (ErrorDetail(r.http).find("max_body_bytes") == std::string::npos) {
        std::fprintf(stderr, "error: 400 %s\n", ErrorDetail(r.http).c_str());
        return kExitServerError;
      }
      get_bytes = std::max<uint64_t>(kBlockBytes, want / 2 / kBlockBytes * kBlockBytes);
      continue;
    }
    if (!r.ok()) return r.exit_code;
    const std::string& got = r.http.body;
    if (got.empty() || got.size() > want) {
      std::fprintf(stderr, "error: asked for %llu bytes at offset %llu, the server sent %zu\n",
                   (unsigned long long)want, (unsigned long long)at, got.size());
      return kExitServerError;
    }
    if (!WriteFull(out.fd(), got.data(), got.size())) {
      std::fprintf(stderr, "error: writing %s: %s\n", path.c_str(), std::strerror(errno));
      return kExitServerError;
    }
    at += got.size();
    remaining -= got.size();
  }
  // With the data on stdout, the summary goes to stderr.
  PrintSummary(s, to_stdout ? stderr : stdout, "read", "from", v, *offset, at - *offset,
               Clock::now() - start);
  return kExitOk;
}

}  // namespace pstorage::api::cli
