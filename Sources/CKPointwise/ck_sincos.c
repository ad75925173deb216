// Sine and cosine of the same arguments in AVX-512: the noise-level embedding's 32 frequencies for every row of a
// batch took 2% of an mlp-toy training step as 64 calls of sinf and cosf per row.
//
// x = q pi/2 + r with q the nearest integer to x 2/pi and pi/2 split into three floats (P1 + P2 + P3, fused
// multiply-adds), so r keeps its accuracy for |x| up to 8192 (q below 2^13); then Cephes' sinf and cosf polynomials
// on [-pi/4, pi/4] and the quadrant q mod 4 picks and signs them. Lanes beyond 8192, infinite or NaN go to the C
// library, whose reduction handles any argument.
#include "ck_pointwise.h"
#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define KERNEL static inline __attribute__((always_inline, target("avx512f")))

/// sin and cos of the 16 lanes of x (|x| <= 8192 in every lane that counts).
KERNEL void sincos16(__m512 x, __m512 *sin_out, __m512 *cos_out) {
    __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.636619747f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(q, _mm512_set1_ps(0x1.921fb6p+0f), x);
    r = _mm512_fnmadd_ps(q, _mm512_set1_ps(-0x1.777a5cp-25f), r);
    r = _mm512_fnmadd_ps(q, _mm512_set1_ps(-0x1.ee59dap-50f), r);
    __m512 z = _mm512_mul_ps(r, r);
    __m512 sp = _mm512_fmadd_ps(z, _mm512_set1_ps(-1.9515295891e-4f), _mm512_set1_ps(8.3321608736e-3f));
    sp = _mm512_fmadd_ps(z, sp, _mm512_set1_ps(-1.6666654611e-1f));
    __m512 sine = _mm512_fmadd_ps(_mm512_mul_ps(r, z), sp, r);
    __m512 cp = _mm512_fmadd_ps(z, _mm512_set1_ps(2.443315711809948e-5f), _mm512_set1_ps(-1.388731625493765e-3f));
    cp = _mm512_fmadd_ps(z, cp, _mm512_set1_ps(4.166664568298827e-2f));
    __m512 cosine = _mm512_fmadd_ps(_mm512_mul_ps(z, z), cp, _mm512_fnmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1)));
    // Quadrant j: sin x = (S, C, -S, -C)[j], cos x = (C, -S, -C, S)[j].
    __m512i j = _mm512_cvtps_epi32(q);
    __mmask16 odd = _mm512_test_epi32_mask(j, _mm512_set1_epi32(1));
    __m512 s = _mm512_mask_blend_ps(odd, sine, cosine), c = _mm512_mask_blend_ps(odd, cosine, sine);
    __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512i s_sign = _mm512_and_si512(_mm512_slli_epi32(j, 30), sign);                          // bit 1 of j
    __m512i c_sign = _mm512_and_si512(_mm512_slli_epi32(_mm512_add_epi32(j, _mm512_set1_epi32(1)), 30), sign);
    s = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s), s_sign));
    // sin(-0) is -0, which the sums of zeros above round to +0.
    *sin_out = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ), s, x);
    *cos_out = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(c), c_sign));
}

/// Lanes of `valid` whose argument the vector path does not take: |x| > 8192, infinite or NaN.
KERNEL __mmask16 outside(__m512 x, __mmask16 valid) {
    __m512 magnitude = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
    return _mm512_mask_cmp_ps_mask(valid, magnitude, _mm512_set1_ps(8192), _CMP_NLE_UQ);
}

__attribute__((target("avx512f")))
void ck_sincos(const float *x, float *s, float *c, long n) {
    for (long i = 0; i < n; i += 16) {
        __mmask16 valid = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(valid, x + i), sv, cv;
        sincos16(v, &sv, &cv);
        _mm512_mask_storeu_ps(s + i, valid, sv);
        _mm512_mask_storeu_ps(c + i, valid, cv);
        for (__mmask16 far = outside(v, valid); far; far &= far - 1) {
            long k = i + __builtin_ctz(far);
            s[k] = sinf(x[k]);
            c[k] = cosf(x[k]);
        }
    }
}

#else

void ck_sincos(const float *x, float *s, float *c, long n) { abort(); }

#endif
