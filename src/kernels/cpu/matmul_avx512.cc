// The AVX-512 kernel table: routes each job to the float or quantized kernels, decode or GEMM.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/kernels_avx512.h"

namespace fastgen::kernels::cpu {
namespace {

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }
bool IsIntDot(DType t) {
  return t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ2_K || t == DType::kQ3_K || t == DType::kQ4_K ||
         t == DType::kQ5_K || t == DType::kQ6_K;
}

bool Supports(DType t) { return IsFloat(t) || IsIntDot(t); }

// Below these sizes the per-row kernels win: the GEMM repacks x and the weight panels, which
// only pays off once several token vectors share each packed weight. The float decode kernel
// takes up to 16 tokens per pass over a row while their activations stay in L1, so it wins
// for longer on narrow rows (matmul_bench, decode vs GEMM: fg-target's 384 -> 8192 head at
// 64 tokens 1.2 vs 4.3 ms, its 1024 -> 384 down projection 0.18 vs 0.26 ms; TinyLlama's
// 2048-wide rows about even at 32 tokens, its 5632 -> 2048 down projection 2.5 vs 2.1 ms at 12).
bool UseGemm(DType t, int64_t n, int64_t k) {
  return IsFloat(t) ? n >= 8 && n * k >= 65536 : n >= 8;
}

bool Amx(DType t) { return AmxEnabled() && AmxGemmSupports(t); }

// Decode of interleaved Q8_0 / Q4_0 weights takes the tile unit from this many tokens (the
// server's batched steps; speculative chains of a few tokens): the same bits as the VNNI kernel,
// so the choice may follow the batch size. Below it, filling a tile for a few tokens costs more
// than the VNNI kernel's products. TinyLlama's 5632 -> 2048 product, 2 threads, ms VNNI / AMX
// (matmul_bench --repack --path decode, alternated): Q4_0 4 tokens 0.31 / 0.40, 5 0.39-0.42 /
// 0.41, 8 0.47-0.50 / 0.42, 12 0.62-0.67 / 0.43-0.44, 16 0.74 / 0.48; Q8_0 5 0.60-0.62 / 0.51-0.53,
// 12 0.84-0.86 / 0.60-0.61.
constexpr int64_t kAmxDecodeTokens = 5;
bool AmxDecode(const MatMulJob& job) {
  return !job.gemm && job.packed != nullptr && job.n >= kAmxDecodeTokens && AmxEnabled();
}

size_t ActBytes(const MatMulJob& job) {
  if (job.amx) return QuantGemmActBytesAmx(job);
  if (job.gemm) {
    const size_t blocks = static_cast<size_t>(GemmTokenBlocks(job.n));
    return blocks * (IsFloat(job.dtype) ? FloatGemmBlockBytes(job.k) : QuantGemmBlockBytes(job.k));
  }
  return IsFloat(job.dtype) ? FloatDecodeActBytesAvx512(job) : DecodeActsBytes(job.n, job.k);
}

int64_t PrepareUnits(const MatMulJob& job) {
  if (job.amx) return AmxTokens(job.n);
  if (job.gemm) return GemmTokenBlocks(job.n);
  return IsFloat(job.dtype) && FloatDecodeActBytesAvx512(job) == 0 ? 0 : job.n;
}

void Prepare(const MatMulJob& job, int64_t u0, int64_t u1) {
  if (job.amx) {
    QuantGemmPrepareAmx(job, u0, u1);
  } else if (job.gemm) {
    if (IsFloat(job.dtype)) {
      FloatGemmPrepareAvx512(job, u0, u1);
    } else {
      QuantGemmPrepareAvx512(job, u0, u1);
    }
  } else if (IsFloat(job.dtype)) {
    FloatDecodePrepareAvx512(job, u0, u1);
  } else {
    QuantizeActsAvx512(job, u0, u1);
  }
}

size_t ScratchBytes(const MatMulJob& job) {
  if (job.amx) return QuantGemmScratchBytesAmx(job);
  if (AmxDecode(job)) return Decode16ScratchBytesAmx();
  if (!job.gemm) return 0;
  return IsFloat(job.dtype) ? FloatGemmScratchBytesAvx512(job) : QuantGemmScratchBytesAvx512(job);
}

void Rows(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch) {
  if (IsFloat(job.dtype)) {
    if (job.gemm) {
      FloatGemmRowsAvx512(job, m0, m1, scratch);
    } else {
      FloatDecodeRowsAvx512(job, m0, m1);
    }
  } else if (job.amx) {
    QuantGemmRowsAmx(job, m0, m1, scratch);
  } else if (job.gemm) {
    QuantGemmRowsAvx512(job, m0, m1, scratch);
  } else if (job.packed != nullptr) {
    if (AmxDecode(job)) {
      Decode16RowsAmx(job, m0, m1, scratch);
    } else {
      Decode16RowsAvx512(job, m0, m1);
    }
  } else {
    QuantDecodeRowsAvx512(job, m0, m1);
  }
}

// Constant-initialized: no code of this file runs before the ISA check.
constexpr IsaKernels kKernels = {Supports, UseGemm, Amx, ActBytes, PrepareUnits,
                                 Prepare,  ScratchBytes,  Rows};

}  // namespace

const IsaKernels& Avx512Kernels() { return kKernels; }

}  // namespace fastgen::kernels::cpu
