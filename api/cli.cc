// The CLI's front: the command table, argument parsing and the session that
// talks to the server.
#include "api/cli.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include "api/cli_internal.h"

namespace pstorage::api {
namespace cli {
namespace {

constexpr char kDefaultUrl[] = "http://127.0.0.1:8000";

struct Command {
  const char* group;     // the command word
  const char* name;      // the subcommand of volume/snapshot, else ""
  const char* synopsis;  // after "pstorage "
  const char* help;      // what it does, then its options
  size_t min_args, max_args;
  const char* options;   // allowed options besides the global ones, space separated
  int (*run)(Session&, const Args&);
};

const Command kCommands[] = {
    {"health", "", "health", "Shows whether the server is up (GET /health).", 0, 0, "",
     RunHealth},
    {"metrics", "", "metrics [reduction|flash|volumes|replication]",
     "Shows data reduction, flash, volume or replication metrics (all without an argument).",
     0, 1, "", RunMetrics},
    {"volume", "create", "volume create NAME --size-gb N [--description D] [--tag k=v]...",
     "Creates a volume. --size-gb may be a fraction (0.5); --tag repeats.", 1, 1,
     "--size-gb --description --tag", RunVolumeCreate},
    {"volume", "list", "volume list [--limit N]",
     "Lists all volumes, fetching N per request (the server allows 1-1000).", 0, 0, "--limit",
     RunVolumeList},
    {"volume", "get", "volume get VOL", "Shows one volume.", 1, 1, "", RunVolumeGet},
    {"volume", "update", "volume update VOL [--name N] [--description D] [--tag k=v]...",
     "Changes only the given fields; any --tag replaces all of the volume's tags.", 1, 1,
     "--name --description --tag", RunVolumeUpdate},
    {"volume", "resize", "volume resize VOL --size-gb N",
     "Grows a volume to N GB (shrinking is refused by the server).", 1, 1, "--size-gb",
     RunVolumeResize},
    {"volume", "clone", "volume clone VOL NAME [--description D]",
     "Makes a copy-on-write clone of VOL named NAME.", 2, 2, "--description", RunVolumeClone},
    {"volume", "delete", "volume delete VOL", "Deletes a volume.", 1, 1, "", RunVolumeDelete},
    {"snapshot", "create", "snapshot create VOL NAME [--description D]",
     "Takes a snapshot of VOL.", 2, 2, "--description", RunSnapshotCreate},
    {"snapshot", "list", "snapshot list [VOL] [--limit N]",
     "Lists the snapshots of VOL, or of every volume.", 0, 1, "--limit", RunSnapshotList},
    {"snapshot", "get", "snapshot get VOL SNAP", "Shows one snapshot.", 2, 2, "",
     RunSnapshotGet},
    {"snapshot", "delete", "snapshot delete VOL SNAP", "Deletes a snapshot.", 2, 2, "",
     RunSnapshotDelete},
    {"snapshot", "restore", "snapshot restore VOL SNAP [--target VOL2 | --name NEWNAME]",
     "Restores SNAP onto volume VOL2 (overwriting it), or into a new volume (named NEWNAME,\n"
     "  or by the server).",
     2, 2, "--target --name", RunSnapshotRestore},
    {"write", "", "write VOL FILE [--offset N]",
     "Writes FILE (- for stdin) into VOL at byte offset N (a multiple of 4096, default 0).", 2,
     2, "--offset", RunWrite},
    {"read", "", "read VOL FILE [--offset N] [--length M]",
     "Reads M bytes (default: to the end of VOL) at offset N into FILE (- for stdout).", 2, 2,
     "--offset --length", RunRead},
};

constexpr char kGlobalOptions[] =
    "global options:\n"
    "  --server URL    the server (default: $PSTORAGE_URL, else http://127.0.0.1:8000)\n"
    "  --api-key KEY   sent as X-API-Key (default: $PSTORAGE_API_KEY)\n"
    "  --json          print the server's JSON instead of tables and key: value lines\n"
    "  -h, --help      describe the command\n"
    "VOL and SNAP are ids or names.\n";

// Options that take a value; every other "--word" is a flag.
bool TakesValue(std::string_view o) {
  for (std::string_view v : {"--server", "--api-key", "--size-gb", "--description", "--tag",
                             "--name", "--target", "--offset", "--length", "--limit"}) {
    if (o == v) return true;
  }
  return false;
}

bool IsGlobalOption(std::string_view o) {
  return o == "--server" || o == "--api-key" || o == "--json" || o == "--help";
}

// Splits argv into positionals and options. Returns an error message, or ""
std::string ParseArgs(int argc, char** argv, Args* a) {
  bool options_done = false;
  for (int i = 0; i < argc; i++) {
    std::string arg = argv[i];
    if (options_done || arg == "-" || arg.empty() || arg[0] != '-') {
      a->positional.push_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "-h" || arg == "--help") {
      a->options.emplace("--help", "");
    } else if (arg.compare(0, 2, "--") != 0) {
      return "unknown option " + arg;
    } else {
      size_t eq = arg.find('=');
      std::string name = arg.substr(0, eq);
      if (!TakesValue(name)) {
        if (name != "--json") return "unknown option " + name;
        if (eq != std::string::npos) return "option --json takes no value";
        a->options.emplace(name, "");
      } else if (eq != std::string::npos) {
        a->options.emplace(name, arg.substr(eq + 1));
      } else if (i + 1 < argc) {
        a->options.emplace(name, argv[++i]);
      } else {
        return "option " + name + " needs a value";
      }
    }
  }
  return "";
}

const Command* FindCommand(std::string_view group, std::string_view name) {
  for (const Command& c : kCommands) {
    if (group == c.group && name == c.name) return &c;
  }
  return nullptr;
}

bool IsGroup(std::string_view word) { return word == "volume" || word == "snapshot"; }

void PrintUsage(FILE* out, const Command& c) {
  std::fprintf(out, "usage: pstorage %s\n  %s\n\n%s", c.synopsis, c.help, kGlobalOptions);
}

void PrintGroupUsage(FILE* out, std::string_view group) {
  std::fprintf(out, "usage:\n");
  for (const Command& c : kCommands) {
    if (group == c.group) std::fprintf(out, "  pstorage %s\n", c.synopsis);
  }
  std::fprintf(out, "\n%s", kGlobalOptions);
}

// "http://HOST[:PORT][/PREFIX]"; the scheme may be left out.
std::string ParseUrl(const std::string& text, ServerUrl* url) {
  url->text = text;
  std::string_view rest = text;
  if (rest.substr(0, 8) == "https://") return "https is not supported; use http://";
  if (rest.substr(0, 7) == "http://") rest.remove_prefix(7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  url->prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!url->prefix.empty() && url->prefix.back() == '/') url->prefix.pop_back();
  size_t colon = authority.find(':');
  url->host = std::string(authority.substr(0, colon));
  if (url->host.empty()) return "no host";
  if (colon != std::string_view::npos) {
    std::optional<uint64_t> port = ParseU64(authority.substr(colon + 1));
    if (!port || *port == 0 || *port > 65535) return "bad port";
    url->port = static_cast<int>(*port);
  }
  return "";
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

// The server's one-line reason for a failed request.
std::string ErrorDetail(const HttpResponse& r) {
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    for (const char* key : {"detail", "error", "message", "status"}) {
      std::string v = StrField(doc, key);
      if (!v.empty()) return v;
    }
  }
  std::string text = r.body.substr(0, 200);
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text.empty() ? "(no details)" : text;
}

std::optional<std::string> Args::Get(const std::string& name) const {
  auto range = options.equal_range(name);
  if (range.first == range.second) return std::nullopt;
  return std::prev(range.second)->second;
}

std::vector<std::string> Args::All(const std::string& name) const {
  std::vector<std::string> out;
  for (auto [it, end] = options.equal_range(name); it != end; ++it) out.push_back(it->second);
  return out;
}

Session::Session(ServerUrl url, std::string api_key, bool json)
    : url_(std::move(url)),
      api_key_(std::move(api_key)),
      json_(json),
      client_(url_.host, url_.port) {}

std::string Session::Api(std::string_view path) const {
  return url_.prefix + "/api/v1" + std::string(path);
}

Reply Session::Call(std::string_view method, const std::string& target, std::string_view body,
                    std::string_view content_type, int quiet_status) {
  HttpHeaders headers;
  if (!api_key_.empty()) headers.emplace_back("X-API-Key", api_key_);
  if (!body.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  Result<HttpResponse> r = client_.Request(method, target, body, headers);
  Reply out;
  if (!r.ok()) {
    std::fprintf(stderr, "error: the server at %s is not reachable (%s)\n", url_.text.c_str(),
                 r.status().message().c_str());
    out.exit_code = kExitUnreachable;
    return out;
  }
  out.http = std::move(r).value();
  if (out.http.status >= 200 && out.http.status < 300) return out;
  out.exit_code = kExitServerError;
  if (quiet_status != 0 && out.http.status == quiet_status) return out;
  std::fprintf(stderr, "error: %d %s\n", out.http.status, ErrorDetail(out.http).c_str());
  if (out.http.status == 401 && api_key_.empty()) {
    std::fprintf(stderr, "hint: pass --api-key KEY or set PSTORAGE_API_KEY\n");
  }
  return out;
}

int UsageError(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  size_t space = command.find(' ');
  std::string group = command.substr(0, space);
  std::string name = space == std::string::npos ? "" : command.substr(space + 1);
  if (const Command* c = FindCommand(group, name)) {
    PrintUsage(stderr, *c);
  } else {
    PrintGroupUsage(stderr, group);
  }
  return kExitUsage;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::optional<double> ParseSizeGb(std::string_view s) {
  std::string text(s);
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v <= 0) {
    return std::nullopt;
  }
  return v;
}

}  // namespace cli

bool IsCliCommand(const char* command) {
  if (command == nullptr) return false;
  for (const cli::Command& c : cli::kCommands) {
    if (std::strcmp(command, c.group) == 0) return true;
  }
  return false;
}

void PrintCliHelp() {
  std::printf("client (talks to a running `pstorage serve` over REST):\n");
  for (const cli::Command& c : cli::kCommands) std::printf("  %s\n", c.synopsis);
  std::printf("\n%s", cli::kGlobalOptions);
}

int RunCli(int argc, char** argv) {
  using namespace cli;
  if (argc < 1 || !IsCliCommand(argv[0])) {
    PrintCliHelp();
    return kExitUsage;
  }
  const std::string group = argv[0];
  Args a;
  std::string parse_error = ParseArgs(argc - 1, argv + 1, &a);
  std::string name;
  if (IsGroup(group)) {
    if (a.positional.empty()) {
      if (!parse_error.empty()) return UsageError(group, parse_error);
      PrintGroupUsage(a.Has("--help") ? stdout : stderr, group);
      return a.Has("--help") ? kExitOk : kExitUsage;
    }
    name = a.positional.front();
    a.positional.erase(a.positional.begin());
  }
  const Command* c = FindCommand(group, name);
  if (c == nullptr) return UsageError(group, "unknown command: " + group + " " + name);
  const std::string full = name.empty() ? group : group + " " + name;
  if (!parse_error.empty()) return UsageError(full, parse_error);
  if (a.Has("--help")) {
    PrintUsage(stdout, *c);
    return kExitOk;
  }
  for (const auto& [option, value] : a.options) {
    std::string padded = " " + std::string(c->options) + " ";
    if (!IsGlobalOption(option) && padded.find(" " + option + " ") == std::string::npos) {
      return UsageError(full, "option " + option + " does not apply to `" + full + "`");
    }
  }
  if (a.positional.size() < c->min_args) return UsageError(full, "missing arguments");
  if (a.positional.size() > c->max_args) {
    return UsageError(full, "unexpected argument '" + a.positional[c->max_args] + "'");
  }
  ServerUrl url;
  std::string url_error = ParseUrl(a.Get("--server").value_or(EnvOr("PSTORAGE_URL", kDefaultUrl)),
                                   &url);
  if (!url_error.empty()) {
    return UsageError(full, "bad server URL '" + url.text + "': " + url_error);
  }
  Session session(std::move(url), a.Get("--api-key").value_or(EnvOr("PSTORAGE_API_KEY", "")),
                  a.Has("--json"));
  return c->run(session, a);
}

}  // namespace pstorage::api
