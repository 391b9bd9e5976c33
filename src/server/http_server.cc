#include "server/http_server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>
#include <set>
#include <sstream>

#include "core/diagnostics.h"

namespace fastgen::server {
namespace {

using nlohmann::json;

constexpr const char* kJson = "application/json";

void Reply(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(e.Body().dump(), kJson);
}

ApiError Error(int status, std::string type, std::string message, std::string param = {}, std::string code = {}) {
  ApiError e;
  e.status = status;
  e.type = std::move(type);
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

// An engine refusal as an API error: Unavailable -> 503 (the client should retry), anything
// else -> 400 naming the parameter the engine's message starts with.
ApiError FromStatus(const Status& s) {
  if (s.code() == ErrorCode::kUnavailable) return Error(503, "server_overloaded", s.message(), {}, "server_overloaded");
  ApiError e = Error(400, "invalid_request_error", s.message());
  const auto colon = s.message().find(':');
  if (colon != std::string::npos && colon < 32 && s.message().find(' ') > colon) e.param = s.message().substr(0, colon);
  return e;
}

std::string RandomId(const char* prefix, uint64_t n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%016llx%04llx", prefix, static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(n & 0xffff));
  return buf;
}

// A finished chat answer under tools: its text and calls in the message's shape, and the finish
// reason ("tool_calls" when the answer is calls).
struct ToolAnswer {
  json content;     // a string, or null when the answer is only calls
  json tool_calls;  // null when there are none
  std::string finish;
};

ToolAnswer ReadToolAnswer(const ApiRequest& shape, const std::string& text, const std::string& finish) {
  const ParsedAnswer a = ParseToolCalls(text, shape.tool_syntax, shape.tools);
  ToolAnswer out{json(text), json(), finish};
  if (a.calls.empty()) return out;
  out.content = a.content.empty() ? json() : json(a.content);
  out.tool_calls = json::array();
  for (size_t i = 0; i < a.calls.size(); ++i) {
    out.tool_calls.push_back({{"id", ToolCallId(shape.tool_syntax)},
                              {"type", "function"},
                              {"function", {{"name", a.calls[i].name}, {"arguments", a.calls[i].arguments}}}});
  }
  if (finish == "stop") out.finish = "tool_calls";
  return out;
}

// A request's choices as they accumulate, for the non-streaming reply.
struct ChoiceState {
  std::string text;
  std::string finish;
  json logprobs;  // chat: {"content": [...]}; completions: {"tokens": [...], ...}
  int64_t text_bytes = 0;
};

// What a generation handler streams: the engine handles of every prompt, polled in turn.
struct Generation {
  std::vector<std::shared_ptr<runtime::RequestHandle>> handles;
  std::vector<bool> done;
  runtime::Usage usage;
  int n = 1;
  bool finished = false;
  void CancelAll() {
    for (auto& h : handles) h->Cancel();
  }
};

}  // namespace

Server::Server(runtime::Engine& engine, ApiContext api, ServerOptions options)
    : engine_(engine), api_(std::move(api)), opts_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  const int threads = opts_.http_threads > 0 ? opts_.http_threads : std::max(32, 4 * engine_.options().max_running);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(opts_.max_body_bytes);
  http_->set_read_timeout(opts_.read_timeout_seconds, 0);
  http_->set_write_timeout(30, 0);
  http_->set_keep_alive_timeout(5);
  // Clients keep their connections (the openai client, proxies): closing one after a few
  // requests (cpp-httplib's default, 5) races with the client's next request on it.
  http_->set_keep_alive_max_count(100000);
  // SO_REUSEADDR alone: a restarted server binds over the last one's connections in TIME_WAIT,
  // and a second server on a port that is listened on fails ("in use"). cpp-httplib's default,
  // SO_REUSEPORT, does the opposite on Linux: it lets two fastgen processes share a port
  // silently, each taking a random half of the connections.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  Routes();
}

Server::~Server() { Stop(); }

Expected<int> Server::Bind() {
  int port = opts_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(opts_.host);
    if (port < 0) return IoError("cannot bind an HTTP port on " + opts_.host);
  } else if (!http_->bind_to_port(opts_.host, port)) {
    return IoError("cannot listen on " + opts_.host + ":" + std::to_string(port) + " (in use, or not permitted)");
  }
  return port;
}

void Server::Serve() { http_->listen_after_bind(); }

void Server::Stop() {
  if (http_) http_->stop();
}

void Server::Count(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

bool Server::Authorized(const httplib::Request& req) const {
  if (opts_.api_key.empty()) return true;
  const std::string want = "Bearer " + opts_.api_key;
  const std::string got = req.get_header_value("Authorization");
  // Constant-time over the expected length: the comparison does not leak how much matched.
  if (got.size() != want.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < want.size(); ++i) diff |= static_cast<unsigned char>(got[i] ^ want[i]);
  return diff == 0;
}

void Server::Routes() {
  httplib::Server& s = *http_;
  // Every request is counted by endpoint and status once its response is ready (the streaming
  // ones as 200 when the stream starts).
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    static const std::set<std::string> kKnown = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health",
                                                 "/metrics", "/tokenize", "/detokenize"};
    Count(kKnown.count(req.path) ? req.path : "other", res.status);
  });
  // Bodies httplib itself refuses (413, unknown routes, bad requests) get the OpenAI shape too.
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string type = "invalid_request_error", message = "the request could not be served";
    if (res.status == 404) message = "no such endpoint", type = "not_found_error";
    if (res.status == 413) message = "the request body is larger than the server accepts";
    if (res.status >= 500) type = "server_error";
    res.set_content(Error(res.status, type, message).Body().dump(), kJson);
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    Reply(res, Error(500, "server_error", "internal error while serving the request"));
  });
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool open = req.path == "/health" || req.path == "/metrics";
    if (!open && !Authorized(req)) {
      res.set_header("WWW-Authenticate", "Bearer");
      Reply(res, Error(401, "authentication_error",
                       req.has_header("Authorization") ? "invalid API key" : "missing API key (Authorization: Bearer KEY)",
                       {}, "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { HandleGenerate(req, res, false); });
  s.Post("/v1/chat/completions",
         [this](const httplib::Request& req, httplib::Response& res) { HandleGenerate(req, res, true); });
  s.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) { HandleTokenize(req, res); });
  s.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) { HandleDetokenize(req, res); });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json model = {{"id", api_.model_id},
                  {"object", "model"},
                  {"created", static_cast<int64_t>(std::time(nullptr))},
                  {"owned_by", "fastgen"},
                  {"meta", {{"context_length", api_.context}, {"vocab_size", engine_.model().config().vocab_size}}}};
    res.set_content(json{{"object", "list"}, {"data", json::array({model})}}.dump(), kJson);
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"status", "ok"}}.dump(), kJson);
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsText(), "text/plain; version=0.0.4");
  });
  // Known paths with the wrong method: 405 and the method they take.
  const std::vector<std::pair<std::string, std::string>> methods = {
      {"/v1/completions", "POST"}, {"/v1/chat/completions", "POST"}, {"/tokenize", "POST"}, {"/detokenize", "POST"},
      {"/v1/models", "GET"},       {"/health", "GET"},                {"/metrics", "GET"}};
  for (const auto& [path, allowed] : methods) {
    auto not_allowed = [allowed = allowed](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allowed);
      Reply(res, Error(405, "invalid_request_error", req.method + " is not allowed here; use " + allowed));
    };
    if (allowed != "GET") s.Get(path, not_allowed);
    if (allowed != "POST") s.Post(path, not_allowed);
    s.Put(path, not_allowed);
    s.Delete(path, not_allowed);
    s.Patch(path, not_allowed);
  }
}

void Server::HandleTokenize(const httplib::Request& req, httplib::Response& res) {
  const json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Reply(res, Error(400, "invalid_request_error", "the body must be a JSON object"));
  const char* key = j.contains("content") ? "content" : "text";
  if (!j.contains(key) || !j[key].is_string())
    return Reply(res, Error(400, "invalid_request_error", "content: expected a string", "content"));
  if (api_.tokenizer == nullptr) return Reply(res, Error(400, "invalid_request_error", "this model has no tokenizer"));
  bool special = false;
  if (j.contains("add_special")) {
    if (!j["add_special"].is_boolean())
      return Reply(res, Error(400, "invalid_request_error", "add_special: expected true or false", "add_special"));
    special = j["add_special"].get<bool>();
  }
  EncodeOptions eo;
  eo.add_special_tokens = special;
  auto ids = api_.tokenizer->Encode(j[key].get<std::string>(), eo);
  if (!ids.ok()) return Reply(res, Error(400, "invalid_request_error", ids.status().message(), "content"));
  res.set_content(json{{"tokens", *ids}}.dump(), kJson);
}

void Server::HandleDetokenize(const httplib::Request& req, httplib::Response& res) {
  const json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("tokens") || !j["tokens"].is_array())
    return Reply(res, Error(400, "invalid_request_error", "tokens: expected an array of token ids", "tokens"));
  if (api_.tokenizer == nullptr) return Reply(res, Error(400, "invalid_request_error", "this model has no tokenizer"));
  std::vector<int32_t> ids;
  for (const json& t : j["tokens"]) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= api_.tokenizer->vocab_size())
      return Reply(res, Error(400, "invalid_request_error",
                              "tokens: " + t.dump() + " is not a token id in [0, " +
                                  std::to_string(api_.tokenizer->vocab_size()) + ")",
                              "tokens"));
    ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  const std::string text = api_.tokenizer->Decode(ids);
  // Decoded bytes that are not valid UTF-8 (a partial character) cannot go into JSON as they are.
  res.set_content(json{{"content", IsValidUtf8(text) ? text : EscapeForTerminal(text)}}.dump(), kJson);
}

void Server::HandleGenerate(const httplib::Request& req, httplib::Response& res, bool chat) {
  ApiError err;
  auto parsed = ParseRequest(req.body, chat, api_, &err);
  if (!parsed) return Reply(res, err);
  for (const std::string& key : parsed->ignored_keys) {
    std::lock_guard<std::mutex> lock(warned_mu_);
    if (!warned_keys_[key]) {
      warned_keys_[key] = true;
      Warn("request key '" + key + "' is not used by fastgen and is ignored (warned once)");
    }
  }
  auto gen = std::make_shared<Generation>();
  gen->n = parsed->requests.empty() ? 1 : parsed->requests[0].params.n;
  for (runtime::Request& r : parsed->requests) {
    auto h = engine_.Submit(std::move(r));
    if (!h.ok()) {
      gen->CancelAll();
      ApiError e = FromStatus(h.status());
      if (e.status == 503) res.set_header("Retry-After", "1");
      return Reply(res, e);
    }
    gen->handles.push_back(*h);
    gen->done.push_back(false);
  }
  const std::string id = RandomId(chat ? "chatcmpl-" : "cmpl-", next_id_++);
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  const std::string model = api_.model_id;
  const Tokenizer* tok = api_.tokenizer;
  ApiRequest shape_of;  // what the replies need to know of the request (not its prompts)
  shape_of.chat = parsed->chat;
  shape_of.stream = parsed->stream;
  shape_of.include_usage = parsed->include_usage;
  shape_of.legacy_logprobs = parsed->legacy_logprobs;
  shape_of.chat_logprobs = parsed->chat_logprobs;
  shape_of.tool_mode = parsed->tool_mode;
  shape_of.tool_syntax = parsed->tool_syntax;
  shape_of.tools = parsed->tools;
  const ApiRequest shape = std::move(shape_of);
  // With tools, a streamed choice's text goes through a ToolCallStream (calls as tool_calls).
  const bool tool_stream = shape.chat && shape.tool_mode != ToolMode::kNone;

  if (parsed->stream) {
    auto roles_sent = std::make_shared<std::vector<bool>>(gen->handles.size() * static_cast<size_t>(gen->n), false);
    auto text_bytes = std::make_shared<std::vector<int64_t>>(roles_sent->size(), 0);
    auto streams = std::make_shared<std::vector<std::shared_ptr<ToolCallStream>>>(roles_sent->size());
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [gen, shape, id, created, model, tok, roles_sent, text_bytes, streams, tool_stream](size_t, httplib::DataSink& sink) {
          auto send = [&](const json& chunk) {
            const std::string line = "data: " + chunk.dump() + "\n\n";
            return sink.write(line.data(), line.size());
          };
          auto chunk_of = [&](json choices) {
            json c = {{"id", id},
                      {"object", shape.chat ? "chat.completion.chunk" : "text_completion"},
                      {"created", created},
                      {"model", model},
                      {"choices", std::move(choices)}};
            if (shape.include_usage) c["usage"] = nullptr;
            return c;
          };
          auto last_write = std::chrono::steady_clock::now();
          while (!gen->finished) {
            bool any = false;
            for (size_t p = 0; p < gen->handles.size(); ++p) {
              if (gen->done[p]) continue;
              runtime::Event e;
              if (!gen->handles[p]->Next(&e, 20)) continue;
              any = true;
              const int index = static_cast<int>(p) * gen->n + e.index;
              json choice = {{"index", index}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
              if (e.kind == runtime::Event::Kind::kDelta || e.kind == runtime::Event::Kind::kFinish) {
                const bool finish = e.kind == runtime::Event::Kind::kFinish;
                if (tool_stream) {
                  // Under tools: text as content while it cannot be a call, each call as a
                  // header (id and name) and then its arguments in pieces as they are written.
                  auto& ts = (*streams)[static_cast<size_t>(index)];
                  if (!ts) ts = std::make_shared<ToolCallStream>(shape.tool_syntax, shape.tools);
                  std::vector<ToolStreamDelta> deltas = ts->Feed(e.text);
                  if (finish) {
                    std::vector<ToolStreamDelta> rest = ts->Finish();
                    deltas.insert(deltas.end(), rest.begin(), rest.end());
                  }
                  const auto send_delta = [&](json delta, json finish_reason) {
                    if (!(*roles_sent)[static_cast<size_t>(index)]) {
                      delta["role"] = "assistant";
                      (*roles_sent)[static_cast<size_t>(index)] = true;
                    }
                    json c = choice;
                    c["delta"] = std::move(delta);
                    c["finish_reason"] = std::move(finish_reason);
                    return send(chunk_of(json::array({std::move(c)})));
                  };
                  bool ok = true;
                  for (const ToolStreamDelta& d : deltas) {
                    json delta = json::object();
                    if (d.kind == ToolStreamDelta::Kind::kContent) {
                      delta["content"] = d.text;
                    } else if (d.kind == ToolStreamDelta::Kind::kCallHeader) {
                      delta["tool_calls"] = json::array({{{"index", d.call},
                                                          {"id", ToolCallId(shape.tool_syntax)},
                                                          {"type", "function"},
                                                          {"function", {{"name", d.text}, {"arguments", ""}}}}});
                    } else {
                      delta["tool_calls"] = json::array({{{"index", d.call}, {"function", {{"arguments", d.text}}}}});
                    }
                    ok = ok && send_delta(std::move(delta), nullptr);
                  }
                  if (finish) {
                    std::string reason = runtime::FinishReasonName(e.finish);
                    if (ts->calls() > 0 && reason == "stop") reason = "tool_calls";
                    ok = ok && send_delta(json::object(), reason);
                  }
                  if (!ok) {
                    gen->CancelAll();
                    return false;
                  }
                  last_write = std::chrono::steady_clock::now();
                  continue;
                }
                if (shape.chat) {
                  json delta = json::object();
                  if (!(*roles_sent)[static_cast<size_t>(index)]) {
                    delta["role"] = "assistant";
                    (*roles_sent)[static_cast<size_t>(index)] = true;
                  }
                  if (!e.text.empty() || !finish) delta["content"] = e.text;
                  choice["delta"] = delta;
                  if (shape.chat_logprobs && !e.tokens.empty()) {
                    json content = json::array();
                    for (const auto& d : e.tokens) content.push_back(ChatLogprob(d, tok));
                    choice["logprobs"] = {{"content", content}};
                  }
                } else {
                  choice["text"] = e.text;
                  if (shape.legacy_logprobs && !e.tokens.empty()) {
                    json lp = {{"tokens", json::array()}, {"token_logprobs", json::array()},
                               {"top_logprobs", json::array()}, {"text_offset", json::array()}};
                    for (const auto& d : e.tokens) {
                      AppendLegacyLogprob(d, tok, (*text_bytes)[static_cast<size_t>(index)], &lp);
                      (*text_bytes)[static_cast<size_t>(index)] += static_cast<int64_t>(d.text.size());
                    }
                    choice["logprobs"] = lp;
                  }
                }
                if (finish) choice["finish_reason"] = runtime::FinishReasonName(e.finish);
                if (!send(chunk_of(json::array({choice})))) {
                  gen->CancelAll();  // the client is gone: free its sequences at the next step
                  return false;
                }
                last_write = std::chrono::steady_clock::now();
              } else if (e.kind == runtime::Event::Kind::kDone) {
                gen->done[p] = true;
                gen->usage.prompt_tokens += e.usage.prompt_tokens;
                gen->usage.cached_prompt_tokens += e.usage.cached_prompt_tokens;
                gen->usage.completion_tokens += e.usage.completion_tokens;
              } else {  // an engine error mid-stream: say so in the stream, then end it
                gen->CancelAll();
                send(Error(500, "server_error", e.error.message()).Body());
                gen->finished = true;
                break;
              }
            }
            if (!gen->finished) gen->finished = std::all_of(gen->done.begin(), gen->done.end(), [](bool d) { return d; });
            // Nothing for a while (a long prompt, the queue): a comment line keeps proxies from
            // timing out and shows a client that has gone away.
            if (!any && std::chrono::steady_clock::now() - last_write > std::chrono::seconds(1)) {
              if (!sink.write(": keep-alive\n\n", 14)) {
                gen->CancelAll();
                return false;
              }
              last_write = std::chrono::steady_clock::now();
            }
          }
          if (shape.include_usage) {
            json c = chunk_of(json::array());
            c["usage"] = UsageJson(gen->usage);
            send(c);
          }
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        },
        [gen](bool success) {
          if (!success) gen->CancelAll();
        });
    return;
  }

  // Not streaming: the JSON reply is written when complete, after blanks (leading whitespace
  // any JSON parser skips) every second while waiting: a client that has gone away fails the
  // write and its sequences are cancelled.
  res.set_chunked_content_provider(
      kJson,
      [gen, shape, id, created, model, tok](size_t, httplib::DataSink& sink) {
        const size_t choices_n = gen->handles.size() * static_cast<size_t>(gen->n);
        std::vector<ChoiceState> choices(choices_n);
        for (auto& c : choices)
          c.logprobs = shape.chat ? json{{"content", json::array()}}
                                  : json{{"tokens", json::array()}, {"token_logprobs", json::array()},
                                         {"top_logprobs", json::array()}, {"text_offset", json::array()}};
        auto last_write = std::chrono::steady_clock::now();
        std::string error;
        while (!gen->finished) {
          bool any = false;
          for (size_t p = 0; p < gen->handles.size(); ++p) {
            if (gen->done[p]) continue;
            runtime::Event e;
            if (!gen->handles[p]->Next(&e, 20)) continue;
            any = true;
            ChoiceState& c = choices[p * static_cast<size_t>(gen->n) + static_cast<size_t>(e.index)];
            if (e.kind == runtime::Event::Kind::kDelta) {
              for (const auto& d : e.tokens) {
                if (shape.chat && shape.chat_logprobs) c.logprobs["content"].push_back(ChatLogprob(d, tok));
                if (!shape.chat && shape.legacy_logprobs) {
                  AppendLegacyLogprob(d, tok, c.text_bytes, &c.logprobs);
                  c.text_bytes += static_cast<int64_t>(d.text.size());
                }
              }
              c.text += e.text;
            } else if (e.kind == runtime::Event::Kind::kFinish) {
              c.text += e.text;
              c.finish = runtime::FinishReasonName(e.finish);
            } else if (e.kind == runtime::Event::Kind::kDone) {
              gen->done[p] = true;
              gen->usage.prompt_tokens += e.usage.prompt_tokens;
              gen->usage.cached_prompt_tokens += e.usage.cached_prompt_tokens;
              gen->usage.completion_tokens += e.usage.completion_tokens;
            } else {
              error = e.error.message();
              gen->CancelAll();
              gen->finished = true;
              break;
            }
          }
          if (!gen->finished) gen->finished = std::all_of(gen->done.begin(), gen->done.end(), [](bool d) { return d; });
          if (!any && std::chrono::steady_clock::now() - last_write > std::chrono::seconds(1)) {
            if (!sink.write(" ", 1)) {
              gen->CancelAll();
              return false;
            }
            last_write = std::chrono::steady_clock::now();
          }
        }
        json body;
        if (!error.empty()) {
          body = Error(500, "server_error", error).Body();
        } else {
          json out = json::array();
          for (size_t i = 0; i < choices.size(); ++i) {
            json c = {{"index", i}, {"finish_reason", choices[i].finish}};
            if (shape.chat && shape.tool_mode != ToolMode::kNone) {
              const ToolAnswer a = ReadToolAnswer(shape, choices[i].text, choices[i].finish);
              c["message"] = {{"role", "assistant"}, {"content", a.content}};
              if (!a.tool_calls.is_null()) c["message"]["tool_calls"] = a.tool_calls;
              c["finish_reason"] = a.finish;
              c["logprobs"] = shape.chat_logprobs ? choices[i].logprobs : json();
            } else if (shape.chat) {
              c["message"] = {{"role", "assistant"}, {"content", choices[i].text}};
              c["logprobs"] = shape.chat_logprobs ? choices[i].logprobs : json();
            } else {
              c["text"] = choices[i].text;
              c["logprobs"] = shape.legacy_logprobs ? choices[i].logprobs : json();
            }
            out.push_back(c);
          }
          body = {{"id", id},
                  {"object", shape.chat ? "chat.completion" : "text_completion"},
                  {"created", created},
                  {"model", model},
                  {"choices", out},
                  {"usage", UsageJson(gen->usage)}};
        }
        const std::string text = body.dump();
        sink.write(text.data(), text.size());
        sink.done();
        return true;
      },
      [gen](bool success) {
        if (!success) gen->CancelAll();
      });
}

std::string Server::MetricsText() const {
  const runtime::EngineStats st = engine_.Stats();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  metric("fastgen_requests_total", "counter", "HTTP requests by endpoint and status code");
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, count] : requests_)
      o << "fastgen_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << count << "\n";
  }
  auto value = [&](const char* name, const char* type, const char* help, double v) {
    metric(name, type, help);
    o << name << " " << v << "\n";
  };
  value("fastgen_prompt_tokens_total", "counter", "prompt tokens of the requests started", static_cast<double>(st.prompt_tokens));
  value("fastgen_prompt_tokens_cached_total", "counter", "prompt tokens taken from the prefix cache",
        static_cast<double>(st.cached_prompt_tokens));
  value("fastgen_generation_tokens_total", "counter", "tokens generated", static_cast<double>(st.generated_tokens));
  value("fastgen_sequences_running", "gauge", "sequences admitted to the running batch", st.running);
  value("fastgen_sequences_waiting", "gauge", "sequences waiting for admission", st.waiting);
  value("fastgen_kv_blocks_total", "gauge", "KV cache blocks", static_cast<double>(st.kv_blocks_total));
  value("fastgen_kv_blocks_used", "gauge", "KV cache blocks held by sequences", static_cast<double>(st.kv_blocks_used));
  value("fastgen_kv_blocks_free", "gauge", "KV cache blocks free or holding a reusable cached prefix",
        static_cast<double>(st.kv_blocks_total - st.kv_blocks_used));
  value("fastgen_kv_blocks_cached", "gauge", "unused KV blocks holding a cached prompt prefix",
        static_cast<double>(st.kv_blocks_cached));
  value("fastgen_kv_block_tokens", "gauge", "tokens per KV block", static_cast<double>(st.kv_block_tokens));
  value("fastgen_prefix_cache_block_hits_total", "counter", "prompt blocks found in the prefix cache",
        static_cast<double>(st.prefix_block_hits));
  value("fastgen_prefix_cache_block_misses_total", "counter", "prompt block lookups that missed",
        static_cast<double>(st.prefix_block_misses));
  const double lookups = static_cast<double>(st.prefix_block_hits + st.prefix_block_misses);
  value("fastgen_prefix_cache_hit_rate", "gauge", "hits / lookups of prompt blocks in the prefix cache",
        lookups > 0 ? static_cast<double>(st.prefix_block_hits) / lookups : 0.0);
  value("fastgen_preemptions_total", "counter", "sequences preempted for KV blocks (recomputed later)",
        static_cast<double>(st.preemptions));
  value("fastgen_engine_steps_total", "counter", "forward passes run", static_cast<double>(st.steps));
  value("fastgen_spec_draft_tokens_total", "counter", "tokens drafted by prompt lookup", static_cast<double>(st.spec_drafted));
  value("fastgen_spec_accepted_tokens_total", "counter", "drafted tokens accepted", static_cast<double>(st.spec_accepted));
  auto histogram = [&](const char* name, const char* help, const runtime::Histogram& h) {
    metric(name, "histogram", help);
    int64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      cumulative += h.counts[i];
      o << name << "_bucket{le=\"" << h.bounds[i] << "\"} " << cumulative << "\n";
    }
    o << name << "_bucket{le=\"+Inf\"} " << h.count << "\n" << name << "_sum " << h.sum << "\n" << name << "_count " << h.count << "\n";
  };
  histogram("fastgen_time_to_first_token_seconds", "time from a request's arrival to its first token", st.time_to_first_token);
  histogram("fastgen_inter_token_latency_seconds", "time between a sequence's tokens", st.inter_token_latency);
  return o.str();
}

}  // namespace fastgen::server
