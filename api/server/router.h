// The route table: "METHOD /api/v1/volumes/{volume_id}" patterns mapped to
// handler functions. Matching is by whole path segments; a path that matches
// some pattern under another method is a 405 with the allowed methods.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/server/http_types.h"

namespace pstorage::api {

struct Services;
using HandlerFn = Reply (*)(Services&, const Request&);

// Who may call a route (server.cc enforces it before the handler runs).
enum class Access {
  kOpen,     // anyone (/health, /metrics, /openapi.json)
  kAdmin,    // the admin key
  kProject,  // the admin key or the key of the project named by {project_id};
             // anyone when that project's authentication is disabled
  kKeyed,    // seed-000 routes (/v1/...): any valid key; the project is the
             // key's own, or the default project for the admin key
};

struct Route {
  std::string method;
  std::string pattern;  // segments are literals, {name}, or a final {name*} (the rest of the path)
  HandlerFn handler = nullptr;
  Access access = Access::kAdmin;
};

struct RouteMatch {
  int index = -1;  // into Router::routes(); -1 when nothing matched
  std::map<std::string, std::string> params;
  std::string allow;  // when the path matched only under other methods: "GET, DELETE"
  bool bad_escape = false;  // a route's segments matched but a {param} had a bad %-escape
};

class Router {
 public:
  explicit Router(std::vector<Route> routes);
  RouteMatch Match(std::string_view method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // per route
};

// The reply for a request that matched no route: 400 for a malformed
// percent-escape, 405 with `Allow` when the path exists under other
// methods, else 404.
Reply NoRouteReply(const RouteMatch& m, const Request& req);

// Every route the server serves (defined by the routes_*.cc files).
std::vector<Route> AllRoutes();
void AddVolumeRoutes(std::vector<Route>* routes);
void AddDataRoutes(std::vector<Route>* routes);
void AddSnapshotRoutes(std::vector<Route>* routes);
void AddSystemRoutes(std::vector<Route>* routes);
void AddMetricsRoutes(std::vector<Route>* routes);
void AddClusterRoutes(std::vector<Route>* routes);
void AddProjectRoutes(std::vector<Route>* routes);
void AddKvRoutes(std::vector<Route>* routes);

// Percent-decodes; false on a malformed escape. '+' is a space in query
// strings only.
bool PercentDecode(std::string_view in, std::string* out, bool plus_is_space);

// Splits "a=1&b=x%20y" (no leading '?') into decoded pairs; false on a
// malformed percent-escape (the pairs decoded so far are kept).
bool ParseQuery(std::string_view query, std::map<std::string, std::string>* out);

// A decimal of at most `max_digits` digits and nothing else.
bool ParseDecimal(std::string_view s, size_t max_digits, uint64_t* out);

}  // namespace pstorage::api
