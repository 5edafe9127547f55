// Watch streams (Server-Sent Events) read from a raw socket: the seed's
// exact event lines, in commit order, filtered by prefix and event type;
// expirations; the end of the stream when the project is deleted; and a
// server that stays healthy and fast when watchers vanish or never read.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "tests/api/server_harness.h"

namespace pstorage::api::testing {
namespace {

const std::string kP1Key = "p1-key-0123456789abcdefABCDEF";
const std::string kP2Key = "p2-key-0123456789abcdefABCDEF";

ServerOptions Options() {
  ServerOptions o;
  o.projects_json = "[" + ProjectEntry("p1", kP1Key) + ", " + ProjectEntry("p2", kP2Key) + "]";
  o.kv_expiry_interval_ms = 100;
  return o;
}

struct Event {
  std::string type;  // "put" or "delete"
  std::string data;  // the JSON after "data: "
};

// A client of one watch stream: sends the request, checks the status line,
// then decodes the chunked body into SSE events.
class SseClient {
 public:
  SseClient(int port, const std::string& target, const std::string& key) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return;
    }
    std::string req =
        "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    if (!key.empty()) req += "X-API-Key: " + key + "\r\n";
    req += "\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      Close();
    }
  }
  ~SseClient() { Close(); }
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  // Reads the status line and headers; the status code, or -1.
  int ReadHead(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t end;
    while ((end = raw_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) return -1;
    }
    head_ = raw_.substr(0, end + 4);
    raw_.erase(0, end + 4);
    if (head_.size() < 12 || head_.compare(0, 9, "HTTP/1.1 ") != 0) return -1;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
      if (head_[i] < '0' || head_[i] > '9') return -1;
      status = status * 10 + (head_[i] - '0');
    }
    return status;
  }
  const std::string& head() const { return head_; }

  // The next event, skipping comments (": keep-alive"); nullopt when none
  // arrives by the deadline or the stream ended.
  std::optional<Event> Next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      size_t end = text_.find("\n\n");
      if (end != std::string::npos) {
        std::string block = text_.substr(0, end);
        text_.erase(0, end + 2);
        Event ev;
        bool comment_only = true;
        size_t at = 0;
        while (at <= block.size()) {
          size_t nl = block.find('\n', at);
          if (nl == std::string::npos) nl = block.size();
          std::string line = block.substr(at, nl - at);
          at = nl + 1;
          if (line.empty() || line[0] == ':') continue;
          comment_only = false;
          if (line.rfind("event: ", 0) == 0) {
            ev.type = line.substr(7);
          } else if (line.rfind("data: ", 0) == 0) {
            ev.data = line.substr(6);
          } else {
            ADD_FAILURE() << "unexpected SSE line: " << line;
          }
        }
        if (!comment_only) return ev;
        continue;
      }
      if (ended_ || !DecodeChunks(deadline)) return std::nullopt;
    }
  }

  // True once the final chunk (or EOF) arrives before the deadline.
  bool WaitEnd(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!ended_) {
      if (!DecodeChunks(deadline)) return ended_;
    }
    return true;
  }

  bool ended() const { return ended_; }
  std::string comments() const { return seen_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes with a TCP reset instead of a FIN: the server's next write fails.
  void Reset() {
    if (fd_ >= 0) {
      linger l{1, 0};
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    Close();
  }

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline) {
    if (fd_ < 0) return false;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 200)));
      if (n <= 0) continue;
      char buf[65536];
      ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
      if (got <= 0) {
        eof_ = true;
        return false;
      }
      raw_.append(buf, static_cast<size_t>(got));
      return true;
    }
  }

  static bool ParseHex(const std::string& s, size_t* out) {
    if (s.empty() || s.size() > 8) return false;
    size_t v = 0;
    for (char c : s) {
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return false;
      v = v * 16 + static_cast<size_t>(d);
    }
    *out = v;
    return true;
  }

  // Moves whole chunks from raw_ to text_ (reading the head first if it was
  // not); false when no progress by the deadline.
  bool DecodeChunks(std::chrono::steady_clock::time_point deadline) {
    if (head_.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (ReadHead(left) != 200) {
        ended_ = true;
        return false;
      }
    }
    for (;;) {
      size_t crlf = raw_.find("\r\n");
      if (crlf != std::string::npos) {
        size_t size = 0;
        if (!ParseHex(raw_.substr(0, crlf), &size)) {
          ADD_FAILURE() << "bad chunk size line: " << raw_.substr(0, 80);
          ended_ = true;
          return false;
        }
        if (size == 0) {
          ended_ = true;
          return true;
        }
        if (raw_.size() >= crlf + 2 + size + 2) {
          std::string data = raw_.substr(crlf + 2, size);
          EXPECT_EQ("\r\n", raw_.substr(crlf + 2 + size, 2)) << "bad chunk framing";
          raw_.erase(0, crlf + 2 + size + 2);
          seen_ += data;
          text_ += data;
          return true;
        }
      }
      if (!Fill(deadline)) {
        if (eof_) ended_ = true;
        return false;
      }
    }
  }

  int fd_ = -1;
  std::string raw_;   // bytes received, not yet decoded
  std::string head_;  // status line and headers
  std::string text_;  // decoded body, not yet split into events
  std::string seen_;  // every decoded byte
  bool ended_ = false;
  bool eof_ = false;
};

class KvWatchTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()); }
  void TearDown() override {
    if (server_.Alive()) {
      EXPECT_EQ(0, server_.Stop()) << server_.stderr_text();
    }
    const std::string err = server_.stderr_text();
    EXPECT_EQ(std::string::npos, err.find("terminate")) << err.substr(0, 2000);
    EXPECT_EQ(std::string::npos, err.find("abort")) << err.substr(0, 2000);
  }

  // Opens a watch and waits for its 200 and first bytes.
  std::unique_ptr<SseClient> Open(const std::string& target, const std::string& key = kP1Key) {
    auto c = std::make_unique<SseClient>(server_.port(), target, key);
    const int status = c->ReadHead();
    EXPECT_EQ(200, status) << c->head();
    std::string lower = c->head();
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_NE(std::string::npos, lower.find("content-type: text/event-stream")) << c->head();
    EXPECT_NE(std::string::npos, lower.find("transfer-encoding: chunked")) << c->head();
    return c;
  }

  HttpResponse Put(const std::string& key, const std::string& body,
                   const std::string& api_key = kP1Key) {
    return server_.CallAs(api_key, "PUT", "/v1/keys/" + UrlEncode(key), body);
  }

  ServerProcess server_{
      "kvwatch-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()),
      Options()};
};

void ExpectEvent(SseClient& c, const std::string& type, const std::string& data) {
  std::optional<Event> ev = c.Next();
  ASSERT_TRUE(ev.has_value()) << "no event; expected " << type << " " << data;
  EXPECT_EQ(type, ev->type);
  EXPECT_EQ(data, ev->data);
}

TEST_F(KvWatchTest, EventsArriveInOrderInTheSeedFormat) {
  auto w = Open("/v1/watch/user:?events=put,delete&include_values=true");
  ASSERT_EQ(201, Put("user:123", R"({"value": "John Doe"})").status);
  ASSERT_EQ(200, Put("user:123", R"({"value": "John Doe"})").status);
  ASSERT_EQ(201, Put("user:456", R"({"value": {"name": "Jane", "tags": [1, 2]}})").status);
  ASSERT_EQ(200, server_.CallAs(kP1Key, "DELETE", "/v1/keys/user:456").status);
  ASSERT_EQ(201, Put("user:789", R"({"value": "New User"})").status);
  ASSERT_EQ(200, server_
                     .CallAs(kP1Key, "POST", "/v1/batch/put",
                             R"({"items": [{"key": "user:b1", "value": null},
                                              {"key": "other", "value": 0},
                                              {"key": "user:b2", "value": [true]}]})")
                     .status);
  const char* txn = R"({"operations": [{"type": "delete", "key": "user:b1"},
                                       {"type": "put", "key": "user:t", "value": 1.5}]})";
  ASSERT_EQ(200, server_.CallAs(kP1Key, "POST", "/v1/transaction", txn).status);
  ExpectEvent(*w, "put", R"({"key":"user:123","value":"John Doe","version":1})");
  ExpectEvent(*w, "put", R"({"key":"user:123","value":"John Doe","version":2})");
  ExpectEvent(*w, "put", R"({"key":"user:456","value":{"name":"Jane","tags":[1,2]},"version":1})");
  ExpectEvent(*w, "delete", R"({"key":"user:456","version":1})");
  ExpectEvent(*w, "put", R"({"key":"user:789","value":"New User","version":1})");
  ExpectEvent(*w, "put", R"({"key":"user:b1","value":null,"version":1})");
  ExpectEvent(*w, "put", R"({"key":"user:b2","value":[true],"version":1})");
  ExpectEvent(*w, "delete", R"({"key":"user:b1","version":1})");
  ExpectEvent(*w, "put", R"({"key":"user:t","value":1.5,"version":1})");
  // Nothing else: "other" is outside the prefix.
  std::optional<Event> more = w->Next(std::chrono::milliseconds(300));
  EXPECT_FALSE(more.has_value()) << more->type << " " << more->data;
  // The raw stream is SSE text: event line, data line, blank line.
  EXPECT_NE(std::string::npos,
            w->comments().find("event: put\ndata: {\"key\":\"user:123\",\"value\":\"John "
                               "Doe\",\"version\":1}\n\n"))
      << w->comments();
}

TEST_F(KvWatchTest, ConcurrentWritersEventsAreCompleteAndInOrderPerKey) {
  constexpr int kThreads = 4, kPuts = 100;
  auto w = Open("/v1/watch/c?include_values=true");
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      HttpClient c("127.0.0.1", server_.port());
      for (int i = 1; i <= kPuts; i++) {
        Result<HttpResponse> r = c.Request(
            "PUT", "/v1/keys/c" + std::to_string(t), "{\"value\": " + std::to_string(i) + "}",
            {{"X-API-Key", kP1Key}, {"Content-Type", "application/json"}});
        ASSERT_TRUE(r.ok() && r->status < 300);
      }
    });
  }
  threads.clear();  // joins
  std::map<std::string, int> last;
  for (int n = 0; n < kThreads * kPuts; n++) {
    std::optional<Event> ev = w->Next();
    ASSERT_TRUE(ev.has_value()) << "only " << n << " events of " << kThreads * kPuts;
    rapidjson::Document d;
    d.Parse(ev->data.data(), ev->data.size());
    const std::string key = d["key"].GetString();
    const int version = d["version"].GetInt();
    EXPECT_EQ(last[key] + 1, version) << key;
    EXPECT_EQ(version, d["value"].GetInt()) << ev->data;
    last[key] = version;
  }
  for (int t = 0; t < kThreads; t++) EXPECT_EQ(kPuts, last["c" + std::to_string(t)]);
  EXPECT_FALSE(w->Next(std::chrono::milliseconds(200)).has_value());
}

TEST_F(KvWatchTest, FiltersByPrefixEventTypeAndValues) {
  auto puts = Open("/v1/watch/a/?events=put");
  auto dels = Open("/v1/watch/a/?events=delete&include_values=true");
  auto bare = Open("/api/v1/projects/p1/watch/a/b", kTestKey);
  auto all = Open("/v1/watch");
  auto other = Open("/v1/watch/a/", kP2Key);
  ASSERT_EQ(201, Put("a/b/1", R"({"value": 1})").status);
  ASSERT_EQ(201, Put("a/c", R"({"value": "c"})").status);
  ASSERT_EQ(201, Put("b/a", R"({"value": 2})").status);
  ASSERT_EQ(200, server_.CallAs(kP1Key, "DELETE", "/v1/keys/a%2Fb%2F1").status);
  ASSERT_EQ(201, Put("a/b/1", R"({"value": 3})", kP2Key).status);

  ExpectEvent(*puts, "put", R"({"key":"a/b/1","version":1})");
  ExpectEvent(*puts, "put", R"({"key":"a/c","version":1})");
  ExpectEvent(*dels, "delete", R"({"key":"a/b/1","version":1})");
  // include_values defaults to false: no "value".
  ExpectEvent(*bare, "put", R"({"key":"a/b/1","version":1})");
  ExpectEvent(*bare, "delete", R"({"key":"a/b/1","version":1})");
  ExpectEvent(*all, "put", R"({"key":"a/b/1","version":1})");
  ExpectEvent(*all, "put", R"({"key":"a/c","version":1})");
  ExpectEvent(*all, "put", R"({"key":"b/a","version":1})");
  ExpectEvent(*all, "delete", R"({"key":"a/b/1","version":1})");
  // p2's watcher sees p2's write only.
  ExpectEvent(*other, "put", R"({"key":"a/b/1","version":1})");
  for (SseClient* c : {puts.get(), dels.get(), bare.get(), all.get(), other.get()}) {
    std::optional<Event> more = c->Next(std::chrono::milliseconds(200));
    EXPECT_FALSE(more.has_value()) << more->type << " " << more->data;
  }
}

TEST_F(KvWatchTest, ExpirationsArriveAsDeletesWithReasonExpired) {
  auto w = Open("/v1/watch/t?include_values=true");
  ASSERT_EQ(201, Put("ttl", R"({"value": "soon gone", "ttl_seconds": 1})").status);
  ExpectEvent(*w, "put", R"({"key":"ttl","value":"soon gone","version":1})");
  std::optional<Event> ev = w->Next(std::chrono::seconds(10));
  ASSERT_TRUE(ev.has_value()) << "no expiry event within 10 s";
  EXPECT_EQ("delete", ev->type);
  EXPECT_EQ(R"({"key":"ttl","version":1,"reason":"expired"})", ev->data);
  EXPECT_EQ(404, server_.CallAs(kP1Key, "GET", "/v1/keys/ttl").status);
}

TEST_F(KvWatchTest, DeletingTheProjectEndsTheStream) {
  auto w = Open("/api/v1/projects/p2/watch", kP2Key);
  auto p1 = Open("/v1/watch", kP1Key);
  ASSERT_EQ(201, Put("k", R"({"value": 1})", kP2Key).status);
  ExpectEvent(*w, "put", R"({"key":"k","version":1})");
  ASSERT_EQ(204, server_.Call("DELETE", "/api/v1/projects/p2").status);
  EXPECT_TRUE(w->WaitEnd(std::chrono::seconds(10))) << "the stream of a deleted project goes on";
  // p1's stream is not affected.
  ASSERT_EQ(201, Put("still", R"({"value": 1})").status);
  ExpectEvent(*p1, "put", R"({"key":"still","version":1})");
  EXPECT_FALSE(p1->ended());
  EXPECT_EQ(200, server_.Call("GET", "/health", {}, {}, false).status);
}

TEST_F(KvWatchTest, AWatcherThatDisconnectsMidStreamLeavesTheServerHealthy) {
  auto w = Open("/v1/watch/load?include_values=true");
  std::atomic<int> acked{0}, failed{0};
  std::jthread writer([&](std::stop_token stop) {
    HttpClient c("127.0.0.1", server_.port());
    for (int i = 0; !stop.stop_requested(); i++) {
      Result<HttpResponse> r =
          c.Request("PUT", "/v1/keys/load" + std::to_string(i % 50),
                    "{\"value\": \"" + std::string(512, 'x') + "\"}",
                    {{"X-API-Key", kP1Key}, {"Content-Type", "application/json"}});
      if (r.ok() && r->status < 300) {
        acked++;
      } else {
        failed++;
      }
    }
  });
  ASSERT_TRUE(w->Next().has_value());
  ASSERT_TRUE(w->Next().has_value());
  w->Close();  // mid-stream, while writes go on
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (acked.load() < 100 && failed.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  writer.request_stop();
  writer.join();
  EXPECT_EQ(0, failed.load());
  // 200 more writes complete promptly (a generous bound, not a speed test).
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; i++) {
    ASSERT_EQ(200, Put("load" + std::to_string(i % 50), R"({"value": 1})").status) << i;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  HttpResponse h = server_.Call("GET", "/health", {}, {}, false);
  EXPECT_EQ(200, h.status);
  EXPECT_STREQ("healthy", Json(h)["status"].GetString());
  // A new watcher works.
  auto again = Open("/v1/watch/load");
  ASSERT_EQ(200, Put("load0", R"({"value": 2})").status);
  ASSERT_TRUE(again->Next().has_value());
}

TEST_F(KvWatchTest, ManyWatchersOpenedAndDroppedRepeatedlyNeverCrashTheServer) {
  constexpr int kRounds = 10, kWatchers = 20;
  for (int round = 0; round < kRounds; round++) {
    std::vector<std::unique_ptr<SseClient>> ws;
    for (int i = 0; i < kWatchers; i++) {
      ws.push_back(std::make_unique<SseClient>(
          server_.port(), "/v1/watch/r?include_values=true&events=put,delete", kP1Key));
      // Some are dropped before the server even answers.
      if ((i + round) % 5 == 0) ws.back()->Close();
    }
    for (int i = 0; i < kWatchers; i++) {
      if ((i + round) % 5 != 0 && (i + round) % 3 != 0) ws[i]->ReadHead();
    }
    std::jthread writer([&] {
      HttpClient c("127.0.0.1", server_.port());
      for (int k = 0; k < 30; k++) {
        Result<HttpResponse> r = c.Request(
            "PUT", "/v1/keys/r" + std::to_string(k), "{\"value\": " + std::to_string(k) + "}",
            {{"X-API-Key", kP1Key}, {"Content-Type", "application/json"}});
        EXPECT_TRUE(r.ok() && r->status < 300) << (r.ok() ? r->body : r.status().ToString());
      }
    });
    // Drop them while the writes go on, some after reading a little, some
    // with a reset.
    for (int i = 0; i < kWatchers; i++) {
      if (i % 4 == 1) ws[i]->Next(std::chrono::milliseconds(50));
      if (i % 2 == 0) ws[i]->Reset();
      ws[i].reset();
    }
    writer.join();
    ASSERT_TRUE(server_.Alive()) << "round " << round << ": " << server_.stderr_text();
    ASSERT_EQ(200, server_.Call("GET", "/health", {}, {}, false).status) << "round " << round;
  }
  auto last = Open("/v1/watch/r");
  ASSERT_EQ(200, Put("r0", R"({"value": "end"})").status);
  std::optional<Event> ev = last->Next();
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(R"({"key":"r0","version":)" + std::to_string(kRounds + 1) + "}", ev->data);
  ASSERT_TRUE(server_.Alive());
}

TEST_F(KvWatchTest, AWatcherThatNeverReadsDoesNotStallWriters) {
  // Connected and answered, then never read again: the server's queue for
  // it fills up while the writers go on.
  SseClient idle(server_.port(), "/v1/watch/big?include_values=true", kP1Key);
  ASSERT_EQ(200, idle.ReadHead());
  const std::string value = "{\"value\": \"" + std::string(64 << 10, 'z') + "\"}";
  constexpr int kWrites = 320;  // 20 MiB of events
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> acked{0};
  std::vector<std::jthread> writers;
  for (int t = 0; t < 2; t++) {
    writers.emplace_back([&, t] {
      HttpClient c("127.0.0.1", server_.port());
      c.set_timeout(std::chrono::seconds(60));
      for (int i = t; i < kWrites; i += 2) {
        Result<HttpResponse> r =
            c.Request("PUT", "/v1/keys/big" + std::to_string(i % 16), value,
                      {{"X-API-Key", kP1Key}, {"Content-Type", "application/json"}});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        ASSERT_LT(r->status, 300) << r->body;
        acked++;
      }
    });
  }
  writers.clear();  // joins
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d writes of 64 KiB with an idle watcher in %.2f s\n", acked.load(), seconds);
  EXPECT_EQ(kWrites, acked.load());
  EXPECT_LT(seconds, 90.0);
  EXPECT_EQ(200, server_.Call("GET", "/health", {}, {}, false).status);
  // Other watchers still get events.
  auto fresh = Open("/v1/watch/big0");
  ASSERT_EQ(200, Put("big0", R"({"value": "small"})").status);
  std::optional<Event> ev = fresh->Next();
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ("put", ev->type);
  // What the idle watcher was sent is a gap-free start of the stream: per
  // key, versions 1, 2, 3... Far behind, it was then dropped (the stream ends).
  std::map<std::string, uint64_t> last;
  size_t events = 0;
  while (std::optional<Event> e = idle.Next(std::chrono::seconds(5))) {
    rapidjson::Document d;
    d.Parse(e->data.data(), e->data.size());
    ASSERT_FALSE(d.HasParseError()) << e->data.substr(0, 100);
    const std::string key = d["key"].GetString();
    const uint64_t version = d["version"].GetUint64();
    EXPECT_EQ(last[key] + 1, version) << key << " after " << events << " events";
    last[key] = version;
    events++;
  }
  std::printf("the idle watcher had %zu events queued\n", events);
  EXPECT_LT(events, static_cast<size_t>(kWrites));
  EXPECT_TRUE(idle.ended()) << "a watcher " << kWrites - events << " events behind was not dropped";
}

TEST_F(KvWatchTest, StoppingTheServerEndsOpenStreamsAndExitsCleanly) {
  auto reading = Open("/v1/watch");
  SseClient idle(server_.port(), "/v1/watch/x", kP1Key);
  ASSERT_EQ(200, idle.ReadHead());
  auto other = Open("/api/v1/projects/p2/watch", kTestKey);
  ASSERT_EQ(201, Put("k", R"({"value": 1})").status);
  ExpectEvent(*reading, "put", R"({"key":"k","version":1})");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(0, server_.Stop()) << server_.stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_TRUE(reading->WaitEnd(std::chrono::seconds(5)));
  EXPECT_TRUE(other->WaitEnd(std::chrono::seconds(5)));
  EXPECT_TRUE(idle.WaitEnd(std::chrono::seconds(5)));
  // And the next start serves watches again.
  ASSERT_TRUE(server_.Start());
  auto again = Open("/v1/watch");
  ASSERT_EQ(200, Put("k", R"({"value": 2})").status);
  ExpectEvent(*again, "put", R"({"key":"k","version":2})");
}

TEST_F(KvWatchTest, DeleteAllSendsOneDeleteEventPerKey) {
  ASSERT_EQ(201, Put("x1", R"({"value": 1})").status);
  ASSERT_EQ(201, Put("x2", R"({"value": 2})").status);
  ASSERT_EQ(200, Put("x2", R"({"value": 3})").status);
  ASSERT_EQ(201, Put("y", R"({"value": 4})").status);
  auto w = Open("/v1/watch/x");
  ASSERT_EQ(200, server_.Call("DELETE", "/api/v1/projects/p1/keys").status);
  std::set<std::string> got;
  for (int i = 0; i < 2; i++) {
    std::optional<Event> ev = w->Next();
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ("delete", ev->type);
    got.insert(ev->data);
  }
  EXPECT_EQ((std::set<std::string>{R"({"key":"x1","version":1})", R"({"key":"x2","version":2})"}),
            got);
  EXPECT_FALSE(w->Next(std::chrono::milliseconds(200)).has_value());
}

TEST_F(KvWatchTest, WatchersSurviveStorageAndKeyChangesOfTheirProject) {
  auto w = Open("/api/v1/projects/p1/watch", kTestKey);
  ASSERT_EQ(
      200, server_.Call("PUT", "/api/v1/projects/p1", R"({"storage": {"on_disk": false}})").status);
  ASSERT_EQ(201, Put("a", R"({"value": 1})").status);
  ExpectEvent(*w, "put", R"({"key":"a","version":1})");
  ASSERT_EQ(200,
            server_.Call("PUT", "/api/v1/projects/p1", R"({"storage": {"on_disk": true}})").status);
  ASSERT_EQ(200, Put("a", R"({"value": 2})").status);
  ExpectEvent(*w, "put", R"({"key":"a","version":2})");
  ASSERT_EQ(200, server_.Call("POST", "/api/v1/projects/p1/api-key/regenerate").status);
  ASSERT_EQ(200, server_.Call("PUT", "/api/v1/projects/p1/keys/a", R"({"value": 3})").status);
  ExpectEvent(*w, "put", R"({"key":"a","version":3})");
}

// Watchers that come and go (page reloads, reconnecting clients) must not
// use up the server's capacity for streams (1024 at a time): more than that
// many opened and closed one after another, with nothing written to them,
// and a new watch is still served.
TEST_F(KvWatchTest, ClosedWatchersDoNotUseUpStreamCapacity) {
  constexpr int kOpened = 1100;
  int refused = 0;
  for (int i = 0; i < kOpened; i++) {
    SseClient w(server_.port(), "/v1/watch/idle", kP1Key);
    const int status = w.ReadHead();
    if (status != 200) {
      refused++;
      if (refused == 1) std::printf("watch %d refused: %s\n", i, w.head().c_str());
    }
  }
  ASSERT_EQ(0, refused) << "of " << kOpened << " watches opened and closed one at a time";
  auto last = Open("/v1/watch/idle");
  ASSERT_EQ(201, Put("idle", R"({"value": 1})").status);
  ExpectEvent(*last, "put", R"({"key":"idle","version":1})");
}

// The prefix is echoed in the stream's first line: a prefix with line
// breaks must not forge events (keys cannot hold control bytes, so such a
// prefix matches nothing and may as well be refused).
TEST_F(KvWatchTest, APrefixWithLineBreaksCannotForgeEvents) {
  SseClient w(server_.port(),
              "/v1/watch/x%0A%0Aevent%3A%20put%0Adata%3A%20%7B%22key%22%3A%22forged%22%7D%0A%0A",
              kP1Key);
  const int status = w.ReadHead();
  if (status == 400) return;
  ASSERT_EQ(200, status) << w.head();
  ASSERT_EQ(201, Put("x", R"({"value": 1})").status);
  std::optional<Event> ev = w.Next(std::chrono::milliseconds(500));
  EXPECT_FALSE(ev.has_value()) << "forged event: " << ev->type << " " << ev->data;
}

TEST_F(KvWatchTest, RefusedWatchesAreOrdinaryErrors) {
  SseClient none(server_.port(), "/v1/watch/x", "");
  EXPECT_EQ(401, none.ReadHead());
  SseClient other(server_.port(), "/api/v1/projects/p1/watch", kP2Key);
  EXPECT_EQ(403, other.ReadHead());
  SseClient bad(server_.port(), "/v1/watch/x?events=nope", kP1Key);
  EXPECT_EQ(400, bad.ReadHead());
  SseClient missing(server_.port(), "/api/v1/projects/nope/watch", kTestKey);
  EXPECT_EQ(404, missing.ReadHead());
}

}  // namespace
}  // namespace pstorage::api::testing
