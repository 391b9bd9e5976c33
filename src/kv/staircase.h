// Staircase KV quantization: the older a cached token, the fewer bits its keys and values keep.
// `--kv-staircase f16:256,q8_0:2048,q4_0` keeps the newest 256 tokens in f16, the next 2048 in
// q8_0 and every older one in q4_0 (KIVI, Liu et al. 2024, and the age-dependent caches after
// it: recent tokens draw most of the attention, so their precision matters most).
//
// Tokens age in whole blocks of kStaircaseBlock slots, and which step a slot belongs to is a
// function of the *query's* position alone: for a query at position p, steps 0..i together
// hold slots [TierStart(i, p), p], TierStart a multiple of the block, i.e. the newest
// Cumulative(i) tokens rounded up to a block (step 0: tokens(0) to tokens(0) + 63 of them). A
// query therefore reads the same precisions whether it runs alone, in a prompt chunk of any
// length or in a speculative chain, and speculative decoding under a staircase returns what
// plain decoding under it returns, token for token. (Two exceptions: a token tree deeper than
// step 0's tokens reads all its nodes from step 0, and after a truncation further back than
// the rings reach, see below.)
//
// Storage (KvCache with a staircase): every written slot goes to every step, each quantized
// from the float32 keys and values (not requantized from the step above, which would round
// twice); only q4_0c keys, quantized per 64-slot group once its last slot is written, come
// from the most precise step still holding the group's rows. The last step holds every slot of
// the context, densely; the others are rings of (their cumulative tokens + a block + the
// largest append) slots, enough for every query of a pass and for speculative rollback. A
// truncation further back than a ring reaches leaves the slots it lost to the steps below (they
// keep the token, in fewer bits).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace fastgen {

// Tokens age from one step to the next in blocks of this many slots (a multiple of the
// attention kernels' 16-slot blocks, so every step's range starts on one).
constexpr int64_t kStaircaseBlock = 64;

struct KvStaircaseStep {
  DType type = DType::kF16;
  int64_t tokens = -1;  // the newest tokens this step holds; -1: the last step (every older token)
  // "q4_0c" (last step only): keys scaled per channel before Q4_0, as KIVI found keys need (a few
  // channels carry most of a key's magnitude, which one scale per 32 elements of a token spends
  // its 4 bits on): per 64-token group and channel, σ = the largest |key| in the group, and the
  // stored key is Q4_0 of key / σ; values stay per-token Q4_0. σ costs 4 bytes per channel per
  // 64 tokens (half a bit per key element).
  bool channel_keys = false;
};

struct KvStaircase {
  std::vector<KvStaircaseStep> steps;  // newest first; the last has tokens == -1

  bool empty() const { return steps.empty(); }
  // "f16:256,q8_0:2048,q4_0": types f32, f16, q8_0, q4_0 (and q4_0c for the last); every step
  // but the last with a token count of at least one block, the last without one. Errors name the flag and the entry.
  static Expected<KvStaircase> Parse(std::string_view spec, std::string_view flag = "--kv-staircase");
  std::string ToString() const;  // the spec, as Parse reads it
  // First slot of step i (< steps.size() - 1) for a query at position `pos`: slots
  // [TierStart(i, pos), TierStart(i - 1, pos)) are read from step i (step 0 up to pos itself).
  int64_t TierStart(size_t i, int64_t pos) const;
  // Newest tokens steps 0..i hold together (cumulative counts).
  int64_t Cumulative(size_t i) const;
  // Mean bytes per cached token of one layer's keys and values (row_elems elements each) at
  // context length n: each step's share at the staircase's steady state (for `bench` and the
  // tables), not counting the rings' slack.
  double BytesPerToken(int64_t row_elems, int64_t n) const;
};

}  // namespace fastgen
