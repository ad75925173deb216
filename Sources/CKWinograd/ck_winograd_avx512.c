// F(4x4, 3x3)'s input transform in AVX-512 (CPUs that have it; ck_winograd.c's AVX2 one elsewhere). The same
// operations in the same order as the AVX2 one, so the same bits: B^T down the patch rows, 16 columns at a time read
// from the plane with masked loads (no zero-bordered copy), then B^T across each combined row's phases, which one
// two-source permute per phase picks out for 8 tiles (the AVX2 version transposes 4x4 blocks in registers and
// shifts lanes for the fifth and sixth phases). Measured in cache, one thread, 64 planes of 28x28: 34 us against
// 45. F(2x2)'s input, whose AVX2 version has fewer shuffles to save, measured no faster this way and stays AVX2.
#include "ck_winograd.h"
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma"), always_inline)) static inline

/// B^T of F(4x4) on six vectors: the operations of ck_winograd.c's f43_bt in the same order.
#define F43_BT(T, add, sub, fmadd, fnmadd, set1, d, r) do {                                   \
    const T two = set1(2), four = set1(4), five = set1(5);                                       \
    T s12 = add(d[1], d[2]), m12 = sub(d[1], d[2]);                                                \
    T s34 = add(d[3], d[4]), m43 = sub(d[4], d[3]);                                                \
    T m31 = sub(d[3], d[1]), m42 = sub(d[4], d[2]);                                                \
    r[0] = fmadd(four, d[0], fnmadd(five, d[2], d[4]));                                            \
    r[1] = fnmadd(four, s12, s34);                                                                 \
    r[2] = fmadd(four, m12, m43);                                                                  \
    r[3] = fmadd(two, m31, m42);                                                                   \
    r[4] = fnmadd(two, m31, m42);                                                                  \
    r[5] = fmadd(four, d[1], fnmadd(five, d[3], d[5]));                                            \
} while (0)

AVX512 void bt43_512(const __m512 d[6], __m512 r[6]) {
    F43_BT(__m512, _mm512_add_ps, _mm512_sub_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_set1_ps, d, r);
}
AVX512 void bt43_256(const __m256 d[6], __m256 r[6]) {
    F43_BT(__m256, _mm256_add_ps, _mm256_sub_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_set1_ps, d, r);
}

/// Padded columns 16 b ..< 16 b + 16 of padded row `row` (plane row row - 1, column c - 1; zero outside the plane).
AVX512 __m512 padded_block(const float *plane, long h, long w, long row, long b) {
    const long y = row - 1, x0 = 16 * b - 1;
    if (y < 0 || y >= h) return _mm512_setzero_ps();
    // Lane l is column x0 + l: inside the plane for max(0, -x0) <= l < w - x0.
    long lo = x0 < 0 ? -x0 : 0, hi = w - x0 < 16 ? w - x0 : 16;
    if (hi <= lo) return _mm512_setzero_ps();
    __mmask16 mask = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
    return _mm512_maskz_loadu_ps(mask, plane + y * w + x0);
}

/// As ck_winograd.c's input_planes with side 4.
AVX512 void f43_input_planes(const float *x, float *v, long h, long w, long channels, long t, long first, long end) {
    const long tiles_x = (w + 3) / 4, tiles_y = (h + 3) / 4, tiles = tiles_x * tiles_y;
    const long groups = (tiles_x + 7) / 8, stride = channels * t;
    // Combined rows (B^T d of one row of tiles): a group's permutes read 34 columns from 32 group on, and 48 spare
    // columns cover the last group's reads; the columns computed are those the valid tiles use.
    const long rw = 32 * groups + 48, blocks = (4 * tiles_x + 2 + 15) / 16;
    float *rows = calloc((size_t)(rw * 6), sizeof(float));
    if (!rows) abort();
    // Lane k of phase j is column 4 k + j of the group's 32-column window; phases 4 and 5 read a window 2 further on.
    __m512i index[6];
    for (int j = 0; j < 6; j++) {
        int lanes[16];
        for (int k = 0; k < 16; k++) lanes[k] = 4 * (k & 7) + (j >= 4 ? j - 2 : j);
        index[j] = _mm512_loadu_si512(lanes);
    }
    for (long q = first; q < end; q++) {
        const long j = q / channels, c = q % channels;
        const float *plane = x + q * h * w;
        float *out = v + c * t + j * tiles;
        for (long ty = 0; ty < tiles_y; ty++) {
            for (long b = 0; b < blocks; b++) {
                __m512 in[6], r[6];
                for (int i = 0; i < 6; i++) in[i] = padded_block(plane, h, w, 4 * ty + i, b);
                bt43_512(in, r);
                for (int i = 0; i < 6; i++) _mm512_storeu_ps(rows + i * rw + 16 * b, r[i]);
            }
            for (long group = 0; group < groups; group++) {
                const long valid = tiles_x - 8 * group < 8 ? tiles_x - 8 * group : 8;
                const __mmask8 mask = (__mmask8)((1u << valid) - 1);
                float *dst = out + ty * tiles_x + 8 * group;
                for (int i = 0; i < 6; i++) {
                    const float *s = rows + i * rw + 32 * group;
                    const __m512 w0 = _mm512_loadu_ps(s), w1 = _mm512_loadu_ps(s + 16);
                    const __m512 w2 = _mm512_loadu_ps(s + 2), w3 = _mm512_loadu_ps(s + 18);
                    __m256 p[6], r[6];
                    for (int k = 0; k < 4; k++) p[k] = _mm512_castps512_ps256(_mm512_permutex2var_ps(w0, index[k], w1));
                    for (int k = 4; k < 6; k++) p[k] = _mm512_castps512_ps256(_mm512_permutex2var_ps(w2, index[k], w3));
                    bt43_256(p, r);
                    for (int k = 0; k < 6; k++) _mm256_mask_storeu_ps(dst + (6 * i + k) * stride, mask, r[k]);
                }
            }
        }
    }
    free(rows);
}

__attribute__((target("avx512f,avx512vl,avx2,fma")))
void ck_f43_input_avx512(const float *x, float *v, long h, long w, long channels, long t, long first, long end) {
    f43_input_planes(x, v, h, w, channels, t, first, end);
}

int ck_winograd_avx512_available(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"); }

#else

int ck_winograd_avx512_available(void) { return 0; }
void ck_f43_input_avx512(const float *x, float *v, long h, long w, long channels, long t, long first, long end) { abort(); }

#endif
