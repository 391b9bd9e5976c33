// `fastgen bench-serve --url URL`: a load generator for any OpenAI-compatible server (fastgen's,
// llama.cpp's llama-server, ...). At each concurrency level it keeps that many streaming requests
// in flight until --requests have finished, and reports time to first token, inter-token latency
// and end-to-end latency percentiles and the aggregate generated tokens per second, as a table or
// JSON. Prompts are token ids (exact lengths on any server): slices of a text file tokenized by
// the server's own /tokenize, or random ids; outputs have a fixed length (max_tokens with
// ignore_eos) so that servers are compared on the same work.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/commands.h"
#include "core/diagnostics.h"

namespace fastgen::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchServeFlags {
  std::string url = "http://127.0.0.1:8080";
  std::string api_key;
  std::string model;            // default: the first model /v1/models lists
  std::string concurrency = "1,4,16";
  int64_t requests = 0;         // per level; 0: 2 x concurrency (at least 4)
  std::string prompt_file;
  int64_t prompt_tokens = 128;
  int64_t prompt_tokens_max = 0;  // > prompt_tokens: lengths uniform in [prompt_tokens, max]
  int64_t shared_prefix = 0;      // tokens every prompt starts with (prefix caching)
  int64_t max_tokens = 64;
  bool chat = false;
  bool json_out = false;
  int timeout_s = 600;
  uint64_t seed = 1;
};

struct Sample {
  bool ok = false;
  std::string error;
  double ttft = 0;                  // seconds to the first token
  double e2e = 0;                   // seconds to the end
  std::vector<double> gaps;         // between token chunks
  int64_t tokens = 0;               // generated (usage when reported, else token chunks)
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double at = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(at);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

struct Target {
  std::string scheme_host_port;
  httplib::Headers headers;
};

Expected<Target> ParseUrl(const BenchServeFlags& f) {
  Target t;
  std::string u = f.url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (u.rfind("http://", 0) != 0) return InvalidArgument("--url " + f.url + ": expected http://HOST:PORT");
  t.scheme_host_port = u;
  if (!f.api_key.empty()) t.headers.emplace("Authorization", "Bearer " + f.api_key);
  return t;
}

std::unique_ptr<httplib::Client> MakeClient(const Target& t, int timeout_s) {
  auto c = std::make_unique<httplib::Client>(t.scheme_host_port);
  c->set_read_timeout(timeout_s, 0);
  c->set_write_timeout(timeout_s, 0);
  c->set_connection_timeout(10, 0);
  c->set_default_headers(t.headers);
  c->set_keep_alive(true);  // one connection per worker, as clients keep them
  return c;
}

// One streamed request; token chunks are timed as they arrive.
Sample RunOne(httplib::Client& cli, const BenchServeFlags& f, const std::string& model, const std::vector<int32_t>& prompt) {
  Sample s;
  json body = {{"model", model},
               {"max_tokens", f.max_tokens},
               {"ignore_eos", true},
               {"temperature", 0},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (f.chat) {
    // Chat has no token-id prompts: the ids go as text through a message (their lengths then
    // follow the server's chat template).
    body["messages"] = json::array({{{"role", "user"}, {"content", "Continue: " + json(prompt).dump()}}});
  } else {
    body["prompt"] = prompt;
  }
  httplib::Request req;
  req.method = "POST";
  req.path = f.chat ? "/v1/chat/completions" : "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  const auto t0 = Clock::now();
  auto last = t0;
  std::string buffer;
  int64_t chunks = 0, usage_tokens = -1;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") continue;
      const json j = json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("error")) {
        s.error = j["error"].value("message", "error in stream");
        continue;
      }
      if (j.contains("usage") && j["usage"].is_object()) usage_tokens = j["usage"].value("completion_tokens", int64_t{-1});
      if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) continue;
      const json& c = j["choices"][0];
      std::string text;
      if (c.contains("text") && c["text"].is_string()) text = c["text"].get<std::string>();
      if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") && c["delta"]["content"].is_string())
        text = c["delta"]["content"].get<std::string>();
      // A chunk with text stands for a token (servers send one chunk per token, or per step).
      if (text.empty()) continue;
      const auto now = Clock::now();
      if (chunks == 0) {
        s.ttft = std::chrono::duration<double>(now - t0).count();
      } else {
        s.gaps.push_back(std::chrono::duration<double>(now - last).count());
      }
      last = now;
      ++chunks;
    }
    return true;
  };
  auto res = cli.send(req);
  s.e2e = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!res) {
    s.error = "request failed: " + httplib::to_string(res.error());
    return s;
  }
  if (res->status != 200) {
    s.error = "HTTP " + std::to_string(res->status);
    return s;
  }
  s.tokens = usage_tokens >= 0 ? usage_tokens : chunks;
  s.ok = s.error.empty() && chunks > 0;
  if (chunks == 0 && s.error.empty()) s.error = "no tokens in the stream";
  return s;
}

int BenchServe(const BenchServeFlags& f) {
  auto target = ParseUrl(f);
  if (!target.ok()) return ReportError(target.status());
  auto cli = MakeClient(*target, f.timeout_s);
  std::string model = f.model;
  if (model.empty()) {
    auto r = cli->Get("/v1/models");
    if (!r || r->status != 200)
      return ReportError(IoError(f.url + "/v1/models: " + (r ? "HTTP " + std::to_string(r->status) : httplib::to_string(r.error()))));
    const json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() || !j["data"][0].contains("id"))
      return ReportError(CorruptFile(f.url + "/v1/models: no model listed"));
    model = j["data"][0]["id"].get<std::string>();
  }
  std::vector<int> levels;
  {
    auto ids = ParseIdList(f.concurrency);
    if (!ids.ok() || ids->empty()) return ReportError(InvalidArgument("--concurrency '" + f.concurrency + "': expected e.g. 1,4,16"));
    for (int32_t c : *ids) {
      if (c < 1 || c > 1024) return ReportError(InvalidArgument("--concurrency: " + std::to_string(c) + " is outside [1, 1024]"));
      levels.push_back(c);
    }
  }
  // The token pool prompts are cut from.
  std::vector<int32_t> pool;
  std::mt19937_64 rng(f.seed);
  if (!f.prompt_file.empty()) {
    auto text = ReadTextFile(f.prompt_file, kPromptFileLimit);
    if (!text.ok()) return ReportError(text.status());
    if (!IsValidUtf8(*text)) return ReportError(CorruptFile(f.prompt_file + ": not valid UTF-8"));
    auto r = cli->Post("/tokenize", json{{"content", *text}}.dump(), "application/json");
    if (!r || r->status != 200) return ReportError(IoError(f.url + "/tokenize: the server did not tokenize the prompt file"));
    const json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("tokens") || !j["tokens"].is_array())
      return ReportError(CorruptFile(f.url + "/tokenize: unexpected reply"));
    for (const json& t : j["tokens"])
      if (t.is_number_integer()) pool.push_back(t.get<int32_t>());
  } else {
    for (int i = 0; i < (1 << 16); ++i) pool.push_back(static_cast<int32_t>(300 + rng() % 1000));
  }
  const int64_t max_len = std::max(f.prompt_tokens, f.prompt_tokens_max);
  if (static_cast<int64_t>(pool.size()) < max_len + f.shared_prefix + 1)
    return ReportError(InvalidArgument("--prompt-file: " + std::to_string(pool.size()) + " tokens, fewer than a prompt needs"));
  const std::vector<int32_t> prefix(pool.begin(), pool.begin() + f.shared_prefix);

  json report = json::array();
  if (!f.json_out) {
    std::printf("server %s, model %s, prompts of %lld%s tokens%s, %lld generated tokens each\n\n", f.url.c_str(),
                model.c_str(), static_cast<long long>(f.prompt_tokens),
                max_len > f.prompt_tokens ? ("-" + std::to_string(max_len)).c_str() : "",
                f.shared_prefix > 0 ? (" after a shared prefix of " + std::to_string(f.shared_prefix)).c_str() : "",
                static_cast<long long>(f.max_tokens));
    std::printf("| concurrency | requests | failed | gen tok/s | TTFT p50 / p90 / p99 (s) | ITL p50 / p90 / p99 (ms) | E2E p50 / p90 (s) |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
  }
  for (int c : levels) {
    const int64_t n = f.requests > 0 ? f.requests : std::max<int64_t>(4, 2 * c);
    std::vector<std::vector<int32_t>> prompts;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t len = max_len > f.prompt_tokens
                              ? f.prompt_tokens + static_cast<int64_t>(rng() % static_cast<uint64_t>(max_len - f.prompt_tokens + 1))
                              : f.prompt_tokens;
      const int64_t at = f.shared_prefix + static_cast<int64_t>(rng() % static_cast<uint64_t>(pool.size() - f.shared_prefix - len));
      std::vector<int32_t> p = prefix;
      p.insert(p.end(), pool.begin() + at, pool.begin() + at + len);
      prompts.push_back(std::move(p));
    }
    std::vector<Sample> samples(static_cast<size_t>(n));
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> retries{0};
    const auto t0 = Clock::now();
    std::vector<std::thread> workers;
    for (int w = 0; w < c; ++w) {
      workers.emplace_back([&] {
        auto client = MakeClient(*target, f.timeout_s);
        for (int64_t i = next++; i < n; i = next++) {
          Sample s = RunOne(*client, f, model, prompts[static_cast<size_t>(i)]);
          // A kept-alive connection the server closed while idle fails before any byte comes
          // back: that request never reached the server, so it is sent again on a new
          // connection (once; counted).
          if (!s.ok && s.error.rfind("request failed", 0) == 0 && s.ttft == 0) {
            ++retries;
            client = MakeClient(*target, f.timeout_s);
            s = RunOne(*client, f, model, prompts[static_cast<size_t>(i)]);
          }
          samples[static_cast<size_t>(i)] = std::move(s);
        }
      });
    }
    for (auto& w : workers) w.join();
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<double> ttft, itl, e2e;
    int64_t tokens = 0, failed = 0;
    std::string first_error;
    for (const Sample& s : samples) {
      if (!s.ok) {
        ++failed;
        if (first_error.empty()) first_error = s.error;
        continue;
      }
      ttft.push_back(s.ttft);
      e2e.push_back(s.e2e);
      itl.insert(itl.end(), s.gaps.begin(), s.gaps.end());
      tokens += s.tokens;
    }
    const double tps = wall > 0 ? static_cast<double>(tokens) / wall : 0;
    json level = {{"concurrency", c},
                  {"requests", n},
                  {"failed", failed},
                  {"seconds", wall},
                  {"generated_tokens", tokens},
                  {"generated_tokens_per_second", tps},
                  {"retried_connections", retries.load()},
                  {"ttft_seconds", {{"p50", Percentile(ttft, 50)}, {"p90", Percentile(ttft, 90)}, {"p99", Percentile(ttft, 99)}}},
                  {"itl_seconds", {{"p50", Percentile(itl, 50)}, {"p90", Percentile(itl, 90)}, {"p99", Percentile(itl, 99)}}},
                  {"e2e_seconds", {{"p50", Percentile(e2e, 50)}, {"p90", Percentile(e2e, 90)}, {"p99", Percentile(e2e, 99)}}}};
    if (!first_error.empty()) level["first_error"] = first_error;
    json ttft_each = json::array();
    for (const Sample& s : samples) ttft_each.push_back(s.ok ? json(s.ttft) : json());
    level["ttft_each_seconds"] = ttft_each;  // in submission order
    report.push_back(level);
    if (!f.json_out) {
      std::printf("| %d | %lld | %lld | %.2f | %.3f / %.3f / %.3f | %.1f / %.1f / %.1f | %.2f / %.2f |\n", c,
                  static_cast<long long>(n), static_cast<long long>(failed), tps, Percentile(ttft, 50), Percentile(ttft, 90),
                  Percentile(ttft, 99), 1e3 * Percentile(itl, 50), 1e3 * Percentile(itl, 90), 1e3 * Percentile(itl, 99),
                  Percentile(e2e, 50), Percentile(e2e, 90));
      std::fflush(stdout);
      if (!first_error.empty()) std::fprintf(stderr, "first failure: %s\n", EscapeForTerminal(first_error).c_str());
      if (retries > 0) std::fprintf(stderr, "%lld requests sent again after their kept-alive connection closed\n",
                                    static_cast<long long>(retries.load()));
    }
  }
  if (f.json_out) std::printf("%s\n", json{{"url", f.url}, {"model", model}, {"levels", report}}.dump(2).c_str());
  return 0;
}

}  // namespace

CommandFn AddBenchServeCommand(CLI::App& app) {
  auto f = std::make_shared<BenchServeFlags>();
  CLI::App* cmd = app.add_subcommand("bench-serve", "Load-test an OpenAI-compatible server: latency percentiles and throughput");
  cmd->add_option("--url", f->url, "Server base URL (default http://127.0.0.1:8080)")->check(NonEmpty());
  cmd->add_option("--api-key", f->api_key, "Bearer key to send");
  cmd->add_option("--model", f->model, "Model name to request (default: the first /v1/models lists)");
  cmd->add_option("--concurrency", f->concurrency, "Concurrency levels, e.g. 1,4,16 (default 1,4,16)");
  cmd->add_option("--requests", f->requests, "Requests per level (default 2 x concurrency, at least 4)")->check(IntRange(0, 1 << 20));
  cmd->add_option("--prompt-file", f->prompt_file, "Text whose tokens prompts are cut from (tokenized by the server's /tokenize)")
      ->check(NonEmpty());
  cmd->add_option("--prompt-tokens", f->prompt_tokens, "Prompt length in tokens (default 128)")->check(IntRange(1, 1 << 20));
  cmd->add_option("--prompt-tokens-max", f->prompt_tokens_max, "Random prompt lengths up to this (default: fixed)")
      ->check(IntRange(0, 1 << 20));
  cmd->add_option("--shared-prefix", f->shared_prefix, "Tokens every prompt starts with (default 0)")->check(IntRange(0, 1 << 20));
  cmd->add_option("--max-tokens", f->max_tokens, "Generated tokens per request, fixed with ignore_eos (default 64)")
      ->check(IntRange(1, 1 << 20));
  cmd->add_flag("--chat", f->chat, "Use /v1/chat/completions instead of /v1/completions");
  cmd->add_flag("--json", f->json_out, "Print JSON instead of a table");
  cmd->add_option("--timeout", f->timeout_s, "Seconds a request may take (default 600)")->check(IntRange(1, 86400));
  cmd->add_option("--seed", f->seed, "Seed of the prompt choice (default 1)")->check(Uint64());
  return [f] { return BenchServe(*f); };
}

}  // namespace fastgen::cli
