// Whether a model's decode kernels fetch its weights past the CPU caches (Model::
// set_stream_weights), decided by measurement rather than by a size rule.
//
// Streaming with the non-temporal prefetch hint keeps weights that cannot stay cached from
// evicting what can (the KV cache, a draft model): on the AMD hosts it was measured on it
// decoded fg-target 20% faster. On an Intel Xeon of the same pool the same hint halved the
// generation speed of every model larger than the cache (TinyLlama F16 3.45 against 6.49
// tokens/s): there it fills only L1 and leaves the L2 streamer idle. No size rule covers both,
// so `auto` times decode steps both ways, alternated, and keeps the faster; the choice is cached
// on disk per CPU, thread count and weight footprint, so only the first load of a model on a
// machine pays for the measurement (a second or two for a 2 GB model).
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "models/model.h"

namespace fastgen {

struct StreamChoice {
  bool stream = false;
  // How it was decided: "measured", "cached", "small" (the matrices fit half the last-level
  // cache: streaming is not tried), "flag" (--stream-weights on|off).
  std::string how;
  double stream_ms = 0;  // median decode step with / without streaming (when measured or cached)
  double cached_ms = 0;
};

// Times one-token decode steps with streaming on and off, alternated over a few rounds (the
// memory bandwidth of a shared machine drifts within seconds, so the two modes are measured in
// the same moments), and returns the faster: streaming only when it is at least 3% faster.
// Leaves the model's setting unchanged. The KV cache is a scratch one; the model's output is
// never affected (streaming changes speed only).
Expected<StreamChoice> MeasureStreamWeights(Model& model);

// The `auto` policy: small models do not stream; otherwise the cached decision for this CPU,
// thread count and weight footprint, or a fresh measurement (then cached). The cache lives in
// $FASTGEN_CACHE_DIR, else $XDG_CACHE_HOME/fastgen, else ~/.cache/fastgen
// (stream_weights.tsv); FASTGEN_CACHE_DIR=off measures every time without writing anything.
Expected<StreamChoice> ChooseStreamWeights(Model& model);

// What `auto` would choose without measuring: "small", or the cached decision; nullopt when the
// model is yet to be measured on this CPU with this many threads.
std::optional<StreamChoice> PlannedStreamWeights(Model& model);

}  // namespace fastgen
