// Helpers for the NBD tests: run a client tool, make test images, talk
// the raw protocol over a socket, and a few REST calls.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "api/nbd/nbd_proto.h"
#include "tests/api/server_harness.h"

namespace pstorage::api::testing {

struct CmdResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `cmd` with sh; Debian's Python tools (nbdsh) need /usr/bin first on
// PATH (see PLATFORM_NOTES.md).
inline CmdResult RunCmd(const std::string& cmd) {
  const std::string full = "PATH=/usr/bin:/bin:$PATH; export PATH; (" + cmd + ") 2>&1";
  CmdResult r;
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline bool HaveTool(const std::string& tool) {
  return RunCmd("command -v " + tool + " >/dev/null").exit_code == 0;
}

// A raw image of `bytes` (a multiple of 64 KiB) mixing, per 64 KiB piece,
// random bytes, zeros, a repeated word and a repeated 64-byte random run.
inline std::string MixedImage(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(bytes, '\0');
  for (size_t piece = 0; piece * 65536 < bytes; piece++) {
    char* p = s.data() + piece * 65536;
    switch (piece % 4) {
      case 0:
        for (size_t i = 0; i < 65536; i += 8) {
          const uint64_t v = rng();
          std::memcpy(p + i, &v, 8);
        }
        break;
      case 1:
        break;  // zeros
      case 2:
        for (size_t i = 0; i < 65536; i += 8) std::memcpy(p + i, "pstorage", 8);
        break;
      default: {
        char run[64];
        for (char& c : run) c = static_cast<char>(rng());
        for (size_t i = 0; i < 65536; i += 64) std::memcpy(p + i, run, 64);
      }
    }
  }
  return s;
}

inline void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Creates a volume over REST; returns its id.
inline std::string CreateVolume(ServerProcess& s, const std::string& name, uint64_t bytes) {
  char size_gb[64];  // exact: a power-of-two fraction of a GiB prints exactly
  std::snprintf(size_gb, sizeof(size_gb), "%.17g", static_cast<double>(bytes) / (1 << 30));
  const std::string body = "{\"name\": \"" + name + "\", \"size_gb\": " + size_gb + "}";
  HttpResponse r = s.Call("POST", "/api/v1/volumes", body);
  EXPECT_EQ(201, r.status) << r.body;
  rapidjson::Document d = Json(r);
  return d.HasMember("id") ? d["id"].GetString() : "";
}

inline std::string ReadRest(ServerProcess& s, const std::string& id, uint64_t offset,
                            uint64_t length) {
  HttpResponse r = s.Call(
      "GET", "/api/v1/volumes/" + id + "/data", {},
      {{"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1)}});
  EXPECT_EQ(206, r.status) << r.body.substr(0, 200);
  return r.body;
}

// A raw NBD client socket for hostile-input tests. Every read has a 5 s
// timeout so a wrong server answer fails the test instead of hanging it.
class RawNbd {
 public:
  explicit RawNbd(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  }
  ~RawNbd() { ::close(fd_); }
  bool connected() const { return connected_; }

  bool Send(const void* p, size_t n) {
    return ::send(fd_, p, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
  }
  // Exactly n bytes, or "" on EOF/timeout.
  std::string Recv(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 5000) <= 0) return "";
      const ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
      if (r <= 0) return "";
      got += static_cast<size_t>(r);
    }
    return out;
  }
  // True when the server has closed the connection (within 5 s).
  bool Closed() {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

  // Greeting + client flags (fixed newstyle, no zeroes).
  bool Hello() {
    const std::string g = Recv(18);
    if (g.size() != 18) return false;
    const auto* p = reinterpret_cast<const uint8_t*>(g.data());
    if (nbd::Get64(p) != nbd::kNbdMagic || nbd::Get64(p + 8) != nbd::kIHaveOpt) return false;
    uint8_t flags[4];
    nbd::Put32(flags, nbd::kClientFixedNewstyle | nbd::kClientNoZeroes);
    return Send(flags, 4);
  }
  bool SendOption(uint32_t option, const std::string& data, uint32_t claimed_length = ~0u) {
    uint8_t h[16];
    nbd::Put64(h, nbd::kIHaveOpt);
    nbd::Put32(h + 8, option);
    nbd::Put32(h + 12, claimed_length == ~0u ? static_cast<uint32_t>(data.size()) : claimed_length);
    return Send(h, 16) && Send(data.data(), data.size());
  }
  // One option reply: returns its type (0 on failure) and its data.
  uint32_t OptionReply(uint32_t option, std::string* data) {
    const std::string h = Recv(20);
    if (h.size() != 20) return 0;
    const auto* p = reinterpret_cast<const uint8_t*>(h.data());
    if (nbd::Get64(p) != nbd::kOptReplyMagic || nbd::Get32(p + 8) != option) return 0;
    *data = Recv(nbd::Get32(p + 16));
    return nbd::Get32(p + 12);
  }
  // NBD_OPT_GO for `name` without structured replies; true on ACK.
  bool Go(const std::string& name) {
    std::string d(4, '\0');
    nbd::Put32(reinterpret_cast<uint8_t*>(d.data()), static_cast<uint32_t>(name.size()));
    d += name;
    d += std::string(2, '\0');  // no info requests
    if (!SendOption(nbd::kOptGo, d)) return false;
    for (;;) {
      std::string reply;
      const uint32_t type = OptionReply(nbd::kOptGo, &reply);
      if (type == nbd::kRepAck) return true;
      if (type != nbd::kRepInfo) return false;
    }
  }
  bool Request(uint16_t type, uint64_t handle, uint64_t offset, uint32_t length, uint16_t flags = 0,
               uint32_t magic = nbd::kRequestMagic) {
    uint8_t h[nbd::kRequestBytes];
    nbd::Put32(h, magic);
    nbd::Put16(h + 4, flags);
    nbd::Put16(h + 6, type);
    nbd::Put64(h + 8, handle);
    nbd::Put64(h + 16, offset);
    nbd::Put32(h + 24, length);
    return Send(h, sizeof(h));
  }
  // A simple reply: its error (~0u on failure); checks the handle.
  uint32_t SimpleReply(uint64_t handle) {
    const std::string h = Recv(nbd::kSimpleReplyBytes);
    if (h.size() != nbd::kSimpleReplyBytes) return ~0u;
    const auto* p = reinterpret_cast<const uint8_t*>(h.data());
    if (nbd::Get32(p) != nbd::kSimpleReplyMagic || nbd::Get64(p + 8) != handle) return ~0u;
    return nbd::Get32(p + 4);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace pstorage::api::testing
