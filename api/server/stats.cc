#include "api/server/stats.h"

namespace pstorage::api {

RequestStats::RequestStats(size_t routes) : n_(routes + 1), slots_(std::make_unique<Slot[]>(routes + 1)) {}

void RequestStats::Record(int route_index, int status, double seconds) {
  size_t i = route_index < 0 || static_cast<size_t>(route_index) >= n_ - 1
                 ? n_ - 1
                 : static_cast<size_t>(route_index);
  Slot& s = slots_[i];
  size_t k = kStatuses.size() - 1;
  for (size_t j = 0; j + 1 < kStatuses.size(); j++) {
    if (kStatuses[j] == status) {
      k = j;
      break;
    }
  }
  s.by_status[k].fetch_add(1, std::memory_order_relaxed);
  size_t b = kBuckets.size();
  for (size_t j = 0; j < kBuckets.size(); j++) {
    if (seconds <= kBuckets[j]) {
      b = j;
      break;
    }
  }
  s.buckets[b].fetch_add(1, std::memory_order_relaxed);
  s.sum_ns.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  s.count.fetch_add(1, std::memory_order_relaxed);
}

uint64_t RequestStats::total() const {
  uint64_t t = 0;
  for (size_t i = 0; i < n_; i++) t += slots_[i].count.load(std::memory_order_relaxed);
  return t;
}

}  // namespace pstorage::api
