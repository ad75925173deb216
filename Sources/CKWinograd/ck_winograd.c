// The Winograd transforms (input, output, and the gradient's for dW), in AVX2 intrinsics. Their Swift versions
// (Conv2DWinogradF43.swift, Conv2DWinogradF22.swift) pick phase columns out of a row with SIMD32/SIMD16 halves
// and store the last group of a row of tiles lane by lane; the compiler turns the first into 128-bit shuffles
// with stack spills and the second into one scalar store per tile. Here the phases come from an in-register
// 4x4 transpose and the short groups from one masked store. Same layouts, same arithmetic up to rounding
// (fused multiply-adds).
#include "ck_winograd.h"
#include "ck_winograd_formulas.h"
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

int ck_winograd_available(void) { return 1; }

/// Lanes 0 ..< valid set.
static inline __m256i first_lanes(long valid) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// The first `valid` lanes of v to p: a row of tiles must not run into the next row's tiles.
static inline void store_tiles(float *p, __m256 v, long valid, __m256i mask) {
    if (valid >= 8) _mm256_storeu_ps(p, v); else _mm256_maskstore_ps(p, mask, v);
}

/// n floats from src to dst, inline: the rows are short (a few dozen floats), where a memcpy call costs more than the copy.
static inline void copy_row(float *dst, const float *src, long n) {
    long c = 0;
    for (; c + 8 <= n; c += 8) _mm256_storeu_ps(dst + c, _mm256_loadu_ps(src + c));
    if (c < n) {
        const __m256i mask = first_lanes(n - c);
        _mm256_maskstore_ps(dst + c, mask, _mm256_maskload_ps(src + c, mask));
    }
}

/// v shifted down one lane, `last` in lane 7: the phase vector of the next tile of each lane.
static inline __m256 next_tile(__m256 v, const float *last) {
    __m256 shifted = _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7));
    return _mm256_blend_ps(shifted, _mm256_broadcast_ss(last), 0x80);
}

/// The 4x4 transpose within each 128-bit half of four vectors.
static inline void transpose_halves(__m256 *a, __m256 *b, __m256 *c, __m256 *d) {
    __m256 t0 = _mm256_unpacklo_ps(*a, *b), t1 = _mm256_unpackhi_ps(*a, *b);
    __m256 t2 = _mm256_unpacklo_ps(*c, *d), t3 = _mm256_unpackhi_ps(*c, *d);
    *a = _mm256_shuffle_ps(t0, t2, 0x44); *b = _mm256_shuffle_ps(t0, t2, 0xEE);
    *c = _mm256_shuffle_ps(t1, t3, 0x44); *d = _mm256_shuffle_ps(t1, t3, 0xEE);
}

// MARK: F(4x4, 3x3)

/// B^T applied to six values (ck_winograd_formulas.h).
static inline void f43_bt(const __m256 d[6], __m256 r[6]) {
    CK_F43_BT(__m256, _mm256_add_ps, _mm256_sub_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_set1_ps, d, r);
}

/// A^T applied to six values: four outputs (ck_winograd_formulas.h).
static inline void f43_at(__m256 m0, __m256 m1, __m256 m2, __m256 m3, __m256 m4, __m256 m5, __m256 o[4]) {
    CK_F43_AT(__m256, _mm256_add_ps, _mm256_sub_ps, _mm256_fmadd_ps, _mm256_set1_ps, m0, m1, m2, m3, m4, m5, o);
}

// MARK: The kernels of one group of 8 tiles

/// F(4x4) input: from the 6 combined rows (B^T d) of a row of tiles, B^T across each row's phases for tiles
/// 8 group ..< 8 group + valid; column 4 tile + k is phase k, phases 4 and 5 are the next tile's 0 and 1.
static inline void f43_input_group(const float *rows, long pw, long group, float *dst, long stride, long valid,
                                   __m256i mask) {
    for (int i = 0; i < 6; i++) {
        const float *s = rows + i * pw + 32 * group;
        __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + 8);
        __m256 a2 = _mm256_loadu_ps(s + 16), a3 = _mm256_loadu_ps(s + 24);
        // (tile 0 | tile 4), (1 | 5), (2 | 6), (3 | 7), each tile's 4 columns; transposed: phases 0-3.
        __m256 p[6], r[6];
        p[0] = _mm256_permute2f128_ps(a0, a2, 0x20); p[1] = _mm256_permute2f128_ps(a0, a2, 0x31);
        p[2] = _mm256_permute2f128_ps(a1, a3, 0x20); p[3] = _mm256_permute2f128_ps(a1, a3, 0x31);
        transpose_halves(&p[0], &p[1], &p[2], &p[3]);
        p[4] = next_tile(p[0], s + 32); p[5] = next_tile(p[1], s + 33);
        f43_bt(p, r);
        for (int k = 0; k < 6; k++) store_tiles(dst + (6 * i + k) * stride, r[k], valid, mask);
    }
}

/// F(2x2) input, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: columns 2 tile and 2 tile + 1 are the even and
/// odd phases, 2 tile + 2 and 2 tile + 3 the next tile's.
static inline void f22_input_group(const float *rows, long pw, long group, float *dst, long stride, long valid,
                                   __m256i mask) {
    for (int i = 0; i < 4; i++) {
        const float *s = rows + i * pw + 16 * group;
        __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + 8);
        // Lanes (0, 2, 8, 10 | 4, 6, 12, 14) and (1, 3, 9, 11 | 5, 7, 13, 15), then the middle quarters swapped.
        __m256 e0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0x88)), 0xD8));
        __m256 o0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0xDD)), 0xD8));
        __m256 e1 = next_tile(e0, s + 16), o1 = next_tile(o0, s + 17);
        float *base = dst + 4 * i * stride;
        store_tiles(base, _mm256_sub_ps(e0, e1), valid, mask);
        store_tiles(base + stride, _mm256_add_ps(o0, e1), valid, mask);
        store_tiles(base + 2 * stride, _mm256_sub_ps(e1, o0), valid, mask);
        store_tiles(base + 3 * stride, _mm256_sub_ps(o0, o1), valid, mask);
    }
}

/// One F(4x4) tile's outputs for the 8 lanes (8 tiles of one plane, or one tile of 8 channels) from its 36 products
/// (point 6 r + col at s + (6 r + col) stride): A^T down each of the 6 columns, then along each of the 4 rows;
/// o[k][p] = (A^T m A)[k][p] + b.
static inline void f43_tile(const float *s, long stride, __m256 b, __m256 o[4][4]) {
    __m256 cols[6][4];
    for (int col = 0; col < 6; col++) {
        f43_at(_mm256_loadu_ps(s + col * stride), _mm256_loadu_ps(s + (6 + col) * stride),
               _mm256_loadu_ps(s + (12 + col) * stride), _mm256_loadu_ps(s + (18 + col) * stride),
               _mm256_loadu_ps(s + (24 + col) * stride), _mm256_loadu_ps(s + (30 + col) * stride), cols[col]);
    }
    for (int k = 0; k < 4; k++) {
        f43_at(cols[0][k], cols[1][k], cols[2][k], cols[3][k], cols[4][k], cols[5][k], o[k]);
        for (int p = 0; p < 4; p++) o[k][p] = _mm256_add_ps(o[k][p], b);
    }
}

/// F(4x4) output of 8 tiles of a plane, whose phase vectors a transpose turns back into 32 consecutive columns:
/// out[k][a] is output row k, columns 8a ..< 8a + 8.
static inline void f43_output_group(const float *s, long stride, __m256 b, __m256 out[4][4]) {
    __m256 o[4][4];
    f43_tile(s, stride, b, o);
    for (int k = 0; k < 4; k++) {
        transpose_halves(&o[k][0], &o[k][1], &o[k][2], &o[k][3]);   // (tile 0 | tile 4), (1 | 5), (2 | 6), (3 | 7)
        out[k][0] = _mm256_permute2f128_ps(o[k][0], o[k][1], 0x20); out[k][1] = _mm256_permute2f128_ps(o[k][2], o[k][3], 0x20);
        out[k][2] = _mm256_permute2f128_ps(o[k][0], o[k][1], 0x31); out[k][3] = _mm256_permute2f128_ps(o[k][2], o[k][3], 0x31);
    }
}

/// One F(2x2) tile's outputs for the 8 lanes from its 16 products (point 4 r + col at s + (4 r + col) stride):
/// A^T = [1 1 1 0; 0 1 -1 -1] down the 4 columns, then along the 2 rows; even[k] and odd[k] are output row k's
/// two columns, + b.
static inline void f22_tile(const float *s, long stride, __m256 b, __m256 even[2], __m256 odd[2]) {
    __m256 top[4], bottom[4];
    for (int col = 0; col < 4; col++) {
        __m256 m0 = _mm256_loadu_ps(s + col * stride), m1 = _mm256_loadu_ps(s + (4 + col) * stride);
        __m256 m2 = _mm256_loadu_ps(s + (8 + col) * stride), m3 = _mm256_loadu_ps(s + (12 + col) * stride);
        top[col] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        bottom[col] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    for (int k = 0; k < 2; k++) {
        const __m256 *r = k == 0 ? top : bottom;
        even[k] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r[0], r[1]), r[2]), b);
        odd[k] = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r[1], r[2]), r[3]), b);
    }
}

/// F(2x2) output of 8 tiles of a plane: even and odd output columns interleave back into 16 consecutive columns.
static inline void f22_output_group(const float *s, long stride, __m256 b, __m256 out[4][4]) {
    __m256 even[2], odd[2];
    f22_tile(s, stride, b, even, odd);
    for (int k = 0; k < 2; k++) {
        __m256 lo = _mm256_unpacklo_ps(even[k], odd[k]), hi = _mm256_unpackhi_ps(even[k], odd[k]);
        out[k][0] = _mm256_permute2f128_ps(lo, hi, 0x20); out[k][1] = _mm256_permute2f128_ps(lo, hi, 0x31);
    }
}

/// A times four values: A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1].
static inline void f43_a(__m256 g0, __m256 g1, __m256 g2, __m256 g3, __m256 r[6]) {
    __m256 p02 = _mm256_add_ps(g0, g2), p13 = _mm256_add_ps(g1, g3);
    __m256 q02 = _mm256_fmadd_ps(_mm256_set1_ps(4), g2, g0);
    __m256 q13 = _mm256_fmadd_ps(_mm256_set1_ps(8), g3, _mm256_mul_ps(_mm256_set1_ps(2), g1));
    r[0] = g0; r[1] = _mm256_add_ps(p02, p13); r[2] = _mm256_sub_ps(p02, p13);
    r[3] = _mm256_add_ps(q02, q13); r[4] = _mm256_sub_ps(q02, q13); r[5] = g3;
}

/// F(4x4) gradient: g A^T along each of a row of tiles' 4 gradient rows (phase vectors by the input's
/// transpose), then A down the 6 columns.
static inline void f43_gradient_group(const float *rows, long width, long group, float *dst, long stride, long valid,
                                      __m256i mask) {
    __m256 across[4][6];
    for (int r = 0; r < 4; r++) {
        const float *s = rows + r * width + 32 * group;
        __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + 8);
        __m256 a2 = _mm256_loadu_ps(s + 16), a3 = _mm256_loadu_ps(s + 24);
        __m256 p0 = _mm256_permute2f128_ps(a0, a2, 0x20), p1 = _mm256_permute2f128_ps(a0, a2, 0x31);
        __m256 p2 = _mm256_permute2f128_ps(a1, a3, 0x20), p3 = _mm256_permute2f128_ps(a1, a3, 0x31);
        transpose_halves(&p0, &p1, &p2, &p3);
        f43_a(p0, p1, p2, p3, across[r]);
    }
    for (int col = 0; col < 6; col++) {
        __m256 down[6];
        f43_a(across[0][col], across[1][col], across[2][col], across[3][col], down);
        for (int k = 0; k < 6; k++) store_tiles(dst + (6 * k + col) * stride, down[k], valid, mask);
    }
}

/// F(2x2) gradient: A = [1 0; 1 1; 1 -1; 0 -1] down each 2x2 tile (its two rows), then along it (even and odd
/// columns).
static inline void f22_gradient_group(const float *rows, long width, long group, float *dst, long stride, long valid,
                                      __m256i mask) {
    __m256 even[2], odd[2];
    for (int r = 0; r < 2; r++) {
        const float *s = rows + r * width + 16 * group;
        __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + 8);
        even[r] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0x88)), 0xD8));
        odd[r] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0xDD)), 0xD8));
    }
    const __m256 zero = _mm256_setzero_ps();
    __m256 left[4] = {even[0], _mm256_add_ps(even[0], even[1]), _mm256_sub_ps(even[0], even[1]), _mm256_sub_ps(zero, even[1])};
    __m256 right[4] = {odd[0], _mm256_add_ps(odd[0], odd[1]), _mm256_sub_ps(odd[0], odd[1]), _mm256_sub_ps(zero, odd[1])};
    for (int i = 0; i < 4; i++) {
        float *base = dst + 4 * i * stride;
        store_tiles(base, left[i], valid, mask);
        store_tiles(base + stride, _mm256_add_ps(left[i], right[i]), valid, mask);
        store_tiles(base + 2 * stride, _mm256_sub_ps(left[i], right[i]), valid, mask);
        store_tiles(base + 3 * stride, _mm256_sub_ps(zero, right[i]), valid, mask);
    }
}

// MARK: The drivers: planes, rows of tiles, groups of 8 tiles. `side` is the output tile's side: 4 for
// F(4x4, 3x3) (6x6 patches, 36 points), 2 for F(2x2, 3x3) (4x4 patches, 16 points). Inlined with a constant
// side, so each entry point below gets its own loops.

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef struct { long tiles_x, tiles_y, tiles, groups; } tiling;

ALWAYS_INLINE tiling tiling_of(long h, long w, int side) {
    tiling g = {(w + side - 1) / side, (h + side - 1) / side, 0, 0};
    g.tiles = g.tiles_x * g.tiles_y;
    g.groups = (g.tiles_x + 7) / 8;
    return g;
}

enum transform { INPUT, GRADIENT };

/// One row of tiles of the input or gradient transform, 8 tiles at a time, from its prepared rows (the input's
/// B^T d, the gradient's rows) into dst, the row's first tile in the transformed planes.
ALWAYS_INLINE void row_of_tiles(int side, enum transform kind, const float *rows, long width, float *dst, long stride,
                                tiling g) {
    for (long group = 0; group < g.groups; group++) {
        const long valid = g.tiles_x - 8 * group < 8 ? g.tiles_x - 8 * group : 8;
        const __m256i mask = first_lanes(valid);
        float *out = dst + 8 * group;
        if (kind == INPUT && side == 4) f43_input_group(rows, width, group, out, stride, valid, mask);
        else if (kind == INPUT) f22_input_group(rows, width, group, out, stride, valid, mask);
        else if (side == 4) f43_gradient_group(rows, width, group, out, stride, valid, mask);
        else f22_gradient_group(rows, width, group, out, stride, valid, mask);
    }
}

/// V[e][c][j tiles + tile] = (B^T d B)[e] for each zero-padded patch d of planes first ..< end (q = j channels + c).
ALWAYS_INLINE void input_planes(int side, const float *x, float *v, long h, long w, long channels, long t, long first,
                                long end) {
    // Per plane: copy into a zero-bordered buffer; per row of tiles, B^T down its padded rows (8 columns at a
    // time), then per 8 tiles B^T across the combined rows.
    const tiling g = tiling_of(h, w, side);
    const long patch = side + 2, stride = channels * t, pw = 8 * side * g.groups + 8, ph = side * g.tiles_y + 2;
    float *padded = calloc((size_t)(pw * (ph + patch)), sizeof(float));   // borders stay zero
    if (!padded) abort();
    float *rows = padded + pw * ph;                                        // B^T d for one row of tiles
    for (long q = first; q < end; q++) {
        const long j = q / channels, c = q % channels;
        const float *src = x + q * h * w;
        for (long r = 0; r < h; r++) copy_row(padded + (r + 1) * pw + 1, src + r * w, w);
        for (long ty = 0; ty < g.tiles_y; ty++) {
            const float *d = padded + side * ty * pw;
            for (long col = 0; col < pw; col += 8) {
                if (side == 4) {
                    __m256 in[6], out[6];
                    for (int i = 0; i < 6; i++) in[i] = _mm256_loadu_ps(d + i * pw + col);
                    f43_bt(in, out);
                    for (int i = 0; i < 6; i++) _mm256_storeu_ps(rows + i * pw + col, out[i]);
                } else {
                    __m256 a0 = _mm256_loadu_ps(d + col), a1 = _mm256_loadu_ps(d + pw + col);
                    __m256 a2 = _mm256_loadu_ps(d + 2 * pw + col), a3 = _mm256_loadu_ps(d + 3 * pw + col);
                    _mm256_storeu_ps(rows + col, _mm256_sub_ps(a0, a2));
                    _mm256_storeu_ps(rows + pw + col, _mm256_add_ps(a1, a2));
                    _mm256_storeu_ps(rows + 2 * pw + col, _mm256_sub_ps(a2, a1));
                    _mm256_storeu_ps(rows + 3 * pw + col, _mm256_sub_ps(a1, a3));
                }
            }
            row_of_tiles(side, INPUT, rows, pw, v + c * t + j * g.tiles + ty * g.tiles_x, stride, g);
        }
    }
    free(padded);
}

/// y plane q = A^T m A + bias[q] for each tile, cropped to h x w; the products read are set back to zero.
ALWAYS_INLINE void output_planes(int side, float *m, float *y, long h, long w, long channels, long t, const float *bias,
                                 long first, long end) {
    const tiling g = tiling_of(h, w, side);
    const long stride = channels * t, points = (side + 2) * (side + 2);
    for (long q = first; q < end; q++) {
        const long j = q / channels, c = q % channels;
        const __m256 b = _mm256_set1_ps(bias ? bias[q] : 0.0f);
        float *plane = y + q * h * w, *products = m + c * t + j * g.tiles;
        for (long ty = 0; ty < g.tiles_y; ty++) {
            for (long group = 0; group < g.groups; group++) {
                __m256 out[4][4];          // side rows of side vectors: 8 side columns
                const float *s = products + ty * g.tiles_x + 8 * group;
                if (side == 4) f43_output_group(s, stride, b, out); else f22_output_group(s, stride, b, out);
                for (int k = 0; k < side && side * ty + k < h; k++) {
                    float *row = plane + (side * ty + k) * w;
                    for (int a = 0; a < side; a++) {
                        const long x0 = 8 * side * group + 8 * a, n = w - x0;
                        if (n <= 0) break;
                        store_tiles(row + x0, out[k][a], n, first_lanes(n));
                    }
                }
            }
        }
        for (long e = 0; e < points; e++) memset(products + e * stride, 0, (size_t)g.tiles * sizeof(float));
    }
}

/// Q[e][c][j tiles + tile] = (A g A^T)[e] for each tile of gradient planes first ..< end, zero past the plane.
ALWAYS_INLINE void gradient_planes(int side, const float *grad, float *q, long h, long w, long channels, long t,
                                   long first, long end) {
    // Per row of tiles: its gradient rows copied into zero-padded rows (zeros past the plane), then per 8 tiles.
    const tiling g = tiling_of(h, w, side);
    const long stride = channels * t, width = 8 * side * g.groups;
    float *rows = calloc((size_t)(side * width), sizeof(float));
    if (!rows) abort();
    for (long plane = first; plane < end; plane++) {
        const long j = plane / channels, c = plane % channels;
        const float *src = grad + plane * h * w;
        for (long ty = 0; ty < g.tiles_y; ty++) {
            for (long r = 0; r < side; r++) {
                const long y = side * ty + r;
                if (y < h) copy_row(rows + r * width, src + y * w, w); else memset(rows + r * width, 0, (size_t)w * sizeof(float));
            }
            row_of_tiles(side, GRADIENT, rows, width, q + c * t + j * g.tiles + ty * g.tiles_x, stride, g);
        }
    }
    free(rows);
}

void ck_f43_input(const float *x, float *v, long h, long w, long channels, long t, long first_plane, long end_plane) {
    input_planes(4, x, v, h, w, channels, t, first_plane, end_plane);
}

void ck_f22_input(const float *x, float *v, long h, long w, long channels, long t, long first_plane, long end_plane) {
    input_planes(2, x, v, h, w, channels, t, first_plane, end_plane);
}

void ck_f43_output(float *m, float *y, long h, long w, long channels, long t, const float *bias, long first_plane,
                   long end_plane) {
    output_planes(4, m, y, h, w, channels, t, bias, first_plane, end_plane);
}

void ck_f22_output(float *m, float *y, long h, long w, long channels, long t, const float *bias, long first_plane,
                   long end_plane) {
    output_planes(2, m, y, h, w, channels, t, bias, first_plane, end_plane);
}

void ck_f43_gradient(const float *g, float *q, long h, long w, long channels, long t, long first_plane, long end_plane) {
    gradient_planes(4, g, q, h, w, channels, t, first_plane, end_plane);
}

void ck_f22_gradient(const float *g, float *q, long h, long w, long channels, long t, long first_plane, long end_plane) {
    gradient_planes(2, g, q, h, w, channels, t, first_plane, end_plane);
}

// MARK: Output from channels-last products

// When the products run with Cout in the vector lanes (M[e] (tiles, Cout), see winogradForward), a tile's 36 (or
// 16) products of 8 consecutive channels are 8 consecutive floats: the transform runs on 8 channels of one tile at
// a time and a 4x4 transpose turns its vectors of channels into each channel's rows.

static const float at43[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
static const float at22[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};

/// One tile of one channel (the channels past the last group of 8): A^T m A + b, cropped, into plane.
static void channel_tile(int side, const float *s, long step, float b, float *plane, long h, long w, long ty, long tx) {
    const int n = side + 2;
    float m[36], half[4][6];
    for (int e = 0; e < n * n; e++) m[e] = s[e * step];
    for (int k = 0; k < side; k++)
        for (int col = 0; col < n; col++) {
            float sum = 0;
            for (int r = 0; r < n; r++) sum += (side == 4 ? at43[k][r] : at22[k][r]) * m[r * n + col];
            half[k][col] = sum;
        }
    for (int k = 0; k < side && side * ty + k < h; k++)
        for (int p = 0; p < side && side * tx + p < w; p++) {
            float sum = b;
            for (int col = 0; col < n; col++) sum += half[k][col] * (side == 4 ? at43[p][col] : at22[p][col]);
            plane[(side * ty + k) * w + side * tx + p] = sum;
        }
}

/// The first `n` (1 ... 4) floats of v to p.
static inline void store_first(float *p, __m128 v, long n) {
    if (n >= 4) _mm_storeu_ps(p, v);
    else _mm_maskstore_ps(p, _mm_cmpgt_epi32(_mm_set1_epi32((int)n), _mm_setr_epi32(0, 1, 2, 3)), v);
}

/// 8 channels of one F(4x4) tile, channel i's output plane at plane + i plane_size.
static inline void f43_channels_tile(const float *s, long step, __m256 b, float *plane, long plane_size, long h, long w,
                                     long ty, long tx) {
    __m256 o[4][4];
    f43_tile(s, step, b, o);
    const long n = w - 4 * tx < 4 ? w - 4 * tx : 4;
    for (int k = 0; k < 4 && 4 * ty + k < h; k++) {
        transpose_halves(&o[k][0], &o[k][1], &o[k][2], &o[k][3]);     // o[k][i]: channel i's 4 columns | channel i + 4's
        float *row = plane + (4 * ty + k) * w + 4 * tx;
        for (int i = 0; i < 4; i++) {
            store_first(row + i * plane_size, _mm256_castps256_ps128(o[k][i]), n);
            store_first(row + (i + 4) * plane_size, _mm256_extractf128_ps(o[k][i], 1), n);
        }
    }
}

/// Two floats of a 128-bit vector (its low pair, or its high pair when `high`) to p, or only the first when n is 1.
static inline void store_pair(float *p, __m128 v, int high, long n) {
    if (high) v = _mm_movehl_ps(v, v);
    if (n >= 2) _mm_storel_pi((__m64 *)p, v); else _mm_store_ss(p, v);
}

/// 8 channels of one F(2x2) tile.
static inline void f22_channels_tile(const float *s, long step, __m256 b, float *plane, long plane_size, long h, long w,
                                     long ty, long tx) {
    __m256 even[2], odd[2];
    f22_tile(s, step, b, even, odd);
    const long n = w - 2 * tx < 2 ? w - 2 * tx : 2;
    for (int k = 0; k < 2 && 2 * ty + k < h; k++) {
        // lo: channels 0, 1 | 4, 5 as (even, odd) pairs; hi: 2, 3 | 6, 7
        __m256 lo = _mm256_unpacklo_ps(even[k], odd[k]), hi = _mm256_unpackhi_ps(even[k], odd[k]);
        float *row = plane + (2 * ty + k) * w + 2 * tx;
        __m128 lo0 = _mm256_castps256_ps128(lo), lo1 = _mm256_extractf128_ps(lo, 1);
        __m128 hi0 = _mm256_castps256_ps128(hi), hi1 = _mm256_extractf128_ps(hi, 1);
        store_pair(row, lo0, 0, n); store_pair(row + plane_size, lo0, 1, n);
        store_pair(row + 2 * plane_size, hi0, 0, n); store_pair(row + 3 * plane_size, hi0, 1, n);
        store_pair(row + 4 * plane_size, lo1, 0, n); store_pair(row + 5 * plane_size, lo1, 1, n);
        store_pair(row + 6 * plane_size, hi1, 0, n); store_pair(row + 7 * plane_size, hi1, 1, n);
    }
}

/// y plane q = A^T m A + bias[q] per tile, cropped to h x w, from products stored channels last: point e, tile
/// `tile` of the chunk, channel c at m[(e t + tile) channels + c]. Row of tiles by row of tiles; in each, the
/// channels of planes first ..< end 8 at a time (the rest one at a time), each group along the row. A row's
/// products (a few dozen KB) stay in L1 across its groups, and a group writes 8 planes' rows in order. (Tile by
/// tile with all channels inside, writing to every plane at once, took 1.8x the (Cout, T) transforms' share of a
/// `unet-s` step; staging a group's rows and copying them out added more to memmove than it saved here.)
ALWAYS_INLINE void output_planes_channels_last(int side, const float *m, float *y, long h, long w, long channels, long t,
                                               const float *bias, long first, long end) {
    const tiling g = tiling_of(h, w, side);
    const long step = t * channels, plane_size = h * w;
    for (long q = first; q < end;) {
        const long j = q / channels, c0 = q % channels;
        const long c1 = channels - c0 < end - q ? channels : c0 + (end - q);      // this sample's channels in range
        for (long ty = 0; ty < g.tiles_y; ty++) {
            const float *row = m + (j * g.tiles + ty * g.tiles_x) * channels;
            long c = c0;
            for (; c + 8 <= c1; c += 8) {
                const __m256 b = bias ? _mm256_loadu_ps(bias + j * channels + c) : _mm256_setzero_ps();
                float *plane = y + (j * channels + c) * plane_size;
                for (long tx = 0; tx < g.tiles_x; tx++) {
                    if (side == 4) f43_channels_tile(row + tx * channels + c, step, b, plane, plane_size, h, w, ty, tx);
                    else f22_channels_tile(row + tx * channels + c, step, b, plane, plane_size, h, w, ty, tx);
                }
            }
            for (; c < c1; c++)
                for (long tx = 0; tx < g.tiles_x; tx++)
                    channel_tile(side, row + tx * channels + c, step, bias ? bias[j * channels + c] : 0.0f,
                                 y + (j * channels + c) * plane_size, h, w, ty, tx);
        }
        q += c1 - c0;
    }
}

void ck_f43_output_channels_last(const float *m, float *y, long h, long w, long channels, long t, const float *bias,
                                 long first_plane, long end_plane) {
    output_planes_channels_last(4, m, y, h, w, channels, t, bias, first_plane, end_plane);
}

void ck_f22_output_channels_last(const float *m, float *y, long h, long w, long channels, long t, const float *bias,
                                 long first_plane, long end_plane) {
    output_planes_channels_last(2, m, y, h, w, channels, t, bias, first_plane, end_plane);
}

#else

int ck_winograd_available(void) { return 0; }
void ck_f43_gradient(const float *g, float *q, long h, long w, long channels, long t, long first_plane, long end_plane) { abort(); }
void ck_f22_gradient(const float *g, float *q, long h, long w, long channels, long t, long first_plane, long end_plane) { abort(); }
void ck_f22_output(float *m, float *y, long h, long w, long channels, long t, const float *bias, long first_plane,
                   long end_plane) { abort(); }
void ck_f43_input(const float *x, float *v, long h, long w, long channels, long t, long first_plane, long end_plane) { abort(); }
void ck_f43_output(float *m, float *y, long h, long w, long channels, long t, const float *bias, long first_plane,
                   long end_plane) { abort(); }
void ck_f22_input(const float *x, float *v, long h, long w, long channels, long t, long first_plane, long end_plane) { abort(); }
void ck_f43_output_channels_last(const float *m, float *y, long h, long w, long channels, long t, const float *bias,
                                 long first_plane, long end_plane) { abort(); }
void ck_f22_output_channels_last(const float *m, float *y, long h, long w, long channels, long t, const float *bias,
                                 long first_plane, long end_plane) { abort(); }

#endif
