// Standard base64 (RFC 4648 section 4, with '=' padding), as the seed API
// carries block data inside JSON.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace pstorage::api {

std::string Base64Encode(std::string_view bytes);
// Strict: only the standard alphabet, no whitespace, padding optional but
// correct when present. kInvalidArgument names the first bad position.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace pstorage::api
