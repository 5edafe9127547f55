// Leveled, line-buffered logging to stderr: one line per event,
// "2026-01-15T10:30:00.123Z INFO message". Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace pstorage::api {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

// Parses "debug" / "info" / "warn" / "error"; false when unknown.
bool ParseLogLevel(std::string_view s, LogLevel* level);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void Log(LogLevel level, std::string_view message);

}  // namespace pstorage::api
