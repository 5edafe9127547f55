// journal_bench: Journal::Append throughput under group commit.
//
//   journal_append/threads:N  N appenders of 256-byte records on a POSIX file
//                             (one write + fdatasync per group)
//
// Counters: records/s (all threads, wall clock) and records_per_sync (the
// average group size). Every run starts from an empty journal in
// $PSTORAGE_BENCH_DIR (default /var/tmp), removed after the run. With N
// closed-loop appenders, groups settle at about N/2: the members of one group
// return and queue behind the next group, which is already syncing.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/journal.h"

namespace pstorage::engine {
namespace {

constexpr size_t kRecordBytes = 256;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "journal_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

std::string BenchPath() {
  const char* dir = std::getenv("PSTORAGE_BENCH_DIR");
  return std::string(dir && *dir ? dir : "/var/tmp") + "/pstorage-journal-bench.log";
}

// Set up by thread 0 before the timed loop; the loop's start barrier
// publishes it to the other threads, its end barrier makes teardown safe.
std::unique_ptr<Journal> g_journal;

void JournalAppend(benchmark::State& state) {
  const std::string path = BenchPath();
  if (state.thread_index() == 0) {
    std::filesystem::remove(path);
    Result<std::unique_ptr<Journal>> j = Journal::Open(DefaultEnv(), path, {});
    if (!j.ok()) Die("open " + path, j.status());
    g_journal = std::move(*j);
  }
  std::vector<uint8_t> record(kRecordBytes, uint8_t(state.thread_index() + 1));

  for (auto _ : state) {
    if (Status s = g_journal->Append(record); !s.ok()) Die("append", s);
  }

  state.counters["records/s"] =
      benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(int64_t(state.iterations() * kRecordBytes));
  if (state.thread_index() == 0) {
    // Only thread 0 sets it, so the sum over threads is this value.
    const uint64_t syncs = g_journal->syncs();
    state.counters["records_per_sync"] =
        syncs ? double(g_journal->records_appended()) / double(syncs) : 0.0;
    g_journal.reset();
    std::filesystem::remove(path);
  }
}

BENCHMARK(JournalAppend)->Name("journal_append")->Threads(1)->Threads(4)->Threads(16)
    ->UseRealTime();

}  // namespace
}  // namespace pstorage::engine

BENCHMARK_MAIN();
