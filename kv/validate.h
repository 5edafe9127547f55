// Argument checks of the store: keys, values (JSON, RapidJSON inside), put
// options, project ids.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "kv/kv.h"

namespace pstorage::kv {

// The compact re-serialization of text, which must be exactly one JSON value
// (surrounding whitespace allowed) nested at most max_depth deep.
// kInvalidArgument otherwise.
Result<std::string> CanonicalJson(std::string_view text, int max_depth);

// True when s is valid UTF-8 with no bytes below 0x20 (names, keys, tags).
bool IsCleanUtf8(std::string_view s);

// [A-Za-z0-9_-]{1,64}: safe as a file name.
bool ValidProjectId(const std::string& id);
// 1..max_key_bytes of clean UTF-8, else kInvalidArgument.
Status ValidateKey(const std::string& key, size_t max_key_bytes);
// TTL range and tag limits (kv.h), else kInvalidArgument.
Status ValidatePutOptions(const PutOptions& o);
// The canonical form of a value at most max_value_bytes long.
Result<std::string> ValidateValue(const std::string& value_json, size_t max_value_bytes);

}  // namespace pstorage::kv
