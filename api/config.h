// The service configuration: one JSON file (`pstorage serve --config PATH`,
// default ./config.json), created with safe defaults on first start.
//
// Shape (keys are a contract: tests and later features rely on them):
//   {
//     "version": 1,
//     "server_port": 8000,
//     "bind_address": "127.0.0.1",
//     "nbd_enabled": true,                       // the NBD server (api/nbd/)
//     "nbd_port": 10809,                         // [0, 65535]; 0 picks a free port
//     "nbd_bind_address": "127.0.0.1",           // NBD has no authentication
//     "nbd_allowed_exports": ["vol", "vol@snap"], // optional; absent = every export
//     "nbd_tls": "off",                          // off | on (STARTTLS offered) | require
//     "nbd_tls_certificate": "nbd-cert.pem",     // PEM chain; needed unless nbd_tls is off
//     "nbd_tls_key": "nbd-key.pem",              // PEM private key; likewise
//     "server_threads": 0,                       // 0: max(16, 8 * cores)
//     "max_body_bytes": 8388608,                 // raw data bodies; JSON bodies get 4/3 of it
//     "log_level": "info",                       // debug | info | warn | error
//     "rate_limit": {"enabled": true, "requests_per_second": 5000, "burst": 10000},
//     "default": {
//       "storage": {"persistent_file_path": "storage_data/"},
//       "authentication": {"enabled": true, "save_api_key_to_file": false,
//                          "api_key": null, "api_key_hash": "sha256:..."}
//     },
//     "array": {"data_dir": "pstorage-data/", "flash_capacity_bytes": 268435456,
//               "pages_per_block": 256, "over_provisioning": 0.10,
//               "dedupe_verify": true, "compression": "lz4",
//               "cache_bytes": 67108864},
//     "kv": {"max_key_bytes": 1024, "max_value_bytes": 1048576,
//            "max_batch_items": 1000, "expiry_interval_ms": 1000},
//     "projects": [
//       {"id": "first_project",
//        "storage": {"on_disk": true, "cache_in_memory": true},
//        "authentication": {"enabled": true, "save_api_key_to_file": false,
//                           "api_key": null, "api_key_hash": "sha256:..."}}
//     ]
//   }
//
// Rules:
//   * A missing file is created with these defaults. A missing key takes its
//     default; a key of the wrong type, a value out of range, an unknown key
//     (typos must not become silent defaults) or malformed JSON is an error
//     whose message names the file, the line and the key path
//     ("config.json:7: array.pages_per_block: expected an integer in [16, 4096]").
//   * Admin key: when authentication is enabled and neither `api_key` nor
//     `api_key_hash` is set, a key is generated, returned in
//     `generated_api_key` (the server prints it once) and only its hash is
//     written. When `api_key` is set in the file, that key is used and its
//     hash written; the plain key is then removed from the file unless
//     `save_api_key_to_file` is true. The file is rewritten (temp + fsync +
//     rename) only when something changed, keeping every other value.
//   * Relative paths (`persistent_file_path`, `data_dir`, `nbd_tls_certificate`,
//     `nbd_tls_key`) resolve against the
//     folder of the config file.
//   * `projects`: each entry is validated like the rest (id pattern, unique
//     ids, known keys only). Project keys follow the admin key's rules; the
//     keys generated are returned in `generated_project_keys`. A new file
//     gets one project, `first_project`; a file without `projects` has none.
//
// Details beyond the shape above:
//   * Error messages (Status::message(), `file` being `path` as passed):
//       syntax error:  "file:line:column: <RapidJSON message>"  (column in bytes)
//       bad value:     "file:line: key.path: problem"  (the line of the key)
//     Syntax errors include trailing text after the root object and a NUL
//     byte. Duplicate keys (any object) and nesting deeper than 64 levels are
//     refused as "bad value" errors. A file over 16 MiB is refused.
//   * Further limits: `rate_limit.requests_per_second` is a number in (0, 1e9],
//     `rate_limit.burst` an integer in [1, 1e9]; `api_key` must be visible
//     ASCII (no blanks: HTTP would trim them); "" for `api_key` or
//     `api_key_hash` means the same as null; strings must not contain \u0000.
//   * `api_key` in the file is hashed even when authentication is disabled;
//     no key is generated while it is disabled.
//   * Writes are atomic (temp file in the same folder, fsync, rename, fsync of
//     the folder) and leave the file with mode 0600. A config path that is a
//     symbolic link is replaced by a regular file on rewrite.
//   * Meant to be called once at start-up: two concurrent loads of a missing
//     file (threads or processes) would each generate a key, and the last
//     write wins.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace pstorage::api {

struct AuthConfig {
  bool enabled = true;
  bool save_api_key_to_file = false;
  std::string api_key_hash;  // "sha256:<hex>"; empty only when disabled
};

struct RateLimitConfig {
  bool enabled = true;
  double requests_per_second = 5000;
  uint64_t burst = 10000;
};

struct ArrayConfig {
  std::string data_dir;                 // absolute, normalized, no trailing '/' after loading
  uint64_t flash_capacity_bytes = 268435456;  // logical capacity; multiple of 1 MiB, >= 16 MiB
  uint32_t pages_per_block = 256;       // [16, 4096]
  double over_provisioning = 0.10;      // [0.02, 0.50]
  bool dedupe_verify = true;
  std::string compression = "lz4";      // "lz4" (only codec of the inline path)
  uint64_t cache_bytes = 64ull << 20;   // DRAM block cache; multiple of 1 MiB, 4 MiB - 64 GiB
};

// One KV namespace (seed: Simple PyKV's `projects` entries).
struct ProjectConfig {
  std::string id;               // [A-Za-z0-9_-]{1,64}: it names the project's files
  bool on_disk = true;          // false: memory only, lost when the server stops
  bool cache_in_memory = true;  // kept and reported; every project is served from memory
  AuthConfig auth;              // the project's own key (hash) and switch
  std::string api_key;          // the plain key, kept only when auth.save_api_key_to_file
};

// Limits of the KV routes ("kv" section).
struct KvConfig {
  uint64_t max_key_bytes = 1024;         // [1, 65536]
  uint64_t max_value_bytes = 1 << 20;    // the value's JSON text; [16, 64 MiB]
  uint64_t max_batch_items = 1000;       // batch and transaction operations; [1, 100000]
  uint64_t expiry_interval_ms = 1000;    // background removal of expired keys; [10, 3600000]
};

struct ServerConfig {
  std::string path;                 // the config file, absolute
  int version = 1;
  int server_port = 8000;           // [0, 65535]; 0 picks a free port
  std::string bind_address = "127.0.0.1";
  bool nbd_enabled = true;
  int nbd_port = 10809;             // [0, 65535]; 0 picks a free port
  std::string nbd_bind_address = "127.0.0.1";
  // Export names ("volume" or "volume@snapshot") NBD clients may see and
  // open; nullopt (key absent) allows every export. At most 4096 names of
  // 1-4096 bytes, no duplicates.
  std::optional<std::vector<std::string>> nbd_allowed_exports;
  // "off", "on" or "require". Unless "off", both files must be readable
  // when the config loads (absolute, normalized after loading).
  std::string nbd_tls = "off";
  std::string nbd_tls_certificate;
  std::string nbd_tls_key;
  int server_threads = 0;
  uint64_t max_body_bytes = 8ull << 20;  // [4096, 256 MiB], multiple of 4096
  std::string log_level = "info";
  RateLimitConfig rate_limit;
  std::string persistent_file_path;  // absolute, normalized, no trailing '/' after loading
  AuthConfig auth;
  ArrayConfig array;
  KvConfig kv;
  std::vector<ProjectConfig> projects;

  // As the file holds them, for rewriting it (SaveConfig): paths before
  // resolution and the plain admin key when it is saved to the file.
  std::string file_persistent_file_path;
  std::string file_data_dir;
  std::string file_nbd_tls_certificate;
  std::string file_nbd_tls_key;
  std::string file_api_key;
};

struct LoadedConfig {
  ServerConfig config;
  std::string generated_api_key;  // set when this load generated the admin key
  // (project id, key) for every project key this load generated.
  std::vector<std::pair<std::string, std::string>> generated_project_keys;
  bool file_created = false;
  bool file_rewritten = false;
};

// Loads `path`, creating it with defaults when it does not exist.
// kInvalidArgument with a "file:line: key: problem" message on bad content;
// kIoError when the file cannot be read or written.
Result<LoadedConfig> LoadOrCreateConfig(const std::string& path);

// Rewrites config.path atomically from `config` (the file_* fields give the
// values as the file holds them). Used when the API changes projects.
Status SaveConfig(const ServerConfig& config);

// Project ids: 1-64 of [A-Za-z0-9_-]. They become file names, so nothing
// else is ever accepted.
bool ValidProjectId(std::string_view id);

// A new project's key rules, as for the admin key: when auth.enabled and no
// hash is set, generates a key (returned) and stores its hash, and the plain
// key only when save_api_key_to_file. Returns "" when no key was generated.
std::string ApplyProjectKeyRules(ProjectConfig* project, bool* changed);

}  // namespace pstorage::api
