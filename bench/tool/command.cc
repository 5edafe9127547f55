// `pstorage bench`: parse, set up the target, run, print, write the files.
// Exit status: 0 complete, 1 the run stopped early (partial result printed
// and written), 2 bad options or a target that cannot be set up.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>

#include "bench/tool/bench.h"

#ifndef PSTORAGE_VERSION
#define PSTORAGE_VERSION "unknown"
#endif

namespace pstorage::bench {
namespace {

void OnSignal(int) { InterruptRun(); }

Status WriteFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::IoError(path + ": cannot write");
    out << text;
    out.flush();
    if (!out) return Status::IoError(path + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError(path + ": rename failed");
  return Status::Ok();
}

int Compare(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "pstorage bench: --compare takes two result files: --compare A.json B.json\n");
    return 2;
  }
  BenchResult a, b;
  for (auto [path, out] : {std::pair{argv[1], &a}, std::pair{argv[2], &b}}) {
    if (Status s = ReadResultFile(path, out); !s.ok()) {
      fprintf(stderr, "pstorage bench: %s\n", s.message().c_str());
      return 2;
    }
  }
  fputs(FormatCompare(a, b).c_str(), stdout);
  return 0;
}

}  // namespace

Result<std::unique_ptr<Target>> MakeTarget(const BenchOptions& o) {
  if (o.workload == "kv") return MakeKvTarget(o.target);
  if (o.target == "engine") return MakeEngineTarget();
  if (o.target == "rest") return MakeRestTarget();
  if (o.target == "nbd") return MakeNbdTarget();
  return Status::InvalidArgument("--target " + o.target + " needs --profile kv-small");
}

int RunBenchCommand(int argc, char** argv) {
  if (argc >= 1 && std::string(argv[0]) == "--compare") return Compare(argc, argv);
  Result<BenchOptions> options = ParseOptions(argc, argv);
  if (!options.ok()) {
    if (options.status().code() == Code::kFailedPrecondition) {
      fputs(Usage().c_str(), stdout);
      return 0;
    }
    fprintf(stderr, "pstorage bench: %s\n", options.status().message().c_str());
    return 2;
  }
  Result<std::unique_ptr<Target>> target = MakeTarget(*options);
  if (!target.ok()) {
    fprintf(stderr, "pstorage bench: %s\n", target.status().message().c_str());
    return 2;
  }
  // Ctrl-C ends the run early with the partial result, like a lost server.
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  if (Status s = (*target)->Setup(*options); !s.ok()) {
    fprintf(stderr, "pstorage bench: %s\n", s.ToString().c_str());
    (*target)->Teardown();
    return 2;
  }
  Result<BenchResult> result = Run(*options, target->get());
  (*target)->Teardown();
  if (!result.ok()) {
    fprintf(stderr, "pstorage bench: %s\n", result.status().ToString().c_str());
    return 1;
  }
  result->tool_version = PSTORAGE_VERSION;
  fputs(FormatTable(*result).c_str(), stdout);
  int rc = result->complete ? 0 : 1;
  if (!options->json_path.empty()) {
    if (Status s = WriteFile(options->json_path, ToJson(*result)); !s.ok()) {
      fprintf(stderr, "pstorage bench: %s\n", s.message().c_str());
      rc = 2;
    }
  }
  if (!options->html_path.empty()) {
    if (Status s = WriteFile(options->html_path, ToHtml(*result)); !s.ok()) {
      fprintf(stderr, "pstorage bench: %s\n", s.message().c_str());
      rc = 2;
    }
  }
  if (options->json_path.empty() && options->html_path.empty() && isatty(STDOUT_FILENO)) {
    printf("(--html FILE writes a report with charts; --json FILE the figures for --compare)\n");
  }
  if (!result->complete)
    fprintf(stderr, "pstorage bench: run ended early: %s\n", result->error.c_str());
  return rc;
}

}  // namespace pstorage::bench
