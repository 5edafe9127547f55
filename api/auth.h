// API keys: generation, hashing and constant-time verification.
//
// A key is "psk_" followed by 43 URL-safe base64 characters (32 random bytes
// from the OpenSSL CSPRNG). Only its hash is stored: "sha256:" + 64 lower-case
// hex digits of SHA-256(key). Keys are random 256-bit strings, so an unsalted
// fast hash is enough: there is nothing to brute-force from a dictionary.
//
// All functions are thread-safe. A failing CSPRNG or SHA-256 aborts the
// process: there is no safe fallback.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pstorage::api {

std::string GenerateApiKey();
std::string HashApiKey(std::string_view key);
// True when `presented` hashes to `stored_hash`. The comparison of the
// hashes takes the same time whatever they contain (CRYPTO_memcmp). False
// for an empty `presented` key and for a malformed `stored_hash`.
bool VerifyApiKey(std::string_view presented, std::string_view stored_hash);
// Whether `hash` has the "sha256:<64 lower-case hex>" shape.
bool IsValidKeyHash(std::string_view hash);
// `bytes` random bytes as 2 * `bytes` lower-case hex digits (request ids use
// 16 bytes: 32 digits).
std::string RandomHex(size_t bytes);

}  // namespace pstorage::api
