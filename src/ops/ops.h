// Device-agnostic operations the models are written in. Each op picks its kernel (scalar
// reference today, SIMD where one exists) and splits work across the context's threads; model
// code never names an ISA or a device.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <initializer_list>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/reference/rope.h"

namespace fastgen::ops {

// Threads (and, later, scratch arenas) are passed in, never global.
// Sees the input x [n, k] of every matrix product before it runs, with the weights that read
// it (Q, K and V share one input): calibration for GPTQ and importance matrices.
using InputObserver = std::function<void(std::span<const TensorView* const> weights, const float* x, int64_t n)>;

struct Context {
  ThreadPool* pool = nullptr;
  const InputObserver* observe_inputs = nullptr;
  // Which matmul kernels a batch's rows take (kernels::MatMulPath): -1 lets the size decide for
  // every call; otherwise rows [0, decode_rows) take the decode kernels and the rest the GEMM,
  // so that each token is computed the same way however it is batched (a decoding step of many
  // sequences, a prompt chunk beside them, a speculative chain).
  int64_t decode_rows = -1;
};

// y[n, m] = x[n, k] · W[m, k]ᵀ with W in its stored dtype; ldy is y's row stride.
void MatMul(Context& ctx, const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy);
// Products of one x with several weights (see kernels::MatMulGroup), e.g. Q, K and V.
void MatMulGroup(Context& ctx, std::initializer_list<kernels::MatMulOutput> outs, const float* x,
                 int64_t n);
inline void MatMul(Context& ctx, const TensorView& w, const float* x, int64_t n, float* y) {
  MatMul(ctx, w, x, n, y, w.rows());
}
// out[t] = table[ids[t]] dequantized to float32: [n, d].
void Embed(Context& ctx, const TensorView& table, const int32_t* ids, int64_t n, float* out);

void RmsNorm(Context& ctx, const float* x, const float* w, int64_t n, int64_t d, float eps,
             bool plus_one, float* out);
void LayerNorm(Context& ctx, const float* x, const float* w, const float* b, int64_t n, int64_t d,
               float eps, float* out);
void AddBias(Context& ctx, float* y, const float* bias, int64_t n, int64_t m, int64_t ldy);
void SiluMul(Context& ctx, float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu);
void GeluTanhMul(Context& ctx, float* gate, const float* up, int64_t n, int64_t m, int64_t ldg,
                 int64_t ldu);
void GeluTanh(Context& ctx, float* x, int64_t count);
void Add(Context& ctx, float* x, const float* y, int64_t count);
void Scale(Context& ctx, float* x, float s, int64_t count);
void Rope(Context& ctx, float* x, int64_t n, int64_t n_heads, int64_t head_dim,
          const int32_t* positions, const kernels::RopeParams& p);
void Attention(Context& ctx, const kernels::AttentionArgs& args);
// The attention of several sequences (a ragged batch) at once: see kernels::AttentionBatch.
void AttentionBatch(Context& ctx, std::span<const kernels::AttentionArgs> batch);

}  // namespace fastgen::ops
