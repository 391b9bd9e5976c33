// Entry points of the AVX-512 kernel files, wired into Avx512Kernels() by matmul_avx512.cc.
// Only call them when IsaSupported(Isa::kAvx512).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul_job.h"

namespace fastgen::kernels::cpu {

// float_avx512.cc: F32, F16, BF16 weights.
size_t FloatDecodeActBytesAvx512(const MatMulJob& job);
void FloatDecodePrepareAvx512(const MatMulJob& job, int64_t t0, int64_t t1);
void FloatDecodeRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1);
void FloatGemmPrepareAvx512(const MatMulJob& job, int64_t tb0, int64_t tb1);
size_t FloatGemmScratchBytesAvx512(const MatMulJob& job);
void FloatGemmRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch);

// quant_decode_avx512.cc: every quantized type against int8 activations (decode); the
// K-quants' dot products are in kquant_decode_avx512.cc.
void QuantizeActsAvx512(const MatMulJob& job, int64_t t0, int64_t t1);
void QuantDecodeRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1);
void KQuantDecodeRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1);
// quant_decode16_avx512.cc: Q8_0 and Q4_0 weights interleaved 16 rows at a time (job.packed).
void Decode16RowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1);
// quant_decode16_amx.cc: the same products, the same bits, with each block's integer sums for up
// to 16 tokens on AMX tiles (when AmxEnabled()); DecodeActs as the VNNI kernel's.
size_t Decode16ScratchBytesAmx();
void Decode16RowsAmx(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch);

// quant_gemm_avx512.cc: the same weights in the VNNI GEMM (prefill).
void QuantGemmPrepareAvx512(const MatMulJob& job, int64_t tb0, int64_t tb1);
size_t QuantGemmScratchBytesAvx512(const MatMulJob& job);
void QuantGemmRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch);

// quant_gemm_amx.cc: the same GEMM for Q8_0 / Q4_0 / Q4_K / Q5_K on AMX tiles (when
// AmxEnabled()); its activations are laid out per token (AmxActs).
bool AmxGemmSupports(DType t);
size_t QuantGemmActBytesAmx(const MatMulJob& job);
void QuantGemmPrepareAmx(const MatMulJob& job, int64_t t0, int64_t t1);
size_t QuantGemmScratchBytesAmx(const MatMulJob& job);
void QuantGemmRowsAmx(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch);

// elementwise_avx512.cc: the row-wise operations (same contracts as kernels/reference).
void SiluMulAvx512(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu);
float MaxSumExpAvx512(const float* x, int64_t n, float* max);
void ExpShiftAvx512(float* x, int64_t n, float shift);
void RmsNormAvx512(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one,
                   float* out);

}  // namespace fastgen::kernels::cpu
