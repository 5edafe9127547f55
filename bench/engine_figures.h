// Internal to pstorage-engine-figures: what its two parts share.
//   engine_figures_main.cc       flags, resident memory, recovery time
//   engine_figures_reduction.cc  data reduction on real files vs the offline ideal
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/status.h"

namespace pstorage::bench {

struct FiguresArgs {
  bool markdown = false;
  std::string part = "all";              // memory | reduction | all
  uint64_t blocks = 1'000'000;           // unique blocks of the memory/recovery run
  uint64_t capacity_gib = 3;             // flash logical capacity of that run
  std::string dataset_dir = "/usr/share";
  std::string dataset_list;              // file of paths, one a line, taken in that order
                                         // (repeats allowed); overrides dataset_dir
  uint64_t dataset_mib = 512;            // cap on the real-data set
  int copies = 2;                        // times the data set is written
  std::string summary;                   // file for "key value" lines (reduction part)
  std::string bench_dir = "/var/tmp";    // $PSTORAGE_BENCH_DIR
  bool keep = false;                     // keep the memory run's data dir
};

[[noreturn]] inline void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "pstorage-engine-figures: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}
inline void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what, s);
}
template <typename T>
T Check(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what, r.status());
  return std::move(*r);
}

inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// VmRSS of this process, bytes.
inline uint64_t RssBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::sscanf(line, "VmRSS: %llu kB", &kib) == 1) break;
  }
  std::fclose(f);
  return uint64_t(kib) * 1024;
}

inline double MiB(double bytes) { return bytes / (1 << 20); }

// One figure: markdown table row or an aligned text line.
inline void Row(bool markdown, const std::string& what, const std::string& value,
                const std::string& note) {
  if (markdown) {
    std::printf("| %s | %s | %s |\n", what.c_str(), value.c_str(), note.c_str());
  } else {
    std::printf("%-66s %14s  %s\n", what.c_str(), value.c_str(), note.c_str());
  }
}
inline void TableHead(bool markdown, const char* value_col, const char* note_col) {
  if (markdown) std::printf("| figure | %s | %s |\n|---|---:|---|\n", value_col, note_col);
}

// printf into a std::string.
template <typename... A>
std::string Fmt(const char* format, A... args) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

void PrintMemoryAndRecovery(const FiguresArgs& args);  // engine_figures_main.cc
void PrintRealDataReduction(const FiguresArgs& args);  // engine_figures_reduction.cc

}  // namespace pstorage::bench
