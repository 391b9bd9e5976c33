// What a client asks the engine for and what it gets back: a Request (prompt ids and generation
// parameters) goes in through Engine::Submit; a RequestHandle streams Events out (text and token
// deltas per choice, then the finish reason and usage, or an error) until the request is done.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "decoding/constrained/grammar.h"
#include "decoding/sampler.h"

namespace fastgen::runtime {

struct GenerationParams {
  SamplerOptions sampler;
  int64_t max_tokens = -1;             // generated tokens per choice; -1: until the context is full
  int n = 1;                           // choices (they share the prompt's blocks, copy-on-write)
  std::vector<std::string> stop;       // stop strings: the text ends before the first one
  std::vector<int32_t> stop_ids;       // further ids that end a choice (a chat turn's end)
  bool ignore_eos = false;
  int top_logprobs = -1;               // -1: no logprobs; 0..20: the chosen token's, plus that many alternatives
  bool skip_special_tokens = true;     // in the streamed text
  // Structured output (optional): every choice is sampled among the tokens this grammar allows,
  // and ends (finish "stop") once it allows nothing more. Needs the model's tokenizer.
  std::shared_ptr<const constrained::Grammar> grammar;
  // A lazy grammar (with `grammar`): the choice writes freely until its text ends with this
  // trigger, then follows the grammar from its start until the grammar is complete, and writes
  // freely again (with tool_choice "auto": the body of a call once "<tool_call>" is out).
  std::string grammar_trigger;
};

struct Request {
  std::vector<int32_t> prompt;
  GenerationParams params;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled };
const char* FinishReasonName(FinishReason r);  // "stop", "length", "cancelled"

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;  // log-softmax of the model's raw logits
};

// One generated token of one choice, with the text it completed (possibly empty: text is held
// back while it may still be the start of a stop string or of a UTF-8 character).
struct TokenDelta {
  int32_t id = 0;
  std::string text;
  std::optional<TokenLogprob> logprob;  // with top_logprobs >= 0
  std::vector<TokenLogprob> top;        // the top_logprobs most likely, best first
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // taken from the prefix cache instead of computed
  int64_t completion_tokens = 0;     // over all choices
};

struct Event {
  enum class Kind { kDelta, kFinish, kDone, kError };
  Kind kind = Kind::kDelta;
  int index = 0;                     // the choice (kDelta, kFinish)
  std::vector<TokenDelta> tokens;    // kDelta: one or more tokens (several after a speculative step)
  std::string text;                  // kDelta: their text together; kFinish: text flushed at the end
  FinishReason finish = FinishReason::kNone;  // kFinish
  Usage usage;                       // kDone: the request is complete
  Status error;                      // kError: the request failed; nothing follows
  double first_token_seconds = 0;    // kDone: time to the first token of any choice
};

// The consumer's side of a submitted request. Thread-safe: the engine pushes, a front end pops
// and may cancel at any time (the engine frees the request's blocks within one step).
class RequestHandle {
 public:
  // Waits up to `timeout_ms` for the next event; false on timeout.
  bool Next(Event* e, int timeout_ms);
  void Cancel();
  bool cancelled() const;

  // Engine side.
  void Push(Event e);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool cancelled_ = false;
};

}  // namespace fastgen::runtime
