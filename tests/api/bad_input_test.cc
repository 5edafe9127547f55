// Malformed requests: each gets the right 4xx with the one JSON error shape,
// changes nothing, and leaves the server healthy.
#include <gtest/gtest.h>

#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

struct BadCase {
  const char* what;
  const char* method;
  std::string target;  // "{vol}" is replaced by a real volume id, "{snap}" by a snapshot id
  std::string body;
  int status;
  const char* content_type = "application/json";
};

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

std::vector<BadCase> Cases() {
  std::string deep(100, '[');
  std::string big_name(256, 'n');
  return {
      {"empty body", "POST", "/api/v1/volumes", "", 400},
      {"not JSON", "POST", "/api/v1/volumes", "name=x", 400},
      {"truncated JSON", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1)", 400},
      {"trailing garbage", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1}garbage)", 400},
      {"two documents", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1}{})", 400},
      {"array root", "POST", "/api/v1/volumes", R"([{"name": "x", "size_gb": 1}])", 400},
      {"deep nesting", "POST", "/api/v1/volumes", "{\"tags\": " + deep + "}", 400},
      {"invalid UTF-8", "POST", "/api/v1/volumes", "{\"name\": \"\xff\xfe\", \"size_gb\": 1}", 400},
      {"missing name", "POST", "/api/v1/volumes", R"({"size_gb": 1})", 400},
      {"missing size", "POST", "/api/v1/volumes", R"({"name": "x"})", 400},
      {"size as string", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": "1"})", 400},
      {"negative size", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": -1})", 400},
      {"zero size", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 0})", 400},
      {"huge size", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1e300})", 400},
      {"size over 1024", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1025})", 400},
      {"name not a string", "POST", "/api/v1/volumes", R"({"name": 5, "size_gb": 1})", 400},
      {"empty name", "POST", "/api/v1/volumes", R"({"name": "", "size_gb": 1})", 400},
      {"name too long", "POST", "/api/v1/volumes", "{\"name\": \"" + big_name + "\", \"size_gb\": 1}", 400},
      {"path in name", "POST", "/api/v1/volumes", R"({"name": "../etc/passwd", "size_gb": 1})", 400},
      {"slash in name", "POST", "/api/v1/volumes", R"({"name": "a/b", "size_gb": 1})", 400},
      {"NUL in name", "POST", "/api/v1/volumes", "{\"name\": \"a\\u0000b\", \"size_gb\": 1}", 400},
      {"unknown field", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1, "sise": 2})", 400},
      {"duplicate field", "POST", "/api/v1/volumes", R"({"name": "x", "name": "y", "size_gb": 1})", 400},
      {"tags not object", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1, "tags": [1]})", 400},
      {"tag value not string", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1, "tags": {"a": 1}})", 400},
      {"name taken", "POST", "/api/v1/volumes", R"({"name": "victim", "size_gb": 1})", 409},
      {"wrong content type", "POST", "/api/v1/volumes", R"({"name": "x", "size_gb": 1})", 400, "text/plain"},
      {"unknown volume", "GET", "/api/v1/volumes/00000000-0000-0000-0000-000000000000", "", 404},
      {"path trick id", "GET", "/api/v1/volumes/..%2F..%2Fetc", "", 404},
      {"unknown route", "GET", "/api/v1/nothing", "", 404},
      {"wrong method", "PATCH", "/api/v1/volumes", "", 405},
      {"unaligned write offset", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": 100, "data": "AAAA"})", 400},
      {"negative offset", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": -4096, "data": "AAAA"})", 400},
      {"float offset", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": 4096.0, "data": "AAAA"})", 400},
      {"offset past 2^64", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": 18446744073709551616, "data": "AAAA"})", 400},
      {"offset past end", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": 1073741824, "data": "AAAA"})", 400},
      {"invalid base64", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": 0, "data": "!!!!"})", 400},
      {"base64 bad padding", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": 0, "data": "AAA=A"})", 400},
      {"empty data", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": 0, "data": ""})", 400},
      {"data not string", "POST", "/api/v1/volumes/{vol}/write", R"({"offset": 0, "data": 12})", 400},
      {"write to unknown volume", "POST", "/api/v1/volumes/nope/write", R"({"offset": 0, "data": "AAAA"})", 404},
      {"read offset not a number", "GET", "/api/v1/volumes/{vol}/read?offset=abc", "", 400},
      {"read negative offset", "GET", "/api/v1/volumes/{vol}/read?offset=-1", "", 400},
      {"read zero length", "GET", "/api/v1/volumes/{vol}/read?length=0", "", 400},
      {"read too long", "GET", "/api/v1/volumes/{vol}/read?length=999999999", "", 400},
      {"read past end", "GET", "/api/v1/volumes/{vol}/read?offset=1073741824", "", 400},
      {"bad percent escape", "GET", "/api/v1/volumes/{vol}/read?offset=%zz", "", 400},
      {"raw put wrong type", "PUT", "/api/v1/volumes/{vol}/data?offset=0", std::string(4096, 'a'), 415},
      {"raw put unaligned length", "PUT", "/api/v1/volumes/{vol}/data?offset=0", std::string(100, 'a'), 400, "application/octet-stream"},
      {"raw put unaligned offset", "PUT", "/api/v1/volumes/{vol}/data?offset=1", std::string(4096, 'a'), 400, "application/octet-stream"},
      {"raw put no offset", "PUT", "/api/v1/volumes/{vol}/data", std::string(4096, 'a'), 400, "application/octet-stream"},
      {"raw put too large", "PUT", "/api/v1/volumes/{vol}/data?offset=0", std::string(300 << 10, 'a'), 413, "application/octet-stream"},
      {"base64 data too large", "POST", "/api/v1/volumes/{vol}/write", "{\"offset\": 0, \"data\": \"" + std::string(400 << 10, 'A') + "\"}", 413},
      {"shrink", "POST", "/api/v1/volumes/{vol}/resize", R"({"size_gb": 0.5})", 409},
      {"resize same size", "POST", "/api/v1/volumes/{vol}/resize", R"({"size_gb": 1})", 409},
      {"resize bad type", "POST", "/api/v1/volumes/{vol}/resize", R"({"size_gb": true})", 400},
      {"clone without name", "POST", "/api/v1/volumes/{vol}/clone", R"({})", 400},
      {"clone name taken", "POST", "/api/v1/volumes/{vol}/clone", R"({"name": "victim"})", 409},
      {"update bad name", "PUT", "/api/v1/volumes/{vol}", R"({"name": "has space"})", 400},
      {"update null name", "PUT", "/api/v1/volumes/{vol}", R"({"name": null})", 400},
      {"snapshot bad name", "POST", "/api/v1/volumes/{vol}/snapshots", R"({"name": "a b"})", 400},
      {"snapshot name taken", "POST", "/api/v1/volumes/{vol}/snapshots", R"({"name": "snap"})", 409},
      {"snapshot of unknown volume", "POST", "/api/v1/volumes/nope/snapshots", R"({"name": "s"})", 404},
      {"snapshot on other volume", "GET", "/api/v1/volumes/{other}/snapshots/{snap}", "", 404},
      {"restore target unknown", "POST", "/api/v1/volumes/{vol}/snapshots/{snap}/restore", R"({"target_volume_id": "nope"})", 404},
      {"restore both target and name", "POST", "/api/v1/volumes/{vol}/snapshots/{snap}/restore", R"({"target_volume_id": "{vol}", "name": "n"})", 400},
      {"delete volume with snapshot", "DELETE", "/api/v1/volumes/{vol}", "", 409},
      {"list bad limit", "GET", "/api/v1/snapshots?limit=5000", "", 400},
      {"cursor overflowing int64", "GET", "/api/v1/volumes?limit=2&cursor=9999999999999999999_x", "", 400},
      {"non-UTF-8 id", "GET", "/api/v1/volumes/%FF%FE", "", 404},
  };
}

TEST(BadInputTest, EveryCaseGetsItsStatusAndChangesNothing) {
  ServerOptions o;
  o.max_body_bytes = 256 << 10;
  ServerProcess server("bad", o);
  ASSERT_TRUE(server.Start());
  HttpResponse v = server.Call("POST", "/api/v1/volumes", R"({"name": "victim", "size_gb": 1})");
  ASSERT_EQ(201, v.status);
  std::string vol = Json(v)["id"].GetString();
  HttpResponse ov = server.Call("POST", "/api/v1/volumes", R"({"name": "other", "size_gb": 1})");
  std::string other = Json(ov)["id"].GetString();
  std::string block(4096, 'k');
  ASSERT_EQ(200, server.Call("PUT", "/api/v1/volumes/" + vol + "/data?offset=0", block,
                             {{"Content-Type", "application/octet-stream"}})
                     .status);
  HttpResponse sn = server.Call("POST", "/api/v1/volumes/" + vol + "/snapshots", R"({"name": "snap"})");
  ASSERT_EQ(201, sn.status);
  std::string snap = Json(sn)["id"].GetString();
  std::string before_vols = server.Call("GET", "/api/v1/volumes").body;
  std::string before_snaps = server.Call("GET", "/api/v1/snapshots").body;

  std::vector<BadCase> cases = Cases();
  ASSERT_GE(cases.size(), 40u);
  for (const BadCase& c : cases) {
    std::string target = Replace(Replace(Replace(c.target, "{vol}", vol), "{snap}", snap), "{other}", other);
    std::string body = Replace(c.body, "{vol}", vol);
    HttpHeaders h;
    if (!body.empty()) h.emplace_back("Content-Type", c.content_type);
    HttpResponse r = server.Call(c.method, target, body, h);
    EXPECT_EQ(c.status, r.status) << c.what << ": " << r.body;
    rapidjson::Document e;
    e.Parse<rapidjson::kParseValidateEncodingFlag>(r.body.data(), r.body.size());
    ASSERT_FALSE(e.HasParseError()) << c.what << ": not valid JSON / UTF-8: " << r.body;
    ASSERT_TRUE(e.IsObject()) << c.what;
    for (const char* k : {"error", "code", "detail", "request_id", "timestamp"}) {
      EXPECT_TRUE(e.HasMember(k) && e[k].IsString()) << c.what << " lacks " << k << ": " << r.body;
    }
    EXPECT_EQ(r.Header("x-request-id"), e["request_id"].GetString()) << c.what;
    ASSERT_EQ(200, server.Call("GET", "/health", {}, {}, false).status) << "after " << c.what;
  }
  // Nothing changed: same volumes (times included), same snapshots, same data.
  EXPECT_EQ(before_vols, server.Call("GET", "/api/v1/volumes").body);
  EXPECT_EQ(before_snaps, server.Call("GET", "/api/v1/snapshots").body);
  EXPECT_EQ(block, server.Call("GET", "/api/v1/volumes/" + vol + "/data?offset=0").body);
  EXPECT_EQ(0, server.Stop());
}

// Pistache reserves a body's declared Content-Length (and a chunk's declared
// size) before reading it; a 100 GB or 1 TB claim fails that allocation and
// the request is dropped. Under AddressSanitizer a failed allocation aborts
// the process instead, so the sanitizer build claims 2 GB (reserved, never
// touched).
#if defined(__SANITIZE_ADDRESS__)
const std::string kHugeLength = "2000000000";
const std::string kHugeChunk = "7FFFFFFF";
#else
const std::string kHugeLength = "99999999999";
const std::string kHugeChunk = "FFFFFFFFFF";
#endif

TEST(BadInputTest, MalformedHttpNeverKillsTheServer) {
  ServerOptions o;
  o.max_body_bytes = 64 << 10;
  ServerProcess server("badhttp", o);
  ASSERT_TRUE(server.Start());
  const std::string raw[] = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      "POST /api/v1/volumes HTTP/1.1\r\nHost: x\r\nContent-Length: " + kHugeLength + "\r\n\r\n{}",
      "POST /api/v1/volumes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
      kHugeChunk + "\r\nabc\r\n",
      "GET /health HTTP/1.1\r\n" + std::string(1 << 20, 'X') + ": y\r\n\r\n",
      "POST /api/v1/volumes HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
  };
  for (const std::string& bytes : raw) {
    HttpClient c("127.0.0.1", server.port());
    c.set_timeout(std::chrono::milliseconds(1500));
    Result<HttpResponse> r = c.RawExchange(bytes);
    if (r.ok()) {
      EXPECT_GE(r->status, 400) << bytes.substr(0, 90);
    } else {
      // Pistache gives no answer to some garbage (it waits for more bytes
      // until its timeout); what matters is that the server lives on.
      std::printf("no response to %s: %s\n", bytes.substr(0, 40).c_str(),
                  r.status().ToString().c_str());
    }
    ASSERT_EQ(200, server.Call("GET", "/health", {}, {}, false).status) << bytes.substr(0, 60);
  }
  // A body past Pistache's own limit is refused too.
  std::string huge(2 << 20, 'a');
  HttpResponse r = server.Call("PUT", "/api/v1/volumes/x/data?offset=0", huge,
                               {{"Content-Type", "application/octet-stream"}});
  EXPECT_EQ(413, r.status);
  // Pistache answers before reading the rest of such a body and keeps the
  // connection; a client must not reuse it, so ask on a new one.
  HttpClient fresh("127.0.0.1", server.port());
  Result<HttpResponse> h = fresh.Request("GET", "/health");
  ASSERT_OK(h.status());
  EXPECT_EQ(200, h->status);
  EXPECT_EQ(0, server.Stop());
}

}  // namespace
}  // namespace pstorage::api::testing
