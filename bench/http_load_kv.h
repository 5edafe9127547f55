// The keys and values of pstorage-http-load's KV scenarios (kv_put, kv_get,
// kv_batch100), so that a read can recompute what it must return.
//
// Key n (0 <= n < Target::kv_keys) is "bench:<n>". Its value at revision rev
// is this compact JSON object, byte for byte as the server stores it (it
// re-serializes values compactly) and returns it in "value":
//
//   {"id":"bench:<n>","rev":<rev>,"data":"<64 lower-case hex digits>"}
//
// where the hex digits are four 64-bit words made from the run's data seed,
// n and rev. About 100 bytes. Setup writes revision 0 of every key; writes
// use revisions from 1, so a read checks whatever revision it finds.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace pstorage::bench {

constexpr uint64_t kKvSetupBatchItems = 500;  // keys per POST /v1/batch/put at setup

// The SplitMix64 finalizer; the block payloads (http_load_driver.cc) use it too.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline void AppendKvKey(uint64_t n, std::string* out) {
  out->append("bench:").append(std::to_string(n));
}

inline void AppendKvValue(uint64_t seed, uint64_t n, uint64_t rev, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("{\"id\":\"");
  AppendKvKey(n, out);
  out->append("\",\"rev\":").append(std::to_string(rev)).append(",\"data\":\"");
  uint64_t s = Mix64(seed ^ Mix64(n) ^ Mix64(~rev));
  for (int word = 0; word < 4; word++) {
    s = Mix64(s);
    for (int shift = 60; shift >= 0; shift -= 4) out->push_back(kHex[(s >> shift) & 15]);
  }
  out->append("\"}");
}

// {"key":"bench:<n>","value":<value>}, an item of POST /v1/batch/put;
// returns the size of the value text.
inline size_t AppendKvItem(uint64_t seed, uint64_t n, uint64_t rev, std::string* out) {
  out->append("{\"key\":\"");
  AppendKvKey(n, out);
  out->append("\",\"value\":");
  const size_t before = out->size();
  AppendKvValue(seed, n, rev, out);
  const size_t value_bytes = out->size() - before;
  out->push_back('}');
  return value_bytes;
}

// The revision written in a value text, or -1 when it has none.
inline int64_t KvValueRevision(std::string_view value) {
  constexpr std::string_view kField = "\"rev\":";
  const size_t at = value.find(kField);
  if (at == std::string_view::npos) return -1;
  const std::string digits(value.substr(at + kField.size(), 20));
  char* end = nullptr;
  const unsigned long long rev = std::strtoull(digits.c_str(), &end, 10);
  return end == digits.c_str() ? -1 : static_cast<int64_t>(rev);
}

}  // namespace pstorage::bench
