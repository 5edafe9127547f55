// Shared helpers for engine tests: an engine on memory (MemoryEnv + memory
// flash medium) that can be closed and reopened, and block generators.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/memory_env.h"
#include "tests/status_matchers.h"


namespace pstorage::engine::testing {

inline constexpr size_t kBlock = 4096;

// Kinds of block contents the write path treats differently.
enum class BlockKind { kRandom, kCompressible, kZero, kPattern };

// Deterministic contents for (seed, kind): the same arguments give the same
// bytes, so duplicates are easy to make.
inline void FillBlock(uint8_t* out, uint64_t seed, BlockKind kind) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 1);
  switch (kind) {
    case BlockKind::kZero:
      std::memset(out, 0, kBlock);
      return;
    case BlockKind::kPattern: {
      uint64_t p = rng() | 1;
      for (size_t i = 0; i < kBlock; i += 8) std::memcpy(out + i, &p, 8);
      return;
    }
    case BlockKind::kRandom:
      for (size_t i = 0; i < kBlock; i += 8) {
        uint64_t v = rng();
        std::memcpy(out + i, &v, 8);
      }
      return;
    case BlockKind::kCompressible: {
      static const char kText[] = "the quick brown fox jumps over the lazy dog; storage arrays ";
      for (size_t i = 0; i < kBlock; i++) {
        out[i] = (i % 64 < 16) ? uint8_t(rng()) : uint8_t(kText[(i + seed) % (sizeof(kText) - 1)]);
      }
      return;
    }
  }
}

inline std::vector<uint8_t> Block(uint64_t seed, BlockKind kind) {
  std::vector<uint8_t> b(kBlock);
  FillBlock(b.data(), seed, kind);
  return b;
}

// An engine on memory that survives Reopen() (the env and medium stay).
class MemEngine {
 public:
  explicit MemEngine(EngineOptions o = {}) : env_(std::make_unique<MemoryEnv>()) {
    o.data_dir = "/mem";
    if (o.flash.logical_capacity_bytes == (1ull << 30)) o.flash.logical_capacity_bytes = 64ull << 20;
    o.flash.pages_per_block = 64;
    o.flash.background_gc_idle_ms = 0;
    o.env = env_.get();
    Result<flash::MediumGeometry> g = flash::GeometryFor(o.flash);
    EXPECT_TRUE(g.ok());
    medium_ = flash::NewMemoryMedium(*g);
    o.medium = medium_.get();
    opts_ = o;
  }
  Status Open() {
    engine_.reset();
    Result<std::unique_ptr<Engine>> e = Engine::Open(opts_);
    if (!e.ok()) return e.status();
    engine_ = std::move(*e);
    return Status::Ok();
  }
  Engine* operator->() { return engine_.get(); }
  Engine& get() { return *engine_; }
  void Close() { engine_.reset(); }
  MemoryEnv& env() { return *env_; }
  flash::Medium* medium() { return medium_.get(); }
  EngineOptions& options() { return opts_; }

 private:
  std::unique_ptr<MemoryEnv> env_;
  std::unique_ptr<flash::Medium> medium_;
  EngineOptions opts_;
  std::unique_ptr<Engine> engine_;
};

inline std::string MakeVolume(Engine& e, const std::string& name, uint64_t size = 16ull << 20) {
  VolumeSpec spec;
  spec.name = name;
  spec.size_bytes = size;
  Result<VolumeInfo> v = e.CreateVolume(spec);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? v->id : "";
}

inline std::vector<uint8_t> ReadAll(Engine& e, const std::string& id, uint64_t offset, size_t n) {
  std::vector<uint8_t> out(n, 0xEE);
  Status s = e.Read(id, offset, out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

}  // namespace pstorage::engine::testing
