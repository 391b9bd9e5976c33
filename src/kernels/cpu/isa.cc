#include "kernels/cpu/isa.h"

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace fastgen::kernels::cpu {
namespace {

bool CpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
}

// libgcc's CPU model also checks XGETBV, so "avx512f" implies the OS saves the ZMM state.
bool CpuHasAvx512() {
  __builtin_cpu_init();
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("avx512bf16");
}

Isa BestIsa() {
  if (CpuHasAvx512()) return Isa::kAvx512;
  if (CpuHasAvx2()) return Isa::kAvx2;
  return Isa::kReference;
}

Isa InitialIsa() {
  const Isa best = BestIsa();
  const char* env = std::getenv("FASTGEN_ISA");
  if (env == nullptr || *env == '\0') return best;
  const std::optional<Isa> wanted = IsaFromName(env);
  if (!wanted) {
    std::fprintf(stderr, "fastgen: FASTGEN_ISA=%s is not one of reference|avx2|avx512; using %s\n",
                 env, IsaName(best).data());
    return best;
  }
  if (!IsaSupported(*wanted)) {
    std::fprintf(stderr, "fastgen: FASTGEN_ISA=%s is not supported by this CPU; using %s\n", env,
                 IsaName(best).data());
    return best;
  }
  return *wanted;
}

std::atomic<Isa>& ActiveSlot() {
  static std::atomic<Isa> slot{InitialIsa()};
  return slot;
}

}  // namespace

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kReference: return "reference";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

std::optional<Isa> IsaFromName(std::string_view name) {
  for (Isa isa : {Isa::kReference, Isa::kAvx2, Isa::kAvx512}) {
    const std::string_view n = IsaName(isa);
    if (n.size() != name.size()) continue;
    bool eq = true;
    for (size_t i = 0; i < n.size() && eq; ++i)
      eq = std::tolower(static_cast<unsigned char>(name[i])) == n[i];
    if (eq) return isa;
  }
  return std::nullopt;
}

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kReference: return true;
    case Isa::kAvx2: return CpuHasAvx2();
    case Isa::kAvx512: return CpuHasAvx512();
  }
  return false;
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kReference, Isa::kAvx2, Isa::kAvx512})
    if (IsaSupported(isa)) out.push_back(isa);
  return out;
}

Isa ActiveIsa() { return ActiveSlot().load(std::memory_order_relaxed); }

bool ForceIsa(Isa isa) {
  if (!IsaSupported(isa)) return false;
  ActiveSlot().store(isa, std::memory_order_relaxed);
  return true;
}

}  // namespace fastgen::kernels::cpu
