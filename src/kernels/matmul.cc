#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul_job.h"

namespace fastgen::kernels {
namespace {

// A 64-byte-aligned buffer per thread, grown once to the largest size asked for and then reused,
// so the decode loop allocates nothing after its first token. `slot` separates the activations
// (prepared for the whole call, read by all threads) from each thread's own panel scratch.
uint8_t* ThreadScratch(size_t bytes, int slot) {
  thread_local std::vector<uint8_t> buffers[2];
  std::vector<uint8_t>& b = buffers[slot];
  if (b.size() < bytes + 64) b.resize(bytes + 64);
  const uintptr_t p = reinterpret_cast<uintptr_t>(b.data());
  return b.data() + ((64 - (p & 63)) & 63);
}

void ReferenceMatMul(const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy,
                     ThreadPool& pool) {
  // Quantized rows are whole blocks, so any row split is valid; 16-row grains keep each
  // thread's output writes on separate cache lines.
  pool.ParallelFor(w.rows(), [&](int64_t m0, int64_t m1) {
    reference::MatMulRows(w, x, n, y, ldy, m0, m1);
  }, 16);
}

const cpu::IsaKernels* KernelsFor(cpu::Isa isa) {
  switch (isa) {
    case cpu::Isa::kAvx512: return &cpu::Avx512Kernels();
    case cpu::Isa::kAvx2: return &cpu::Avx2Kernels();
    case cpu::Isa::kReference: return nullptr;
  }
  return nullptr;
}

}  // namespace

void MatMul(const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy,
            ThreadPool& pool, MatMulPath path) {
  const MatMulOutput out{&w, y, ldy};
  MatMulGroup(&out, 1, x, n, pool, path);
}

void MatMulGroup(const MatMulOutput* outs, int count, const float* x, int64_t n,
                 ThreadPool& pool, MatMulPath path) {
  if (n <= 0 || count <= 0) return;
  const TensorView& w0 = *outs[0].w;
  const cpu::IsaKernels* isa = KernelsFor(cpu::ActiveIsa());
  bool shared = count <= kMaxGroup && isa != nullptr && isa->supports(w0.dtype);
  for (int i = 1; i < count && shared; ++i)
    shared = outs[i].w->dtype == w0.dtype && outs[i].w->cols() == w0.cols();
  if (!shared) {
    if (count == 1) {  // no kernels for this ISA or dtype
      ReferenceMatMul(w0, x, n, outs[0].y, outs[0].ldy, pool);
    } else {  // weights that differ in dtype or k: one product at a time
      for (int i = 0; i < count; ++i) MatMulGroup(&outs[i], 1, x, n, pool, path);
    }
    return;
  }
  // Lambdas below capture one pointer so their std::function wrappers stay inline: no heap
  // allocation per call (see ThreadScratch).
  struct Context {
    const cpu::IsaKernels* isa;
    cpu::MatMulJob jobs[kMaxGroup];
    int64_t first_row[kMaxGroup + 1];  // the group's rows, product after product
    int count;
    size_t scratch;
  } ctx{};
  ctx.isa = isa;
  ctx.count = count;
  for (int i = 0; i < count; ++i) {
    cpu::MatMulJob& job = ctx.jobs[i];
    job.dtype = w0.dtype;
    job.w = outs[i].w->data;
    job.row_bytes = outs[i].w->row_bytes();
    job.m = outs[i].w->rows();
    job.k = w0.cols();
    job.x = x;
    job.n = n;
    job.y = outs[i].y;
    job.ldy = outs[i].ldy;
    job.gemm = path == MatMulPath::kAuto ? isa->use_gemm(w0.dtype, n, job.k) : path == MatMulPath::kGemm;
    job.amx = job.gemm && isa->amx(w0.dtype);
    job.stream = outs[i].w->stream;
    job.packed = outs[i].w->packed;
    job.packed_group_bytes = outs[i].w->packed_group_bytes;
    ctx.first_row[i + 1] = ctx.first_row[i] + job.m;
  }
  cpu::MatMulJob& job = ctx.jobs[0];
  // The products share x, so its preparation (quantized or repacked) is done once for all.
  if (const size_t act = isa->act_bytes(job); act > 0) {
    job.act = ThreadScratch(act, 0);
    for (int i = 1; i < count; ++i) ctx.jobs[i].act = job.act;
    const int64_t units = isa->prepare_units(job);
    // Preparing x costs O(n·k) against the product's O(n·k·m): split it only when there is
    // enough of it to outweigh a parallel region's few microseconds (a prefill, not the few
    // tokens of a speculative verification).
    if (units >= 4 && n * job.k >= 32768) {
      pool.ParallelFor(units, [c = &ctx](int64_t u0, int64_t u1) { c->isa->prepare(c->jobs[0], u0, u1); });
    } else {
      isa->prepare(job, 0, units);
    }
  }
  ctx.scratch = isa->scratch_bytes(job);
  // Any thread may end up running rows (ParallelFor lets a thread that is done take another's
  // chunks), including one that sat out every earlier call. So the first time a call needs
  // more scratch than any before on this pool, every thread grows its buffer together, and a
  // late thread never allocates in the middle of decoding.
  if (pool.ReserveScratch(ctx.scratch))
    pool.Run([c = &ctx](int, int) { ThreadScratch(c->scratch, 1); });
  // One parallel region over the rows of all products: each region costs a wake-up and a wait
  // for the slowest thread, which at a few tokens is a visible share of a small model's layer.
  pool.ParallelFor(ctx.first_row[count], [c = &ctx](int64_t r0, int64_t r1) {
    uint8_t* scratch = c->scratch > 0 ? ThreadScratch(c->scratch, 1) : nullptr;
    for (int i = 0; i < c->count; ++i) {
      const int64_t b = std::max(r0, c->first_row[i]), e = std::min(r1, c->first_row[i + 1]);
      if (b < e) c->isa->rows(c->jobs[i], b - c->first_row[i], e - c->first_row[i], scratch);
    }
  }, 16);
}

}  // namespace fastgen::kernels
