// What the engine counts for /metrics: tokens, sequences, KV blocks, the prefix cache, and the
// latencies users feel (time to first token, time between tokens) as cumulative histograms.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace fastgen::runtime {

// A cumulative histogram with fixed upper bounds (seconds), Prometheus-style.
struct Histogram {
  std::vector<double> bounds;    // upper bounds, increasing; +Inf is implied
  std::vector<int64_t> counts;   // per bucket (not cumulative); one more than bounds
  double sum = 0;
  int64_t count = 0;

  explicit Histogram(std::vector<double> b = {}) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
  void Observe(double v) {
    size_t i = 0;
    while (i < bounds.size() && v > bounds[i]) ++i;
    ++counts[i];
    sum += v;
    ++count;
  }
};

struct EngineStats {
  int64_t requests_started = 0;
  int64_t requests_finished = 0;
  int64_t prompt_tokens = 0;          // prompt tokens of started requests
  int64_t cached_prompt_tokens = 0;   // of those, taken from the prefix cache
  int64_t generated_tokens = 0;
  int running = 0;                    // sequences admitted
  int waiting = 0;                    // sequences (and requests not yet taken) waiting for admission
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_cached = 0;       // unused but holding a cached prefix
  int64_t kv_block_tokens = 0;
  int64_t prefix_block_hits = 0;
  int64_t prefix_block_misses = 0;
  int64_t preemptions = 0;
  int64_t steps = 0;
  int64_t spec_drafted = 0;           // prompt-lookup tokens drafted
  int64_t spec_accepted = 0;
  Histogram time_to_first_token{{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  Histogram inter_token_latency{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
};

// The engine thread writes, any thread reads a snapshot.
class MetricsRecorder {
 public:
  template <class F>
  void Update(F&& f) {
    std::lock_guard<std::mutex> lock(mu_);
    f(stats_);
  }
  EngineStats Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  mutable std::mutex mu_;
  EngineStats stats_;
};

}  // namespace fastgen::runtime
