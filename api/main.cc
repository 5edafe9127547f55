// The `pstorage` binary. Subcommands:
//   pstorage fsck --data-dir DIR   check a (stopped) engine's data directory
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/engine.h"

namespace {

int Usage() {
  std::fprintf(stderr,
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
    } else {
      return Usage();
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
  if (argc < 2) return Usage();
  std::string cmd = argv[1];
  if (cmd == "fsck") return Fsck(argc - 2, argv + 2);
  return Usage();
}
