// The load generator's baseline: the cheapest server Pistache can be, run
// in-process with the thread count and options `pstorage serve` uses, so
// that the transport's own cost is measured in the same run as the real
// server (these machines vary 20-50 % from run to run).
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/http_header.h>

#include <algorithm>
#include <exception>
#include <thread>

#include "bench/http_load.h"

namespace pstorage::bench {

namespace Http = Pistache::Http;

namespace {

class EmptyHandler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(EmptyHandler)
  void onRequest(const Http::Request&, Http::ResponseWriter response) override {
    // Without this Pistache closes connections whose request carried no
    // Connection header (PLATFORM_NOTES.md, "keep-alive trap").
    response.headers().add<Http::Header::Connection>(Http::ConnectionControl::KeepAlive);
    response.send(Http::Code::Ok);
  }
};

}  // namespace

struct EmptyServer::Impl {
  std::unique_ptr<Http::Endpoint> endpoint;
};

// The same rule as `pstorage serve` (api/server/server.cc), so that both
// servers run the same number of Pistache threads.
int DefaultServerThreads() {
  return std::max(16, 8 * static_cast<int>(std::thread::hardware_concurrency()));
}

Result<std::unique_ptr<EmptyServer>> EmptyServer::Start(int threads) {
  auto impl = std::make_unique<Impl>();
  int port = 0;
  try {
    Pistache::Address addr("127.0.0.1", Pistache::Port(0));
    impl->endpoint = std::make_unique<Http::Endpoint>(addr);
    // Request and response limits as large as the real server's defaults
    // (8 MiB bodies), so no option makes the baseline cheaper.
    auto opts = Http::Endpoint::options()
                    .threads(threads)
                    .flags(Pistache::Tcp::Options::ReuseAddr)
                    .maxRequestSize(24u << 20)
                    .maxResponseSize(12u << 20);
    impl->endpoint->init(opts);
    impl->endpoint->setHandler(Http::make_handler<EmptyHandler>());
    impl->endpoint->serveThreaded();
    port = static_cast<int>(static_cast<uint16_t>(impl->endpoint->getPort()));
  } catch (const std::exception& e) {
    return Status::IoError(std::string("baseline server: ") + e.what());
  }
  return std::unique_ptr<EmptyServer>(new EmptyServer(std::move(impl), port));
}

EmptyServer::EmptyServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

EmptyServer::~EmptyServer() {
  if (impl_ && impl_->endpoint) impl_->endpoint->shutdown();
}

}  // namespace pstorage::bench
