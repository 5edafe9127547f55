// The content store's recovery, checkpoint image and recycling. The image
// format is in content_format.h and docs/formats.md.
#include <algorithm>
#include <string>

#include "engine/content_format.h"
#include "engine/content_store_impl.h"

#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>

namespace pstorage::engine {

Status ContentStore::Impl::InsertLocked(const ContentRecord& r, uint32_t refs) {
  const auto bad = [&r](const char* why) {
    return Status::Corruption("content " + std::to_string(r.id) + ": " + why);
  };
  if (r.id == ContentTable::kNoId || r.id == UINT32_MAX) return bad("invalid id");
  if (r.page >= packer.pages()) return bad("page beyond the device");
  if (r.codec != Codec::kRaw && r.codec != Codec::kLz4 && r.codec != Codec::kZstd) {
    return bad("unknown codec");
  }
  if (r.length == 0 || r.offset >= kBlockBytes) return bad("fragment outside its page");
  if ((r.codec == Codec::kRaw) != (r.length == kBlockBytes)) return bad("raw iff a whole page");
  // Fragments are shorter than a page (raw ones fill one): one that runs
  // past its page's end continues on exactly one other page.
  const bool spans = r.offset + r.length > kBlockBytes;
  if (spans != (r.next_page != kNoNextPage)) return bad("next page iff past the page's end");
  if (spans && (r.codec == Codec::kRaw || r.next_page >= packer.pages() || r.next_page == r.page)) {
    return bad("bad next page");
  }
  table.Reserve(r.id);
  ContentEntry& e = table.At(r.id);
  const uint32_t loc = Loc::Pack(r.offset, r.length, r.codec);
  if (Loc::InUse(e.loc.load(std::memory_order_relaxed))) {
    // Replaying a record twice is harmless; two different contents under
    // one id are not.
    const bool same = e.hash == r.hash && e.page.load() == r.page &&
                      e.next_page.load() == r.next_page && e.loc.load() == loc;
    return same ? Status::Ok()
                : Status::AlreadyExists("content " + std::to_string(r.id) + " exists");
  }
  e.hash = r.hash;
  e.page.store(r.page, std::memory_order_relaxed);
  e.next_page.store(r.next_page, std::memory_order_relaxed);
  e.refs.store(refs, std::memory_order_relaxed);
  e.loc.store(loc, std::memory_order_release);
  return Status::Ok();
}

Status ContentStore::Insert(const ContentRecord& record) {
  std::unique_lock lock(impl_->store_mu);
  impl_->recovering.store(true);
  return impl_->InsertLocked(record, 0);
}

Status ContentStore::FinishRecovery() {
  Impl& s = *impl_;
  std::unique_lock lock(s.store_mu);
  const uint32_t limit = s.table.id_limit();
  // Live bytes per page (a spanning fragment's head on its page, its rest
  // on the next), checked before anything changes.
  std::vector<uint32_t> live(s.packer.pages(), 0);
  const auto add_live = [&live](uint32_t page, uint32_t bytes) {
    live[page] += bytes;
    return live[page] <= kBlockBytes ? Status::Ok()
                                     : Status::Corruption("page " + std::to_string(page) +
                                                          " holds more than a page of fragments");
  };
  for (uint32_t id = 1; id < limit; id++) {
    const ContentEntry& e = s.table.At(id);
    const uint32_t loc = e.loc.load(std::memory_order_relaxed);
    if (!Loc::InUse(loc) || e.refs.load() == 0) continue;
    const Packer::Location at = LocationOf(e, loc);
    const uint32_t head = Packer::HeadBytes(at, Loc::Length(loc));
    PS_RETURN_IF_ERROR(add_live(at.page, head));
    if (at.next_page != kNoNextPage) {
      PS_RETURN_IF_ERROR(add_live(at.next_page, Loc::Length(loc) - head));
    }
  }
  // Contents nobody references are freed; their ids wait for RecycleFreed().
  uint64_t unique = 0, bytes = 0;
  s.index.Clear();
  for (uint32_t id = 1; id < limit; id++) {
    ContentEntry& e = s.table.At(id);
    const uint32_t loc = e.loc.load(std::memory_order_relaxed);
    if (!Loc::InUse(loc)) continue;
    s.cache.Erase(id);
    if (e.refs.load() == 0) {
      e.loc.store(0, std::memory_order_release);
      continue;
    }
    s.index.Insert(id);
    unique++;
    bytes += Loc::Length(loc);
  }
  s.table.RebuildFreeLists();
  s.unique_blocks.store(unique);
  s.stored_bytes.store(bytes);
  s.recovering.store(false);
  return s.packer.Rebuild(std::vector<uint16_t>(live.begin(), live.end()));
}

void ContentStore::Serialize(std::vector<uint8_t>* out) const {
  namespace fmt = content_format;
  Impl& s = *impl_;
  std::unique_lock lock(s.store_mu);
  const uint32_t limit = s.table.id_limit();
  uint64_t count = 0;
  for (uint32_t id = 1; id < limit; id++) count += s.InUse(id) ? 1 : 0;
  out->assign(fmt::kHeaderBytes + count * fmt::kRecordBytes + fmt::kChecksumBytes, 0);
  fmt::EncodeHeader({count, limit}, out->data());
  uint8_t* p = out->data() + fmt::kHeaderBytes;
  for (uint32_t id = 1; id < limit; id++) {
    if (!s.InUse(id)) continue;
    const ContentEntry& e = s.table.At(id);
    const uint32_t loc = e.loc.load(std::memory_order_relaxed);
    const ContentRecord r{id,
                          e.hash,
                          e.page.load(std::memory_order_relaxed),
                          uint16_t(Loc::Offset(loc)),
                          uint16_t(Loc::Length(loc)),
                          Loc::CodecOf(loc),
                          e.next_page.load(std::memory_order_relaxed)};
    fmt::EncodeRecord(r, e.refs.load(), p);
    p += fmt::kRecordBytes;
  }
  fmt::PutU64(p, XXH3_64bits_dispatch(out->data(), size_t(p - out->data())));
  // Once this image is durable, what was freed before it may be recycled.
  s.table.MarkCheckpoint();
  s.packer.MarkCheckpoint();
}

Status ContentStore::Load(const uint8_t* data, size_t size) {
  namespace fmt = content_format;
  Impl& s = *impl_;
  std::unique_lock lock(s.store_mu);
  if (s.table.id_limit() != 1) return Status::FailedPrecondition("Load into a used content store");
  if (size < fmt::kHeaderBytes + fmt::kChecksumBytes) {
    return Status::Corruption("content table image truncated");
  }
  const size_t body = size - fmt::kChecksumBytes;
  if (XXH3_64bits_dispatch(data, body) != fmt::GetU64(data + body)) {
    return Status::Corruption("content table image checksum mismatch");
  }
  fmt::Header h;
  if (!fmt::DecodeHeader(data, &h)) return Status::Corruption("not a content table image");
  if (h.count > (body - fmt::kHeaderBytes) / fmt::kRecordBytes ||
      fmt::kHeaderBytes + h.count * fmt::kRecordBytes != body) {
    return Status::Corruption("content table image size does not match its count");
  }
  s.recovering.store(true);
  uint32_t previous = ContentTable::kNoId;
  for (uint64_t i = 0; i < h.count; i++) {
    ContentRecord r;
    uint32_t refs = 0;
    fmt::DecodeRecord(data + fmt::kHeaderBytes + i * fmt::kRecordBytes, &r, &refs);
    if (r.id >= h.id_limit) return Status::Corruption("content id beyond the image's id limit");
    // Ascending ids: a duplicate, even of an identical record, is damage.
    if (r.id <= previous) return Status::Corruption("content ids out of order");
    previous = r.id;
    Status st = s.InsertLocked(r, refs);
    if (!st.ok()) return Status::Corruption("content table image: " + st.message());
  }
  if (h.id_limit > 1) s.table.Reserve(h.id_limit - 1);  // keeps ids unique after gaps
  return Status::Ok();
}

Status ContentStore::RecycleFreed() {
  Impl& s = *impl_;
  std::lock_guard lock(s.maintenance_mu);
  PS_RETURN_IF_ERROR(s.packer.RecycleFreed());
  s.table.RecyclePending();
  return Status::Ok();
}

void ContentStore::ForEachContent(
    const std::function<void(uint32_t id, uint32_t refcount)>& fn) const {
  // Collected under the lock, reported outside it: fn may call the store.
  std::vector<std::pair<uint32_t, uint32_t>> contents;
  {
    std::unique_lock lock(impl_->store_mu);
    const uint32_t limit = impl_->table.id_limit();
    for (uint32_t id = 1; id < limit; id++) {
      if (impl_->InUse(id)) contents.push_back({id, impl_->table.At(id).refs.load()});
    }
  }
  for (const auto& [id, refs] : contents) fn(id, refs);
}

}  // namespace pstorage::engine
