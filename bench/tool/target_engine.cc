// --target engine: the engine in-process on a data directory of its own,
// no network: the ceiling the protocols are measured against.
#include "bench/tool/bench.h"
#include "engine/engine.h"

namespace pstorage::bench {
namespace {

class EngineSession : public Session {
 public:
  EngineSession(engine::Engine* engine, const std::vector<std::string>* ids)
      : engine_(engine), ids_(ids) {}
  Status Write(int unit, uint64_t offset, std::span<const uint8_t> data) override {
    Result<engine::WriteResult> r = engine_->Write((*ids_)[unit], offset, data);
    return r.ok() ? Status::Ok() : r.status();
  }
  Status Read(int unit, uint64_t offset, std::span<uint8_t> out) override {
    return engine_->Read((*ids_)[unit], offset, out);
  }

 private:
  engine::Engine* engine_;
  const std::vector<std::string>* ids_;
};

class EngineTarget : public Target {
 public:
  Status Setup(const BenchOptions& o) override {
    options_ = o;
    if (Status s = dir_.Init(o.data_dir); !s.ok()) return s;
    engine::EngineOptions eo;
    eo.data_dir = dir_.path();
    // Room for the working set, its overwrites' garbage and the clones'
    // divergence: 4x the working set, at least 1 GiB.
    eo.flash.logical_capacity_bytes = std::max<uint64_t>(1ull << 30, 4 * o.working_set);
    Result<std::unique_ptr<engine::Engine>> e = engine::Engine::Open(eo);
    if (!e.ok()) return e.status();
    engine_ = std::move(*e);
    engine::VolumeSpec spec;
    spec.name = o.volume.empty() ? "bench" : o.volume;
    spec.size_bytes = o.working_set;
    Result<engine::VolumeInfo> v = engine_->FindVolumeByName(spec.name);
    if (!v.ok()) v = engine_->CreateVolume(spec);
    if (!v.ok()) return v.status();
    if (v->size_bytes < o.working_set) {
      return Status::InvalidArgument("volume " + spec.name + " is smaller than --working-set");
    }
    ids_ = {v->id};
    return Status::Ok();
  }

  Status AfterPrefill() override {
    if (options_.clones == 0) return Status::Ok();
    std::string golden = ids_[0];
    ids_.clear();
    for (int i = 0; i < options_.clones; i++) {
      Result<engine::VolumeInfo> c =
          engine_->CloneVolume(golden, "bench-clone-" + std::to_string(i), "");
      if (!c.ok()) return c.status();
      ids_.push_back(c->id);
    }
    return Status::Ok();
  }

  int units() const override { return static_cast<int>(ids_.size()); }

  Result<std::unique_ptr<Session>> Connect() override {
    return std::unique_ptr<Session>(new EngineSession(engine_.get(), &ids_));
  }

  ServerMetrics Metrics() override {
    ServerMetrics m;
    if (!engine_) return m;
    engine::ReductionStats r = engine_->Reduction();
    flash::FlashMetrics f = engine_->FlashMetrics();
    m.available = true;
    m.logical_bytes_written = r.logical_bytes_written;
    m.logical_bytes_live = r.logical_bytes_live;
    m.physical_bytes_used = r.physical_bytes_used;
    m.zero_blocks = r.zero_blocks_found;
    m.duplicate_blocks = r.duplicate_blocks;
    m.unique_blocks = r.unique_blocks;
    m.bytes_saved_pattern = r.bytes_saved_pattern;
    m.bytes_saved_dedupe = r.bytes_saved_dedupe;
    m.bytes_saved_compression = r.bytes_saved_compression;
    m.data_reduction_ratio = r.data_reduction_ratio;
    m.dedupe_ratio = r.dedupe_ratio;
    m.compression_ratio = r.compression_ratio;
    m.host_pages_written = f.host_pages_written;
    m.nand_pages_written = f.nand_pages_written;
    m.write_amplification = f.write_amplification;
    m.flash_utilization = f.utilization;
    return m;  // cpu_seconds stays -1: this process's CPU is the client's
  }

  void Teardown() override {
    engine_.reset();
    dir_.Remove();
  }

 private:
  BenchOptions options_;
  DataDir dir_;
  std::unique_ptr<engine::Engine> engine_;
  std::vector<std::string> ids_;
};

}  // namespace

std::unique_ptr<Target> MakeEngineTarget() { return std::make_unique<EngineTarget>(); }

}  // namespace pstorage::bench
