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

namespace {

// y[n, m] += for each row o and group g of the stored columns: offset[o, g] · Σ_{j ∈ g} x[t, j],
// the zero-point term of a converted GPTQ / AWQ matrix. Each token row is computed alone (the
// same result whatever the batch). x is in stored column order.
void AddGroupOffsets(Context& ctx, const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy) {
  const int64_t k = w.cols(), m = w.rows(), gc = w.group_cols, groups = k / gc;
  std::vector<float> sums(static_cast<size_t>(n * groups));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      float s = 0;
      for (int64_t j = 0; j < gc; ++j) s += x[t * k + g * gc + j];
      sums[t * groups + g] = s;
    }
  ctx.pool->ParallelFor(m, [&](int64_t o0, int64_t o1) {
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = o0; o < o1; ++o) {
        const float* off = w.group_offsets + o * groups;
        float acc = 0;
        for (int64_t g = 0; g < groups; ++g) acc += off[g] * sums[t * groups + g];
        y[t * ldy + o] += acc;
      }
  }, 64);
}

void MatMulPlain(Context& ctx, const kernels::MatMulOutput* outs, int count, const float* x, int64_t n);

// One converted GPTQ / AWQ matrix: x gathered into its stored column order, the product of its
// codes, then the zero-point term.
void MatMulWithExtras(Context& ctx, const kernels::MatMulOutput& out, const float* x, int64_t n) {
  const TensorView& w = *out.w;
  const int64_t k = w.cols();
  std::vector<float> gathered;
  if (w.input_order != nullptr) {
    gathered.resize(static_cast<size_t>(n * k));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < k; ++j) gathered[t * k + j] = x[t * k + w.input_order[j]];
    x = gathered.data();
  }
  MatMulPlain(ctx, &out, 1, x, n);
  if (w.group_offsets != nullptr) AddGroupOffsets(ctx, w, x, n, out.y, out.ldy);
}

}  // namespace

void MatMulGroup(Context& ctx, std::initializer_list<kernels::MatMulOutput> outs, const float* x,
                 int64_t n) {
  if (ctx.observe_inputs != nullptr) {
    std::vector<const TensorView*> ws;
    for (const auto& o : outs) ws.push_back(o.w);
    (*ctx.observe_inputs)(ws, x, n);
  }
  bool extras = false;
  for (const auto& o : outs) extras |= o.w->has_extras();
  if (!extras) {
    MatMulPlain(ctx, outs.begin(), static_cast<int>(outs.size()), x, n);
    return;
  }
  for (const auto& o : outs) {
    if (o.w->has_extras())
      MatMulWithExtras(ctx, o, x, n);
    else
      MatMulPlain(ctx, &o, 1, x, n);
  }
}

namespace {

void MatMulPlain(Context& ctx, const kernels::MatMulOutput* outs_begin, int count, const float* x, int64_t n) {
  const std::span<const kernels::MatMulOutput> outs(outs_begin, static_cast<size_t>(count));
  if (ctx.decode_rows < 0) {
    kernels::MatMulGroup(outs_begin, count, x, n, *ctx.pool);
    return;
  }
  const int64_t d = std::min(ctx.decode_rows, n);
  if (d > 0) kernels::MatMulGroup(outs_begin, count, x, d, *ctx.pool, kernels::MatMulPath::kDecode);
  if (d < n) {
    // The prefill rows: x and every y advance by d rows.
    kernels::MatMulOutput shifted[kernels::kMaxGroup];
    const int64_t k = outs_begin->w->cols();
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

}  // namespace

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
