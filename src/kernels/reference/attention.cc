#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/reference/dequant.h"
#include "kernels/reference/elementwise.h"

namespace fastgen::kernels::reference {
namespace {

// q . k with 8 independent partial sums, which the compiler turns into SIMD code (a single
// running sum is a serial dependency it may not reorder). Used for token trees only: the fast
// split-K kernel does not take a tree mask, so trees run here, while the causal path keeps the
// sequential order of the scalar oracle.
float Dot8(const float* q, const float* k, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += q[i + j] * k[i + j];
  float dot = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) dot += q[i] * k[i];
  return dot;
}

// Head kvh of cache slot `slot` as float32: the cache row itself, or a compact type's row
// converted into buf [head_dim].
const float* CacheRow(const AttentionArgs& a, const void* base, int64_t slot, int64_t kvh, float* buf) {
  const int64_t elem = CacheRowOf(a, slot) * a.kv_stride + kvh * a.head_dim;
  if (a.kv_type == DType::kF32) return static_cast<const float*>(base) + elem;
  DequantizeRow(a.kv_type, KvRow(base, a.kv_type, elem), buf, a.head_dim);
  return buf;
}

// Head kvh of slot `slot`'s key as float32, its per-channel scales applied (buf [head_dim]).
const float* KeyRow(const AttentionArgs& a, int64_t slot, int64_t kvh, float* buf) {
  const float* k = CacheRow(a, a.k, slot, kvh, buf);
  if (a.k_channel_scale == nullptr) return k;
  const float* sc = a.k_channel_scale + (slot / 64) * a.kv_stride + kvh * a.head_dim;
  for (int64_t i = 0; i < a.head_dim; ++i) buf[i] = k[i] * sc[i];
  return buf;
}

// Softmax-weighted sum of the values of `slots` (one query, one head) into out. row: [head_dim]
// scratch for compact cache types.
void AttendSlots(const AttentionArgs& a, const float* q, int64_t kvh, const int32_t* slots,
                 int64_t count, float* scores, float* row, float* out, float* lse) {
  std::fill(out, out + a.head_dim, 0.0f);
  if (lse != nullptr) *lse = -std::numeric_limits<float>::infinity();
  if (count <= 0) return;
  for (int64_t s = 0; s < count; ++s) {
    const float* k = KeyRow(a, slots[s], kvh, row);
    float dot;
    if (a.tree_mask) {
      dot = Dot8(q, k, a.head_dim);
    } else {
      dot = 0.0f;
      for (int64_t i = 0; i < a.head_dim; ++i) dot += q[i] * k[i];
    }
    scores[s] = dot * a.scale;
  }
  if (lse != nullptr) {
    const float big = *std::max_element(scores, scores + count);
    double sum = 0;
    for (int64_t s = 0; s < count; ++s) sum += std::exp(static_cast<double>(scores[s] - big));
    *lse = big + static_cast<float>(std::log(sum));
  }
  Softmax(scores, count);
  for (int64_t s = 0; s < count; ++s) {
    const float w = scores[s];
    const float* v = CacheRow(a, a.v, slots[s], kvh, row);
    for (int64_t i = 0; i < a.head_dim; ++i) out[i] += w * v[i];
  }
}

// Visible slots of query t, in increasing slot order: the order a causal chain uses, so a tree
// branch sums its scores in the same order as the chain it stands for.
int64_t VisibleSlots(const AttentionArgs& a, int64_t t, int32_t* slots) {
  int64_t count = 0;
  if (!a.tree_mask) {
    const int64_t last = std::min<int64_t>(a.q_slot[t], a.n_kv - 1);
    const int64_t first = std::max(a.kv_begin, a.window > 0 ? std::max<int64_t>(0, last - a.window + 1) : 0);
    for (int64_t j = first; j <= last; ++j) slots[count++] = static_cast<int32_t>(j);
    return count;
  }
  const int64_t pos = a.q_slot[t];
  const auto visible_at = [&](int64_t key_pos) { return a.window <= 0 || pos - key_pos < a.window; };
  const int64_t prefix = std::min(a.tree_start, a.n_kv);
  for (int64_t j = a.kv_begin; j < prefix; ++j)
    if (visible_at(j)) slots[count++] = static_cast<int32_t>(j);
  const int64_t cols = a.n_kv - a.tree_start;
  const uint8_t* row = a.tree_mask + t * cols;
  for (int64_t m = 0; m < cols; ++m)
    if (row[m] && visible_at(a.tree_pos[m])) slots[count++] = static_cast<int32_t>(a.tree_start + m);
  return count;
}

}  // namespace

void AttentionRange(const AttentionArgs& a, int64_t begin, int64_t end) {
  const int64_t group = a.n_head / a.n_kv_head;
  std::vector<float> scores(static_cast<size_t>(a.n_kv));  // [n_kv] one query's logits
  std::vector<int32_t> slots(static_cast<size_t>(a.n_kv));  // [n_kv] the slots it sees
  std::vector<float> row(static_cast<size_t>(a.head_dim));   // [head_dim] a converted cache row
  int64_t slots_of = -1;  // query whose visible slots `slots` holds
  int64_t count = 0;
  for (int64_t qh = begin; qh < end; ++qh) {
    const int64_t t = qh / a.n_head, h = qh % a.n_head, kvh = h / group;
    if (t != slots_of) {
      count = VisibleSlots(a, t, slots.data());
      slots_of = t;
    }
    AttendSlots(a, a.q + (t * a.n_head + h) * a.head_dim, kvh, slots.data(), count, scores.data(),
                row.data(), a.out + (t * a.n_head + h) * a.head_dim, a.lse ? a.lse + t * a.n_head + h : nullptr);
  }
}

int64_t AttentionLogits(const AttentionArgs& a, int64_t t, int64_t kvh, float* logits) {
  const int64_t group = a.n_head / a.n_kv_head;
  const int64_t last = std::min<int64_t>(a.q_slot[t], a.n_kv - 1), count = last + 1;
  const int64_t first = a.window > 0 ? std::max<int64_t>(0, last - a.window + 1) : 0;
  thread_local std::vector<float> row;  // a compact type's converted row; no allocation per call
  row.resize(static_cast<size_t>(a.head_dim));
  for (int64_t j = 0; j < count; ++j) {
    const float* k = KeyRow(a, j, kvh, row.data());
    for (int64_t g = 0; g < group; ++g)
      logits[g * count + j] = j < first ? -std::numeric_limits<float>::infinity()
                                        : Dot8(a.q + (t * a.n_head + kvh * group + g) * a.head_dim, k, a.head_dim) *
                                              a.scale;
  }
  return count;
}

}  // namespace fastgen::kernels::reference
