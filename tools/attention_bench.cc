// attention_bench: decode / verification attention alone, the split-K kernel over a KV cache of
// a given shape, for every layer of a model. Prints the median and p10 over repetitions.
//
// usage: attention_bench [-t THREADS] [--slots N] [--queries Q] [--heads H] [--kv-heads KV]
//                        [--head-dim D] [--layers L] [--kv-type f32|f16|q8_0] [-r REPS]
//   Defaults: fg-target's shape (6 heads, 2 KV heads, 64 dims, 8 layers) over 800 slots,
//   1 query. TinyLlama: --heads 32 --kv-heads 4 --layers 22.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/reference/dequant.h"

namespace {

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [-t THREADS] [--slots N] [--queries Q] [--heads H] [--kv-heads KV] [--head-dim D] "
               "[--layers L] [--kv-type f32|f16|q8_0] [-r REPS]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fastgen;
  int threads = ThreadPool::DefaultThreads(), reps = 0;
  int64_t slots = 800, queries = 1, heads = 6, kv_heads = 2, head_dim = 64, layers = 8;
  DType type = DType::kF32;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage(argv[0]);
    const char* v = argv[++i];
    if (a == "-t") threads = std::atoi(v);
    else if (a == "--slots") slots = std::atoll(v);
    else if (a == "--queries") queries = std::atoll(v);
    else if (a == "--heads") heads = std::atoll(v);
    else if (a == "--kv-heads") kv_heads = std::atoll(v);
    else if (a == "--head-dim") head_dim = std::atoll(v);
    else if (a == "--layers") layers = std::atoll(v);
    else if (a == "-r") reps = std::atoi(v);
    else if (a == "--kv-type") {
      const auto t = DTypeFromName(v);
      if (!t || !kernels::KvTypeSupported(*t, head_dim)) return Usage(argv[0]);
      type = *t;
    } else {
      return Usage(argv[0]);
    }
  }
  if (threads < 1 || slots < queries || queries < 1 || heads < 1 || kv_heads < 1 || heads % kv_heads != 0 ||
      head_dim < 1 || layers < 1)
    return Usage(argv[0]);
  if (reps <= 0) reps = slots > 2000 ? 100 : 1000;

  ThreadPool pool(threads);
  const int64_t row = kv_heads * head_dim;  // elements per slot
  const size_t row_bytes = *RowBytes(type, row);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> tmp(static_cast<size_t>(row));
  std::vector<std::vector<uint8_t>> k(static_cast<size_t>(layers)), v(static_cast<size_t>(layers));
  for (int64_t l = 0; l < layers; ++l) {
    for (auto* cache : {&k[static_cast<size_t>(l)], &v[static_cast<size_t>(l)]}) {
      cache->resize(row_bytes * static_cast<size_t>(slots));
      for (int64_t s = 0; s < slots; ++s) {
        for (auto& x : tmp) x = normal(rng);
        kernels::reference::QuantizeRow(type, tmp.data(), cache->data() + static_cast<size_t>(s) * row_bytes, row);
      }
    }
  }
  std::vector<float> q(static_cast<size_t>(queries * heads * head_dim)), out(q.size());
  for (auto& x : q) x = normal(rng);
  std::vector<int32_t> q_slot(static_cast<size_t>(queries));
  for (int64_t t = 0; t < queries; ++t) q_slot[static_cast<size_t>(t)] = static_cast<int32_t>(slots - queries + t);

  std::vector<double> us;
  for (int r = 0; r < reps + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t l = 0; l < layers; ++l) {
      kernels::AttentionArgs a;
      a.q = q.data();
      a.k = k[static_cast<size_t>(l)].data();
      a.v = v[static_cast<size_t>(l)].data();
      a.kv_type = type;
      a.out = out.data();
      a.n = queries;
      a.n_head = heads;
      a.n_kv_head = kv_heads;
      a.head_dim = head_dim;
      a.kv_stride = row;
      a.n_kv = slots;
      a.q_slot = q_slot.data();
      a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
      kernels::Attention(a, pool);
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (r > 0) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("%d threads, %lld slots, %lld queries, %lld/%lld heads x %lld, %lld layers, %s cache: "
              "median %.1f us (p10 %.1f), %.2f ns per slot and query head\n",
              threads, static_cast<long long>(slots), static_cast<long long>(queries), static_cast<long long>(heads),
              static_cast<long long>(kv_heads), static_cast<long long>(head_dim), static_cast<long long>(layers),
              std::string(Name(type)).c_str(), us[us.size() / 2], us[us.size() / 10],
              us[us.size() / 2] * 1e3 / static_cast<double>(slots * queries * heads * layers));
  return 0;
}
