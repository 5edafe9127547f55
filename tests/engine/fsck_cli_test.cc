// `pstorage fsck --data-dir DIR` on a real data directory: clean after
// writes, snapshots and a crash-free close; reports a corrupt block (and
// exits 1) after a flash page is overwritten behind the engine's back.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include "tests/engine/engine_test_util.h"

namespace pstorage::engine::testing {
namespace {

struct FsckRun {
  int exit_code = -1;
  std::string output;
};

FsckRun RunFsck(const std::string& dir) {
  std::string cmd = std::string(PSTORAGE_BIN) + " fsck --data-dir " + dir + " 2>&1";
  FsckRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p)) r.output += buf;
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(FsckCliTest, CleanDirectoryThenCorruptBlock) {
  std::string dir = "/var/tmp/pstorage-fsck-cli-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  EngineOptions o;
  o.data_dir = dir;
  o.flash.logical_capacity_bytes = 16ull << 20;
  o.flash.pages_per_block = 64;
  o.flash.background_gc_idle_ms = 0;
  {
    Result<std::unique_ptr<Engine>> e = Engine::Open(o);
    ASSERT_OK(e.status());
    std::string vol = MakeVolume(**e, "v", 1 << 20);
    std::vector<uint8_t> data;
    for (int i = 0; i < 32; i++) {
      auto b = Block(i, BlockKind::kRandom);
      data.insert(data.end(), b.begin(), b.end());
    }
    ASSERT_OK((*e)->Write(vol, 0, data).status());
    ASSERT_OK((*e)->CreateSnapshot(vol, "s", "").status());
  }
  FsckRun clean = RunFsck(dir);
  EXPECT_EQ(0, clean.exit_code) << clean.output;
  EXPECT_NE(std::string::npos, clean.output.find("clean")) << clean.output;
  EXPECT_NE(std::string::npos, clean.output.find("contents checked 32")) << clean.output;

  // Overwrite flash page 0 (a stored block) with other bytes.
  {
    Result<flash::FlashOptions> fo = flash::ReadDeviceFileOptions(dir + "/flash.img");
    ASSERT_OK(fo.status());
    fo->background_gc_idle_ms = 0;
    Result<std::unique_ptr<flash::FlashDevice>> dev = flash::FlashDevice::OpenFile(*fo, dir + "/flash.img");
    ASSERT_OK(dev.status());
    std::vector<uint8_t> junk(kBlock, 0x5c);
    const uint64_t page[1] = {0};
    const uint8_t* bufs[1] = {junk.data()};
    ASSERT_OK((*dev)->Write(page, bufs));
    ASSERT_OK((*dev)->Flush());
  }
  FsckRun bad = RunFsck(dir);
  EXPECT_EQ(1, bad.exit_code) << bad.output;
  EXPECT_NE(std::string::npos, bad.output.find("corrupt blocks 1")) << bad.output;

  EXPECT_EQ(2, RunFsck(dir + "/nonexistent").exit_code);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pstorage::engine::testing
