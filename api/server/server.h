// The REST server: a Pistache endpoint in front of the router. Everything
// every request goes through lives here, in one place: request ids, the
// shutdown gate, routing (404/405), authentication, rate limiting, size
// limits, keep-alive, the access log and request statistics.
//
// Thread safety: Start and Shutdown from one controlling thread; requests
// run on Pistache's worker threads and call the engine concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "api/config.h"
#include "common/status.h"
#include "engine/engine.h"

namespace pstorage::api {

class ProjectRegistry;

class HttpServer {
 public:
  // Binds config.bind_address:config.server_port (0 picks a free port) and
  // starts serving. The engine and the projects are borrowed and must
  // outlive the server.
  static Result<std::unique_ptr<HttpServer>> Start(engine::Engine& engine,
                                                   ProjectRegistry& projects,
                                                   const ServerConfig& config);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // New requests get 503 from now on; watch streams end; waits up to
  // `drain` for the requests in flight, then stops the listener and its
  // threads.
  void Shutdown(std::chrono::milliseconds drain);

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstorage::api
