// Watch streams: Server-Sent Events for the changes under a key prefix.
//
// A stream registers a watch callback on the project's store. The callback
// runs on the writing thread, in commit order, after the change is durable;
// it formats the event and hands it to the stream's sink, which queues it
// for the client without blocking. A client that is gone, or that falls more
// than kMaxBehindBytes behind, is dropped; writers never wait for watchers.
//
// The hub's thread sends a comment line every heartbeat interval (so a
// vanished client is noticed even when nothing changes) and unregisters the
// streams that ended.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/server/http_types.h"
#include "kv/kv.h"

namespace pstorage::api {

struct WatchSpec {
  std::string prefix;
  bool puts = true;     // "put" events
  bool deletes = true;  // "delete" events (expirations too, with "reason": "expired")
  bool include_values = false;
};

class WatchHub {
 public:
  static constexpr size_t kMaxStreams = 1024;
  // A stream ends cleanly (last chunk) after this long; clients reconnect
  // (EventSource does so by itself). The HTTP server's keep-alive timeout
  // would otherwise cut it without a proper end.
  static constexpr std::chrono::seconds kMaxStreamAge{9 * 60};

  explicit WatchHub(std::chrono::milliseconds heartbeat = std::chrono::seconds(15));
  ~WatchHub();  // Shutdown()
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // The streamed reply for a new watch (503 BUSY when kMaxStreams are open,
  // or when the hub is shutting down).
  Result<std::shared_ptr<StreamReply>> Open(std::shared_ptr<kv::KvStore> store, WatchSpec spec);

  // Ends every stream (final chunk) and stops the thread.
  void Shutdown();
  size_t open_streams() const;

 private:
  struct Stream;
  void Loop();
  // Forgets the streams that ended (mu_ held by *l; released meanwhile).
  void ReapLocked(std::unique_lock<std::mutex>* l);

  const std::chrono::milliseconds heartbeat_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                             // mu_
  std::vector<std::shared_ptr<Stream>> streams_;  // mu_
  std::thread thread_;
};

// One SSE event in the seed's format: "event: put\ndata: {...}\n\n".
std::string FormatWatchEvent(const kv::Event& event, bool include_values);

}  // namespace pstorage::api
