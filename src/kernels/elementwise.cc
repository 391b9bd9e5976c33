#include "kernels/elementwise.h"

#include "kernels/cpu/isa.h"
#include "kernels/cpu/kernels_avx2.h"
#include "kernels/cpu/kernels_avx512.h"
#include "kernels/reference/elementwise.h"

namespace fastgen::kernels {

void RmsNorm(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one, float* out) {
  if (cpu::ActiveIsa() == cpu::Isa::kAvx512) return cpu::RmsNormAvx512(x, w, n, d, eps, plus_one, out);
  if (cpu::ActiveIsa() == cpu::Isa::kAvx2) return cpu::RmsNormAvx2(x, w, n, d, eps, plus_one, out);
  reference::RmsNorm(x, w, n, d, eps, plus_one, out);
}

void SiluMul(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu) {
  if (cpu::ActiveIsa() == cpu::Isa::kAvx512) return cpu::SiluMulAvx512(gate, up, n, m, ldg, ldu);
  if (cpu::ActiveIsa() == cpu::Isa::kAvx2) return cpu::SiluMulAvx2(gate, up, n, m, ldg, ldu);
  reference::SiluMul(gate, up, n, m, ldg, ldu);
}

float MaxSumExp(const float* x, int64_t n, float* max) {
  if (cpu::ActiveIsa() == cpu::Isa::kAvx512) return cpu::MaxSumExpAvx512(x, n, max);
  if (cpu::ActiveIsa() == cpu::Isa::kAvx2) return cpu::MaxSumExpAvx2(x, n, max);
  return reference::MaxSumExp(x, n, max);
}

void ExpShift(float* x, int64_t n, float shift) {
  if (cpu::ActiveIsa() == cpu::Isa::kAvx512) return cpu::ExpShiftAvx512(x, n, shift);
  if (cpu::ActiveIsa() == cpu::Isa::kAvx2) return cpu::ExpShiftAvx2(x, n, shift);
  reference::ExpShift(x, n, shift);
}

}  // namespace fastgen::kernels
