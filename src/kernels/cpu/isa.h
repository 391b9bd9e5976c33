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

}  // namespace fastgen::kernels::cpu
