// GET /metrics: Prometheus text exposition format 0.0.4. A fixed, documented
// set: HTTP requests and latency per route, engine space and reduction
// gauges, flash health and traffic. See docs/operations.md.
#pragma once

#include <string>

namespace pstorage::api {

struct Services;
std::string RenderPrometheus(Services& s);

}  // namespace pstorage::api
