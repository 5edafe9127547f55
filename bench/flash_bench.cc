// flash_bench: throughput of the simulated SSD and of its file medium.
//
//   device_write/{memory,file}/batch:N  FlashDevice::Write of N random 4 KiB pages
//   device_read/{memory,file}/batch:N   FlashDevice::Read of N random mapped pages
//   medium_program/file/batch:32        Medium::Program of 32 random slots: one
//                                       4608-byte write each, nothing to coalesce
//
// Each device holds kDeviceBytes, is filled to 50% and then overwritten once
// at random before any timing, so GC runs in the timed part as it would in
// steady state. Page numbers are uniform over the filled half: writes are
// overwrites and reads hit mapped pages. Rates are wall-clock (UseRealTime);
// bytes count 4096 per device page and 4608 per medium slot, items count
// pages or slots (items/s is IOPS, comparable with fio).
//
// Files live in $PSTORAGE_BENCH_DIR (default /var/tmp) and are removed at exit.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "flash_sim/flash.h"

namespace pstorage::flash {
namespace {

constexpr uint64_t kDeviceBytes = 256ull << 20;
constexpr size_t kMaxBatch = 256;
constexpr size_t kMediumBatch = 32;
constexpr MediumGeometry kMediumGeometry{256, 910};  // ~1 GiB of slots, as fio's --size=1G

enum Kind { kMemory, kFile };
const char* const kKindName[] = {"memory", "file"};

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "flash_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

std::string BenchPath(const char* file) {
  const char* dir = std::getenv("PSTORAGE_BENCH_DIR");
  return std::string(dir && *dir ? dir : "/var/tmp") + "/" + file;
}
const std::string kDevicePath = BenchPath("pstorage-flash-bench-device.img");
const std::string kMediumPath = BenchPath("pstorage-flash-bench-medium.img");

uint64_t Random() {  // splitmix64; the benchmarks are single-threaded
  static uint64_t state = 42;
  uint64_t x = state += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// `count` buffers of `bytes`, each 4096-aligned, filled with random bytes
// (which also pre-touches them).
class Buffers {
 public:
  Buffers(size_t count, size_t bytes) : stride_((bytes + 4095) / 4096 * 4096) {
    mem_.reset(static_cast<uint8_t*>(std::aligned_alloc(4096, count * stride_)));
    for (size_t off = 0; off < count * stride_; off += 8) {
      const uint64_t r = Random();
      std::memcpy(mem_.get() + off, &r, 8);
    }
    for (size_t i = 0; i < count; i++) ptrs_.push_back(mem_.get() + i * stride_);
  }
  uint8_t* const* ptrs() const { return ptrs_.data(); }

 private:
  struct Free { void operator()(uint8_t* p) const { std::free(p); } };
  size_t stride_;
  std::unique_ptr<uint8_t, Free> mem_;
  std::vector<uint8_t*> ptrs_;
};

Buffers& WriteBuffers() { static Buffers b(kMaxBatch, kPageBytes); return b; }
Buffers& ReadBuffers() { static Buffers b(kMaxBatch, kPageBytes); return b; }

// The geometry FlashDevice::Open wants for `o`.
MediumGeometry GeometryOf(const FlashOptions& o) {
  Result<MediumGeometry> g = GeometryFor(o);
  if (!g.ok()) {
    std::fprintf(stderr, "%s\n", g.status().ToString().c_str());
    std::exit(1);
  }
  return *g;
}

struct Target {
  std::unique_ptr<Medium> medium;  // the memory medium; OpenFile owns its own
  std::unique_ptr<FlashDevice> device;
  uint64_t filled_pages = 0;
};
std::unique_ptr<Target> g_targets[2];
std::unique_ptr<Medium> g_medium;  // the raw file medium of medium_program

// Writes `n` pages: lpns first..first+n-1 when `sequential`, else random
// below `range`.
void WritePages(FlashDevice& dev, uint64_t first, uint64_t range, size_t n, bool sequential) {
  uint64_t lpns[kMaxBatch];
  for (size_t i = 0; i < n; i++) lpns[i] = sequential ? first + i : Random() % range;
  const Status s = dev.Write({lpns, n}, {WriteBuffers().ptrs(), n});
  if (!s.ok()) Die("write", s);
}

Target& GetTarget(Kind kind) {
  std::unique_ptr<Target>& t = g_targets[kind];
  if (t) return *t;
  t = std::make_unique<Target>();
  FlashOptions o;
  o.logical_capacity_bytes = kDeviceBytes;
  Result<std::unique_ptr<FlashDevice>> dev = Status::Internal("not opened");
  if (kind == kMemory) {
    t->medium = NewMemoryMedium(GeometryOf(o));
    dev = FlashDevice::Open(o, t->medium.get());
  } else {
    std::filesystem::remove(kDevicePath);
    dev = FlashDevice::OpenFile(o, kDevicePath);
  }
  if (!dev.ok()) Die(std::string("open ") + kKindName[kind], dev.status());
  t->device = std::move(*dev);
  FlashDevice& d = *t->device;
  t->filled_pages = d.logical_pages() / 2;
  for (uint64_t lpn = 0; lpn < t->filled_pages; lpn += kMaxBatch) {
    WritePages(d, lpn, 0, std::min<uint64_t>(kMaxBatch, t->filled_pages - lpn), true);
  }
  for (uint64_t n = 0; n < d.logical_pages(); n += kMaxBatch) {
    WritePages(d, 0, t->filled_pages, kMaxBatch, false);
  }
  if (Status s = d.Flush(); !s.ok()) Die("flush", s);
  return *t;
}

void DeviceWrite(benchmark::State& state, Kind kind, size_t batch) {
  Target& t = GetTarget(kind);
  for (auto _ : state) WritePages(*t.device, 0, t.filled_pages, batch, false);
  state.SetItemsProcessed(int64_t(state.iterations() * batch));
  state.SetBytesProcessed(int64_t(state.iterations() * batch * kPageBytes));
}

void DeviceRead(benchmark::State& state, Kind kind, size_t batch) {
  Target& t = GetTarget(kind);
  uint64_t lpns[kMaxBatch];
  for (auto _ : state) {
    for (size_t i = 0; i < batch; i++) lpns[i] = Random() % t.filled_pages;
    const Status s = t.device->Read({lpns, batch}, {ReadBuffers().ptrs(), batch});
    if (!s.ok()) Die("read", s);
  }
  state.SetItemsProcessed(int64_t(state.iterations() * batch));
  state.SetBytesProcessed(int64_t(state.iterations() * batch * kPageBytes));
}

// The baseline under the device: random single-slot writes, batch by batch.
void MediumProgram(benchmark::State& state) {
  static Buffers slots(kMaxBatch, kSlotBytes);
  std::vector<SlotIo> ios(kMaxBatch);
  static FileMediumInfo info;
  if (!g_medium) {
    // Lay the whole file out first (adjacent slots, coalesced), as fio does.
    std::filesystem::remove(kMediumPath);
    Result<std::unique_ptr<Medium>> m = OpenFileMedium(kMediumPath, kMediumGeometry, &info);
    if (!m.ok()) Die("open medium", m.status());
    g_medium = std::move(*m);
    for (uint64_t first = 0; first < kMediumGeometry.slot_count(); first += kMaxBatch) {
      const size_t n = std::min<uint64_t>(kMaxBatch, kMediumGeometry.slot_count() - first);
      for (size_t i = 0; i < n; i++) ios[i] = SlotIo{first + i, slots.ptrs()[i], 0};
      if (Status s = g_medium->Program({ios.data(), n}); !s.ok()) Die("prefill medium", s);
    }
    if (Status s = g_medium->Sync(); !s.ok()) Die("sync medium", s);
  }
  state.SetLabel(info.direct_io ? "O_DIRECT" : "buffered");
  for (auto _ : state) {
    for (size_t i = 0; i < kMediumBatch; i++) {
      ios[i] = SlotIo{Random() % kMediumGeometry.slot_count(), slots.ptrs()[i], 0};
    }
    if (Status s = g_medium->Program({ios.data(), kMediumBatch}); !s.ok()) Die("program", s);
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kMediumBatch));
  state.SetBytesProcessed(int64_t(state.iterations() * kMediumBatch * kSlotBytes));
}

}  // namespace
}  // namespace pstorage::flash

int main(int argc, char** argv) {
  using namespace pstorage::flash;
  for (Kind kind : {kMemory, kFile}) {
    for (size_t batch : {1, 32, 256}) {
      const std::string suffix = std::string("/") + kKindName[kind] + "/batch:" +
                                 std::to_string(batch);
      benchmark::RegisterBenchmark(("device_write" + suffix).c_str(), DeviceWrite, kind, batch)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("device_read" + suffix).c_str(), DeviceRead, kind, batch)
          ->UseRealTime();
    }
  }
  benchmark::RegisterBenchmark("medium_program/file/batch:32", MediumProgram)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_targets[kMemory].reset();
  g_targets[kFile].reset();
  g_medium.reset();
  std::filesystem::remove(kDevicePath);
  std::filesystem::remove(kMediumPath);
  return 0;
}
