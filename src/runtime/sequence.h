// One choice of one request as the engine runs it: its tokens, where their keys and values are
// in the block pool, its sampler, and its text with stop strings applied.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "decoding/constrained/token_mask.h"
#include "decoding/sampler.h"
#include "decoding/speculative/draft_model.h"
#include "decoding/speculative/step_control.h"
#include "runtime/request.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::runtime {

// Streamed text of a choice: detokenized incrementally (never half a UTF-8 character), with the
// text held back while it could still be the start of a stop string, and cut before the first
// stop string that appears.
class TextOutput {
 public:
  TextOutput(const Tokenizer* tokenizer, bool skip_special, std::vector<std::string> stops);
  // The text that `id` makes safe to emit; *stopped when a stop string completed (the text
  // before it is emitted, the rest dropped, and the choice is over).
  std::string Push(int32_t id, bool* stopped);
  // Whatever is still held back, at the end of the choice.
  std::string Flush();

 private:
  std::string Release(bool* stopped);  // emits what pending_ can give up now
  std::unique_ptr<StreamDecoder> decoder_;  // null without a tokenizer: no text
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

// The request a sequence belongs to (its choices share it).
struct RequestState {
  std::shared_ptr<RequestHandle> handle;
  GenerationParams params;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int open_choices = 0;          // choices not finished yet
  bool forked = false;           // choices 1..n-1 exist (made when choice 0's prompt is done)
  bool failed = false;
  std::chrono::steady_clock::time_point arrived;
  double first_token_seconds = -1;
};

struct Sequence {
  uint64_t id = 0;                        // arrival order: FCFS admission, the newest is preempted first
  std::shared_ptr<RequestState> request;
  int index = 0;                          // the choice
  std::vector<int32_t> tokens;            // the prompt, then what was generated
  int64_t prompt_len = 0;
  int64_t computed = 0;                   // tokens[0, computed) have keys and values in the pool
  std::vector<int32_t> blocks;            // block table
  std::vector<uint64_t> prompt_hashes;    // hashes of its first full prompt blocks, in order
  int64_t max_new = 0;                    // generated tokens allowed
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<constrained::TokenConstraint> constraint;  // with a grammar: what may come next
  std::unique_ptr<TextOutput> text;
  bool forked = false;                    // choice > 0 of n: made from choice 0 when its prompt finished
  std::chrono::steady_clock::time_point last_token_time;
  int preemptions = 0;
  // The draft model's proposer while this sequence speculates with one (engine.h).
  std::unique_ptr<speculative::DraftModelProposer> drafter;
  // Whether drafting pays for this sequence: the tokens per second its drafting steps and its
  // plain steps commit, measured (speculation changes speed only, never the output).
  speculative::FallbackController spec_control{true, 4};

  int64_t generated() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
  bool prompt_done() const { return computed >= prompt_len; }
};

}  // namespace fastgen::runtime
