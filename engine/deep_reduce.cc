// Deep reduction: recompress fragments with Zstandard and repack sparse
// pages. Runs in rounds of at most kRoundPages source pages so that its
// memory and its exclusive section stay bounded:
//   read phase (store_mu shared; writers keep going): read the round's
//     pages, decode and check each live fragment, recompress it with zstd
//     (kept when smaller), and choose the pages worth rewriting;
//   switch phase (store_mu exclusive): write the chosen pages' fragments
//     densely through the packer (one flash Write), point the contents at
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

constexpr uint32_t kRoundPages = 1024;  // 4 MiB of pages read and staged per round
// A page is rewritten when less than this share of it is live...
constexpr uint32_t kSparsePercent = 75;
// ...or when recompression would free at least this many of its bytes.
constexpr uint32_t kWorthRewritingBytes = kBlockBytes / 4;

}  // namespace

struct DeepRound {
  struct Staged {
    uint32_t id = 0;
    uint32_t page = 0;  // old location, to detect a free in between
    uint32_t loc = 0;
    uint32_t new_loc = 0;  // Loc-packed codec and length (offset set at the switch)
    size_t staging_offset = 0;
  };
  std::vector<uint64_t> pages;      // distinct, ascending: one per group of contents
  std::vector<uint8_t> page_bytes;  // kBlockBytes per page
  std::vector<bool> readable;
  std::vector<Staged> staged;    // contents of the pages chosen for a rewrite
  std::vector<uint8_t> staging;  // their new fragments, back to back
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

// Whether packing `fragments` the way the packer does (back to back, a
// fragment never split over two pages) needs fewer pages than the ones they
// come from. Fragments only a little over half a page, say, still take a
// page each: rewriting them would cost writes and save nothing.
bool SavesPages(const std::vector<DeepRound::Staged>& moving,
                const std::vector<Packer::Fragment>& fragments) {
  uint64_t sources = 0, needed = 0;
  uint32_t fill = kBlockBytes;
  for (size_t i = 0; i < moving.size(); i++) {
    sources += (i == 0 || moving[i].page != moving[i - 1].page) ? 1 : 0;
    if (fill + fragments[i].length > kBlockBytes) needed++, fill = 0;
    fill += fragments[i].length;
  }
  return needed < sources;
}

}  // namespace

void ContentStore::Impl::StageRound(std::span<const std::pair<uint32_t, uint32_t>> contents,
                                    DeepRound* r) {
  for (const auto& [page, id] : contents) {
    if (r->pages.empty() || r->pages.back() != page) r->pages.push_back(page);
  }
  ReadPages(flash, r);
  // The live fragments of a page never exceed the page, and recompression
  // only shrinks them: one page of staging per page read.
  r->staging.resize(r->pages.size() * kBlockBytes);
  const int level = std::clamp(options.zstd_level, ZSTD_minCLevel(), ZSTD_maxCLevel());
  std::vector<uint8_t> block(kBlockBytes);
  size_t used = 0, first = 0;
  for (size_t g = 0; g < r->pages.size(); g++) {
    size_t last = first;
    while (last < contents.size() && contents[last].first == r->pages[g]) last++;
    const uint8_t* page = &r->page_bytes[g * kBlockBytes];
    const size_t staged_before = r->staged.size(), used_before = used;
    uint32_t live = 0, after = 0;
    for (size_t k = first; k < last && r->readable[g]; k++) {
      const uint32_t id = contents[k].second;
      const ContentEntry& e = table.At(id);
      const uint32_t loc = e.loc.load(std::memory_order_acquire);
      if (!Loc::InUse(loc) || e.page.load(std::memory_order_relaxed) != r->pages[g]) continue;
      const uint8_t* fragment = page + Loc::Offset(loc);
      Codec codec = Loc::CodecOf(loc);
      uint32_t length = Loc::Length(loc);
      const Status decoded = DecodeFragment(codec, fragment, length, e.hash,
                                            options.constant_hash_for_tests, block.data());
      if (!decoded.ok()) continue;  // left where it is, for Verify to report
      live += length;
      uint8_t* dst = &r->staging[used];
      if (codec != Codec::kZstd) {
        const uint32_t room = codec == Codec::kRaw ? kMaxFragmentBytes : length - 1;
        if (const uint32_t z = CompressZstd(block.data(), level, dst, room); z > 0) {
          codec = Codec::kZstd, length = z, fragment = dst;
        }
      }
      if (fragment != dst) std::memcpy(dst, fragment, length);
      r->staged.push_back({id, uint32_t(r->pages[g]), loc, Loc::Pack(0, length, codec), used});
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
    if (e.loc.load() != st.loc || e.page.load() != st.page || st.page == open) continue;
    fragments.push_back({&r->staging[st.staging_offset], Loc::Length(st.new_loc)});
    moving.push_back(st);
  }
  if (fragments.empty() || !SavesPages(moving, fragments)) return uint64_t{0};
  const uint64_t used_before = packer.pages_used();
  std::vector<Packer::Location> locations(fragments.size());
  PS_RETURN_IF_ERROR(packer.Write(fragments, locations));
  for (size_t i = 0; i < moving.size(); i++) {
    ContentEntry& e = table.At(moving[i].id);
    const uint32_t old_length = Loc::Length(moving[i].loc);
    const uint32_t length = Loc::Length(moving[i].new_loc);
    e.page.store(locations[i].page, std::memory_order_relaxed);
    e.loc.store(Loc::Pack(locations[i].offset, length, Loc::CodecOf(moving[i].new_loc)),
                std::memory_order_release);
    packer.Release(moving[i].page, old_length);
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
