// Byte buffers aligned for the kernels (whole cache lines): allocated and freed with the same
// alignment, as aligned operator new requires of its delete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace fastgen {

inline constexpr std::align_val_t kCacheLineAlign{64};

struct AlignedDelete {
  void operator()(uint8_t* p) const { ::operator delete[](p, kCacheLineAlign); }
};
using AlignedBytes = std::unique_ptr<uint8_t[], AlignedDelete>;

// `bytes` uninitialized bytes, 64-byte aligned.
inline AlignedBytes AllocateAligned(size_t bytes) { return AlignedBytes(new (kCacheLineAlign) uint8_t[bytes]); }

}  // namespace fastgen
