// Internal to the content store: where fragments go on flash.
//
// Owns the flash logical pages [0, pages): a free list, per-page live bytes,
// freed-pending pages, and the open page -- a 4096-byte buffer that takes
// fragments back to back. A fragment that does not fit its remaining bytes
// spans: its head fills the open page's tail, its rest starts a newly
// allocated page, which becomes the open page. Fragments are shorter than a
// page, so one spans at most two. A raw block (kPageBytes) gets a page of
// its own and leaves the open page alone. Write() places a batch of
// fragments and writes every page it touched -- the open page, rewritten as
// it fills, and the full one a spanning fragment left behind -- in ONE
// FlashDevice::Write.
//
// Invariants: a page is in exactly one of {free, pending, in use (live > 0
// or open)}; live bytes never exceed kPageBytes, and a spanning fragment
// counts its head on its first page and its rest on the next. Each write of
// the open page carries every fragment placed on it before, because Write()
// calls are serialized (write_mu_): a later write of a page never loses an
// earlier fragment.
//
// Thread safety: every method may be called concurrently. Write() holds
// write_mu_ across the flash write; Release() and the accessors take only
// mu_, so frees never wait for flash I/O.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "common/status.h"
#include "flash_sim/flash.h"

namespace pstorage::engine {

class Packer {
 public:
  static constexpr uint32_t kNoPage = UINT32_MAX;

  struct Fragment {
    const uint8_t* data = nullptr;  // valid until Write() returns
    uint32_t length = 0;            // kPageBytes: a raw block, stored as a whole page
  };
  // Where a fragment lives: from `offset` in `page`, and when it spans, on
  // from the start of `next_page`.
  struct Location {
    uint32_t page = 0;
    uint32_t offset = 0;
    uint32_t next_page = kNoPage;
  };
  // The bytes of a `length`-byte fragment at `at` that lie on `at.page`.
  static uint32_t HeadBytes(const Location& at, uint32_t length) {
    return at.next_page == kNoPage ? length : flash::kPageBytes - at.offset;
  }

  // Borrows `flash`, which must outlive the packer; manages pages [0, pages).
  Packer(flash::FlashDevice* flash, uint32_t pages);

  // Places `fragments` (out[i] receives fragment i's location) and writes
  // the pages. Their live bytes count from now on. Errors: kNoSpace (no
  // free page), the flash Write's error. On error nothing stays placed.
  Status Write(std::span<const Fragment> fragments, std::span<Location> out);

  // The fragment of `length` bytes at `at` is no longer live (on both its
  // pages, if it spans). A page left without live bytes (and not open)
  // becomes freed-pending.
  void Release(const Location& at, uint32_t length);

  // A checkpoint now covers every page pending so far (and the open page,
  // if it has no live bytes and takes no fragment before RecycleFreed).
  void MarkCheckpoint();
  // Trims the pages pending at the last MarkCheckpoint() in one flash Trim
  // and returns them to the free list. On error they stay pending.
  Status RecycleFreed();

  // Recovery: `live[p]` is page p's live bytes. Every other page is trimmed
  // and free; nothing is pending; there is no open page.
  Status Rebuild(const std::vector<uint16_t>& live);

  uint32_t pages() const { return uint32_t(live_.size()); }
  uint32_t open_page() const;
  uint64_t pages_used() const;  // pages with live bytes
  uint32_t live_bytes(uint32_t page) const;
  uint64_t pages_pending() const;

 private:
  uint32_t AllocLocked();
  void AddLiveLocked(uint32_t page, uint32_t length);
  bool SubLiveLocked(uint32_t page, uint32_t length);  // true when it reaches 0
  void ReleaseLocked(uint32_t page, uint32_t length);

  flash::FlashDevice* const flash_;

  std::mutex write_mu_;  // serializes Write(); guards the members up to mu_
  alignas(64) uint8_t open_buf_[flash::kPageBytes];  // the open page's bytes
  std::vector<uint8_t> new_pages_buf_;               // pages opened by the current Write
  std::vector<uint64_t> lpns_;
  std::vector<const uint8_t*> bufs_;
  std::vector<std::pair<uint32_t, uint32_t>> placed_;  // (page, live bytes) of the current Write
  std::vector<uint32_t> allocated_;

  mutable std::mutex mu_;          // guards everything below
  std::vector<uint16_t> live_;     // live bytes per page
  std::vector<uint32_t> free_;     // a stack; low pages first after construction
  std::vector<uint32_t> pending_;  // in the order freed
  size_t checkpointed_ = 0;        // pending_[0, checkpointed_) predate the last checkpoint
  uint32_t open_page_ = kNoPage;
  uint32_t open_fill_ = 0;
  uint32_t empty_open_page_checkpointed_ = kNoPage;  // with open_fill_ then
  uint32_t empty_open_fill_checkpointed_ = 0;
  uint64_t pages_used_ = 0;
};

}  // namespace pstorage::engine
