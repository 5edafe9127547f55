#include "api/server/router.h"

namespace pstorage::api {

namespace {

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      i++;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool PercentDecode(std::string_view in, std::string* out, bool plus_is_space) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = Hex(in[i + 1]), lo = Hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (in[i] == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

bool ParseQuery(std::string_view query, std::map<std::string, std::string>* out) {
  bool ok = true;
  for (size_t i = 0; i < query.size();) {
    size_t amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(i, amp - i);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string k, v;
      ok = ok && PercentDecode(pair.substr(0, eq), &k, true) &&
           (eq == std::string_view::npos || PercentDecode(pair.substr(eq + 1), &v, true));
      (*out)[k] = v;
    }
    i = amp + 1;
  }
  return ok;
}

bool ParseDecimal(std::string_view s, size_t max_digits, uint64_t* out) {
  if (s.empty() || s.size() > max_digits) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

Router::Router(std::vector<Route> routes) : routes_(std::move(routes)) {
  for (const Route& r : routes_) segments_.push_back(Split(r.pattern));
}

RouteMatch Router::Match(std::string_view method, std::string_view path) const {
  RouteMatch m;
  // A trailing slash is tolerated; an empty segment in the middle is not.
  if (path.find("//") != std::string_view::npos) return m;
  std::vector<std::string> parts = Split(path);
  for (size_t r = 0; r < routes_.size(); r++) {
    const std::vector<std::string>& segs = segments_[r];
    const bool rest = !segs.empty() && segs.back().size() > 3 &&
                      segs.back().compare(segs.back().size() - 2, 2, "*}") == 0;
    if (rest ? parts.size() < segs.size() : segs.size() != parts.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    bool bad_escape = false;
    for (size_t i = 0; i < segs.size() && ok; i++) {
      const std::string& s = segs[i];
      if (rest && i + 1 == segs.size()) {
        // {name*}: the rest of the path, slashes included, decoded.
        // A trailing slash belongs to the value here ("dir/" is its own key).
        std::string joined = parts[i];
        for (size_t j = i + 1; j < parts.size(); j++) joined += "/" + parts[j];
        if (path.back() == '/') joined += '/';
        std::string value;
        const bool decoded = PercentDecode(joined, &value, false);
        bad_escape = bad_escape || !decoded;
        ok = decoded && !value.empty();
        params[s.substr(1, s.size() - 3)] = std::move(value);
      } else if (s.size() > 2 && s.front() == '{' && s.back() == '}') {
        std::string value;
        const bool decoded = PercentDecode(parts[i], &value, false);
        bad_escape = bad_escape || !decoded;
        ok = decoded && !value.empty();
        params[s.substr(1, s.size() - 2)] = std::move(value);
      } else {
        ok = s == parts[i];
      }
    }
    if (!ok) {
      // Every literal segment matched; only a parameter did not decode.
      m.bad_escape = m.bad_escape || bad_escape;
      continue;
    }
    if (routes_[r].method == method) {
      m.index = static_cast<int>(r);
      m.params = std::move(params);
      m.allow.clear();
      return m;
    }
    if (m.allow.find(routes_[r].method) == std::string::npos) {
      m.allow += (m.allow.empty() ? "" : ", ") + routes_[r].method;
    }
  }
  return m;
}

Reply NoRouteReply(const RouteMatch& m, const Request& req) {
  if (m.bad_escape && m.allow.empty()) {
    return ErrorReply(400, "INVALID_ARGUMENT", "malformed percent-escape in the path",
                      req.request_id);
  }
  if (!m.allow.empty()) {
    Reply r = ErrorReply(405, "METHOD_NOT_ALLOWED",
                         req.method + " is not allowed on " + req.path + "; allowed: " + m.allow,
                         req.request_id);
    r.headers.emplace_back("Allow", m.allow);
    return r;
  }
  return ErrorReply(404, "NOT_FOUND", "no such endpoint: " + req.method + " " + req.path,
                    req.request_id);
}

std::vector<Route> AllRoutes() {
  std::vector<Route> routes;
  AddSystemRoutes(&routes);
  AddMetricsRoutes(&routes);
  AddClusterRoutes(&routes);
  AddVolumeRoutes(&routes);
  AddDataRoutes(&routes);
  AddSnapshotRoutes(&routes);
  AddProjectRoutes(&routes);
  AddKvRoutes(&routes);
  return routes;
}

}  // namespace pstorage::api
