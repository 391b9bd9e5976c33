#include "kernels/cpu/isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fastgen::kernels::cpu {
namespace {

// CPUID and XGETBV directly (not the compilers' __builtin_cpu_supports, whose feature names
// differ between GCC and clang): the instruction set bits, and whether the OS saves the register
// state they need.
struct CpuFeatures {
  bool amx_tile = false, amx_int8 = false, os_amx = false;
  bool avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false, avx512bf16 = false;
  bool os_avx = false, os_avx512 = false;
};

CpuFeatures ReadCpuFeatures() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (osxsave && avx) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    f.os_avx = (lo & 0x6) == 0x6;          // XMM and YMM state
    f.os_avx512 = (lo & 0xe6) == 0xe6;     // and opmask, ZMM_Hi256, Hi16_ZMM
    f.os_amx = (lo & 0x60000) == 0x60000;  // XTILECFG and XTILEDATA
  }
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = b & (1u << 5);
  f.bmi2 = b & (1u << 8);
  f.avx512f = b & (1u << 16);
  f.avx512dq = b & (1u << 17);
  f.avx512bw = b & (1u << 30);
  f.avx512vl = b & (1u << 31);
  f.avx512vnni = c & (1u << 11);
  f.amx_tile = d & (1u << 24);
  f.amx_int8 = d & (1u << 25);
  __cpuid_count(7, 1, a, b, c, d);
  f.avx512bf16 = a & (1u << 5);
  return f;
}

const CpuFeatures& Features() {
  static const CpuFeatures f = ReadCpuFeatures();
  return f;
}

bool CpuHasAvx2() {
  const CpuFeatures& f = Features();
  return f.os_avx && f.avx2 && f.fma && f.f16c && f.bmi2;
}

bool CpuHasAvx512() {
  const CpuFeatures& f = Features();
  return CpuHasAvx2() && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni &&
         f.avx512bf16;
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

namespace {

// Linux keeps the AMX tile data out of a process's saved state until the process asks for it.
bool RequestTileData() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return ::syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

bool DetectAmx() {
  const CpuFeatures& f = Features();
  return CpuHasAvx512() && f.amx_tile && f.amx_int8 && f.os_amx && RequestTileData();
}

std::atomic<bool>& AmxSwitch() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("FASTGEN_AMX");
    return !(env && std::string_view(env) == "0");
  }()};
  return on;
}

}  // namespace

bool AmxAvailable() {
  static const bool available = DetectAmx();
  return available;
}

bool AmxEnabled() { return AmxAvailable() && AmxSwitch().load(std::memory_order_relaxed); }

void SetAmxEnabled(bool on) { AmxSwitch().store(on, std::memory_order_relaxed); }

}  // namespace fastgen::kernels::cpu
