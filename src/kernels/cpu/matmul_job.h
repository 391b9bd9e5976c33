// The contract between the ISA-neutral MatMul driver (kernels/matmul.cc) and the per-ISA kernel
// files (*_avx2.cc, *_avx512.cc).
//
// Kernel files are compiled with wider instruction sets than the rest of the program. Any inline
// function or template they instantiate from a shared header (std::vector, std::function,
// TensorView's members) may be emitted with those instructions and chosen by the linker for the
// whole program, which would then fault on an older CPU. So everything crossing this boundary is
// plain data and function pointers, and kernel files keep their helpers in anonymous namespaces.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace fastgen::kernels::cpu {

// One matrix product y[n, m] = x[n, k] · W[m, k]ᵀ as the kernels see it.
struct MatMulJob {
  DType dtype = DType::kF32;
  const uint8_t* w = nullptr;  // [m, row_bytes] rows in their stored format, 2-byte aligned at least
  size_t row_bytes = 0;
  int64_t m = 0;
  int64_t k = 0;
  const float* x = nullptr;  // [n, k]
  int64_t n = 0;
  float* y = nullptr;  // [n, ldy]
  int64_t ldy = 0;
  bool gemm = false;         // cache-blocked path (prefill) rather than per-row dot products
  bool amx = false;          // the GEMM on AMX tiles (IsaKernels::amx)
  bool stream = false;       // decode: prefetch the weights non-temporally (TensorView::stream)
  // The weights interleaved 16 rows at a time (repack.h; null: only the row-major w), groups
  // packed_group_bytes apart.
  const uint8_t* packed = nullptr;
  size_t packed_group_bytes = 0;
  uint8_t* act = nullptr;    // prepared activations: act_bytes(job) bytes, 64-byte aligned
};

// The kernels of one ISA. Every function is safe to call only when that ISA is supported.
struct IsaKernels {
  // Whether this ISA has kernels for the dtype (others go to the reference).
  bool (*supports)(DType dtype);
  // Whether n tokens of k-wide rows of this dtype take the GEMM path.
  bool (*use_gemm)(DType dtype, int64_t n, int64_t k);
  // Whether this ISA's GEMM runs on AMX tiles for the dtype now (the same products as its VNNI
  // GEMM, bit for bit: a faster unit only).
  bool (*amx)(DType dtype);
  // Bytes of prepared activations (quantized / repacked x) for the job; 0 when x is used as is.
  size_t (*act_bytes)(const MatMulJob& job);
  // Prepares the activations of "units" [u0, u1) into job.act; units are tokens or token blocks
  // (prepare_units tells how many), independent of each other so threads can split them.
  int64_t (*prepare_units)(const MatMulJob& job);
  void (*prepare)(const MatMulJob& job, int64_t u0, int64_t u1);
  // Per-thread scratch bytes that rows() needs (packed weight panels, accumulators).
  size_t (*scratch_bytes)(const MatMulJob& job);
  // Computes output columns [m0, m1) of y for all n tokens.
  void (*rows)(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch);
};

const IsaKernels& Avx2Kernels();
const IsaKernels& Avx512Kernels();

}  // namespace fastgen::kernels::cpu
