// Crash tests. A child process runs mixed writes, overwrites, snapshots and
// snapshot deletes on a real data directory and reports each operation
// before it starts and when it is acknowledged; the parent SIGKILLs it at a
// random moment, reopens the engine, and checks that every acknowledged
// write reads back byte-identical and fsck is clean. The second variant
// crashes in-process: a journal write or sync fails mid-operation, then
// flash_sim loses power and the memory env drops everything unsynced.
//
// PSTORAGE_CRASH_CYCLES sets the number of kill cycles (default 50).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "tests/engine/engine_test_util.h"

namespace pstorage::engine::testing {
namespace {

constexpr uint64_t kVolumeBlocks = 512;
const char* const kVolumes[] = {"alpha", "beta"};

// What each block should hold: (seed, kind), or nothing (zeros).
struct BlockState {
  uint64_t seed = 0;
  int kind = -1;  // -1: zeros
};
using VolumeModel = std::vector<BlockState>;

struct WriteOp {
  int volume = 0;
  uint64_t lba = 0, blocks = 0, seed = 0;
  int kind = 0;
};

std::vector<uint8_t> Contents(const BlockState& b) {
  if (b.kind < 0) return std::vector<uint8_t>(kBlock, 0);
  return Block(b.seed, BlockKind(b.kind));
}

EngineOptions FileOptions(const std::string& dir) {
  EngineOptions o;
  o.data_dir = dir;
  o.flash.logical_capacity_bytes = 32ull << 20;
  o.flash.pages_per_block = 64;
  o.flash.background_gc_idle_ms = 0;
  o.checkpoint_journal_bytes = 256 << 10;  // checkpoints happen during the run too
  return o;
}

// The child: opens the engine and runs operations forever, reporting each
// on `fd` ("W vol lba blocks seed kind", "S vol name", "D id") before it
// starts and "A" once acknowledged.
[[noreturn]] void ChildLoop(const std::string& dir, int fd, uint64_t seed) {
  auto report = [fd](const std::string& line) {
    std::string l = line + "\n";
    if (::write(fd, l.data(), l.size()) != ssize_t(l.size())) ::_exit(3);
  };
  Result<std::unique_ptr<Engine>> opened = Engine::Open(FileOptions(dir));
  if (!opened.ok()) ::_exit(2);
  Engine& e = **opened;
  std::string ids[2];
  for (int v = 0; v < 2; v++) {
    Result<VolumeInfo> info = e.FindVolumeByName(kVolumes[v]);
    if (!info.ok()) ::_exit(4);
    ids[v] = info->id;
  }
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> data;
  for (uint64_t n = 0;; n++) {
    int what = int(rng() % 20);
    int v = int(rng() % 2);
    if (what == 0) {
      std::string name = "s" + std::to_string(seed) + "-" + std::to_string(n);
      report("S " + std::to_string(v) + " " + name);
      if (!e.CreateSnapshot(ids[v], name, "").ok()) ::_exit(5);
    } else if (what == 1) {
      std::vector<SnapshotInfo> all = e.ListAllSnapshots();
      if (all.empty()) continue;
      const SnapshotInfo& s = all[rng() % all.size()];
      report("D " + s.id);
      if (!e.DeleteSnapshot(s.id).ok()) ::_exit(6);
    } else {
      WriteOp w{v, rng() % kVolumeBlocks, 0, rng(), int(rng() % 4)};
      w.blocks = 1 + rng() % std::min<uint64_t>(100, kVolumeBlocks - w.lba);
      std::ostringstream line;
      line << "W " << w.volume << " " << w.lba << " " << w.blocks << " " << w.seed << " " << w.kind;
      report(line.str());
      data.resize(w.blocks * kBlock);
      for (uint64_t i = 0; i < w.blocks; i++) {
        FillBlock(data.data() + i * kBlock, w.seed + i, BlockKind(w.kind));
      }
      if (!e.Write(ids[v], w.lba * kBlock, data).ok()) ::_exit(7);
    }
    report("A");
  }
}

class KillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/var/tmp/pstorage-crash-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    Result<std::unique_ptr<Engine>> e = Engine::Open(FileOptions(dir_));
    ASSERT_OK(e.status());
    for (const char* name : kVolumes) MakeVolume(**e, name, kVolumeBlocks * kBlock);
    for (auto& m : model_) m.assign(kVolumeBlocks, BlockState{});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Applies an acknowledged operation to the model.
  void Acked(const std::string& op) {
    std::istringstream in(op);
    char type;
    in >> type;
    if (type == 'W') {
      WriteOp w;
      in >> w.volume >> w.lba >> w.blocks >> w.seed >> w.kind;
      for (uint64_t i = 0; i < w.blocks; i++) {
        model_[w.volume][w.lba + i] = w.kind == int(BlockKind::kZero)
                                          ? BlockState{}
                                          : BlockState{w.seed + i, w.kind};
      }
    } else if (type == 'S') {
      int v;
      std::string name;
      in >> v >> name;
      snapshots_[name] = model_[v];
    }
  }

  // After a crash: every block holds its acknowledged content, except the
  // blocks of an unacknowledged write, which may hold old or new content.
  void Verify(Engine& e, const std::string& pending, int cycle) {
    std::istringstream in(pending);
    char type = 0;
    WriteOp w{-1};
    in >> type;
    if (type == 'W') in >> w.volume >> w.lba >> w.blocks >> w.seed >> w.kind;
    for (int v = 0; v < 2; v++) {
      Result<VolumeInfo> info = e.FindVolumeByName(kVolumes[v]);
      ASSERT_OK(info.status());
      std::vector<uint8_t> got = ReadAll(e, info->id, 0, kVolumeBlocks * kBlock);
      for (uint64_t b = 0; b < kVolumeBlocks; b++) {
        std::vector<uint8_t> block(got.begin() + b * kBlock, got.begin() + (b + 1) * kBlock);
        if (block == Contents(model_[v][b])) continue;
        bool in_flight = v == w.volume && b >= w.lba && b < w.lba + w.blocks;
        BlockState next = w.kind == int(BlockKind::kZero) ? BlockState{}
                                                         : BlockState{w.seed + (b - w.lba), w.kind};
        ASSERT_TRUE(in_flight && block == Contents(next))
            << "cycle " << cycle << ": volume " << kVolumes[v] << " block " << b
            << " lost an acknowledged write";
        model_[v][b] = next;  // the in-flight write reached it
      }
    }
    // Snapshots: every acknowledged one exists with its contents.
    std::vector<SnapshotInfo> all = e.ListAllSnapshots();
    for (const SnapshotInfo& s : all) {
      auto it = snapshots_.find(s.name);
      if (it == snapshots_.end()) continue;  // created by the in-flight operation
      std::vector<uint8_t> got(kVolumeBlocks * kBlock);
      ASSERT_OK(e.ReadSnapshot(s.id, 0, got));
      for (uint64_t b = 0; b < kVolumeBlocks; b++) {
        ASSERT_TRUE(std::equal(got.begin() + b * kBlock, got.begin() + (b + 1) * kBlock,
                               Contents(it->second[b]).begin()))
            << "cycle " << cycle << ": snapshot " << s.name << " block " << b;
      }
    }
    Result<FsckReport> f = e.Fsck();
    ASSERT_OK(f.status());
    ASSERT_TRUE(f->clean()) << "cycle " << cycle << ": " << (f->errors.empty() ? "" : f->errors[0]);
  }

  std::string dir_;
  VolumeModel model_[2];
  std::map<std::string, VolumeModel> snapshots_;
};

TEST_F(KillTest, SigkillAtRandomMomentsLosesNoAcknowledgedWrite) {
  const char* env_cycles = std::getenv("PSTORAGE_CRASH_CYCLES");
  const int cycles = env_cycles ? std::atoi(env_cycles) : 50;
  const char* env_seed = std::getenv("PSTORAGE_TEST_SEED");
  std::mt19937_64 rng(env_seed ? std::strtoull(env_seed, nullptr, 10) : 2026);
  std::printf("crash test: %d cycles\n", cycles);
  uint64_t total_acks = 0;
  for (int cycle = 0; cycle < cycles; cycle++) {
    int fds[2];
    ASSERT_EQ(0, ::pipe(fds));
    uint64_t child_seed = rng();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      ChildLoop(dir_, fds[1], child_seed);
    }
    ::close(fds[1]);
    FILE* in = ::fdopen(fds[0], "r");
    const uint64_t kill_after = 1 + rng() % 40;
    std::string pending;
    uint64_t acks = 0;
    char line[256];
    // Reads one report line; an "A" acknowledges the pending operation.
    auto read_report = [&] {
      if (!std::fgets(line, sizeof(line), in)) return false;
      std::string l(line);
      if (!l.empty() && l.back() == '\n') l.pop_back();
      if (l == "A") {
        Acked(pending);
        pending.clear();
        acks++;
      } else {
        pending = l;
      }
      return true;
    };
    while (acks < kill_after && read_report()) {
    }
    // Let the next operation get somewhere, then kill it mid-flight.
    ::usleep(useconds_t(rng() % 3000));
    ::kill(pid, SIGKILL);
    // Acknowledgements that raced with the kill still count.
    while (read_report()) {
    }
    std::fclose(in);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "cycle " << cycle << ": child exited with "
                                     << WEXITSTATUS(status);
    total_acks += acks;
    Result<std::unique_ptr<Engine>> e = Engine::Open(FileOptions(dir_));
    ASSERT_OK(e.status());
    Verify(**e, pending, cycle);
    if (HasFatalFailure()) return;
  }
  std::printf("crash test: %llu acknowledged operations verified\n",
              static_cast<unsigned long long>(total_acks));
  EXPECT_GT(total_acks, uint64_t(cycles));
}

// In-process power loss: an operation whose journal write or sync fails
// after its data reached flash, then flash_sim power loss and the env
// dropping everything unsynced. Acknowledged state must survive exactly.
TEST(PowerLossTest, FailedCommitThenPowerLossKeepsAcknowledgedState) {
  MemEngine base;
  flash::FaultyMedium faulty(base.medium(), flash::FaultOptions{});
  base.options().medium = &faulty;
  ASSERT_OK(base.Open());
  std::string vol = MakeVolume(base.get(), "v", 256 * kBlock);
  std::vector<BlockState> model(256);
  std::mt19937_64 rng(99);
  std::vector<uint8_t> data;
  for (int cycle = 0; cycle < 50; cycle++) {
    for (int op = 0; op < 10; op++) {
      WriteOp w{0, rng() % 256, 0, rng(), int(rng() % 4)};
      w.blocks = 1 + rng() % std::min<uint64_t>(80, 256 - w.lba);
      data.resize(w.blocks * kBlock);
      for (uint64_t i = 0; i < w.blocks; i++) {
        FillBlock(data.data() + i * kBlock, w.seed + i, BlockKind(w.kind));
      }
      bool fail = op == 9;
      if (fail) {
        if (cycle % 2) base.env().FailNextSyncs(1); else base.env().FailNextWrites(1);
      }
      Status s = base->Write(vol, w.lba * kBlock, data).status();
      if (fail) {
        ASSERT_FALSE(s.ok()) << "cycle " << cycle;
        // The failed write was applied in memory before its commit failed:
        // the engine refuses every further change (and checkpoint) until it
        // is reopened, so nothing ahead of the journal becomes durable.
        EXPECT_EQ(Code::kIoError, base->Write(vol, 0, data).status().code());
        EXPECT_EQ(Code::kIoError, base->Trim(vol, 0, kBlock).code());
        EXPECT_EQ(Code::kIoError, base->Checkpoint().code());
        EXPECT_EQ(Code::kIoError, base->Health().code());
        EXPECT_EQ(Code::kIoError, base->CreateVolume({"w" + std::to_string(cycle), kBlock}).status().code());
        break;
      }
      ASSERT_OK(s);
      for (uint64_t i = 0; i < w.blocks; i++) {
        model[w.lba + i] = w.kind == int(BlockKind::kZero) ? BlockState{}
                                                           : BlockState{w.seed + i, w.kind};
      }
    }
    base.Close();
    faulty.PowerLoss();
    base.env().DropUnsynced();
    ASSERT_OK(base.Open());
    EXPECT_OK(base->Health());
    std::vector<uint8_t> got = ReadAll(base.get(), vol, 0, 256 * kBlock);
    for (uint64_t b = 0; b < 256; b++) {
      ASSERT_TRUE(std::equal(got.begin() + b * kBlock, got.begin() + (b + 1) * kBlock,
                             Contents(model[b]).begin()))
          << "cycle " << cycle << " block " << b;
    }
    Result<FsckReport> f = base->Fsck();
    ASSERT_OK(f.status());
    ASSERT_TRUE(f->clean()) << "cycle " << cycle << ": " << (f->errors.empty() ? "" : f->errors[0]);
  }
}

}  // namespace
}  // namespace pstorage::engine::testing
