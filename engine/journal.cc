// The journal: checksummed records over one File, with group commit.
//
// Group commit: Append encodes its record (magic, length, payload) at the
// end of the forming group `queue` and waits. When no leader is active, the
// first waiter to see that becomes the leader: it takes the whole queue,
// runs before_sync, stamps sequence numbers and checksums, writes the group
// with one File::Append, syncs once, and hands every waiter its status.
// Appends arriving meanwhile form the next group. The leader, not the
// appender, numbers the records, so a group dropped by a failing
// before_sync leaves no gap in the sequence. before_sync runs without the
// journal's lock but while this leader holds the commit; it must not call
// Append (that would wait for itself).
#include "engine/journal.h"

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "engine/journal_format.h"

namespace pstorage::engine {
namespace fmt = journal_format;

namespace {

// A group buffer larger than this is freed after its commit, so one huge
// record does not pin memory; smaller ones are reused by the next groups.
constexpr size_t kRetainedBufferBytes = 4u << 20;
// Replay reads the file in windows of this size (larger for a larger record).
constexpr size_t kReadWindowBytes = 1u << 20;

// Sequential reads of a File through one reused window.
class Reader {
 public:
  Reader(File& file, uint64_t file_bytes) : file_(file), file_bytes_(file_bytes) {}

  // Bytes [offset, offset + n) of the file; fewer only at the end of the file.
  // Valid until the next call.
  Result<std::span<const uint8_t>> Read(uint64_t offset, size_t n) {
    const uint64_t end = std::min<uint64_t>(offset + n, file_bytes_);
    if (offset < start_ || end > start_ + len_) {
      const uint64_t left = offset < file_bytes_ ? file_bytes_ - offset : 0;
      const size_t want = std::min<uint64_t>(std::max(n, kReadWindowBytes), left);
      if (buf_.size() < want) buf_.resize(want);
      Result<size_t> got = file_.ReadAt(offset, {buf_.data(), want});
      if (!got.ok()) return got.status();
      start_ = offset;
      len_ = *got;
    }
    const size_t skip = offset - start_;
    return std::span<const uint8_t>(buf_.data() + skip, std::min(n, len_ - skip));
  }

 private:
  File& file_;
  const uint64_t file_bytes_;
  std::vector<uint8_t> buf_;
  uint64_t start_ = 0;  // file offset of buf_[0]
  size_t len_ = 0;      // valid bytes in buf_
};

Status AsIoError(const Status& s) {
  return s.code() == Code::kIoError ? s : Status::IoError(s.ToString());
}

}  // namespace

struct Journal::Impl {
  // One record waiting for its group; owned by the appender.
  using Waiter = Journal::Ticket;
  // Encoded records (seq and checksum still zero) and who waits for them.
  struct Group {
    std::vector<uint8_t> bytes;
    std::vector<Waiter*> waiters;
    void Clear() {
      if (bytes.capacity() > kRetainedBufferBytes) std::vector<uint8_t>().swap(bytes);
      bytes.clear();
      waiters.clear();
    }
  };

  Impl(std::string p, JournalOptions o, std::unique_ptr<File> f)
      : path(std::move(p)), options(std::move(o)), file(std::move(f)) {}

  void Enqueue(std::span<const uint8_t> payload, Waiter* w);
  void LeadGroup(std::unique_lock<std::mutex>& lock);
  Status WriteGroup();
  Status Scan(const std::function<Status(std::span<const uint8_t>)>* fn);
  Status Fail(const Status& s);

  // Constant after construction.
  const std::string path;
  const JournalOptions options;
  const std::unique_ptr<File> file;

  // Owned by the leader (the Append that set `committing`), or by Open,
  // Replay and Reset, which never run beside Append.
  uint64_t next_seq = fmt::kFirstSeq;  // of the next record written
  Group batch;                         // the group being committed

  mutable std::mutex mu;
  std::condition_variable cv;  // signalled when a group completes
  // Guarded by mu.
  Group queue;              // the group being formed
  bool committing = false;  // a leader owns `batch`
  Status failed;            // sticky: a write, sync or truncation failed
  uint64_t size_bytes = 0;  // end of the last good record
  uint64_t records = 0;
  uint64_t syncs = 0;
  uint64_t failed_groups = 0;  // groups whose commit failed, sticky or not
};

// Requires mu.
void Journal::Impl::Enqueue(std::span<const uint8_t> payload, Waiter* w) {
  const size_t offset = queue.bytes.size();
  queue.bytes.resize(offset + fmt::kHeaderBytes);
  fmt::EncodeHeaderPrefix(uint32_t(payload.size()), queue.bytes.data() + offset);
  queue.bytes.insert(queue.bytes.end(), payload.begin(), payload.end());
  queue.waiters.push_back(w);
}

// Leader only, without mu. Numbers `batch`'s records, writes and syncs them.
Status Journal::Impl::WriteGroup() {
  uint64_t seq = next_seq;
  for (size_t off = 0; off < batch.bytes.size();) {
    const size_t len = fmt::kHeaderBytes + fmt::GetU32(&batch.bytes[off + fmt::kLengthOffset]);
    fmt::StampRecord({&batch.bytes[off], len}, seq++);
    off += len;
  }
  // Invariant: the buffer holds exactly one record per waiter.
  assert(seq - next_seq == batch.waiters.size());
  Status s = file->Append(batch.bytes);
  if (s.ok()) s = file->Sync();
  if (!s.ok()) return AsIoError(s);
  next_seq = seq;
  return Status::Ok();
}

// Puts the journal in the failed state: the file's tail is unknown now.
Status Journal::Impl::Fail(const Status& s) {
  std::lock_guard lock(mu);
  failed = AsIoError(s);
  return failed;
}

// Validates records from the start of the file, passing each good payload
// to `fn` (if set), and cuts the file after the last good one.
Status Journal::Impl::Scan(const std::function<Status(std::span<const uint8_t>)>* fn) {
  Result<uint64_t> file_bytes = file->Size();
  if (!file_bytes.ok()) return file_bytes.status();
  Reader reader(*file, *file_bytes);
  uint64_t off = 0;
  uint64_t seq = fmt::kFirstSeq;
  for (;;) {
    Result<std::span<const uint8_t>> header = reader.Read(off, fmt::kHeaderBytes);
    if (!header.ok()) return header.status();
    if (header->size() < fmt::kHeaderBytes) break;  // the end, or a torn header
    const std::optional<fmt::RecordHeader> h = fmt::DecodeHeader(header->data());
    if (!h || h->seq != seq) break;
    const size_t record_bytes = fmt::kHeaderBytes + h->payload_bytes;
    Result<std::span<const uint8_t>> record = reader.Read(off, record_bytes);
    if (!record.ok()) return record.status();
    if (record->size() < record_bytes) break;  // torn payload
    const std::span<const uint8_t> payload = record->subspan(fmt::kHeaderBytes);
    if (fmt::RecordChecksum(record->data(), payload) != h->checksum) break;
    if (fn) PS_RETURN_IF_ERROR((*fn)(payload));
    off += record_bytes;
    seq++;
  }
  if (off < *file_bytes) {
    // The tail was never acknowledged. Cut it durably, so new records do
    // not follow garbage that a crash could bring back.
    Status s = file->Truncate(off);
    if (s.ok()) s = file->Sync();
    if (!s.ok()) return Fail(s);
  }
  next_seq = seq;
  std::lock_guard lock(mu);
  size_bytes = off;
  return Status::Ok();
}

Result<std::unique_ptr<Journal>> Journal::Open(Env* env, const std::string& path,
                                               const JournalOptions& options) {
  if (env == nullptr || path.empty()) return Status::InvalidArgument("journal: no env or path");
  Result<std::unique_ptr<File>> file = env->OpenFile(path);
  if (!file.ok()) return file.status();
  auto impl = std::make_unique<Impl>(path, options, std::move(*file));
  // Find the end of the good records now, so Append is right even if the
  // caller never replays.
  PS_RETURN_IF_ERROR(impl->Scan(nullptr));
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Journal::~Journal() = default;

Status Journal::Append(std::span<const uint8_t> payload) {
  Ticket self;
  PS_RETURN_IF_ERROR(Submit(payload, &self));
  return Wait(&self);
}

Status Journal::Submit(std::span<const uint8_t> payload, Ticket* ticket) {
  if (payload.size() > fmt::kMaxPayloadBytes) {
    return Status::InvalidArgument(impl_->path + ": journal record of " +
                                   std::to_string(payload.size()) + " bytes is over 64 MiB");
  }
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  if (!d.failed.ok()) return d.failed;
  d.Enqueue(payload, ticket);
  return Status::Ok();
}

Status Journal::Wait(Ticket* ticket) {
  Impl& d = *impl_;
  std::unique_lock lock(d.mu);
  while (!ticket->done) {
    if (d.committing) {
      d.cv.wait(lock);
    } else {
      d.LeadGroup(lock);  // the queue holds this ticket's record
    }
  }
  return ticket->status;
}

Status Journal::Drain() {
  Impl& d = *impl_;
  std::unique_lock lock(d.mu);
  const uint64_t failed_before = d.failed_groups;
  while (d.committing || !d.queue.waiters.empty()) {
    if (d.committing) {
      d.cv.wait(lock);
    } else {
      d.LeadGroup(lock);
    }
  }
  if (!d.failed.ok()) return d.failed;
  if (d.failed_groups != failed_before) {
    return Status::IoError(d.path + ": a group of records failed to commit");
  }
  return Status::Ok();
}

// Requires mu held (through `lock`), no leader, a non-empty queue: commits
// the queue as one group (dropping mu for the I/O) and completes its tickets.
void Journal::Impl::LeadGroup(std::unique_lock<std::mutex>& lock) {
  committing = true;
  std::swap(queue, batch);
  const size_t group_bytes = batch.bytes.size();
  Status s = failed;  // a previous group may have failed since the records were queued
  bool io_failed = false;
  lock.unlock();
  if (s.ok() && options.before_sync) s = options.before_sync();
  if (s.ok()) {
    s = WriteGroup();
    io_failed = !s.ok();
  }
  lock.lock();
  if (s.ok()) {
    size_bytes += group_bytes;
    records += batch.waiters.size();
    syncs++;
  } else {
    failed_groups++;
    if (io_failed) failed = s;
  }
  for (Waiter* w : batch.waiters) {
    w->status = s;
    w->done = true;
  }
  batch.Clear();
  committing = false;
  cv.notify_all();
}

Status Journal::Replay(const std::function<Status(std::span<const uint8_t>)>& fn) {
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->failed.ok()) return impl_->failed;
  }
  return impl_->Scan(&fn);
}

Status Journal::Reset() {
  Impl& d = *impl_;
  {
    std::lock_guard lock(d.mu);
    if (!d.failed.ok()) return d.failed;
  }
  Status s = d.file->Truncate(0);
  if (s.ok()) s = d.file->Sync();
  if (!s.ok()) return d.Fail(s);
  d.next_seq = fmt::kFirstSeq;
  std::lock_guard lock(d.mu);
  d.size_bytes = 0;
  return Status::Ok();
}

uint64_t Journal::size_bytes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->size_bytes;
}

uint64_t Journal::records_appended() const {
  std::lock_guard lock(impl_->mu);
  return impl_->records;
}

uint64_t Journal::syncs() const {
  std::lock_guard lock(impl_->mu);
  return impl_->syncs;
}

}  // namespace pstorage::engine
