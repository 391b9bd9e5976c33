// Entry points of the AVX2 kernel files, wired into Avx2Kernels() by matmul_avx2.cc.
// Only call them when IsaSupported(Isa::kAvx2).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul_job.h"

namespace fastgen::kernels::cpu {

// float_avx2.cc: F32 / F16 / BF16 decode, and the float32 GEMM for every supported dtype
// (quantized weights are dequantized into the float panel: exact, but no int8 arithmetic).
size_t FloatDecodeActBytesAvx2(const MatMulJob& job);
void FloatDecodePrepareAvx2(const MatMulJob& job, int64_t t0, int64_t t1);
void FloatDecodeRowsAvx2(const MatMulJob& job, int64_t m0, int64_t m1);
void FloatGemmPrepareAvx2(const MatMulJob& job, int64_t tb0, int64_t tb1);
size_t FloatGemmScratchBytesAvx2(const MatMulJob& job);
void FloatGemmRowsAvx2(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch);

// quant_decode_avx2.cc: Q8_0 / Q4_0 / Q4_K / Q6_K decode against int8 activations.
void QuantizeActsAvx2(const MatMulJob& job, int64_t t0, int64_t t1);
void QuantDecodeRowsAvx2(const MatMulJob& job, int64_t m0, int64_t m1);

// elementwise_avx2.cc: the row-wise operations (same contracts as kernels/reference).
void SiluMulAvx2(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu);
float MaxSumExpAvx2(const float* x, int64_t n, float* max);
void ExpShiftAvx2(float* x, int64_t n, float shift);
void RmsNormAvx2(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one, float* out);

}  // namespace fastgen::kernels::cpu
