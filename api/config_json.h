// Private to config.cc: JSON parsing that keeps the line of every key.
//
// RapidJSON keeps no positions in a Document, so ParseJsonWithKeyLines makes
// a SAX pass over the text first, recording where each key is, then builds
// the Document from the text that passed.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace pstorage::api::config_internal {

// Key path ("array.pages_per_block", "projects[0].id") -> 1-based line.
using KeyLines = std::unordered_map<std::string, int>;

// "file:line: key: problem" as kInvalidArgument.
Status Invalid(const std::string& file, int line, std::string_view key, std::string_view problem);

// Parses the whole of `text` (trailing garbage is an error) into `*doc` and
// the line of each key into `*lines`. Errors, all kInvalidArgument:
//   syntax:         "file:line:column: <RapidJSON message>"
//   duplicate key:  "file:line: key.path: duplicate key"
//   too deep:       "file:line: key.path: nested deeper than 64 levels"
// `file` is used only in messages.
Status ParseJsonWithKeyLines(const std::string& file, std::string_view text,
                             rapidjson::Document* doc, KeyLines* lines);

}  // namespace pstorage::api::config_internal
