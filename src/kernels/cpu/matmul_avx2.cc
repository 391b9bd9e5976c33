// The AVX2 kernel table.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/matmul_job.h"

namespace fastgen::kernels::cpu {
namespace {

bool Supports(DType) { return false; }
int64_t GemmMinTokens(DType) { return 8; }
size_t ActBytes(const MatMulJob&) { return 0; }
int64_t PrepareUnits(const MatMulJob&) { return 0; }
void Prepare(const MatMulJob&, int64_t, int64_t) {}
size_t ScratchBytes(const MatMulJob&) { return 0; }
void Rows(const MatMulJob&, int64_t, int64_t, uint8_t*) {}

constexpr IsaKernels kKernels = {Supports, GemmMinTokens, ActBytes, PrepareUnits,
                                 Prepare,  ScratchBytes,  Rows};

}  // namespace

const IsaKernels& Avx2Kernels() { return kKernels; }

}  // namespace fastgen::kernels::cpu
