// The two Envs: POSIX files (DefaultEnv) and the in-memory one (MemoryEnv).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "engine/journal.h"
#include "engine/memory_env.h"

namespace pstorage::engine {
namespace {

// --- POSIX -------------------------------------------------------------------

// "<path>: <op>: <strerror>", with ENOENT as kNotFound and ENOSPC as kNoSpace.
Status PosixError(const std::string& path, const char* op, int err) {
  char buf[128];
  std::string msg = path + ": " + op + ": " + strerror_r(err, buf, sizeof buf);
  if (err == ENOENT) return Status::NotFound(std::move(msg));
  if (err == ENOSPC) return Status::NoSpace(std::move(msg));
  return Status::IoError(std::move(msg));
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Writes all of `data` at the end of fd (opened with O_APPEND or fresh).
Status WriteAll(int fd, const std::string& path, std::span<const uint8_t> data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(path, "write", errno);
    if (n == 0) return Status::IoError(path + ": write: wrote 0 bytes");
    data = data.subspan(size_t(n));
  }
  return Status::Ok();
}

Status SyncFd(int fd, const std::string& path, bool data_only) {
  // No retry after a failure other than EINTR: the kernel may already have
  // dropped the dirty pages, so a second fsync could falsely succeed.
  for (;;) {
    const int r = data_only ? ::fdatasync(fd) : ::fsync(fd);
    if (r == 0) return Status::Ok();
    if (errno != EINTR) return PosixError(path, data_only ? "fdatasync" : "fsync", errno);
  }
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return PosixError(dir, "open directory", errno);
  Status s = SyncFd(fd, dir, false);
  ::close(fd);
  return s;
}

// Owns fd; opened O_APPEND, so Append always lands at the end of the file.
class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }

  Status Append(std::span<const uint8_t> data) override { return WriteAll(fd_, path_, data); }
  Status Sync() override { return SyncFd(fd_, path_, true); }

  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, off_t(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return PosixError(path_, "pread", errno);
      if (n == 0) break;  // end of file
      done += size_t(n);
    }
    return done;
  }

  Result<uint64_t> Size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return PosixError(path_, "fstat", errno);
    return uint64_t(st.st_size);
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, off_t(size)) != 0) return PosixError(path_, "ftruncate", errno);
    return Status::Ok();
  }

 private:
  const int fd_;
  const std::string path_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> OpenFile(const std::string& path) override {
    constexpr int kFlags = O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC;
    int fd = ::open(path.c_str(), kFlags | O_EXCL, 0644);
    const bool created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = ::open(path.c_str(), kFlags, 0644);
    if (fd < 0) return PosixError(path, "open", errno);
    std::unique_ptr<File> file = std::make_unique<PosixFile>(fd, path);
    // A new file's directory entry must be durable before any record in it
    // is acknowledged; fdatasync on the file does not cover it.
    if (created) PS_RETURN_IF_ERROR(SyncDir(DirName(path)));
    return file;
  }

  Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> data) override {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError(tmp, "open", errno);
    Status s = WriteAll(fd, tmp, data);
    if (s.ok()) s = SyncFd(fd, tmp, false);
    ::close(fd);
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = PosixError(path, "rename", errno);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    return SyncDir(DirName(path));
  }

  Result<std::vector<uint8_t>> ReadFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError(path, "open", errno);
    PosixFile file(fd, path);
    Result<uint64_t> size = file.Size();
    if (!size.ok()) return size.status();
    std::vector<uint8_t> data(*size);
    Result<size_t> n = file.ReadAt(0, data);
    if (!n.ok()) return n.status();
    data.resize(*n);  // the file may have shrunk meanwhile
    return data;
  }

  bool Exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) == 0) return SyncDir(DirName(path));
    const int err = errno;
    struct stat st;
    if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return Status::Ok();
    }
    if (err == EEXIST) return Status::AlreadyExists(path + ": mkdir: exists, not a directory");
    return PosixError(path, "mkdir", err);
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError(path, "unlink", errno);
    return SyncDir(DirName(path));
  }
};

}  // namespace

Env* DefaultEnv() {
  static PosixEnv env;  // stateless, so destruction at exit is harmless
  return &env;
}

// --- memory ------------------------------------------------------------------

namespace {

struct MemoryNode {
  std::vector<uint8_t> data;     // what reads see
  std::vector<uint8_t> durable;  // the image at the last successful sync
  // True while `durable` is a prefix of `data`, so Sync only copies the tail.
  bool durable_is_prefix = true;

  void MakeDurable() {
    if (durable_is_prefix) {
      durable.insert(durable.end(), data.begin() + ptrdiff_t(durable.size()), data.end());
    } else {
      durable = data;
    }
    durable_is_prefix = true;
  }
};

}  // namespace

struct MemoryEnv::State {
  std::mutex mu;  // guards everything below and every node's contents
  std::map<std::string, std::shared_ptr<MemoryNode>> files;
  std::set<std::string> dirs;
  int fail_writes = 0;
  int fail_syncs = 0;

  // Requires mu. Appends `bytes`, or half of them and an error if a write
  // failure was injected.
  Status WriteLocked(MemoryNode& node, const std::string& path, std::span<const uint8_t> bytes) {
    const bool fail = fail_writes > 0;
    if (fail) {
      fail_writes--;
      bytes = bytes.first(bytes.size() / 2);
    }
    node.data.insert(node.data.end(), bytes.begin(), bytes.end());
    return fail ? Status::IoError(path + ": write: injected failure") : Status::Ok();
  }

  Status SyncLocked(MemoryNode& node, const std::string& path) {
    if (fail_syncs > 0) {
      fail_syncs--;
      return Status::IoError(path + ": fdatasync: injected failure");
    }
    node.MakeDurable();
    return Status::Ok();
  }
};

namespace {

class MemoryFile final : public File {
 public:
  MemoryFile(std::shared_ptr<MemoryEnv::State> state, std::shared_ptr<MemoryNode> node,
             std::string path)
      : state_(std::move(state)), node_(std::move(node)), path_(std::move(path)) {}

  Status Append(std::span<const uint8_t> data) override {
    std::lock_guard lock(state_->mu);
    return state_->WriteLocked(*node_, path_, data);
  }

  Status Sync() override {
    std::lock_guard lock(state_->mu);
    return state_->SyncLocked(*node_, path_);
  }

  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    std::lock_guard lock(state_->mu);
    const std::vector<uint8_t>& d = node_->data;
    if (offset >= d.size()) return size_t{0};
    const size_t n = std::min<uint64_t>(out.size(), d.size() - offset);
    std::copy_n(d.begin() + ptrdiff_t(offset), n, out.begin());
    return n;
  }

  Result<uint64_t> Size() override {
    std::lock_guard lock(state_->mu);
    return uint64_t(node_->data.size());
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard lock(state_->mu);
    node_->data.resize(size);
    if (size < node_->durable.size()) node_->durable_is_prefix = false;
    return Status::Ok();
  }

 private:
  const std::shared_ptr<MemoryEnv::State> state_;
  const std::shared_ptr<MemoryNode> node_;  // the inode: survives rename over its path
  const std::string path_;
};

}  // namespace

MemoryEnv::MemoryEnv() : state_(std::make_shared<State>()) {}
MemoryEnv::~MemoryEnv() = default;

Result<std::unique_ptr<File>> MemoryEnv::OpenFile(const std::string& path) {
  std::lock_guard lock(state_->mu);
  std::shared_ptr<MemoryNode>& node = state_->files[path];
  if (!node) node = std::make_shared<MemoryNode>();
  return std::unique_ptr<File>(std::make_unique<MemoryFile>(state_, node, path));
}

Status MemoryEnv::WriteFileAtomic(const std::string& path, std::span<const uint8_t> data) {
  std::lock_guard lock(state_->mu);
  const std::string tmp = path + ".tmp";
  auto node = std::make_shared<MemoryNode>();
  Status s = state_->WriteLocked(*node, tmp, data);
  if (s.ok()) s = state_->SyncLocked(*node, tmp);
  if (!s.ok()) return s;  // the temp file never reached the map: as if unlinked
  state_->files[path] = std::move(node);
  return Status::Ok();
}

Result<std::vector<uint8_t>> MemoryEnv::ReadFile(const std::string& path) {
  std::lock_guard lock(state_->mu);
  auto it = state_->files.find(path);
  if (it == state_->files.end()) return Status::NotFound(path + ": open: no such file");
  return it->second->data;
}

bool MemoryEnv::Exists(const std::string& path) {
  std::lock_guard lock(state_->mu);
  return state_->files.count(path) > 0 || state_->dirs.count(path) > 0;
}

Status MemoryEnv::CreateDir(const std::string& path) {
  std::lock_guard lock(state_->mu);
  if (state_->files.count(path) > 0) return Status::AlreadyExists(path + ": mkdir: is a file");
  state_->dirs.insert(path);
  return Status::Ok();
}

Status MemoryEnv::RemoveFile(const std::string& path) {
  std::lock_guard lock(state_->mu);
  if (state_->files.erase(path) == 0) return Status::NotFound(path + ": unlink: no such file");
  return Status::Ok();  // directory entries are always durable here
}

void MemoryEnv::DropUnsynced() {
  std::lock_guard lock(state_->mu);
  for (auto& [path, node] : state_->files) {
    node->data = node->durable;
    node->durable_is_prefix = true;
  }
}

void MemoryEnv::FailNextWrites(int n) {
  std::lock_guard lock(state_->mu);
  state_->fail_writes = n;
}

void MemoryEnv::FailNextSyncs(int n) {
  std::lock_guard lock(state_->mu);
  state_->fail_syncs = n;
}

std::unique_ptr<Env> NewMemoryEnv() { return std::make_unique<MemoryEnv>(); }

}  // namespace pstorage::engine
