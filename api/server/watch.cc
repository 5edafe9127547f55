#include "api/server/watch.h"

#include <algorithm>

#include "api/server/json.h"

namespace pstorage::api {

namespace {

// Events queued before the client's stream is attached (a few ms at most).
constexpr size_t kMaxPendingBytes = 1 << 20;
// A stream not attached within this time was never started: drop it.
constexpr auto kAttachTimeout = std::chrono::seconds(30);

}  // namespace

std::string FormatWatchEvent(const kv::Event& ev, bool include_values) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  KV(w, "key", ev.key);
  if (ev.type == kv::Event::Type::kPut && include_values) {
    Key(w, "value");
    // Stored values are compact JSON: no raw newline can end the data line.
    w.RawValue(ev.value.data(), ev.value.size(), rapidjson::kObjectType);
  }
  KV(w, "version", ev.version);
  if (ev.type == kv::Event::Type::kExpire) KV(w, "reason", "expired");
  w.EndObject();
  std::string out = ev.type == kv::Event::Type::kPut ? "event: put\ndata: " : "event: delete\ndata: ";
  out.append(sb.GetString(), sb.GetSize());
  out += "\n\n";
  return out;
}

struct WatchHub::Stream {
  std::shared_ptr<kv::KvStore> store;
  WatchSpec spec;
  uint64_t watch_id = 0;
  std::chrono::steady_clock::time_point opened = std::chrono::steady_clock::now();

  std::mutex mu;
  std::shared_ptr<StreamSink> sink;  // mu; null until attached
  std::string pending;               // mu; events before attachment
  bool ended = false;                // mu

  void OnEvent(const kv::Event& ev) {
    const bool wanted = ev.type == kv::Event::Type::kPut ? spec.puts
                        : ev.type == kv::Event::Type::kDelete || ev.type == kv::Event::Type::kExpire
                            ? spec.deletes
                            : false;
    std::lock_guard<std::mutex> l(mu);
    if (ended) return;
    if (ev.type != kv::Event::Type::kPut && ev.type != kv::Event::Type::kDelete &&
        ev.type != kv::Event::Type::kExpire) {
      // The project is gone: end the stream.
      EndLocked();
      return;
    }
    if (!wanted) return;
    std::string text = FormatWatchEvent(ev, spec.include_values);
    if (sink == nullptr) {
      if (pending.size() + text.size() > kMaxPendingBytes) {
        ended = true;
      } else {
        pending += text;
      }
      return;
    }
    if (!sink->Send(text)) ended = true;
  }

  void Attach(std::shared_ptr<StreamSink> s) {
    std::lock_guard<std::mutex> l(mu);
    sink = std::move(s);
    if (ended) {
      sink->Close();
      return;
    }
    if (!pending.empty() && !sink->Send(pending)) ended = true;
    pending.clear();
  }

  // true when the stream is over.
  bool Heartbeat() {
    std::lock_guard<std::mutex> l(mu);
    if (!ended && std::chrono::steady_clock::now() - opened > WatchHub::kMaxStreamAge) {
      EndLocked();
    }
    if (!ended && sink != nullptr && !sink->Send(": keep-alive\n\n")) ended = true;
    if (!ended && sink == nullptr && std::chrono::steady_clock::now() - opened > kAttachTimeout) {
      ended = true;
    }
    if (!ended && sink != nullptr && sink->closed()) ended = true;
    return ended;
  }

  bool Ended() {
    std::lock_guard<std::mutex> l(mu);
    if (!ended && sink != nullptr && sink->closed()) ended = true;
    return ended;
  }

  void End() {
    std::lock_guard<std::mutex> l(mu);
    EndLocked();
  }

  void EndLocked() {
    ended = true;
    if (sink != nullptr) sink->Close();
  }
};

WatchHub::WatchHub(std::chrono::milliseconds heartbeat) : heartbeat_(heartbeat) {
  thread_ = std::thread([this] { Loop(); });
}

WatchHub::~WatchHub() { Shutdown(); }

Result<std::shared_ptr<StreamReply>> WatchHub::Open(std::shared_ptr<kv::KvStore> store,
                                                    WatchSpec spec) {
  auto stream = std::make_shared<Stream>();
  stream->store = store;
  stream->spec = std::move(spec);
  {
    std::unique_lock<std::mutex> l(mu_);
    if (stop_) return Status::Busy("the server is shutting down");
    if (streams_.size() >= kMaxStreams) ReapLocked(&l);
    if (streams_.size() >= kMaxStreams) {
      return Status::Busy("too many watch streams are open (" + std::to_string(kMaxStreams) +
                          "); retry later");
    }
    streams_.push_back(stream);
  }
  // Registered before the reply goes out, so that every change committed
  // after the client sees the stream's first bytes is in it.
  std::weak_ptr<Stream> weak = stream;
  stream->watch_id = store->Watch(stream->spec.prefix, [weak](const kv::Event& ev) {
    if (auto s = weak.lock()) s->OnEvent(ev);
  });
  auto reply = std::make_shared<StreamReply>();
  reply->first = ": watching\n\n";
  reply->start = [stream](std::shared_ptr<StreamSink> sink) { stream->Attach(std::move(sink)); };
  return reply;
}

void WatchHub::ReapLocked(std::unique_lock<std::mutex>* l) {
  std::vector<std::shared_ptr<Stream>> ended;
  for (auto& s : streams_) {
    if (s->Ended()) ended.push_back(s);
  }
  streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                [&](const std::shared_ptr<Stream>& s) {
                                  return std::find(ended.begin(), ended.end(), s) != ended.end();
                                }),
                 streams_.end());
  // Unwatch outside the hub's lock: it waits for a running callback.
  l->unlock();
  for (auto& s : ended) s->store->Unwatch(s->watch_id);
  l->lock();
}

void WatchHub::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  auto next_beat = std::chrono::steady_clock::now() + heartbeat_;
  while (!stop_) {
    cv_.wait_for(l, std::chrono::seconds(1), [&] { return stop_; });
    if (stop_) break;
    const bool beat = std::chrono::steady_clock::now() >= next_beat;
    if (beat) next_beat = std::chrono::steady_clock::now() + heartbeat_;
    std::vector<std::shared_ptr<Stream>> streams = streams_;
    l.unlock();
    std::vector<std::shared_ptr<Stream>> ended;
    for (auto& s : streams) {
      if (beat ? s->Heartbeat() : s->Ended()) ended.push_back(s);
    }
    // Unwatch outside every lock: it waits for a running callback.
    for (auto& s : ended) s->store->Unwatch(s->watch_id);
    l.lock();
    streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                  [&](const std::shared_ptr<Stream>& s) {
                                    return std::find(ended.begin(), ended.end(), s) != ended.end();
                                  }),
                   streams_.end());
  }
}

void WatchHub::Shutdown() {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    streams.swap(streams_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& s : streams) {
    s->store->Unwatch(s->watch_id);
    s->End();
  }
}

size_t WatchHub::open_streams() const {
  std::lock_guard<std::mutex> l(mu_);
  return streams_.size();
}

}  // namespace pstorage::api
