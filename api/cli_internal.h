// Private to the CLI (cli.cc, cli_output.cc, cli_commands.cc, cli_data.cc): parsed
// arguments, the session that talks to the server, and output helpers.
//
// Exit codes, as api/cli.h promises: 0 success, 1 the server answered with
// an error (already printed to stderr), 2 usage error or server unreachable.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "api/http_client.h"

namespace pstorage::api::cli {

constexpr int kExitOk = 0;
constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 2;

constexpr uint64_t kBlockBytes = 4096;
constexpr uint64_t kChunkBytes = 4ull << 20;  // one data request; a multiple of kBlockBytes
static_assert(kChunkBytes % kBlockBytes == 0);

// The words after the command (and after the subcommand of volume/snapshot).
struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> options;  // "--size-gb" -> "10"; flags -> ""

  bool Has(const std::string& name) const { return options.count(name) > 0; }
  // The last value given for an option.
  std::optional<std::string> Get(const std::string& name) const;
  std::vector<std::string> All(const std::string& name) const;
};

// Where the server is: "http://HOST[:PORT][/PREFIX]".
struct ServerUrl {
  std::string text;    // as given, for messages
  std::string host;
  int port = 80;
  std::string prefix;  // "" or "/path" without a trailing slash
};

// One response, or the exit code of a failure that has been reported.
struct Reply {
  int exit_code = kExitOk;  // kExitOk exactly when `http` holds a 2xx response
  HttpResponse http;
  bool ok() const { return exit_code == kExitOk; }
};

// The connection to the server plus the output mode. One per process.
class Session {
 public:
  Session(ServerUrl url, std::string api_key, bool json);

  bool json() const { return json_; }
  const std::string& url() const { return url_.text; }
  // "/api/v1" + path, under the URL's prefix.
  std::string Api(std::string_view path) const;
  std::string Root(std::string_view path) const { return url_.prefix + std::string(path); }

  // Sends one request. A transport failure prints "not reachable"; an HTTP
  // error prints `error: <status> <detail>`, except a 404 when
  // `quiet_status` (a 404 when the caller then tries a name instead of an id;
  // a 413 when it then retries with a smaller request).
  Reply Call(std::string_view method, const std::string& target, std::string_view body = {},
             std::string_view content_type = "application/json", int quiet_status = 0);

 private:
  ServerUrl url_;
  std::string api_key_;
  bool json_;
  HttpClient client_;
};

// The server's one-line reason for a failed request (its `detail`).
std::string ErrorDetail(const HttpResponse& r);

// Builds a JSON object request body with proper escaping.
class JsonBody {
 public:
  JsonBody() : writer_(buffer_) { writer_.StartObject(); }
  JsonBody& Str(const char* key, std::string_view value);
  JsonBody& Number(const char* key, double value);  // integral values as integers
  JsonBody& Uint(const char* key, uint64_t value);
  JsonBody& Null(const char* key);
  JsonBody& Tags(const char* key, const std::map<std::string, std::string>& tags);
  std::string Finish();

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

// Output helpers (cli_output.cc).
std::string HumanBytes(uint64_t bytes);  // "100 GiB", "1.5 MiB", "512 B"
std::string StrField(const rapidjson::Value& obj, const char* key);
uint64_t U64Field(const rapidjson::Value& obj, const char* key);
double NumField(const rapidjson::Value& obj, const char* key);
// Parses a JSON response body; prints an error (and returns false) when it
// is not JSON.
bool ParseBody(const HttpResponse& r, rapidjson::Document* doc);
// `key: value` lines; nested objects flatten to dotted keys, *_bytes values
// also show human units.
void PrintObject(const rapidjson::Value& obj, FILE* out = stdout);
// Aligned columns; rows[0] is the header.
void PrintTable(const std::vector<std::vector<std::string>>& rows);
// The response as JSON text (--json) or as `key: value` lines.
int PrintReply(const Session& s, const HttpResponse& r);
int UsageError(const std::string& command, const std::string& message);
// Strict decimal parsing for numeric options.
std::optional<uint64_t> ParseU64(std::string_view s);
std::optional<double> ParseSizeGb(std::string_view s);

// An object found by id or name, with the body of its GET.
struct Found {
  int exit_code = kExitOk;
  std::string id;
  HttpResponse http;
};
Found ResolveVolume(Session& s, const std::string& volume);
Found ResolveSnapshot(Session& s, const Found& volume, const std::string& snapshot);
// The "name" of a JSON object body, "" when it has none.
std::string NameOf(const HttpResponse& r);

// Command handlers. The command word(s) are gone from `a`; positional
// counts and option names have been checked against the command's table
// entry in cli.cc.
int RunHealth(Session& s, const Args& a);
int RunMetrics(Session& s, const Args& a);
int RunVolumeCreate(Session& s, const Args& a);
int RunVolumeList(Session& s, const Args& a);
int RunVolumeGet(Session& s, const Args& a);
int RunVolumeDelete(Session& s, const Args& a);
int RunVolumeResize(Session& s, const Args& a);
int RunVolumeClone(Session& s, const Args& a);
int RunVolumeUpdate(Session& s, const Args& a);
int RunSnapshotCreate(Session& s, const Args& a);
int RunSnapshotList(Session& s, const Args& a);
int RunSnapshotGet(Session& s, const Args& a);
int RunSnapshotDelete(Session& s, const Args& a);
int RunSnapshotRestore(Session& s, const Args& a);
int RunWrite(Session& s, const Args& a);
int RunRead(Session& s, const Args& a);


}  // namespace pstorage::api::cli
