// Single-thread products for the shapes a piece of a batch runs (CoreShards): a few hundred rows against a few
// hundred columns. OpenBLAS repacks both operands on every call, which took 13% of an mlp-toy step; here A is read
// in place, one broadcast per row and step of depth, and B through one 32-column panel at a time, copied into an
// L1-sized buffer only where reading it in place would be slow (see ck_sgemm).
#include "ck_gemm.h"
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>

int ck_gemm_available(void) { return __builtin_cpu_supports("avx512f") ? 1 : 0; }      // read once, by OwnGEMM

#define KERNEL static inline __attribute__((always_inline, target("avx512f")))
enum { panel_columns = 32, most_rows = 12, depth_block = 256, row_block = 384 };

/// rows x 32 of C (16 when wide is 0) from a depth-long stretch: A(i, p) = a[i * row_step + p * depth_step], B's
/// row p at panel + p * panel_step (lanes past the width masked off). Twelve rows keep 24 accumulators, two B
/// vectors and a broadcast in the 32 registers.
KERNEL void tile(const int rows, const int wide, long depth, const float *a, long row_step, long depth_step,
                 const float *panel, long panel_step, const float *bias, float *c, long ldc, __mmask16 low, __mmask16 high,
                 int accumulate) {
    __m512 acc_low[most_rows], acc_high[most_rows];
    // Every row starts from the bias's columns (or zero): the same as starting from C holding the bias rows.
    const __m512 start_low = bias ? _mm512_maskz_loadu_ps(low, bias) : _mm512_setzero_ps();
    const __m512 start_high = bias && wide ? _mm512_maskz_loadu_ps(high, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < rows; i++) { acc_low[i] = start_low; acc_high[i] = start_high; }
    for (long p = 0; p < depth; p++) {
        __m512 b_low = _mm512_maskz_loadu_ps(low, panel + p * panel_step);
        __m512 b_high = wide ? _mm512_maskz_loadu_ps(high, panel + p * panel_step + 16) : b_low;
        const float *ap = a + p * depth_step;
        for (int i = 0; i < rows; i++) {
            __m512 ai = _mm512_set1_ps(ap[i * row_step]);
            acc_low[i] = _mm512_fmadd_ps(ai, b_low, acc_low[i]);
            if (wide) acc_high[i] = _mm512_fmadd_ps(ai, b_high, acc_high[i]);
        }
    }
    for (int i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        if (accumulate) acc_low[i] = _mm512_add_ps(acc_low[i], _mm512_maskz_loadu_ps(low, ci));
        _mm512_mask_storeu_ps(ci, low, acc_low[i]);
        if (wide) {
            if (accumulate) acc_high[i] = _mm512_add_ps(acc_high[i], _mm512_maskz_loadu_ps(high, ci + 16));
            _mm512_mask_storeu_ps(ci + 16, high, acc_high[i]);
        }
    }
}

/// An 8 x 8 block of B (rows src, src + ls, ...) stored transposed at dst, dst + ld, ...
KERNEL void transpose8(const float *src, long ls, float *dst, long ld) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ls), r2 = _mm256_loadu_ps(src + 2 * ls);
    __m256 r3 = _mm256_loadu_ps(src + 3 * ls), r4 = _mm256_loadu_ps(src + 4 * ls), r5 = _mm256_loadu_ps(src + 5 * ls);
    __m256 r6 = _mm256_loadu_ps(src + 6 * ls), r7 = _mm256_loadu_ps(src + 7 * ls);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3);
    __m256 t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE), s2 = _mm256_shuffle_ps(t1, t3, 0x44);
    __m256 s3 = _mm256_shuffle_ps(t1, t3, 0xEE), s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + ld, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ld, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ld, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ld, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ld, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ld, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ld, _mm256_permute2f128_ps(s3, s7, 0x31));
}

/// The lanes of a panel's two vectors that hold its first `width` (<= 32) columns.
KERNEL void column_lanes(long width, __mmask16 *low, __mmask16 *high) {
    *low = width >= 16 ? 0xffff : (__mmask16)((1u << width) - 1);
    *high = width >= 32 ? 0xffff : width <= 16 ? 0 : (__mmask16)((1u << (width - 16)) - 1);
}

/// Columns j0 ..< j0 + width (width <= 32; `low` and `high` its lanes) of op(B)'s rows p0 ..< p0 + depth into panel
/// (32 floats a row, zeros past width, so the kernel never reads past it).
KERNEL void pack_panel(int transpose_b, const float *b, long ldb, long p0, long depth, long j0, long width,
                       __mmask16 low, __mmask16 high, float *panel) {
    if (!transpose_b) {
        for (long p = 0; p < depth; p++) {
            const float *src = b + (p0 + p) * ldb + j0;
            _mm512_storeu_ps(panel + p * panel_columns, _mm512_maskz_loadu_ps(low, src));
            _mm512_storeu_ps(panel + p * panel_columns + 16, _mm512_maskz_loadu_ps(high, src + 16));
        }
        return;
    }
    // B stored (n, k): the panel's row p is column p0 + p of B's rows j0 ...
    long whole = width == panel_columns ? depth / 8 * 8 : 0;
    for (long p = 0; p < whole; p += 8)
        for (long j = 0; j < panel_columns; j += 8)
            transpose8(b + (j0 + j) * ldb + p0 + p, ldb, panel + p * panel_columns + j, panel_columns);
    for (long p = whole; p < depth; p++)
        for (long j = 0; j < panel_columns; j++)
            panel[p * panel_columns + j] = j < width ? b[(j0 + j) * ldb + p0 + p] : 0;
}

/// Rows i0 ..< m of one panel: twelve at a time, then the rest.
KERNEL void panel_rows(const int wide, long m, long depth, const float *a0, long row_step, long depth_step, const float *panel,
                       long panel_step, const float *bias, float *c, long ldc, __mmask16 low, __mmask16 high, int accumulate) {
    long i0 = 0;
    for (; i0 + most_rows <= m; i0 += most_rows)
        tile(most_rows, wide, depth, a0 + i0 * row_step, row_step, depth_step, panel, panel_step, bias, c + i0 * ldc, ldc, low,
             high, accumulate);
    const float *ai = a0 + i0 * row_step; float *ci = c + i0 * ldc;
#define TILE(r) case r: tile(r, wide, depth, ai, row_step, depth_step, panel, panel_step, bias, ci, ldc, low, high, accumulate); break;
    switch (m - i0) { TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6) TILE(7) TILE(8) TILE(9) TILE(10) TILE(11) }
#undef TILE
}

/// ck_sgemm and ck_sgemm_bias: C = bias rows (when bias) + op(A) op(B) (+ C when accumulate).
__attribute__((target("avx512f")))
static void product(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b,
                    long ldb, const float *bias, int accumulate, float *c, long ldc) {
    float panel[depth_block * panel_columns] __attribute__((aligned(64)));     // 32 KB: L1-sized, on the stack
    long row_step = transpose_a ? 1 : lda, a_depth_step = transpose_a ? lda : 1;
    if (k == 0 && !accumulate)
        for (long i = 0; i < m; i++) for (long j = 0; j < n; j++) c[i * ldc + j] = bias ? bias[j] : 0;
    // Rows in blocks of 384, then panels, then depth: a panel's C tile (384 x 32) stays in L2 across the depth
    // blocks, and A's block (384 x 256 floats) in L2 across the panels. (Depth outermost re-read all of C per depth
    // block: `unet-s` sampling at one thread, whose products have thousands of columns, took 1.17x OpenBLAS's time.)
    for (long i0 = 0; i0 < m; i0 += row_block) {
        long rows_here = m - i0 < row_block ? m - i0 : row_block;
        for (long j0 = 0; j0 < n; j0 += panel_columns) {
            long width = n - j0 < panel_columns ? n - j0 : panel_columns;
            __mmask16 low, high;
            column_lanes(width, &low, &high);
            for (long p0 = 0; p0 < k; p0 += depth_block) {
                long depth = k - p0 < depth_block ? k - p0 : depth_block;
                int adds = accumulate || p0 > 0;
                // B's rows are read in place unless they are columns of B, or a multiple of 256 bytes apart (the rows
                // of a panel then fall into a few L1 sets and evict each other), or B is larger than L2 holds beside A
                // and C (strided rows from memory: a (64, 784, 576) product took 1.07x OpenBLAS's time in place,
                // 0.95x packed).
                const float *rows = b + p0 * ldb + j0; long step = ldb;
                if (transpose_b || ldb % 64 == 0 || k * ldb > 65536) {
                    pack_panel(transpose_b, b, ldb, p0, depth, j0, width, low, high, panel);
                    rows = panel; step = panel_columns;
                }
                const float *a0 = a + i0 * row_step + p0 * a_depth_step;
                const float *start = bias && !adds ? bias + j0 : 0;
                float *c0 = c + i0 * ldc + j0;
                // A last panel of 16 columns or fewer runs half the multiplies.
                if (width > 16) panel_rows(1, rows_here, depth, a0, row_step, a_depth_step, rows, step, start, c0, ldc, low, high, adds);
                else panel_rows(0, rows_here, depth, a0, row_step, a_depth_step, rows, step, start, c0, ldc, low, high, adds);
            }
        }
    }
}

__attribute__((target("avx512f")))
void ck_sgemm(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
              int accumulate, float *c, long ldc) {
    product(transpose_a, transpose_b, m, n, k, a, lda, b, ldb, 0, accumulate, c, ldc);
}

__attribute__((target("avx512f")))
void ck_sgemm_bias(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b,
                   long ldb, const float *bias, float *c, long ldc) {
    product(transpose_a, transpose_b, m, n, k, a, lda, b, ldb, bias, 0, c, ldc);
}

#else

int ck_gemm_available(void) { return 0; }

void ck_sgemm(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
              int accumulate, float *c, long ldc) { abort(); }
void ck_sgemm_bias(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b,
                   long ldb, const float *bias, float *c, long ldc) { abort(); }

#endif
