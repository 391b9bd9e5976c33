// Which SIMD instruction set the CPU matmul kernels use. The choice is made once, at the first
// kernel call, from CPUID (the best set the CPU and OS support) unless FASTGEN_ISA names another
// (reference|avx2|avx512), so tests and benchmarks can compare the paths on one machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace fastgen::kernels::cpu {

enum class Isa : uint8_t {
  kReference,  // the scalar oracle (kernels::reference), always available
  kAvx2,       // AVX2 + FMA + F16C + BMI2
  kAvx512,     // AVX-512 F/BW/VL/DQ + VNNI + BF16 (Zen 4/5, Ice Lake and later)
};

std::string_view IsaName(Isa isa);
std::optional<Isa> IsaFromName(std::string_view name);  // case-insensitive

// True when this CPU (and OS, for the AVX-512 register state) can execute the ISA's kernels.
bool IsaSupported(Isa isa);
std::vector<Isa> SupportedIsas();  // reference first, best last

// The ISA MatMul uses now: FASTGEN_ISA if set and supported (an unsupported request falls back
// to the best supported set, with a warning on stderr), else the best supported set.
Isa ActiveIsa();

// Makes MatMul use `isa` from now on (tests and benchmarks). Returns false, changing nothing,
// when the CPU lacks it: an instruction the CPU does not have is never executed.
bool ForceIsa(Isa isa);

// AMX (Intel's tile matrix unit, Sapphire Rapids and later), which the AVX-512 GEMM uses for
// int8 weights when present: the CPU has AMX-TILE and AMX-INT8, the OS saves the tile state,
// and it granted this process the tile data (ARCH_REQ_XCOMP_PERM, asked for once, at the first
// call). FASTGEN_AMX=0 turns it off (comparisons, or a kernel of the OS that misbehaves);
// SetAmxEnabled does the same for tests. False on AMD and on older Intel parts.
bool AmxAvailable();
bool AmxEnabled();            // AmxAvailable() and not turned off
void SetAmxEnabled(bool on);  // within AmxAvailable()

}  // namespace fastgen::kernels::cpu
