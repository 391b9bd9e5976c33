#include "kernels/matmul.h"

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
            ThreadPool& pool) {
  const int64_t m = w.rows();
  if (n <= 0 || m <= 0) return;
  const cpu::IsaKernels* isa = KernelsFor(cpu::ActiveIsa());
  if (isa == nullptr || !isa->supports(w.dtype)) {
    ReferenceMatMul(w, x, n, y, ldy, pool);
    return;
  }
  cpu::MatMulJob job;
  job.dtype = w.dtype;
  job.w = w.data;
  job.row_bytes = w.row_bytes();
  job.m = m;
  job.k = w.cols();
  job.x = x;
  job.n = n;
  job.y = y;
  job.ldy = ldy;
  job.gemm = n >= isa->gemm_min_tokens(w.dtype);
  // Lambdas below capture one pointer so their std::function wrappers stay inline: no heap
  // allocation per call (see ThreadScratch).
  struct Context {
    const cpu::IsaKernels* isa;
    cpu::MatMulJob job;
    size_t scratch;
  } ctx{isa, job, 0};
  if (const size_t act = isa->act_bytes(job); act > 0) {
    ctx.job.act = ThreadScratch(act, 0);
    const int64_t units = isa->prepare_units(ctx.job);
    // Preparing x costs O(n·k) against the product's O(n·k·m): split it only when n is large.
    if (units >= 4) {
      pool.ParallelFor(units, [c = &ctx](int64_t u0, int64_t u1) { c->isa->prepare(c->job, u0, u1); });
    } else {
      isa->prepare(ctx.job, 0, units);
    }
  }
  ctx.scratch = isa->scratch_bytes(ctx.job);
  // Any thread may end up running rows (ParallelFor lets a thread that is done take another's
  // chunks), including one that sat out every earlier call. So the first time a call needs
  // more scratch than any before on this pool, every thread grows its buffer together, and a
  // late thread never allocates in the middle of decoding.
  if (pool.ReserveScratch(ctx.scratch))
    pool.Run([c = &ctx](int, int) { ThreadScratch(c->scratch, 1); });
  pool.ParallelFor(m, [c = &ctx](int64_t m0, int64_t m1) {
    c->isa->rows(c->job, m0, m1, c->scratch > 0 ? ThreadScratch(c->scratch, 1) : nullptr);
  }, 16);
}

}  // namespace fastgen::kernels
