// Encode throughput of a tokenizer on a text file, single thread, in MB/s.
//
//   tokenizer_bench TOKENIZER [TEXT] [REPEATS] [THREADS]
//
// TOKENIZER: anything Tokenizer::Load accepts, or a gzipped tokenizer.json (*.json.gz, read
// through gzip -dc). TEXT defaults to ../shared/corpus/valid.txt. The text is encoded in
// documents split at "<|endoftext|>" boundaries-free chunks of ~64 KB (as a server would see
// prompts), first once with a cold word cache, then REPEATS more times; the median is reported.
// With THREADS > 1, that many threads each encode the whole text at once through the same
// Tokenizer, and the per-thread rate is reported (it shows contention on the shared cache).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "core/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace {

bool ReadAll(const std::string& path, std::string* out) {
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  std::FILE* f = gz ? ::popen(("gzip -dc '" + path + "'").c_str(), "r") : std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out->append(buf, n);
  return (gz ? ::pclose(f) : std::fclose(f)) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER [TEXT] [REPEATS]\n", argv[0]);
    return 2;
  }
  const std::string tok_path = argv[1];
  const std::string text_path = argc > 2 ? argv[2] : "../shared/corpus/valid.txt";
  const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  const int threads = argc > 4 ? std::max(1, std::atoi(argv[4])) : 1;

  fastgen::Expected<std::unique_ptr<fastgen::Tokenizer>> tok = fastgen::Status(fastgen::ErrorCode::kInternal, "unset");
  const auto load_start = std::chrono::steady_clock::now();
  if (tok_path.size() > 8 && tok_path.compare(tok_path.size() - 8, 8, ".json.gz") == 0) {
    std::string json;
    if (!ReadAll(tok_path, &json)) {
      std::fprintf(stderr, "cannot read %s\n", tok_path.c_str());
      return 1;
    }
    tok = fastgen::Tokenizer::FromJson(json, tok_path);
  } else {
    tok = fastgen::Tokenizer::Load(tok_path);
  }
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().message().c_str());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  std::string text;
  if (!ReadAll(text_path, &text)) {
    std::fprintf(stderr, "cannot read %s\n", text_path.c_str());
    return 1;
  }
  // Chunks of about 64 KB cut at line ends, so no word is split by the chunking.
  std::vector<std::string_view> chunks;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = std::min(text.size(), pos + (64 << 10));
    const size_t nl = text.find('\n', end);
    end = nl == std::string::npos ? text.size() : nl + 1;
    chunks.emplace_back(text.data() + pos, end - pos);
    pos = end;
  }
  auto run = [&](size_t* n_tokens) {
    const auto t0 = std::chrono::steady_clock::now();
    *n_tokens = 0;
    for (std::string_view c : chunks) {
      auto ids = (*tok)->Encode(c);
      if (ids.ok()) *n_tokens += ids->size();
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  size_t n_tokens = 0;
  const double cold = run(&n_tokens);
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) times.push_back(run(&n_tokens));
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("%s: load %.2f s, %.2f MB, %zu tokens (%.2f bytes/token); cold %.1f MB/s, warm median %.1f MB/s\n",
              tok_path.c_str(), load_s, mb, n_tokens, static_cast<double>(text.size()) / n_tokens, mb / cold,
              mb / median);
  if (threads > 1) {
    std::vector<double> secs(threads);
    std::vector<size_t> counts(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { secs[t] = run(&counts[t]); });
    for (auto& th : pool) th.join();
    double sum = 0;
    for (double s : secs) sum += mb / s;
    std::printf("%d threads: %.1f MB/s per thread, %.1f MB/s total\n", threads, sum / threads, sum);
  }
  return 0;
}
