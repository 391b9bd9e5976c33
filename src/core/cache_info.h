// What the CPU's caches hold, for the few decisions that depend on it (whether a model's
// weights are streamed past the caches while decoding).
#pragma once

#include <cstdint>

namespace fastgen {

// Bytes of the last-level cache one core sees (one CCD's L3 on AMD, the shared L3 on Intel),
// read from sysfs; 0 when the machine does not say. (glibc's sysconf reports the whole
// socket's L3 on multi-CCD parts, which no core can use alone.) FASTGEN_LLC_BYTES ("32M")
// overrides it.
int64_t LastLevelCacheBytes();

}  // namespace fastgen
