// Whether the AVX-512 loops of this target can run here (ck_silu.c, ck_sincos.c).
#include "ck_pointwise.h"

#if defined(__x86_64__)
int ck_pointwise_available(void) { return __builtin_cpu_supports("avx512f") ? 1 : 0; }
#else
int ck_pointwise_available(void) { return 0; }
#endif
