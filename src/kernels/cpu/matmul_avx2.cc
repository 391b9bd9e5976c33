// The AVX2 kernel table. Decode: float weights exactly, quantized weights with int8 activations.
// GEMM: the float32 micro-kernel for every dtype (quantized panels dequantized exactly), since
// AVX2 has no VNNI and vpmaddubsw's saturation makes a general int8 GEMM awkward.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/kernels_avx2.h"

namespace fastgen::kernels::cpu {
namespace {

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

bool Supports(DType t) {
  return IsFloat(t) || t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ4_K ||
         t == DType::kQ6_K;
}

// Float weights: the decode kernel (up to 12 tokens per pass over a row) wins below about
// n·k = 65536, as on AVX-512 (build/matmul_bench --isas avx2, decode vs GEMM: TinyLlama's
// 2048-wide rows even at 32 tokens; its 5632 -> 2048 projection 1.8 vs 2.6 ms at 12, 4.8 vs 4.2
// at 32); quantized weights take the GEMM (which dequantizes panels to float32) from 8 tokens.
bool UseGemm(DType t, int64_t n, int64_t k) { return IsFloat(t) ? n >= 8 && n * k >= 65536 : n >= 8; }

size_t ActBytes(const MatMulJob& job) {
  if (job.gemm) return static_cast<size_t>(GemmTokenBlocks(job.n)) * FloatGemmBlockBytes(job.k);
  return IsFloat(job.dtype) ? FloatDecodeActBytesAvx2(job) : DecodeActsBytes(job.n, job.k);
}

int64_t PrepareUnits(const MatMulJob& job) {
  return job.gemm ? GemmTokenBlocks(job.n) : (IsFloat(job.dtype) && job.n < 2 ? 0 : job.n);
}

void Prepare(const MatMulJob& job, int64_t u0, int64_t u1) {
  if (job.gemm) {
    FloatGemmPrepareAvx2(job, u0, u1);
  } else if (IsFloat(job.dtype)) {
    FloatDecodePrepareAvx2(job, u0, u1);
  } else {
    QuantizeActsAvx2(job, u0, u1);
  }
}

size_t ScratchBytes(const MatMulJob& job) { return job.gemm ? FloatGemmScratchBytesAvx2(job) : 0; }

void Rows(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch) {
  if (job.gemm) {
    FloatGemmRowsAvx2(job, m0, m1, scratch);
  } else if (IsFloat(job.dtype)) {
    FloatDecodeRowsAvx2(job, m0, m1);
  } else {
    QuantDecodeRowsAvx2(job, m0, m1);
  }
}

// Constant-initialized: no code of this file runs before the ISA check.
bool NoAmx(DType) { return false; }

constexpr IsaKernels kKernels = {Supports, UseGemm, NoAmx, ActBytes, PrepareUnits,
                                 Prepare,  ScratchBytes,  Rows};

}  // namespace

const IsaKernels& Avx2Kernels() { return kKernels; }

}  // namespace fastgen::kernels::cpu
