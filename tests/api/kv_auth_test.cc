// The auth matrix of the KV HTTP API: every route kind (admin, project,
// seed 000) called by every kind of caller (admin key, own or other project
// key, no key, wrong key, projects with authentication off), with global
// authentication on and off; and a config whose keys name two callers.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <string>

#include "tests/api/kv_test_util.h"

namespace pstorage::api::testing {
namespace {

// The status line (and headers) of a streamed reply, read from a raw
// socket that is closed right after: HttpClient would wait for the end of
// an endless stream.
int StreamStatus(int port, const std::string& target, const std::string& key, std::string* head) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!key.empty()) req += "X-API-Key: " + key + "\r\n";
  req += "\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  *head = got;
  if (got.size() < 12 || got.compare(0, 9, "HTTP/1.1 ") != 0) return -1;
  return std::atoi(got.substr(9, 3).c_str());
}

enum class RouteKind { kAdmin, kProject, kSeed };

struct Caller {
  std::string name;
  std::string key;
  std::string project;             // the project the project routes act on
  int admin, project_route, seed;  // expected status class: 2 = success, or 401 / 403
};

class AuthMatrix {
 public:
  explicit AuthMatrix(ServerProcess& s) : s_(s) {}

  // Calls every route as `c` and checks the outcome.
  void Check(const Caller& c) {
    SCOPED_TRACE(c.name);
    // Admin-only routes.
    Expect(c, c.admin, "GET /api/v1/projects", s_.CallAs(c.key, "GET", "/api/v1/projects"), 200);
    const std::string id = "made" + std::to_string(n_++);
    HttpResponse create = s_.CallAs(c.key, "POST", "/api/v1/projects", "{\"id\": \"" + id + "\"}");
    Expect(c, c.admin, "POST /api/v1/projects", create, 201);
    if (c.admin != 2) {
      EXPECT_EQ(404, s_.Call("GET", "/api/v1/projects/" + id).status);
    }
    const std::string victim = Victim();
    Expect(c, c.admin, "regenerate",
           s_.CallAs(c.key, "POST", "/api/v1/projects/" + victim + "/api-key/regenerate"), 200);
    Expect(c, c.admin, "DELETE project", s_.CallAs(c.key, "DELETE", "/api/v1/projects/" + victim),
           204);
    if (c.admin != 2) {
      EXPECT_EQ(200, s_.Call("GET", "/api/v1/projects/" + victim).status);
    }
    Expect(c, c.admin, "GET /api/v1/volumes", s_.CallAs(c.key, "GET", "/api/v1/volumes"), 200);

    // Project routes.
    const std::string p = "/api/v1/projects/" + c.project;
    const int pr = c.project_route;
    Expect(c, pr, "GET project", s_.CallAs(c.key, "GET", p), 200);
    Expect(c, pr, "PUT project",
           s_.CallAs(c.key, "PUT", p, R"({"storage": {"cache_in_memory": true}})"), 200);
    Expect(c, pr, "GET keys", s_.CallAs(c.key, "GET", p + "/keys"), 200);
    const std::string fresh = "m" + std::to_string(n_++);
    Expect(c, pr, "PUT key", s_.CallAs(c.key, "PUT", p + "/keys/" + fresh, R"({"value": 1})"), 201);
    if (pr != 2) {
      EXPECT_EQ(404, s_.Call("GET", p + "/keys/" + fresh).status);
    }
    Expect(c, pr, "POST key",
           s_.CallAs(c.key, "POST", p + "/keys/" + fresh + "p", R"({"value": 1})"), 201);
    Expect(c, pr, "GET key", s_.CallAs(c.key, "GET", p + "/keys/fixed"), 200);
    Expect(c, pr, "HEAD key", s_.CallAs(c.key, "HEAD", p + "/keys/fixed"), 200);
    EXPECT_EQ(201, s_.Call("PUT", p + "/keys/d" + fresh, R"({"value": 1})").status);
    Expect(c, pr, "DELETE key", s_.CallAs(c.key, "DELETE", p + "/keys/d" + fresh), 200);
    if (pr != 2) {
      EXPECT_EQ(200, s_.Call("GET", p + "/keys/d" + fresh).status);
    }
    Expect(c, pr, "batch get", s_.CallAs(c.key, "POST", p + "/batch/get", R"({"keys": ["fixed"]})"),
           200);
    Expect(c, pr, "batch put",
           s_.CallAs(c.key, "POST", p + "/batch/put",
                     "{\"items\": [{\"key\": \"b" + fresh + "\", \"value\": 1}]}"),
           200);
    Expect(c, pr, "transaction",
           s_.CallAs(c.key, "POST", p + "/transaction",
                     "{\"operations\": [{\"type\": \"put\", \"key\": \"t" + fresh +
                         "\", \"value\": 1}]}"),
           200);
    Expect(c, pr, "stats", s_.CallAs(c.key, "GET", p + "/stats"), 200);
    ExpectStream(c, pr, "watch", p + "/watch/x");

    // Seed-000 routes.
    const int sd = c.seed;
    Expect(c, sd, "GET /v1/keys", s_.CallAs(c.key, "GET", "/v1/keys"), 200);
    Expect(c, sd, "PUT /v1/keys", s_.CallAs(c.key, "PUT", "/v1/keys/s" + fresh, R"({"value": 1})"),
           201);
    Expect(c, sd, "GET /v1/keys/fixed", s_.CallAs(c.key, "GET", "/v1/keys/fixed"), 200);
    Expect(c, sd, "/v1/batch/get", s_.CallAs(c.key, "POST", "/v1/batch/get", R"({"keys": ["a"]})"),
           200);
    Expect(c, sd, "/v1/transaction",
           s_.CallAs(c.key, "POST", "/v1/transaction",
                     R"({"operations": [{"type": "delete", "key": "nothing"}]})"),
           200);
    ExpectStream(c, sd, "/v1/watch", "/v1/watch/x");
  }

 private:
  std::string Victim() {
    const std::string id = "victim" + std::to_string(n_++);
    EXPECT_EQ(201, s_.Call("POST", "/api/v1/projects", "{\"id\": \"" + id + "\"}").status);
    return id;
  }

  void Expect(const Caller& c, int want, const char* what, const HttpResponse& r, int ok) {
    if (want == 2) {
      EXPECT_EQ(ok, r.status) << c.name << " " << what << ": " << r.body;
      return;
    }
    EXPECT_EQ(want, r.status) << c.name << " " << what << ": " << r.body;
    if (r.status == 401) {
      EXPECT_FALSE(r.Header("www-authenticate").empty()) << c.name << " " << what;
      if (!r.body.empty()) {
        EXPECT_STREQ("UNAUTHORIZED", Json(r)["code"].GetString());
      }
    }
    if (r.status == 403 && !r.body.empty()) {
      EXPECT_STREQ("FORBIDDEN", Json(r)["code"].GetString());
    }
  }

  void ExpectStream(const Caller& c, int want, const char* what, const std::string& target) {
    std::string head;
    const int status = StreamStatus(s_.port(), target, c.key, &head);
    EXPECT_EQ(want == 2 ? 200 : want, status) << c.name << " " << what << ": " << head;
    if (status == 401) {
      std::string lower = head;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      EXPECT_TRUE(Contains(lower, "www-authenticate:")) << head;
    }
  }

  ServerProcess& s_;
  int n_ = 0;
};

TEST_F(KvApiTest, AuthMatrixOfRouteKindsAndCallers) {
  for (const char* p : {"p1", "p2", "open"}) {
    ASSERT_EQ(201, s().Call("PUT", std::string("/api/v1/projects/") + p + "/keys/fixed",
                            R"({"value": "f"})")
                       .status);
  }
  AuthMatrix m(s());
  const Caller callers[] = {
      {"admin key", kTestKey, "p1", 2, 2, 2},
      {"own project key", kP1Key, "p1", 403, 2, 2},
      {"other project's key", kP2Key, "p1", 403, 403, 2},
      {"no key", "", "p1", 401, 401, 401},
      {"wrong key", kWrongKey, "p1", 401, 401, 401},
      {"no key, project with auth disabled", "", "open", 401, 2, 401},
      {"other key, project with auth disabled", kP1Key, "open", 403, 2, 2},
  };
  for (const Caller& c : callers) m.Check(c);
  // /v1 with p2's key wrote into p2, with p1's into p1: never into "open".
  EXPECT_EQ(3u, Json(s().Call("GET", "/api/v1/projects/p1/keys?prefix=sm"))["items"].Size());
  EXPECT_EQ(1u, Json(s().Call("GET", "/api/v1/projects/p2/keys?prefix=sm"))["items"].Size());
  EXPECT_EQ(0u, Json(s().Call("GET", "/api/v1/projects/open/keys?prefix=sm"))["items"].Size());
  EXPECT_EQ(200, s().Call("GET", "/health", {}, {}, false).status);
}

TEST(KvAuthTest, GlobalAuthenticationDisabledOpensEveryRoute) {
  ServerOptions o = KvOptions();
  o.auth = false;
  ServerProcess server("kv-globaloff", o);
  ASSERT_TRUE(server.Start());
  for (const char* p : {"p1", "p2", "open"}) {
    ASSERT_EQ(201, server
                       .CallAs("", "PUT", std::string("/api/v1/projects/") + p + "/keys/fixed",
                               R"({"value": "f"})")
                       .status);
  }
  AuthMatrix m(server);
  m.Check({"global auth off, no key", "", "p1", 2, 2, 2});
  m.Check({"global auth off, no key, p2", "", "p2", 2, 2, 2});
  // Without a key, /v1 acts on the first project.
  HttpResponse r = server.CallAs("", "PUT", "/v1/keys/where", R"({"value": 1})");
  ASSERT_EQ(201, r.status);
  EXPECT_EQ(200, server.CallAs("", "GET", "/api/v1/projects/p1/keys/where").status);
  EXPECT_EQ(404, server.CallAs("", "GET", "/api/v1/projects/p2/keys/where").status);
  EXPECT_EQ(0, server.Stop());
}

// A key identifies one caller. Two projects given the same key in
// config.json (an entry copied with its key, say) would make that key open
// one of them and be refused by the other; a project key equal to the admin
// key would make the project's users admins. The server must refuse to
// start on such a file rather than guess.
TEST(KvConfigTest, AKeySharedByTwoCallersIsRefusedAtStart) {
  {
    ServerOptions o;
    o.projects_json =
        "[" + ProjectEntry("p1", "same-key-123") + ", " + ProjectEntry("p2", "same-key-123") + "]";
    ServerProcess server("kv-dupkey", o);
    EXPECT_FALSE(server.Start()) << "started with two projects sharing one key";
    if (server.Alive()) {
      // What its users then see: p1's configured key is refused by p1.
      HttpResponse r = server.CallAs("same-key-123", "GET", "/api/v1/projects/p1/keys");
      EXPECT_EQ(200, r.status) << r.body;
    }
  }
  {
    ServerOptions o;
    o.projects_json = "[" + ProjectEntry("p1", kTestKey) + "]";
    ServerProcess server("kv-adminkey", o);
    EXPECT_FALSE(server.Start()) << "started with a project key equal to the admin key";
  }
}

}  // namespace
}  // namespace pstorage::api::testing
