// `pstorage serve`: load (or create) the configuration, open the engine,
// serve until SIGINT/SIGTERM, then drain, checkpoint and exit 0.
#include "api/server/serve.h"

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "api/config.h"
#include "api/nbd/nbd_server.h"
#include "api/server/log.h"
#include "api/server/projects.h"
#include "api/server/server.h"
#include "engine/engine.h"

namespace pstorage::api {

namespace {

int ServeUsage(FILE* out) {
  std::fprintf(
      out,
      "usage: pstorage serve [--config PATH] [--log-level debug|info|warn|error]\n"
      "  Starts the REST server. PATH (default ./config.json) is created with safe\n"
      "  defaults when missing; the admin API key generated then is printed once.\n"
      "  The server rewrites PATH (temp file + rename, mode 0600) when it generates a\n"
      "  key or projects change through the API: PATH and its folder must be writable.\n"
      "  Relative paths in it resolve against its folder. --log-level overrides\n"
      "  log_level. Keys: docs/operations.md, `man pstorage`.\n"
      "  stdout: `admin api key: K` and `project ID api key: K` (once, when generated),\n"
      "  then `listening on http://ADDR:PORT`; logs go to stderr.\n"
      "  SIGINT/SIGTERM: drain requests (up to 30 s), checkpoint, exit 0. Exit 1: the\n"
      "  array, a KV project or the port cannot be opened; 2: bad usage or config.\n");
  return 2;
}

}  // namespace

int RunServe(int argc, char** argv) {
  std::string config_path = "./config.json";
  std::string log_level;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--log-level" && i + 1 < argc) {
      log_level = argv[++i];
    } else if (a == "-h" || a == "--help") {
      ServeUsage(stdout);
      return 0;
    } else {
      return ServeUsage(stderr);
    }
  }
  Result<LoadedConfig> loaded = LoadOrCreateConfig(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "pstorage serve: bad configuration: %s\n",
                 loaded.status().message().c_str());
    return 2;
  }
  const ServerConfig& cfg = loaded->config;
  LogLevel level = LogLevel::kInfo;
  if (!ParseLogLevel(log_level.empty() ? cfg.log_level : log_level, &level)) {
    std::fprintf(stderr, "pstorage serve: --log-level must be debug, info, warn or error\n");
    return 2;
  }
  SetLogLevel(level);
  if (loaded->file_created) Log(LogLevel::kInfo, "created configuration " + cfg.path);
  if (loaded->file_rewritten) Log(LogLevel::kInfo, "updated configuration " + cfg.path);
  if (!loaded->generated_api_key.empty()) {
    std::printf("admin api key: %s\n", loaded->generated_api_key.c_str());
    std::fflush(stdout);
    Log(LogLevel::kWarn, "generated the admin API key (printed once on stdout; only its hash is "
                         "kept in " + cfg.path + ")");
  }
  for (const auto& [project, key] : loaded->generated_project_keys) {
    std::printf("project %s api key: %s\n", project.c_str(), key.c_str());
    std::fflush(stdout);
    Log(LogLevel::kWarn, "generated the API key of project " + project +
                             " (printed once on stdout; only its hash is kept)");
  }
  if (!cfg.auth.enabled) {
    Log(LogLevel::kWarn, "authentication is disabled: anyone who can reach the port has full "
                         "control");
  }

  // Signals are handled by this thread alone (sigwait below): block them
  // before any other thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  engine::EngineOptions eo;
  eo.data_dir = cfg.array.data_dir;
  eo.flash.logical_capacity_bytes = cfg.array.flash_capacity_bytes;
  eo.flash.pages_per_block = cfg.array.pages_per_block;
  eo.flash.over_provisioning = cfg.array.over_provisioning;
  eo.dedupe_verify = cfg.array.dedupe_verify;
  eo.cache_bytes = cfg.array.cache_bytes;
  Log(LogLevel::kInfo, "opening the array in " + eo.data_dir);
  Result<std::unique_ptr<engine::Engine>> engine = engine::Engine::Open(eo);
  if (!engine.ok()) {
    Log(LogLevel::kError, "cannot open the array in " + eo.data_dir + ": " +
                              engine.status().ToString());
    return 1;
  }
  Log(LogLevel::kInfo, "opening " + std::to_string(cfg.projects.size()) + " KV project(s) in " +
                           cfg.persistent_file_path);
  Result<std::unique_ptr<ProjectRegistry>> projects = ProjectRegistry::Open(cfg);
  if (!projects.ok()) {
    Log(LogLevel::kError, "cannot open the KV projects: " + projects.status().ToString());
    return 1;
  }
  Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(**engine, **projects, cfg);
  if (!server.ok()) {
    Log(LogLevel::kError, server.status().ToString());
    return 1;
  }
  std::string url = "http://" + cfg.bind_address + ":" + std::to_string((*server)->port());
  std::printf("listening on %s\n", url.c_str());
  std::fflush(stdout);
  Log(LogLevel::kInfo, "pstorage serve listening on " + url + " (config " + cfg.path + ")");
  std::unique_ptr<nbd::NbdServer> nbd_server;
  if (cfg.nbd_enabled) {
    nbd::NbdOptions no;
    no.bind_address = cfg.nbd_bind_address;
    no.port = cfg.nbd_port;
    no.allowed_exports = cfg.nbd_allowed_exports;
    no.tls = cfg.nbd_tls == "require" ? nbd::TlsMode::kRequire
             : cfg.nbd_tls == "on"    ? nbd::TlsMode::kOn
                                      : nbd::TlsMode::kOff;
    no.tls_certificate_file = cfg.nbd_tls_certificate;
    no.tls_key_file = cfg.nbd_tls_key;
    Result<std::unique_ptr<nbd::NbdServer>> started = nbd::NbdServer::Start(**engine, no);
    if (!started.ok()) {
      Log(LogLevel::kError, started.status().ToString());
      (*server)->Shutdown(std::chrono::seconds(5));
      return 1;
    }
    nbd_server = std::move(*started);
    const std::string where = cfg.nbd_bind_address + ":" + std::to_string(nbd_server->port());
    std::printf("nbd listening on %s\n", where.c_str());
    std::fflush(stdout);
    Log(LogLevel::kInfo, "nbd server listening on " + where +
                             (cfg.nbd_bind_address == "127.0.0.1" ? "" : " (no authentication)"));
  }

  int sig = 0;
  sigwait(&signals, &sig);
  Log(LogLevel::kInfo, std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                           ": draining requests");
  if (nbd_server) nbd_server->Shutdown();  // its connections end before the engine closes
  nbd_server.reset();
  (*server)->Shutdown(std::chrono::seconds(30));
  server->reset();
  (*projects)->Shutdown();
  projects->reset();
  Status st = (*engine)->Checkpoint();
  if (!st.ok()) Log(LogLevel::kError, "final checkpoint failed: " + st.ToString());
  engine->reset();
  Log(LogLevel::kInfo, "stopped");
  return st.ok() ? 0 : 1;
}

}  // namespace pstorage::api
