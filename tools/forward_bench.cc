// forward_bench: the cost of one forward pass over n tokens after a context of D tokens, for
// n = 1..N, relative to n = 1. Speculative decoding lives on this curve: verifying k drafted
// tokens is a pass over k + 1 tokens, and it pays only if that costs well under k + 1 plain
// steps. The sizes are measured in rounds (n = 1, 2, ..., N, then again), so drift on a shared
// machine hits every n alike; each figure is the median over the rounds.
//
// usage: forward_bench MODEL [-t THREADS] [-d DEPTH] [-n MAX_N] [-r ROUNDS] [--tree]
//                      [--stream auto|on|off[,...]] [--kv-type f32|f16|q8_0]
//   --tree: the n tokens form a star (n - 1 siblings under one root) instead of a chain.
//   --stream: weights fetched past the caches (Model::set_stream_weights); several settings are
//   compared side by side, every round measuring each in turn. Default: LoadModel's choice.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/model.h"

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

int Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s MODEL [-t THREADS] [-d DEPTH] [-n MAX_N] [-r ROUNDS] [--tree] [--stream on|off[,...]] [--kv-type T]\n",
               argv0);
  return 2;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "forward_bench: error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage(argv[0]);
  const std::string path = argv[1];
  int threads = fastgen::ThreadPool::DefaultThreads();
  int64_t depth = 256, max_n = 16;
  int rounds = 30;
  bool tree = false;
  std::vector<int> plans;  // stream setting per configuration: 1 on, 0 off, -1 LoadModel's
  fastgen::ModelOptions options;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "-t" && has_value) {
      threads = std::atoi(argv[++i]);
    } else if (a == "-d" && has_value) {
      depth = std::atoll(argv[++i]);
    } else if (a == "-n" && has_value) {
      max_n = std::atoll(argv[++i]);
    } else if (a == "-r" && has_value) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--kv-type" && has_value) {
      const auto t = fastgen::DTypeFromName(argv[++i]);
      if (!t) return Usage(argv[0]);
      options.kv_type = *t;
    } else if (a == "--tree") {
      tree = true;
    } else if (a == "--stream" && has_value) {
      const std::string list = argv[++i];
      for (size_t p = 0; p <= list.size();) {
        size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        const std::string v = list.substr(p, q - p);
        if (v != "on" && v != "off" && v != "auto") return Usage(argv[0]);
        plans.push_back(v == "on" ? 1 : v == "off" ? 0 : -1);
        p = q + 1;
      }
    } else {
      return Usage(argv[0]);
    }
  }
  if (threads < 1 || depth < 1 || max_n < 1 || rounds < 1) return Usage(argv[0]);

  fastgen::ThreadPool pool(threads);
  auto loaded = fastgen::LoadModel(path, &pool, options);
  if (!loaded.ok()) return Fail(loaded.status().message());
  fastgen::Model& m = **loaded;
  const int64_t vocab = m.config().vocab_size;
  auto kv = m.NewKvCache(depth + max_n + 1);
  if (!kv.ok()) return Fail(kv.status().message());
  std::vector<int32_t> ids(static_cast<size_t>(depth + max_n));
  uint64_t s = 12345;
  for (auto& id : ids) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(vocab));
  }
  std::vector<float> logits;
  if (auto st = m.Forward(std::span<const int32_t>(ids.data(), static_cast<size_t>(depth)), *kv,
                          fastgen::LogitsMode::kLast, &logits);
      !st.ok())
    return Fail(st.message());

  const bool auto_stream = m.stream_weights();
  if (plans.empty()) plans.push_back(-1);
  std::vector<double> streamed(plans.size());
  // ms[config][n]
  std::vector<std::vector<std::vector<double>>> ms(plans.size(), std::vector<std::vector<double>>(static_cast<size_t>(max_n) + 1));
  std::vector<int32_t> parents;
  for (int r = 0; r < rounds + 1; ++r) {  // round 0 warms up
    for (size_t c = 0; c < plans.size(); ++c) {
      m.set_stream_weights(plans[c] < 0 ? auto_stream : plans[c] == 1);
      streamed[c] = m.stream_weights() ? static_cast<double>(m.weight_matrix_bytes()) / (1 << 20) : 0.0;
      for (int64_t n = 1; n <= max_n; ++n) {
        fastgen::BatchLayout layout;
        if (tree && n > 2) {
          parents.assign(1, -1);
          for (int64_t i = 1; i < n; ++i) parents.push_back(0);
          layout.parents = parents;
        }
        const std::span<const int32_t> batch(ids.data() + depth, static_cast<size_t>(n));
        const auto t0 = std::chrono::steady_clock::now();
        const auto st = m.Forward(batch, layout, *kv, fastgen::LogitsMode::kAll, &logits);
        const auto t1 = std::chrono::steady_clock::now();
        if (!st.ok()) return Fail(st.message());
        kv->Truncate(depth);
        if (r > 0) ms[c][static_cast<size_t>(n)].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    }
  }
  std::printf("%s, %d threads, after %lld tokens, %s, %s KV cache, median of %d rounds\n", path.c_str(),
              threads, static_cast<long long>(depth), tree ? "star trees" : "chains",
              std::string(fastgen::Name(options.kv_type)).c_str(), rounds);
  std::printf("%12s %4s %10s %10s %12s\n", "streamed MB", "n", "ms", "x n=1", "ms/token");
  for (size_t c = 0; c < plans.size(); ++c) {
    const double one = Median(ms[c][1]);
    for (int64_t n = 1; n <= max_n; ++n) {
      const double t = Median(ms[c][static_cast<size_t>(n)]);
      std::printf("%12.1f %4lld %10.3f %10.2f %12.3f\n", streamed[c], static_cast<long long>(n), t, t / one,
                  t / static_cast<double>(n));
    }
  }
  return 0;
}
