// Request counters and latency histograms per route, lock-free on the
// request path, rendered with the engine's gauges in Prometheus text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pstorage::api {


class RequestStats {
 public:
  // Statuses counted separately; anything else counts as "other".
  static constexpr std::array<int, 17> kStatuses = {200, 201, 204, 206, 400, 401, 404, 405,
                                                    408, 409, 413, 415, 416, 429, 500, 503, 0};
  // Upper bounds of the latency buckets, seconds.
  static constexpr std::array<double, 12> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                      0.005,  0.01,    0.025,  0.05,  0.1,
                                                      0.5,    2.5};

  // `routes` + 1 slots: the last one is for requests that matched no route.
  explicit RequestStats(size_t routes);
  void Record(int route_index, int status, double seconds);

  struct Slot {
    std::array<std::atomic<uint64_t>, kStatuses.size()> by_status{};
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};  // last: +Inf
    std::atomic<uint64_t> sum_ns{0};
    std::atomic<uint64_t> count{0};
  };
  const Slot& slot(size_t i) const { return slots_[i]; }
  size_t slots() const { return n_; }
  uint64_t total() const;

 private:
  size_t n_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace pstorage::api
