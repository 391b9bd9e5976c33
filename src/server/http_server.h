// fastgen's OpenAI-compatible HTTP server over the serving runtime (runtime::Engine).
//
// Endpoints: POST /v1/completions, POST /v1/chat/completions (both streaming as server-sent
// events when asked), GET /v1/models, GET /health, GET /metrics (Prometheus text), POST
// /tokenize, POST /detokenize. Errors are OpenAI-shaped JSON with the right status: 400 naming
// the bad parameter, 401, 404, 405, 413, 503 with Retry-After when the queue is full or the
// server is draining. A client that disconnects has its sequences cancelled at the engine's next
// step; responses are written as they are produced (chunked), which is how a disconnect shows.
//
// cpp-httplib serves each connection on a thread of a fixed pool; a slow or idle client holds
// its thread for at most the read timeout, and a streaming client for its stream.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"
#include "runtime/engine.h"
#include "server/openai_api.h"

namespace httplib {
class Server;
class Request;
class Response;
}  // namespace httplib

namespace fastgen::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;               // empty: no authentication
  size_t max_body_bytes = 8u << 20;  // larger bodies get 413
  int http_threads = 0;              // 0: max(32, 4 × --parallel)
  int read_timeout_seconds = 10;     // a client slower than this sending its request is dropped
};

class Server {
 public:
  Server(runtime::Engine& engine, ApiContext api, ServerOptions options);
  ~Server();

  // Binds; the port actually bound (options.port 0 picks a free one). Call before Serve.
  Expected<int> Bind();
  // Serves until Stop(); returns then.
  void Serve();
  void Stop();

  // /metrics' body.
  std::string MetricsText() const;

 private:
  void Routes();
  void HandleGenerate(const httplib::Request& req, httplib::Response& res, bool chat);
  void HandleTokenize(const httplib::Request& req, httplib::Response& res);
  void HandleDetokenize(const httplib::Request& req, httplib::Response& res);
  bool Authorized(const httplib::Request& req) const;
  void Count(const std::string& endpoint, int status);

  runtime::Engine& engine_;
  ApiContext api_;
  ServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (endpoint, status) -> count
  std::atomic<uint64_t> next_id_{1};
  std::mutex warned_mu_;
  std::map<std::string, bool> warned_keys_;
};

}  // namespace fastgen::server
