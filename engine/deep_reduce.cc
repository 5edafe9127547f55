// Deep reduction: recompress fragments with Zstandard and repack sparse
// pages. Runs in rounds of at most kRoundPages source pages so that its
// memory and its exclusive section stay bounded:
//   read phase (store_mu shared; writers keep going): read the round's
//     pages (and the pages their spanning fragments continue on), decode
//     and check each live fragment, recompress it with zstd (kept when
//     smaller), and choose the pages worth rewriting -- a page's fragments
//     being those that start on it;
//   switch phase (store_mu exclusive): when that empties more pages than
//     it fills, write the chosen fragments densely through the packer (one
//     flash Write; they may span like any other), point the contents at
//     their new locations and release the old ones -- emptied pages become
//     freed-pending like any other free.
// maintenance_mu keeps RecycleFreed() out, so neither an id nor a page seen
// in the read phase can be reused before the switch.
#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "engine/content_store_impl.h"

namespace pstorage::engine {
namespace {

// Source pages per round: 4 MiB. A round reads at most twice that (the
// pages its spanning fragments continue on) and stages as much.
constexpr uint32_t kRoundPages = 1024;
// A page is rewritten when less than this share of it is live...
constexpr uint32_t kSparsePercent = 75;
// ...or when recompression would free at least this many of its bytes.
constexpr uint32_t kWorthRewritingBytes = kBlockBytes / 4;

}  // namespace

struct DeepRound {
  struct Staged {
    uint32_t id = 0;
    Packer::Location at;  // old location, to detect a free or move in between
    uint32_t loc = 0;
    uint32_t new_loc = 0;  // Loc-packed codec and length (offset set at the switch)
    size_t staging_offset = 0;
  };
  // Distinct, ascending: the round's pages and the pages their fragments
  // span into.
  std::vector<uint64_t> pages;
  std::vector<uint8_t> page_bytes;  // kBlockBytes per page
  std::vector<bool> readable;
  std::vector<Staged> staged;    // contents of the pages chosen for a rewrite
  std::vector<uint8_t> staging;  // their new fragments, back to back

  // The bytes of `page` as read, or null when it could not be read.
  const uint8_t* PageBytes(uint32_t page) const {
    const auto it = std::lower_bound(pages.begin(), pages.end(), uint64_t{page});
    const size_t i = size_t(it - pages.begin());
    return it != pages.end() && *it == page && readable[i] ? &page_bytes[i * kBlockBytes] : nullptr;
  }
};

namespace {

// Reads the round's pages in one batch; when that fails, page by page, and
// a page that cannot be read is left out (Verify reports it to fsck).
void ReadPages(flash::FlashDevice* flash, DeepRound* r) {
  r->page_bytes.resize(r->pages.size() * kBlockBytes);
  r->readable.assign(r->pages.size(), true);
  std::vector<uint8_t*> bufs(r->pages.size());
  for (size_t i = 0; i < bufs.size(); i++) bufs[i] = &r->page_bytes[i * kBlockBytes];
  if (flash->Read(r->pages, bufs).ok()) return;
  for (size_t i = 0; i < bufs.size(); i++) {
    r->readable[i] = flash->Read({&r->pages[i], 1}, {&bufs[i], 1}).ok();
  }
}

// The fragment at `at` in one piece: in its page, or joined into `joined`
// (kBlockBytes) when it spans two. Null when a page could not be read.
const uint8_t* FragmentBytes(const DeepRound& r, const Packer::Location& at, uint32_t length,
                             uint8_t* joined) {
  const uint8_t* page = r.PageBytes(at.page);
  if (page == nullptr) return nullptr;
  if (at.next_page == Packer::kNoPage) return page + at.offset;
  const uint8_t* next = r.PageBytes(at.next_page);
  if (next == nullptr) return nullptr;
  const uint32_t head = Packer::HeadBytes(at, length);
  std::memcpy(joined, page + at.offset, head);
  std::memcpy(joined + head, next, length - head);
  return joined;
}

// Whether moving `moving` (their new fragments `fragments`) saves pages:
// the pages it empties -- every live byte on them moves, heads and rests
// of spanning fragments alike -- against the pages the packer fills with
// them, back to back and spanning (counted from a fresh page; the open
// page's room can only lower it). Fragments only a little smaller after
// recompression, on dense pages, are not worth the writes.
bool SavesPages(const std::vector<DeepRound::Staged>& moving,
                const std::vector<Packer::Fragment>& fragments, const Packer& packer) {
  std::vector<std::pair<uint32_t, uint32_t>> leaving;  // (page, live bytes moving off it)
  for (const DeepRound::Staged& m : moving) {
    const uint32_t length = Loc::Length(m.loc);
    const uint32_t head = Packer::HeadBytes(m.at, length);
    leaving.push_back({m.at.page, head});
    if (m.at.next_page != Packer::kNoPage) leaving.push_back({m.at.next_page, length - head});
  }
  std::sort(leaving.begin(), leaving.end());
  uint64_t emptied = 0;
  for (size_t i = 0; i < leaving.size();) {
    uint32_t bytes = 0;
    size_t j = i;
    for (; j < leaving.size() && leaving[j].first == leaving[i].first; j++) {
      bytes += leaving[j].second;
    }
    emptied += bytes == packer.live_bytes(leaving[i].first) ? 1 : 0;
    i = j;
  }
  uint64_t needed = 0;
  uint32_t fill = kBlockBytes;
  for (const Packer::Fragment& f : fragments) {
    if (f.length == kBlockBytes) {
      needed++;  // raw: a page of its own
    } else if (fill + f.length <= kBlockBytes) {
      fill += f.length;
    } else {
      needed++, fill = fill + f.length - kBlockBytes;
    }
  }
  return needed < emptied;
}

}  // namespace

void ContentStore::Impl::StageRound(std::span<const std::pair<uint32_t, uint32_t>> contents,
                                    DeepRound* r) {
  size_t groups = 0;
  for (size_t k = 0; k < contents.size(); k++) {
    const auto& [page, id] = contents[k];
    groups += (k == 0 || contents[k - 1].first != page) ? 1 : 0;
    r->pages.push_back(page);
    if (!InUse(id)) continue;
    const uint32_t next = table.At(id).next_page.load(std::memory_order_relaxed);
    if (next != Packer::kNoPage) r->pages.push_back(next);
  }
  std::sort(r->pages.begin(), r->pages.end());
  r->pages.erase(std::unique(r->pages.begin(), r->pages.end()), r->pages.end());
  ReadPages(flash, r);
  // The live fragments starting on a page hold at most the page plus the
  // rest of one spanning fragment, and recompression only shrinks them:
  // two pages of staging per page.
  r->staging.resize(groups * 2 * kBlockBytes);
  const int level = std::clamp(options.zstd_level, ZSTD_minCLevel(), ZSTD_maxCLevel());
  std::vector<uint8_t> block(kBlockBytes), joined(kBlockBytes);
  size_t used = 0;
  for (size_t first = 0; first < contents.size();) {
    const uint32_t page = contents[first].first;
    size_t last = first;
    while (last < contents.size() && contents[last].first == page) last++;
    const size_t staged_before = r->staged.size(), used_before = used;
    uint32_t live = 0, after = 0;
    for (size_t k = first; k < last; k++) {
      const uint32_t id = contents[k].second;
      const ContentEntry& e = table.At(id);
      const uint32_t loc = e.loc.load(std::memory_order_acquire);
      if (!Loc::InUse(loc) || e.page.load(std::memory_order_relaxed) != page) continue;
      const Packer::Location at = LocationOf(e, loc);
      Codec codec = Loc::CodecOf(loc);
      uint32_t length = Loc::Length(loc);
      const uint8_t* fragment = FragmentBytes(*r, at, length, joined.data());
      // Left where it is when unreadable or undecodable, for Verify to report.
      if (fragment == nullptr || used + length > r->staging.size()) continue;
      const Status decoded = DecodeFragment(codec, fragment, length, e.hash,
                                            options.constant_hash_for_tests, block.data());
      if (!decoded.ok()) continue;
      live += length;
      uint8_t* dst = &r->staging[used];
      if (codec != Codec::kZstd) {
        const uint32_t room = codec == Codec::kRaw ? kMaxFragmentBytes : length - 1;
        if (const uint32_t z = CompressZstd(block.data(), level, dst, room); z > 0) {
          codec = Codec::kZstd, length = z, fragment = dst;
        }
      }
      if (fragment != dst) std::memcpy(dst, fragment, length);
      r->staged.push_back({id, at, loc, Loc::Pack(0, length, codec), used});
      used += length;
      after += length;
    }
    const bool sparse = live * 100 < kBlockBytes * kSparsePercent;
    if (!sparse && live - after < kWorthRewritingBytes) {
      r->staged.resize(staged_before);  // not worth a rewrite
      used = used_before;
    }
    first = last;
  }
}

Result<uint64_t> ContentStore::Impl::SwitchRound(DeepRound* r) {
  const uint32_t open = packer.open_page();
  std::vector<Packer::Fragment> fragments;
  std::vector<DeepRound::Staged> moving;
  for (const DeepRound::Staged& st : r->staged) {
    const ContentEntry& e = table.At(st.id);
    // Skip what was freed since the read phase, and the page being filled.
    if (e.loc.load() != st.loc || e.page.load() != st.at.page ||
        e.next_page.load() != st.at.next_page || st.at.page == open || st.at.next_page == open) {
      continue;
    }
    fragments.push_back({&r->staging[st.staging_offset], Loc::Length(st.new_loc)});
    moving.push_back(st);
  }
  if (fragments.empty() || !SavesPages(moving, fragments, packer)) return uint64_t{0};
  const uint64_t used_before = packer.pages_used();
  std::vector<Packer::Location> locations(fragments.size());
  PS_RETURN_IF_ERROR(packer.Write(fragments, locations));
  for (size_t i = 0; i < moving.size(); i++) {
    ContentEntry& e = table.At(moving[i].id);
    const uint32_t old_length = Loc::Length(moving[i].loc);
    const uint32_t length = Loc::Length(moving[i].new_loc);
    e.page.store(locations[i].page, std::memory_order_relaxed);
    e.next_page.store(locations[i].next_page, std::memory_order_relaxed);
    e.loc.store(Loc::Pack(locations[i].offset, length, Loc::CodecOf(moving[i].new_loc)),
                std::memory_order_release);
    packer.Release(moving[i].at, old_length);
    stored_bytes.fetch_sub(old_length - length, std::memory_order_relaxed);
  }
  const uint64_t used_after = packer.pages_used();
  return used_before > used_after ? used_before - used_after : 0;
}

Result<uint64_t> ContentStore::DeepReduce() {
  Impl& s = *impl_;
  if (s.recovering.load()) return Status::FailedPrecondition("DeepReduce during recovery");
  std::lock_guard maintenance(s.maintenance_mu);
  std::vector<std::pair<uint32_t, uint32_t>> by_page;  // (page, id) of every live content
  {
    std::shared_lock lock(s.store_mu);
    const uint32_t limit = s.table.id_limit();
    for (uint32_t id = 1; id < limit; id++) {
      if (s.InUse(id)) by_page.push_back({s.table.At(id).page.load(), id});
    }
  }
  std::sort(by_page.begin(), by_page.end());
  uint64_t pages_saved = 0;
  for (size_t first = 0; first < by_page.size();) {
    size_t last = first;
    for (uint32_t pages = 0; last < by_page.size(); last++) {
      if (last == first || by_page[last].first != by_page[last - 1].first) {
        if (pages == kRoundPages) break;
        pages++;
      }
    }
    DeepRound round;
    {
      std::shared_lock lock(s.store_mu);
      s.StageRound(std::span(by_page).subspan(first, last - first), &round);
    }
    first = last;
    if (round.staged.empty()) continue;
    std::unique_lock lock(s.store_mu);
    Result<uint64_t> saved = s.SwitchRound(&round);
    if (!saved.ok()) return saved.status();
    pages_saved += *saved;
  }
  return pages_saved * kBlockBytes;
}

}  // namespace pstorage::engine
