// Token-mask cost of structured output: a JSON Schema compiled to a grammar, then a document
// that validates under it fed token by token, timing each step's full vocabulary mask.
//
//   grammar_bench TOKENIZER SCHEMA DOCUMENT [REPEATS] [GBNF_OUT]
//
// TOKENIZER: anything Tokenizer::Load accepts, or a gzipped tokenizer.json. The document is
// tokenized as a model would have written it, and each repeat starts from a fresh constraint
// (cold caches, as a new request does). Prints the schema's compile time and the per-token mask
// time (median, p90, p99, max) over all steps of all repeats; each mask is checked to allow the
// document's next token. GBNF_OUT receives the schema's grammar (for llama.cpp side by side:
// scripts/bench_grammar_vs_llama).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "decoding/constrained/json_schema.h"
#include "decoding/constrained/output_format.h"
#include "decoding/constrained/token_mask.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
double Micros(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }

bool ReadAll(const std::string& path, std::string* out) {
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  std::FILE* f = gz ? ::popen(("gzip -dc '" + path + "'").c_str(), "r") : std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out->append(buf, n);
  return (gz ? ::pclose(f) : std::fclose(f)) == 0;
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fastgen;
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s TOKENIZER SCHEMA DOCUMENT [REPEATS]\n", argv[0]);
    return 2;
  }
  const int repeats = argc > 4 ? std::max(1, std::atoi(argv[4])) : 10;
  std::string tok_text, schema, doc;
  if (!ReadAll(argv[1], &tok_text) || !ReadAll(argv[2], &schema) || !ReadAll(argv[3], &doc)) {
    std::fprintf(stderr, "cannot read the inputs\n");
    return 1;
  }
  auto tok = Tokenizer::FromJson(tok_text, argv[1]);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().message().c_str());
    return 1;
  }
  while (!doc.empty() && doc.back() == '\n') doc.pop_back();

  auto t0 = Clock::now();
  const auto& bytes = (*tok)->TokenBytes();
  auto vocab = constrained::MakeTokenVocabulary(bytes, (*tok)->vocab_size());
  auto t1 = Clock::now();
  std::printf("vocabulary: %d tokens, bytes and sorted prefixes in %.1f ms (once per model)\n", vocab->size(),
              Micros(t0, t1) / 1000);

  std::vector<double> compile_ms;
  std::shared_ptr<const constrained::Grammar> grammar;
  size_t gbnf_bytes = 0;
  for (int i = 0; i < 20; ++i) {
    t0 = Clock::now();
    auto g = constrained::JsonSchemaTextToGbnf(schema);
    if (!g.ok()) {
      std::fprintf(stderr, "schema: %s\n", g.status().message().c_str());
      return 1;
    }
    auto parsed = constrained::Grammar::Parse(*g);
    t1 = Clock::now();
    if (!parsed.ok()) {
      std::fprintf(stderr, "grammar: %s\n", parsed.status().message().c_str());
      return 1;
    }
    grammar = *parsed;
    gbnf_bytes = g->size();
    if (i == 0 && argc > 5) {
      std::FILE* out = std::fopen(argv[5], "wb");
      if (out == nullptr || std::fwrite(g->data(), 1, g->size(), out) != g->size()) return 1;
      std::fclose(out);
    }
    compile_ms.push_back(Micros(t0, t1) / 1000);
  }
  std::printf("schema -> grammar: %zu bytes of GBNF, %d rules, %zu elements; compiled in %.2f ms (median of 20)\n",
              gbnf_bytes, grammar->rule_count(), grammar->elements().size(), Percentile(compile_ms, 0.5));

  auto ids = (*tok)->Encode(doc);
  if (!ids.ok()) return 1;
  std::vector<double> step_us, first_us, doc_ms;
  std::vector<uint64_t> mask;
  const int32_t eos = (*tok)->eos_id().value_or(-1);
  std::vector<double> warm_us;
  for (int r = 0; r < 2 * repeats; ++r) {
    const bool warm = r >= repeats;
    // Cold: a cache of its own (the grammar's first request). Warm: a new sequence on the cache
    // the last cold pass filled (the same schema again, as the server shares it).
    static std::shared_ptr<constrained::GrammarMaskCache> cache;
    if (!warm) cache = std::make_shared<constrained::GrammarMaskCache>(grammar, vocab);
    constrained::TokenConstraint c(cache, {eos});
    std::vector<double>& times = warm ? warm_us : step_us;
    const auto d0 = Clock::now();
    for (size_t i = 0; i <= ids->size(); ++i) {
      const auto s0 = Clock::now();
      c.FillMask(&mask);
      const auto s1 = Clock::now();
      times.push_back(Micros(s0, s1));
      if (i == 0 && !warm) first_us.push_back(Micros(s0, s1));
      const int32_t next = i < ids->size() ? (*ids)[i] : eos;
      if (next < 0) break;
      if (!((mask[next >> 6] >> (next & 63)) & 1)) {
        std::fprintf(stderr, "step %zu: the mask refuses the document's token %d ('%s')\n", i, next, bytes[next].c_str());
        return 1;
      }
      if (i < ids->size() && !c.Accept(next)) return 1;
    }
    if (!warm) doc_ms.push_back(Micros(d0, Clock::now()) / 1000);
    if (r == repeats - 1) {
      const auto& s = c.stats();
      std::printf("caches (last repeat): %lld masks, %lld stack hits, %lld misses, %lld truncated walks, %lld undecided tokens checked\n",
                  static_cast<long long>(s.masks), static_cast<long long>(s.stack_hits),
                  static_cast<long long>(s.stack_misses), static_cast<long long>(s.truncated_walks),
                  static_cast<long long>(s.uncertain_checked));
    }
  }
  std::printf("document: %zu tokens; per-token mask over %d repeats (fresh caches each): median %.1f us, p90 %.1f us, "
              "p99 %.1f us, max %.1f us; first step median %.1f us; whole document median %.2f ms\n",
              ids->size(), repeats, Percentile(step_us, 0.5), Percentile(step_us, 0.9), Percentile(step_us, 0.99),
              Percentile(step_us, 1.0), Percentile(first_us, 0.5), Percentile(doc_ms, 0.5));
  std::printf("warm (the same grammar again: a new sequence on the filled cache): median %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
              Percentile(warm_us, 0.5), Percentile(warm_us, 0.9), Percentile(warm_us, 0.99), Percentile(warm_us, 1.0));
  return 0;
}
