// The `pstorage` binary:
//   pstorage serve [--config PATH]   the daemon (REST API)
//   pstorage fsck --data-dir DIR     check a stopped array's data directory
//   pstorage volume|snapshot|metrics|health|write|read ...   the REST client
//   pstorage bench ...               the benchmark tool (bench/tool/bench.h)
#include <cstdio>
#include <cstring>
#include <string>

#include "api/cli.h"
#include "api/server/serve.h"
#include "bench/tool/bench.h"
#include "engine/engine.h"

namespace {

void Help() {
  std::printf(
      "usage: pstorage <command> [options]\n\n"
      "server:\n"
      "  serve [--config PATH] [--log-level L]  run the storage service (default ./config.json)\n"
      "  fsck [--data-dir DIR]                  check a stopped array's data directory\n"
      "  bench [--target engine|rest|nbd] [--profile NAME] ...  run a workload, report IOPS,\n"
      "                                         latency, data reduction (`bench --help`)\n\n");
  pstorage::api::PrintCliHelp();
  std::printf(
      "\n`pstorage <command> --help` describes one command; `man pstorage` has it all.\n"
      "exit status: 0 success; 1 the server answered with an error (serve: could not\n"
      "start; fsck: problems found); 2 usage error, bad configuration or server\n"
      "unreachable.\n");
}

int FsckUsage(FILE* out) {
  std::fprintf(out,
               "usage: pstorage fsck [--data-dir DIR]\n"
               "  fsck   recover the engine in DIR (default ./pstorage-data), recompute every\n"
               "         reference count, read and hash-check every stored block; exit 0 when\n"
               "         clean, 1 when problems were found, 2 when DIR cannot be opened\n");
  return 2;
}

int Fsck(int argc, char** argv) {
  std::string dir = "./pstorage-data";
  for (int i = 0; i < argc; i++) {
    if (std::strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      FsckUsage(stdout);
      return 0;
    } else {
      return FsckUsage(stderr);
    }
  }
  pstorage::Result<pstorage::engine::FsckReport> r = pstorage::engine::FsckDataDir(dir);
  if (!r.ok()) {
    std::fprintf(stderr, "fsck: %s\n", r.status().ToString().c_str());
    return 2;
  }
  const auto& f = *r;
  std::printf("volumes %llu, snapshots %llu, block references %llu, contents checked %llu\n",
              (unsigned long long)f.volumes, (unsigned long long)f.snapshots,
              (unsigned long long)f.mapped_blocks, (unsigned long long)f.contents_checked);
  std::printf("leaked %llu, dangling %llu, refcount mismatches %llu, node refcount mismatches %llu, "
              "corrupt blocks %llu\n",
              (unsigned long long)f.leaked_contents, (unsigned long long)f.dangling_references,
              (unsigned long long)f.refcount_mismatches,
              (unsigned long long)f.node_refcount_mismatches, (unsigned long long)f.corrupt_blocks);
  for (const std::string& e : f.errors) std::printf("  %s\n", e.c_str());
  std::printf("%s\n", f.clean() ? "clean" : "PROBLEMS FOUND");
  return f.clean() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Help();
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    Help();
    return 0;
  }
  if (cmd == "serve") return pstorage::api::RunServe(argc - 2, argv + 2);
  if (cmd == "fsck") return Fsck(argc - 2, argv + 2);
  if (cmd == "bench") return pstorage::bench::RunBenchCommand(argc - 2, argv + 2);
  if (pstorage::api::IsCliCommand(cmd.c_str())) return pstorage::api::RunCli(argc - 1, argv + 1);
  std::fprintf(stderr, "pstorage: unknown command '%s'\n\n", cmd.c_str());
  Help();
  return 2;
}
