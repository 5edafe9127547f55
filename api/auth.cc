#include "api/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace pstorage::api {
namespace {

constexpr std::string_view kKeyPrefix = "psk_";
constexpr size_t kKeyRandomBytes = 32;  // 256 bits: 43 base64url characters
constexpr std::string_view kHashPrefix = "sha256:";
constexpr size_t kSha256Bytes = 32;
constexpr size_t kHashChars = kHashPrefix.size() + 2 * kSha256Bytes;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "pstorage: fatal: %s\n", what);
  std::abort();
}

// A key or request id from a weaker generator would look fine and be
// guessable, so a failing CSPRNG stops the process instead.
void FillRandom(unsigned char* out, size_t n) {
  while (n > 0) {
    const int chunk = n > INT_MAX ? INT_MAX : static_cast<int>(n);
    if (RAND_bytes(out, chunk) != 1) Die("RAND_bytes failed: no secure random source");
    out += chunk;
    n -= static_cast<size_t>(chunk);
  }
}

std::string Hex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[data[i] >> 4];
    s[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return s;
}

// RFC 4648 section 5 alphabet; no '=' padding so the key is one URL/header-safe token.
std::string Base64Url(const unsigned char* data, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string s;
  s.reserve((n * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    s += kAlphabet[(v >> 18) & 63];
    s += kAlphabet[(v >> 12) & 63];
    s += kAlphabet[(v >> 6) & 63];
    s += kAlphabet[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{data[i]} << 16;
    s += kAlphabet[(v >> 18) & 63];
    s += kAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    s += kAlphabet[(v >> 18) & 63];
    s += kAlphabet[(v >> 12) & 63];
    s += kAlphabet[(v >> 6) & 63];
  }
  return s;
}

}  // namespace

std::string GenerateApiKey() {
  unsigned char raw[kKeyRandomBytes];
  FillRandom(raw, sizeof(raw));
  std::string key(kKeyPrefix);
  key += Base64Url(raw, sizeof(raw));
  OPENSSL_cleanse(raw, sizeof(raw));
  return key;
}

std::string HashApiKey(std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  // Failure here means a broken OpenSSL; an empty or wrong hash would either
  // lock everyone out or be written to the config file, so stop instead.
  if (EVP_Digest(key.data(), key.size(), digest, &digest_len, EVP_sha256(), nullptr) != 1 ||
      digest_len != kSha256Bytes) {
    Die("EVP_Digest(SHA-256) failed");
  }
  std::string hash(kHashPrefix);
  hash += Hex(digest, kSha256Bytes);
  return hash;
}

bool IsValidKeyHash(std::string_view hash) {
  if (hash.size() != kHashChars || hash.substr(0, kHashPrefix.size()) != kHashPrefix) {
    return false;
  }
  for (char c : hash.substr(kHashPrefix.size())) {
    // Lower case only: HashApiKey emits lower case and the comparison is bytewise,
    // so an upper-case hash could never match and must be refused when loaded.
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool VerifyApiKey(std::string_view presented, std::string_view stored_hash) {
  // A missing header arrives as an empty key; it must never authenticate, even
  // against a (mistaken) stored hash of the empty string.
  if (presented.empty() || !IsValidKeyHash(stored_hash)) return false;
  const std::string actual = HashApiKey(presented);
  return CRYPTO_memcmp(actual.data(), stored_hash.data(), kHashChars) == 0;
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  FillRandom(raw.data(), raw.size());
  return Hex(raw.data(), raw.size());
}

}  // namespace pstorage::api
