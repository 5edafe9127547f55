// FlashDevice: option validation, opening, and the public face over Impl.
#include <algorithm>
#include <cmath>
#include <string>

#include "flash_sim/ftl.h"

namespace pstorage::flash {

namespace {

struct Layout {
  uint64_t logical_pages;
  MediumGeometry geometry;
};

// Validates options once and derives the physical layout from them.
Result<Layout> LayoutFor(const FlashOptions& o) {
  auto bad = [](std::string m) { return Status::InvalidArgument("flash options: " + std::move(m)); };
  if (o.logical_capacity_bytes == 0 || o.logical_capacity_bytes % kPageBytes != 0) {
    return bad("logical_capacity_bytes must be a positive multiple of 4096");
  }
  if (o.pages_per_block < 4 || o.pages_per_block > 4096) return bad("pages_per_block must be 4..4096");
  if (!(o.over_provisioning >= 0.01 && o.over_provisioning <= 4)) {
    return bad("over_provisioning must be between 0.01 and 4");
  }
  if (o.pe_cycle_limit == 0) return bad("pe_cycle_limit must be positive");
  if (o.gc_low_watermark_blocks < 2) return bad("gc_low_watermark_blocks must be at least 2");
  if (o.gc_high_watermark_blocks < o.gc_low_watermark_blocks) {
    return bad("gc_high_watermark_blocks must be >= gc_low_watermark_blocks");
  }
  Layout l;
  l.logical_pages = o.logical_capacity_bytes / kPageBytes;
  double physical_pages = std::ceil(double(l.logical_pages) * (1.0 + o.over_provisioning));
  uint64_t blocks = uint64_t(std::ceil(physical_pages / o.pages_per_block));
  if (o.physical_blocks != 0) blocks = o.physical_blocks;
  uint64_t logical_blocks = (l.logical_pages + o.pages_per_block - 1) / o.pages_per_block;
  // Two open frontiers plus the low watermark must fit in the spare blocks.
  uint64_t min_blocks = logical_blocks + o.gc_low_watermark_blocks + 2;
  if (o.physical_blocks != 0 && blocks < min_blocks) {
    return bad("physical_blocks leaves no spare blocks for GC (need " + std::to_string(min_blocks) + ")");
  }
  blocks = std::max(blocks, min_blocks);
  if (blocks * o.pages_per_block >= 0xffffffffull) return bad("device too large (2^32 slots)");
  l.geometry = MediumGeometry{o.pages_per_block, uint32_t(blocks)};
  return l;
}

}  // namespace

Result<MediumGeometry> GeometryFor(const FlashOptions& options) {
  Result<Layout> layout = LayoutFor(options);
  if (!layout.ok()) return layout.status();
  return layout->geometry;
}

Result<FlashOptions> ReadDeviceFileOptions(const std::string& path) {
  Result<MediumGeometry> geometry = ReadFileMediumGeometry(path);
  if (!geometry.ok()) return geometry.status();
  Result<std::unique_ptr<Medium>> medium = OpenFileMedium(path, *geometry);
  if (!medium.ok()) return medium.status();
  uint8_t buf[kPageBytes];
  PS_RETURN_IF_ERROR((*medium)->ReadLabel(std::span<uint8_t, kPageBytes>(buf, kPageBytes)));
  Result<std::optional<DeviceLabel>> label = DecodeLabel(buf);
  if (!label.ok()) return label.status();
  if (!label->has_value()) return Status::Corruption(path + " is not a formatted flash device");
  FlashOptions o;
  o.logical_capacity_bytes = (*label)->logical_pages * kPageBytes;
  o.pages_per_block = (*label)->pages_per_block;
  o.physical_blocks = (*label)->block_count;
  return o;
}

FlashDevice::FlashDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FlashDevice::~FlashDevice() = default;

Result<std::unique_ptr<FlashDevice>> FlashDevice::Open(const FlashOptions& options, Medium* medium) {
  if (medium == nullptr) return Status::InvalidArgument("flash: null medium");
  Result<Layout> layout = LayoutFor(options);
  if (!layout.ok()) return layout.status();
  const MediumGeometry& have = medium->geometry();
  const MediumGeometry& want = layout->geometry;
  if (have.pages_per_block != want.pages_per_block || have.block_count != want.block_count) {
    return Status::InvalidArgument(
        "flash: the medium has " + std::to_string(have.block_count) + " blocks of " +
        std::to_string(have.pages_per_block) + " pages but the options need " +
        std::to_string(want.block_count) + " blocks of " + std::to_string(want.pages_per_block));
  }
  auto impl = std::make_unique<Impl>(options, medium, layout->logical_pages, want);
  PS_RETURN_IF_ERROR(impl->FormatOrRecover());
  impl->StartBackgroundGc();
  return std::unique_ptr<FlashDevice>(new FlashDevice(std::move(impl)));
}

Result<std::unique_ptr<FlashDevice>> FlashDevice::OpenFile(const FlashOptions& options,
                                                           const std::string& path) {
  Result<Layout> layout = LayoutFor(options);
  if (!layout.ok()) return layout.status();
  FileMediumInfo info;
  Result<std::unique_ptr<Medium>> base = OpenFileMedium(path, layout->geometry, &info);
  if (!base.ok()) return base.status();
  std::unique_ptr<Medium> faulty;
  Medium* top = base->get();
  if (options.faults.any()) {
    faulty = std::make_unique<FaultyMedium>(top, options.faults);
    top = faulty.get();
  }
  Result<std::unique_ptr<FlashDevice>> dev = Open(options, top);
  if (!dev.ok()) return dev.status();
  (*dev)->impl_->owned_base = std::move(*base);
  (*dev)->impl_->owned_faulty = std::move(faulty);
  (*dev)->impl_->direct_io = info.direct_io;
  return dev;
}

uint64_t FlashDevice::logical_pages() const { return impl_->logical_pages(); }
bool FlashDevice::direct_io() const { return impl_->direct_io; }

Status FlashDevice::Write(std::span<const uint64_t> lpns, std::span<const uint8_t* const> pages) {
  return impl_->Write(lpns, pages);
}
Status FlashDevice::Read(std::span<const uint64_t> lpns, std::span<uint8_t* const> out) {
  return impl_->Read(lpns, out);
}
Status FlashDevice::Trim(std::span<const uint64_t> lpns) { return impl_->Trim(lpns); }
Status FlashDevice::Flush() { return impl_->Flush(); }
Result<uint32_t> FlashDevice::CollectGarbage(uint32_t max_blocks) {
  return impl_->CollectGarbage(max_blocks);
}
FlashMetrics FlashDevice::Metrics() const { return impl_->Metrics(); }
Status FlashDevice::CheckInvariants() const { return impl_->CheckInvariants(); }

}  // namespace pstorage::flash
