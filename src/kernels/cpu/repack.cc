#include "kernels/cpu/repack.h"

#include <cstring>

#include "kernels/cpu/isa.h"
#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::cpu {

bool RepackSupported(DType t) {
  return ActiveIsa() == Isa::kAvx512 && (t == DType::kQ8_0 || t == DType::kQ4_0);
}

size_t RepackedGroupBytes(DType t, int64_t k) {
  const size_t blocks = static_cast<size_t>(k / 32);
  return t == DType::kQ8_0 ? blocks * 16 * sizeof(block_q8_0) : blocks * 16 * sizeof(block_q4_0);
}

void Repack(DType t, const uint8_t* rows, int64_t m, int64_t k, size_t row_bytes, uint8_t* out) {
  const int64_t blocks = k / 32, groups = (m + 15) / 16;
  const size_t group_bytes = RepackedGroupBytes(t, k);
  const int quant_bytes = t == DType::kQ8_0 ? 32 : 16;
  const size_t block_bytes = 32 + 16 * static_cast<size_t>(quant_bytes);
  std::memset(out, 0, group_bytes * static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t r = 0; r < 16 && 16 * g + r < m; ++r) {
      const uint8_t* row = rows + static_cast<size_t>(16 * g + r) * row_bytes;
      for (int64_t b = 0; b < blocks; ++b) {
        uint8_t* dst = out + static_cast<size_t>(g) * group_bytes + static_cast<size_t>(b) * block_bytes;
        uint16_t d;
        const uint8_t* qs;
        if (t == DType::kQ8_0) {
          const auto* blk = reinterpret_cast<const block_q8_0*>(row) + b;
          std::memcpy(&d, &blk->d, 2);
          qs = reinterpret_cast<const uint8_t*>(blk->qs);
        } else {
          const auto* blk = reinterpret_cast<const block_q4_0*>(row) + b;
          std::memcpy(&d, &blk->d, 2);
          qs = blk->qs;
        }
        std::memcpy(dst + 2 * r, &d, 2);
        for (int j = 0; j < quant_bytes / 4; ++j) std::memcpy(dst + 32 + 64 * j + 4 * r, qs + 4 * j, 4);
      }
    }
  }
}

}  // namespace fastgen::kernels::cpu
