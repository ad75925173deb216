// The optimizers' moment update in AVX2. In Swift the same loop on SIMD8 compiled to 128-bit halves with its
// constants spilled to the stack, and the update took longer than reading its memory (mlp-toy: 7% of a step).
#include "ck_moments.h"
#include <stdlib.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

int ck_moments_available(void) { return 1; }

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/// Lanes 0 ..< valid set.
ALWAYS_INLINE __m256i first_lanes(long valid) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// One block of eight values (or `valid` < 8 at the end: the missing lanes compute on zeros and are not stored).
/// Separate multiplies and adds, no fused ones: the same roundings as the portable Swift update and as torch.
ALWAYS_INLINE void update_block(float *p, const float *const *parts, long part_count, float *m, float *v, long j,
                                long valid, int decays, int adaptive, __m256 a1, __m256 b2, __m256 a2, __m256 wd,
                                __m256 scale, __m256 v_scale, __m256 eps) {
    __m256i mask = first_lanes(valid);
#define LOAD(q) (valid == 8 ? _mm256_loadu_ps((q) + j) : _mm256_maskload_ps((q) + j, mask))
    __m256 pj = LOAD(p), g = LOAD(parts[0]), mj = LOAD(m), vj = LOAD(v);
    for (long q = 1; q < part_count; q++) g = _mm256_add_ps(g, LOAD(parts[q]));
#undef LOAD
    if (decays) g = _mm256_add_ps(g, _mm256_mul_ps(wd, pj));
    mj = _mm256_add_ps(mj, _mm256_mul_ps(a1, _mm256_sub_ps(g, mj)));
    vj = _mm256_add_ps(_mm256_mul_ps(b2, vj), _mm256_mul_ps(a2, _mm256_mul_ps(g, g)));
    __m256 step = adaptive
        ? _mm256_mul_ps(scale, _mm256_div_ps(mj, _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vj), v_scale), eps)))
        : _mm256_mul_ps(scale, mj);
    pj = _mm256_sub_ps(pj, step);
    if (valid == 8) {
        _mm256_storeu_ps(p + j, pj); _mm256_storeu_ps(m + j, mj); _mm256_storeu_ps(v + j, vj);
    } else {
        _mm256_maskstore_ps(p + j, mask, pj); _mm256_maskstore_ps(m + j, mask, mj); _mm256_maskstore_ps(v + j, mask, vj);
    }
}

/// The loop for one combination of its switches, each a constant once inlined: no test per block.
ALWAYS_INLINE void update_range(float *p, const float *const *parts, long part_count, float *m, float *v, long begin,
                                long end, float beta1, float beta2, float weight_decay, int decays, int adaptive,
                                float scale, float v_scale, float eps) {
    __m256 a1 = _mm256_set1_ps(1 - beta1), b2 = _mm256_set1_ps(beta2), a2 = _mm256_set1_ps(1 - beta2);
    __m256 wd = _mm256_set1_ps(weight_decay), s = _mm256_set1_ps(scale), vs = _mm256_set1_ps(v_scale), e = _mm256_set1_ps(eps);
    long j = begin;
    for (; j + 8 <= end; j += 8)
        update_block(p, parts, part_count, m, v, j, 8, decays, adaptive, a1, b2, a2, wd, s, vs, e);
    if (j < end)
        update_block(p, parts, part_count, m, v, j, end - j, decays, adaptive, a1, b2, a2, wd, s, vs, e);
}

void ck_moment_update(float *p, const float *const *parts, long part_count, float *m, float *v, long begin, long end,
                      float beta1, float beta2, float weight_decay, int adaptive, float scale, float v_scale, float eps) {
    int decays = weight_decay != 0;
#define RANGE(PARTS, DECAYS, ADAPTIVE) \
    update_range(p, parts, PARTS, m, v, begin, end, beta1, beta2, weight_decay, DECAYS, ADAPTIVE, scale, v_scale, eps)
    // The common cases with constant switches (one part: a whole batch; two: two pieces); others by the general loop.
    if (part_count == 1 && !decays && adaptive) RANGE(1, 0, 1);
    else if (part_count == 2 && !decays && adaptive) RANGE(2, 0, 1);
    else if (adaptive) RANGE(part_count, decays, 1);
    else RANGE(part_count, decays, 0);
#undef RANGE
}

#else

int ck_moments_available(void) { return 0; }
void ck_moment_update(float *p, const float *const *parts, long part_count, float *m, float *v, long begin, long end,
                      float beta1, float beta2, float weight_decay, int adaptive, float scale, float v_scale, float eps) {
    abort();
}

#endif
