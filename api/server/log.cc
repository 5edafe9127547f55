#include "api/server/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace pstorage::api {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
}

bool ParseLogLevel(std::string_view s, LogLevel* level) {
  if (s == "debug") return *level = LogLevel::kDebug, true;
  if (s == "info") return *level = LogLevel::kInfo, true;
  if (s == "warn") return *level = LogLevel::kWarn, true;
  if (s == "error") return *level = LogLevel::kError, true;
  return false;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, std::string_view message) {
  if (!LogEnabled(level)) return;
  static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  auto now = std::chrono::system_clock::now();
  int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  // One fprintf per line: stdio locks the stream, so lines never interleave.
  std::fprintf(stderr, "%s.%03dZ %s %.*s\n", stamp, static_cast<int>(ms % 1000),
               kNames[static_cast<int>(level)], static_cast<int>(message.size()),
               message.data());
}

}  // namespace pstorage::api
