// The AMX tile configuration shared by the tile kernels (quant_gemm_amx.cc, quant_decode16_amx.cc).
#pragma once

#include <cstdint>

namespace fastgen::kernels::cpu {
namespace {  // internal linkage: see matmul_job.h on why kernel files share no inline symbols

// LDTILECFG's 64-byte operand, palette 1: bytes per row and rows of each of the 16 tiles.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Loads the configuration. GCC 12's _tile_loadconfig builtin does not tell the optimizer that it
// reads the operand, which then drops the stores that fill in the tile shapes (every tile op
// after it faults as unconfigured); the asm names the operand as memory it reads.
inline void LoadTileConfig(const TileConfig& c) { __asm__ volatile("ldtilecfg %0" : : "m"(c)); }

}  // namespace
}  // namespace fastgen::kernels::cpu
