// llama.cpp's grammar sampler on the same grammar, vocabulary and document as tools/grammar_bench:
// the time of llama_sampler_apply over the whole vocabulary (its full token mask) per token.
// Built and run by scripts/bench_grammar_vs_llama against a llama.cpp build (public API only).
//
//   llama_grammar_bench VOCAB_GGUF GBNF DOCUMENT [REPEATS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

std::string Read(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s VOCAB_GGUF GBNF DOCUMENT [REPEATS]\n", argv[0]);
    return 2;
  }
  const int repeats = argc > 4 ? std::max(1, std::atoi(argv[4])) : 5;
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const std::string gbnf = Read(argv[2]);
  std::string doc = Read(argv[3]);
  while (!doc.empty() && doc.back() == '\n') doc.pop_back();
  std::vector<llama_token> ids(doc.size() + 16);
  const int n = llama_tokenize(vocab, doc.c_str(), static_cast<int32_t>(doc.size()), ids.data(),
                               static_cast<int32_t>(ids.size()), /*add_special=*/false, /*parse_special=*/false);
  if (n < 0) return 1;
  ids.resize(n);
  const int n_vocab = llama_vocab_n_tokens(vocab);

  using Clock = std::chrono::steady_clock;
  std::vector<double> compile_ms, step_us;
  std::vector<llama_token_data> cand(n_vocab);
  for (int r = 0; r < repeats; ++r) {
    const auto c0 = Clock::now();
    llama_sampler* g = llama_sampler_init_grammar(vocab, gbnf.c_str(), "root");
    compile_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - c0).count());
    if (!g) return 1;
    for (int i = 0; i < n; ++i) {
      for (int t = 0; t < n_vocab; ++t) cand[t] = {t, 0.0f, 0.0f};
      llama_token_data_array arr{cand.data(), cand.size(), -1, false};
      const auto s0 = Clock::now();
      llama_sampler_apply(g, &arr);
      step_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s0).count());
      if (std::isinf(cand[ids[i]].logit)) {
        std::fprintf(stderr, "step %d: llama.cpp's grammar refuses the document's token %d\n", i, ids[i]);
        return 1;
      }
      llama_sampler_accept(g, ids[i]);
    }
    llama_sampler_free(g);
  }
  std::printf("llama.cpp grammar sampler: %d tokens x %d repeats; init %.2f ms (median); per-token mask "
              "(llama_sampler_apply over %d candidates): median %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
              n, repeats, Percentile(compile_ms, 0.5), n_vocab, Percentile(step_us, 0.5), Percentile(step_us, 0.9),
              Percentile(step_us, 0.99), Percentile(step_us, 1.0));
  llama_model_free(model);
  return 0;
}
