// F(4x4, 3x3)'s input transform and its output transform from channels-last products in AVX-512 (CPUs that have it;
// ck_winograd.c's AVX2 ones elsewhere), with the AVX2 ones' operations in the same order, so the same bits.
//
// Input: B^T down the patch rows, 16 columns at a time read from the plane with masked loads (no zero-bordered
// copy), then B^T across each combined row's phases, which one two-source permute per phase picks out for 8 tiles
// (the AVX2 version transposes 4x4 blocks in registers and shifts lanes for the fifth and sixth phases). In cache,
// one thread, 64 planes of 28x28: 34 us against 45. F(2x2)'s input, whose AVX2 version has fewer shuffles to
// save, measured no faster this way and stays AVX2.
// Output: 16 channels of a tile at a time instead of 8 (the last group masked rather than one channel at a time,
// where the AVX2 version's scalar loop rounds differently): 64 and 128 planes of 28x28 in 19-20 and 48 us
// against 28-29 and 74.
#include "ck_winograd.h"
#include "ck_winograd_formulas.h"
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma"), always_inline)) static inline

/// B^T of F(4x4) on six vectors of 16 and of 8 lanes (ck_winograd_formulas.h, as ck_winograd.c's f43_bt).
AVX512 void bt43_512(const __m512 d[6], __m512 r[6]) {
    CK_F43_BT(__m512, _mm512_add_ps, _mm512_sub_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_set1_ps, d, r);
}
AVX512 void bt43_256(const __m256 d[6], __m256 r[6]) {
    CK_F43_BT(__m256, _mm256_add_ps, _mm256_sub_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_set1_ps, d, r);
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

// MARK: Output from channels-last products, 16 channels at a time

/// A^T of F(4x4) on six vectors (ck_winograd_formulas.h, as ck_winograd.c's f43_at).
AVX512 void at43_512(__m512 m0, __m512 m1, __m512 m2, __m512 m3, __m512 m4, __m512 m5, __m512 o[4]) {
    CK_F43_AT(__m512, _mm512_add_ps, _mm512_sub_ps, _mm512_fmadd_ps, _mm512_set1_ps, m0, m1, m2, m3, m4, m5, o);
}

/// The 4x4 transpose within each 128-bit quarter of four vectors.
AVX512 void transpose_quarters(__m512 *a, __m512 *b, __m512 *c, __m512 *d) {
    __m512 t0 = _mm512_unpacklo_ps(*a, *b), t1 = _mm512_unpackhi_ps(*a, *b);
    __m512 t2 = _mm512_unpacklo_ps(*c, *d), t3 = _mm512_unpackhi_ps(*c, *d);
    *a = _mm512_shuffle_ps(t0, t2, 0x44); *b = _mm512_shuffle_ps(t0, t2, 0xEE);
    *c = _mm512_shuffle_ps(t1, t3, 0x44); *d = _mm512_shuffle_ps(t1, t3, 0xEE);
}

/// The first `valid` channels (lanes) of one F(4x4) tile: A^T m A + b from its 36 products (point 6 r + col at
/// s + (6 r + col) step), each channel's rows cropped to h x w in its plane (channel i at plane + i plane_size).
AVX512 void f43_channels_tile16(const float *s, long step, __m512 b, __mmask16 lanes, int valid, float *plane,
                                long plane_size, long h, long w, long ty, long tx) {
    __m512 cols[6][4];
    for (int col = 0; col < 6; col++)
        at43_512(_mm512_maskz_loadu_ps(lanes, s + col * step), _mm512_maskz_loadu_ps(lanes, s + (6 + col) * step),
                 _mm512_maskz_loadu_ps(lanes, s + (12 + col) * step), _mm512_maskz_loadu_ps(lanes, s + (18 + col) * step),
                 _mm512_maskz_loadu_ps(lanes, s + (24 + col) * step), _mm512_maskz_loadu_ps(lanes, s + (30 + col) * step),
                 cols[col]);
    const long n = w - 4 * tx < 4 ? w - 4 * tx : 4;
    const __mmask8 columns = (__mmask8)((1u << n) - 1);
    for (int k = 0; k < 4 && 4 * ty + k < h; k++) {
        __m512 o[4];
        at43_512(cols[0][k], cols[1][k], cols[2][k], cols[3][k], cols[4][k], cols[5][k], o);
        for (int p = 0; p < 4; p++) o[p] = _mm512_add_ps(o[p], b);
        transpose_quarters(&o[0], &o[1], &o[2], &o[3]);        // o[i] quarter q: channel 4 q + i's 4 columns
        float *row = plane + (4 * ty + k) * w + 4 * tx;
#define QUARTER(q) _mm512_extractf32x4_ps(o[i], q)
        for (int i = 0; i < 4; i++) {
            if (n == 4 && valid == 16) {
                _mm_storeu_ps(row + i * plane_size, QUARTER(0));
                _mm_storeu_ps(row + (i + 4) * plane_size, QUARTER(1));
                _mm_storeu_ps(row + (i + 8) * plane_size, QUARTER(2));
                _mm_storeu_ps(row + (i + 12) * plane_size, QUARTER(3));
                continue;
            }
            if (i < valid) _mm_mask_storeu_ps(row + i * plane_size, columns, QUARTER(0));
            if (i + 4 < valid) _mm_mask_storeu_ps(row + (i + 4) * plane_size, columns, QUARTER(1));
            if (i + 8 < valid) _mm_mask_storeu_ps(row + (i + 8) * plane_size, columns, QUARTER(2));
            if (i + 12 < valid) _mm_mask_storeu_ps(row + (i + 12) * plane_size, columns, QUARTER(3));
        }
#undef QUARTER
    }
}

/// As ck_winograd.c's output_planes_channels_last with side 4: a row of tiles at a time, in it the planes' channels 16
/// at a time (the last group masked), each group along the row.
AVX512 void f43_output_planes_channels_last(const float *m, float *y, long h, long w, long channels, long t,
                                            const float *bias, long first, long end) {
    const long tiles_x = (w + 3) / 4, tiles_y = (h + 3) / 4, tiles = tiles_x * tiles_y;
    const long step = t * channels, plane_size = h * w;
    for (long q = first; q < end;) {
        const long j = q / channels, c0 = q % channels;
        const long c1 = channels - c0 < end - q ? channels : c0 + (end - q);
        for (long ty = 0; ty < tiles_y; ty++) {
            const float *row = m + (j * tiles + ty * tiles_x) * channels;
            for (long c = c0; c < c1; c += 16) {
                const int valid = c1 - c < 16 ? (int)(c1 - c) : 16;
                const __mmask16 lanes = (__mmask16)((1u << valid) - 1);
                const __m512 b = bias ? _mm512_maskz_loadu_ps(lanes, bias + j * channels + c) : _mm512_setzero_ps();
                float *plane = y + (j * channels + c) * plane_size;
                for (long tx = 0; tx < tiles_x; tx++)
                    f43_channels_tile16(row + tx * channels + c, step, b, lanes, valid, plane, plane_size, h, w, ty, tx);
            }
        }
        q += c1 - c0;
    }
}

__attribute__((target("avx512f,avx512vl,avx2,fma")))
void ck_f43_output_channels_last_avx512(const float *m, float *y, long h, long w, long channels, long t,
                                        const float *bias, long first, long end) {
    f43_output_planes_channels_last(m, y, h, w, channels, t, bias, first, end);
}

__attribute__((target("avx512f,avx512vl,avx2,fma")))
void ck_f43_input_avx512(const float *x, float *v, long h, long w, long channels, long t, long first, long end) {
    f43_input_planes(x, v, h, w, channels, t, first, end);
}

int ck_winograd_avx512_available(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"); }

#else

int ck_winograd_avx512_available(void) { return 0; }
void ck_f43_input_avx512(const float *x, float *v, long h, long w, long channels, long t, long first, long end) { abort(); }
void ck_f43_output_channels_last_avx512(const float *m, float *y, long h, long w, long channels, long t,
                                        const float *bias, long first, long end) { abort(); }

#endif
