#include "bench/tool/rest_api.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace pstorage::bench {
namespace {

uint64_t U64(const rapidjson::Value& obj, const char* a, const char* b = nullptr) {
  if (!obj.IsObject() || !obj.HasMember(a)) return 0;
  const rapidjson::Value& v = obj[a];
  if (b) return U64(v, b);
  return v.IsUint64() ? v.GetUint64() : v.IsNumber() ? static_cast<uint64_t>(v.GetDouble()) : 0;
}

double Dbl(const rapidjson::Value& obj, const char* a, const char* b = nullptr) {
  if (!obj.IsObject() || !obj.HasMember(a)) return 0;
  const rapidjson::Value& v = obj[a];
  if (b) return Dbl(v, b);
  return v.IsNumber() ? v.GetDouble() : 0;
}

}  // namespace

Result<Url> ParseUrl(const std::string& text, const std::string& scheme, int default_port) {
  Url u;
  std::string rest = text;
  size_t sep = rest.find("://");
  if (sep != std::string::npos) {
    u.scheme = rest.substr(0, sep);
    rest = rest.substr(sep + 3);
  } else {
    u.scheme = scheme;
  }
  if (u.scheme != scheme) {
    return Status::InvalidArgument("'" + text + "': expected a " + scheme + ":// URL");
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash + 1);
  size_t colon = authority.rfind(':');
  u.host = authority.substr(0, colon);
  u.port = default_port;
  if (colon != std::string::npos) {
    char* end = nullptr;
    long port = std::strtol(authority.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
      return Status::InvalidArgument("'" + text + "': bad port");
    }
    u.port = static_cast<int>(port);
  }
  if (u.host.empty()) return Status::InvalidArgument("'" + text + "': no host");
  return u;
}

Result<api::HttpResponse> RequestWithRetry(api::HttpClient& client, std::string_view method,
                                           std::string_view target, std::string_view body,
                                           const api::HttpHeaders& headers, uint64_t* throttled) {
  int waited_s = 0;
  for (;;) {
    Result<api::HttpResponse> r = client.Request(method, target, body, headers);
    if (!r.ok() || r->status != 429 || waited_s >= 30) return r;
    (*throttled)++;
    int wait_s = std::atoi(r->Header("retry-after").c_str());
    wait_s = std::clamp(wait_s, 1, 5);
    std::this_thread::sleep_for(std::chrono::seconds(wait_s));
    waited_s += wait_s;
  }
}

std::string DescribeError(const api::HttpResponse& r) {
  std::string out = "HTTP " + std::to_string(r.status);
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  if (!d.HasParseError() && d.IsObject()) {
    if (d.HasMember("code") && d["code"].IsString())
      out += std::string(" ") + d["code"].GetString();
    if (d.HasMember("detail") && d["detail"].IsString()) {
      out += std::string(": ") + d["detail"].GetString();
    } else if (d.HasMember("error") && d["error"].IsString()) {
      out += std::string(": ") + d["error"].GetString();
    }
  }
  return out;
}

RestApi::RestApi(const Url& url, std::string api_key)
    : url_(url), api_key_(std::move(api_key)), client_(url.host, url.port) {
  client_.set_timeout(std::chrono::milliseconds(10000));
}

Result<api::HttpResponse> RestApi::Call(const std::string& method, const std::string& path,
                                        const std::string& body) {
  api::HttpHeaders headers;
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  if (!api_key_.empty()) headers.emplace_back("X-API-Key", api_key_);
  Result<api::HttpResponse> r = client_.Request(method, path, body, headers);
  if (!r.ok()) {
    return Status::IoError(method + " http://" + url_.host + ":" + std::to_string(url_.port) +
                           path + ": " + r.status().message());
  }
  return r;
}

Result<std::string> RestApi::EnsureVolume(const std::string& name, uint64_t size_bytes,
                                          bool* created) {
  *created = false;
  Result<api::HttpResponse> list = Call("GET", "/api/v1/volumes");
  if (!list.ok()) return list.status();
  if (list->status != 200) return Status::IoError("listing volumes: " + DescribeError(*list));
  rapidjson::Document d;
  d.Parse(list->body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("volumes") || !d["volumes"].IsArray()) {
    return Status::IoError("listing volumes: the reply is not a volume list");
  }
  for (const auto& v : d["volumes"].GetArray()) {
    if (!v.HasMember("name") || !v["name"].IsString() || name != v["name"].GetString()) continue;
    if (U64(v, "size_bytes") < size_bytes) {
      return Status::InvalidArgument("volume " + name + " is smaller than --working-set");
    }
    return std::string(v["id"].GetString());
  }
  char body[256];
  snprintf(body, sizeof body, "{\"name\":\"%s\",\"size_gb\":%.17g}", name.c_str(),
           static_cast<double>(size_bytes) / (1ull << 30));
  Result<api::HttpResponse> r = Call("POST", "/api/v1/volumes", body);
  if (!r.ok()) return r.status();
  if (r->status != 201)
    return Status::IoError("creating volume " + name + ": " + DescribeError(*r));
  d.Parse(r->body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("id") || !d["id"].IsString()) {
    return Status::IoError("creating volume " + name + ": no id in the reply");
  }
  *created = true;
  return std::string(d["id"].GetString());
}

Result<std::string> RestApi::Clone(const std::string& volume_id, const std::string& name) {
  Result<api::HttpResponse> r =
      Call("POST", "/api/v1/volumes/" + volume_id + "/clone", "{\"name\":\"" + name + "\"}");
  if (!r.ok()) return r.status();
  if (r->status != 201) return Status::IoError("cloning into " + name + ": " + DescribeError(*r));
  rapidjson::Document d;
  d.Parse(r->body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("id") || !d["id"].IsString()) {
    return Status::IoError("cloning into " + name + ": no id in the reply");
  }
  return std::string(d["id"].GetString());
}

Status RestApi::DeleteVolume(const std::string& volume_id) {
  Result<api::HttpResponse> r = Call("DELETE", "/api/v1/volumes/" + volume_id);
  if (!r.ok()) return r.status();
  if (r->status != 204 && r->status != 404) {
    return Status::IoError("deleting volume: " + DescribeError(*r));
  }
  return Status::Ok();
}

ServerMetrics RestApi::Metrics() {
  ServerMetrics m;
  Result<api::HttpResponse> r = Call("GET", "/api/v1/metrics");
  if (!r.ok() || r->status != 200) return m;
  rapidjson::Document d;
  d.Parse(r->body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("reduction") || !d.HasMember("flash")) {
    return m;
  }
  const rapidjson::Value& red = d["reduction"];
  const rapidjson::Value& fl = d["flash"];
  m.available = true;
  m.logical_bytes_written = U64(red, "bytes", "logical_written");
  m.logical_bytes_live = U64(red, "bytes", "logical_live");
  m.physical_bytes_used = U64(red, "bytes", "physical_used");
  m.zero_blocks = U64(red, "pattern_removal", "zero_blocks_found");
  m.duplicate_blocks = U64(red, "deduplication", "duplicate_blocks");
  m.unique_blocks = U64(red, "deduplication", "unique_blocks");
  m.bytes_saved_pattern = U64(red, "bytes_saved", "pattern");
  m.bytes_saved_dedupe = U64(red, "bytes_saved", "dedupe");
  m.bytes_saved_compression = U64(red, "bytes_saved", "compression");
  m.data_reduction_ratio = Dbl(red, "overall_reduction_ratio");
  m.dedupe_ratio = Dbl(red, "deduplication", "ratio");
  m.compression_ratio = Dbl(red, "compression", "ratio");
  m.host_pages_written = U64(fl, "write_amplification", "host_pages_written");
  m.nand_pages_written = U64(fl, "write_amplification", "nand_pages_written");
  m.write_amplification = Dbl(fl, "write_amplification", "factor");
  m.flash_utilization = Dbl(fl, "capacity", "utilization");
  // The server's CPU time, from the Prometheus exposition.
  Result<api::HttpResponse> p = Call("GET", "/metrics");
  if (p.ok() && p->status == 200) {
    std::istringstream in(p->body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("process_cpu_seconds_total ", 0) == 0) {
        m.cpu_seconds = std::strtod(line.c_str() + 26, nullptr);
      }
    }
  }
  return m;
}

}  // namespace pstorage::bench
