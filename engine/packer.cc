#include "engine/packer.h"

#include <cassert>
#include <cstring>

namespace pstorage::engine {

using flash::kPageBytes;

Packer::Packer(flash::FlashDevice* flash, uint32_t pages) : flash_(flash), live_(pages, 0) {
  free_.reserve(pages);
  for (uint32_t p = pages; p > 0; p--) free_.push_back(p - 1);
  std::memset(open_buf_, 0, sizeof(open_buf_));
}

uint32_t Packer::AllocLocked() {
  if (free_.empty()) return kNoPage;
  const uint32_t page = free_.back();
  free_.pop_back();
  assert(live_[page] == 0);
  return page;
}

void Packer::AddLiveLocked(uint32_t page, uint32_t length) {
  if (live_[page] == 0) pages_used_++;
  // Invariant: a page never holds more live bytes than it has.
  assert(live_[page] + length <= kPageBytes);
  live_[page] = uint16_t(live_[page] + length);
}

bool Packer::SubLiveLocked(uint32_t page, uint32_t length) {
  assert(live_[page] >= length);
  live_[page] = uint16_t(live_[page] - length);
  if (live_[page] != 0) return false;
  pages_used_--;
  return true;
}

Status Packer::Write(std::span<const Fragment> fragments, std::span<Location> out) {
  assert(fragments.size() == out.size());
  std::lock_guard write_lock(write_mu_);
  // At most one new page per fragment; sized once for the largest batch.
  if (new_pages_buf_.size() < fragments.size() * kPageBytes) {
    new_pages_buf_.resize(fragments.size() * kPageBytes);
  }
  lpns_.clear();
  bufs_.clear();
  placed_.clear();
  allocated_.clear();

  // The batch's open page lives in locals until the write succeeds, so a
  // concurrent Release() still sees the old open page as open.
  uint32_t cur = kNoPage, fill = 0;
  uint8_t* buf = nullptr;
  bool touched = false;
  size_t new_pages = 0;
  auto rollback_locked = [&] {
    for (const auto& [page, length] : placed_) SubLiveLocked(page, length);
    for (uint32_t page : allocated_) free_.push_back(page);
  };
  auto place_locked = [&](uint32_t page, uint32_t bytes) {
    AddLiveLocked(page, bytes);
    placed_.push_back({page, bytes});
  };
  {
    std::lock_guard lock(mu_);
    cur = open_page_, fill = open_fill_, buf = open_buf_;
    for (size_t i = 0; i < fragments.size(); i++) {
      const Fragment& f = fragments[i];
      assert(f.length > 0 && f.length <= kPageBytes);
      const bool raw = f.length == kPageBytes;
      if (!raw && cur != kNoPage && fill + f.length <= kPageBytes) {
        std::memcpy(buf + fill, f.data, f.length);  // fits the open page
        out[i] = {cur, fill, kNoPage};
        place_locked(cur, f.length);
        fill += f.length;
        touched = true;
        continue;
      }
      const uint32_t page = AllocLocked();
      if (page == kNoPage) {
        rollback_locked();
        return Status::NoSpace("content store: no free flash page");
      }
      allocated_.push_back(page);
      if (raw) {
        out[i] = {page, 0, kNoPage};
        place_locked(page, kPageBytes);
        lpns_.push_back(page);
        bufs_.push_back(f.data);  // the caller's block, written in place
        continue;
      }
      // The head fills what is left of the open page; the rest starts the
      // new page, which becomes the open page.
      const uint32_t head = cur == kNoPage ? 0 : kPageBytes - fill;
      if (head > 0) {
        std::memcpy(buf + fill, f.data, head);
        out[i] = {cur, fill, page};
        place_locked(cur, head);
        touched = true;
      } else {
        out[i] = {page, 0, kNoPage};
      }
      if (touched) lpns_.push_back(cur), bufs_.push_back(buf);
      cur = page, fill = f.length - head, touched = true;
      buf = &new_pages_buf_[new_pages++ * kPageBytes];
      std::memcpy(buf, f.data + head, fill);
      std::memset(buf + fill, 0, kPageBytes - fill);
      place_locked(cur, fill);
    }
    if (touched) lpns_.push_back(cur), bufs_.push_back(buf);
  }
  if (lpns_.empty()) return Status::Ok();

  const Status s = flash_->Write(lpns_, bufs_);
  std::lock_guard lock(mu_);
  if (!s.ok()) {
    // Unpublished fragments are dead; pages opened for them were never
    // referenced by anything, so they go straight back to the free list.
    rollback_locked();
    return s;
  }
  if (cur != open_page_) {
    if (open_page_ != kNoPage && live_[open_page_] == 0) pending_.push_back(open_page_);
    open_page_ = cur;
    std::memcpy(open_buf_, buf, kPageBytes);
  }
  open_fill_ = fill;
  return Status::Ok();
}

void Packer::ReleaseLocked(uint32_t page, uint32_t length) {
  if (SubLiveLocked(page, length) && page != open_page_) pending_.push_back(page);
}

void Packer::Release(const Location& at, uint32_t length) {
  const uint32_t head = HeadBytes(at, length);
  // Invariant: only a fragment longer than the rest of its page spans.
  assert(at.next_page == kNoPage ? at.offset + length <= kPageBytes : head < length);
  std::lock_guard lock(mu_);
  ReleaseLocked(at.page, head);
  if (at.next_page != kNoPage) ReleaseLocked(at.next_page, length - head);
}

void Packer::MarkCheckpoint() {
  std::lock_guard lock(mu_);
  checkpointed_ = pending_.size();
  const bool empty_open = open_page_ != kNoPage && live_[open_page_] == 0;
  empty_open_page_checkpointed_ = empty_open ? open_page_ : kNoPage;
  empty_open_fill_checkpointed_ = open_fill_;
}

Status Packer::RecycleFreed() {
  std::vector<uint64_t> pages;
  {
    std::scoped_lock lock(write_mu_, mu_);  // write_mu_: no Write is filling the open page
    pages.assign(pending_.begin(), pending_.begin() + long(checkpointed_));
    pending_.erase(pending_.begin(), pending_.begin() + long(checkpointed_));
    checkpointed_ = 0;
    // The open page goes too if it was empty at the checkpoint and nothing
    // was placed on it since (a later fragment's free may not be durable).
    if (open_page_ != kNoPage && open_page_ == empty_open_page_checkpointed_ &&
        open_fill_ == empty_open_fill_checkpointed_ && live_[open_page_] == 0) {
      pages.push_back(open_page_);
      open_page_ = kNoPage;
      open_fill_ = 0;
    }
    empty_open_page_checkpointed_ = kNoPage;
  }
  if (pages.empty()) return Status::Ok();
  const Status s = flash_->Trim(pages);
  std::lock_guard lock(mu_);
  if (s.ok()) {
    for (uint64_t page : pages) free_.push_back(uint32_t(page));
  } else {  // still pending, still covered by the checkpoint
    std::vector<uint32_t> again(pages.begin(), pages.end());
    pending_.insert(pending_.begin(), again.begin(), again.end());
    checkpointed_ += again.size();
  }
  return s;
}

Status Packer::Rebuild(const std::vector<uint16_t>& live) {
  assert(live.size() == live_.size());
  std::vector<uint64_t> unused;
  {
    std::scoped_lock lock(write_mu_, mu_);
    live_ = live;
    free_.clear();
    pending_.clear();
    checkpointed_ = 0;
    empty_open_page_checkpointed_ = kNoPage;
    pages_used_ = 0;
    open_page_ = kNoPage;
    open_fill_ = 0;
    for (uint32_t p = uint32_t(live_.size()); p > 0; p--) {
      if (live_[p - 1] != 0) {
        pages_used_++;
      } else {
        free_.push_back(p - 1);
        unused.push_back(p - 1);
      }
    }
  }
  return unused.empty() ? Status::Ok() : flash_->Trim(unused);
}

uint32_t Packer::open_page() const {
  std::lock_guard lock(mu_);
  return open_page_;
}

uint64_t Packer::pages_used() const {
  std::lock_guard lock(mu_);
  return pages_used_;
}

uint32_t Packer::live_bytes(uint32_t page) const {
  std::lock_guard lock(mu_);
  return live_[page];
}

uint64_t Packer::pages_pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

}  // namespace pstorage::engine
