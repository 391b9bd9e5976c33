#include "ops/ops.h"

#include <algorithm>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/reference/dequant.h"
#include "kernels/reference/elementwise.h"

namespace fastgen::ops {

namespace ref = kernels::reference;

void MatMul(Context& ctx, const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy) {
  const kernels::MatMulOutput out{&w, y, ldy};
  MatMulGroup(ctx, {out}, x, n);
}

void MatMulGroup(Context& ctx, std::initializer_list<kernels::MatMulOutput> outs, const float* x,
                 int64_t n) {
  const int count = static_cast<int>(outs.size());
  if (ctx.observe_inputs != nullptr) {
    std::vector<const TensorView*> ws;
    for (const auto& o : outs) ws.push_back(o.w);
    (*ctx.observe_inputs)(ws, x, n);
  }
  if (ctx.decode_rows < 0) {
    kernels::MatMulGroup(outs.begin(), count, x, n, *ctx.pool);
    return;
  }
  const int64_t d = std::min(ctx.decode_rows, n);
  if (d > 0) kernels::MatMulGroup(outs.begin(), count, x, d, *ctx.pool, kernels::MatMulPath::kDecode);
  if (d < n) {
    // The prefill rows: x and every y advance by d rows.
    kernels::MatMulOutput shifted[kernels::kMaxGroup];
    const int64_t k = outs.begin()->w->cols();
    if (count > kernels::kMaxGroup) {
      for (const auto& o : outs) {
        const kernels::MatMulOutput one{o.w, o.y + d * o.ldy, o.ldy};
        kernels::MatMulGroup(&one, 1, x + d * k, n - d, *ctx.pool, kernels::MatMulPath::kGemm);
      }
      return;
    }
    int i = 0;
    for (const auto& o : outs) shifted[i++] = {o.w, o.y + d * o.ldy, o.ldy};
    kernels::MatMulGroup(shifted, count, x + d * k, n - d, *ctx.pool, kernels::MatMulPath::kGemm);
  }
}

void Embed(Context&, const TensorView& table, const int32_t* ids, int64_t n, float* out) {
  const int64_t d = table.cols();
  for (int64_t t = 0; t < n; ++t) ref::DequantizeRow(table.dtype, table.row(ids[t]), out + t * d, d);
}

// Row-wise ops are cheap next to the matmuls; they split over rows only when a prefill batch
// makes that worthwhile, since waking the pool costs about a microsecond.
constexpr int64_t kParallelRows = 8;

void RmsNorm(Context& ctx, const float* x, const float* w, int64_t n, int64_t d, float eps,
             bool plus_one, float* out) {
  if (n < kParallelRows) return kernels::RmsNorm(x, w, n, d, eps, plus_one, out);
  ctx.pool->ParallelFor(n, [&](int64_t b, int64_t e) {
    kernels::RmsNorm(x + b * d, w, e - b, d, eps, plus_one, out + b * d);
  });
}

void LayerNorm(Context& ctx, const float* x, const float* w, const float* b, int64_t n, int64_t d,
               float eps, float* out) {
  if (n < kParallelRows) return ref::LayerNorm(x, w, b, n, d, eps, out);
  ctx.pool->ParallelFor(n, [&](int64_t r0, int64_t r1) {
    ref::LayerNorm(x + r0 * d, w, b, r1 - r0, d, eps, out + r0 * d);
  });
}

void AddBias(Context&, float* y, const float* bias, int64_t n, int64_t m, int64_t ldy) {
  ref::AddBias(y, bias, n, m, ldy);
}

void SiluMul(Context& ctx, float* gate, const float* up, int64_t n, int64_t m, int64_t ldg,
             int64_t ldu) {
  if (n < kParallelRows) return kernels::SiluMul(gate, up, n, m, ldg, ldu);
  ctx.pool->ParallelFor(n, [&](int64_t b, int64_t e) {
    kernels::SiluMul(gate + b * ldg, up + b * ldu, e - b, m, ldg, ldu);
  });
}

void GeluTanhMul(Context& ctx, float* gate, const float* up, int64_t n, int64_t m, int64_t ldg,
                 int64_t ldu) {
  if (n < kParallelRows) return ref::GeluTanhMul(gate, up, n, m, ldg, ldu);
  ctx.pool->ParallelFor(n, [&](int64_t b, int64_t e) {
    ref::GeluTanhMul(gate + b * ldg, up + b * ldu, e - b, m, ldg, ldu);
  });
}

void GeluTanh(Context&, float* x, int64_t count) { ref::GeluTanh(x, count); }
void Add(Context&, float* x, const float* y, int64_t count) { ref::Add(x, y, count); }
void Scale(Context&, float* x, float s, int64_t count) { ref::Scale(x, s, count); }

void Rope(Context&, float* x, int64_t n, int64_t n_heads, int64_t head_dim,
          const int32_t* positions, const kernels::RopeParams& p) {
  ref::Rope(x, n, n_heads, head_dim, positions, p);
}

void Attention(Context& ctx, const kernels::AttentionArgs& args) {
  kernels::Attention(args, *ctx.pool);
}

void AttentionBatch(Context& ctx, std::span<const kernels::AttentionArgs> batch) {
  kernels::AttentionBatch(batch, *ctx.pool);
}

}  // namespace fastgen::ops
