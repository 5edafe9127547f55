// API keys: the key and hash formats, and verification against right, wrong,
// empty and malformed inputs.
#include "api/auth.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>

namespace pstorage::api {
namespace {

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

TEST(AuthTest, KeyIsPrefixAnd43Base64UrlCharacters) {
  const std::string key = GenerateApiKey();
  ASSERT_EQ(key.size(), 4u + 43u) << key;
  EXPECT_EQ(key.substr(0, 4), "psk_");
  for (char c : key.substr(4)) EXPECT_TRUE(IsBase64UrlChar(c)) << key;
  EXPECT_EQ(key.find('='), std::string::npos) << "no padding";
}

TEST(AuthTest, KeysAreUnique) {
  std::set<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.insert(GenerateApiKey());
  EXPECT_EQ(keys.size(), 1000u);
}

TEST(AuthTest, KeysUseTheWholeAlphabet) {
  // 42 uniform characters per key (the 43rd carries only 4 bits): over 200 keys
  // a character is missed with probability about 64 * (63/64)^8400, i.e. never.
  std::set<char> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string key = GenerateApiKey();
    seen.insert(key.begin() + 4, key.end());
  }
  EXPECT_EQ(seen.size(), 64u);
}

TEST(AuthTest, HashIsSha256HexOfTheKey) {
  // Known answer: SHA-256("abc").
  EXPECT_EQ(HashApiKey("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string hash = HashApiKey(GenerateApiKey());
  EXPECT_TRUE(IsValidKeyHash(hash)) << hash;
  EXPECT_EQ(hash.size(), 7u + 64u);
}

TEST(AuthTest, HashIsDeterministicAndKeySensitive) {
  const std::string key = GenerateApiKey();
  EXPECT_EQ(HashApiKey(key), HashApiKey(key));
  std::string other = key;
  other.back() = other.back() == 'A' ? 'B' : 'A';
  EXPECT_NE(HashApiKey(key), HashApiKey(other));
}

TEST(AuthTest, VerifyAcceptsOnlyTheRightKey) {
  const std::string key = GenerateApiKey();
  const std::string hash = HashApiKey(key);
  EXPECT_TRUE(VerifyApiKey(key, hash));
  EXPECT_FALSE(VerifyApiKey(GenerateApiKey(), hash));
  EXPECT_FALSE(VerifyApiKey(key.substr(0, key.size() - 1), hash));
  EXPECT_FALSE(VerifyApiKey(key + "x", hash));
  EXPECT_FALSE(VerifyApiKey(hash, hash)) << "the hash is not a key";
}

TEST(AuthTest, VerifyRefusesAnEmptyKey) {
  EXPECT_FALSE(VerifyApiKey("", HashApiKey(GenerateApiKey())));
  // Even against the hash of the empty string: a missing header never authenticates.
  EXPECT_FALSE(VerifyApiKey("", HashApiKey("")));
}

TEST(AuthTest, VerifyRefusesMalformedStoredHashes) {
  const std::string key = GenerateApiKey();
  const std::string hash = HashApiKey(key);
  const std::string hex = hash.substr(7);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& bad : {std::string(), std::string("sha256:"), hex, "sha1:" + hex,
                                 "SHA256:" + hex, "sha256:" + upper, hash + "0", hash.substr(0, 70),
                                 " " + hash, "sha256:" + hex.substr(0, 63) + "g"}) {
    EXPECT_FALSE(IsValidKeyHash(bad)) << bad;
    EXPECT_FALSE(VerifyApiKey(key, bad)) << bad;
  }
}

TEST(AuthTest, RandomHexHasTwoDigitsPerByte) {
  const std::string id = RandomHex(16);
  ASSERT_EQ(id.size(), 32u);
  for (char c : id) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
  EXPECT_NE(RandomHex(16), id);
  EXPECT_EQ(RandomHex(0), "");
  EXPECT_EQ(RandomHex(3).size(), 6u);
}

}  // namespace
}  // namespace pstorage::api
