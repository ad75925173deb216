#ifndef CK_WINOGRAD_H
#define CK_WINOGRAD_H

/// 1 when this build has the AVX2 transforms below (x86-64); 0 elsewhere, where Swift keeps its portable ones.
int ck_winograd_available(void);

/// F(4x4, 3x3) input transform of planes first_plane ..< end_plane of x (planes of h x w, `channels` per
/// sample): V[e][c][j * tiles + tile] = (B^T d B)[e] for each zero-padded 6x6 patch d (stride 4), where plane
/// q = j * channels + c and V has rows of `t` tiles (all samples of the chunk).
void ck_f43_input(const float *x, float *v, long h, long w, long channels, long t, long first_plane, long end_plane);

/// 1 when this CPU runs ck_f43_input_avx512 (AVX-512 F and VL); 0 elsewhere.
int ck_winograd_avx512_available(void);

/// ck_f43_input in AVX-512, with the same bits (ck_winograd_avx512.c).
void ck_f43_input_avx512(const float *x, float *v, long h, long w, long channels, long t, long first_plane, long end_plane);

/// ck_f43_output_channels_last in AVX-512, 16 channels at a time (ck_winograd_avx512.c): the same bits where the
/// AVX2 one takes its 8-channel path (all but a plane range's last channels when they are not a multiple of 8).
void ck_f43_output_channels_last_avx512(const float *m, float *y, long h, long w, long channels, long t,
                                        const float *bias, long first_plane, long end_plane);

/// F(4x4, 3x3) output transform: y plane q = A^T m A + bias[q] for each 4x4 tile, cropped to h x w; the products
/// read (M's rows of this plane's tiles) are set back to zero. `bias` (one value per plane) may be NULL.
void ck_f43_output(float *m, float *y, long h, long w, long channels, long t, const float *bias, long first_plane,
                   long end_plane);

/// F(2x2, 3x3) input transform, as ck_f43_input with 4x4 patches of stride 2.
void ck_f22_input(const float *x, float *v, long h, long w, long channels, long t, long first_plane, long end_plane);

/// F(2x2, 3x3) output transform, as ck_f43_output with 2x2 tiles.
void ck_f22_output(float *m, float *y, long h, long w, long channels, long t, const float *bias, long first_plane,
                   long end_plane);

/// F(4x4, 3x3) gradient transform for dW: Q[e][c][j * tiles + tile] = (A g A^T)[e] for each 4x4 tile of
/// gradient plane q = j * channels + c, zero past the plane.
void ck_f43_gradient(const float *g, float *q, long h, long w, long channels, long t, long first_plane, long end_plane);

/// F(2x2, 3x3) gradient transform, as ck_f43_gradient with 2x2 tiles.
void ck_f22_gradient(const float *g, float *q, long h, long w, long channels, long t, long first_plane, long end_plane);

/// F(4x4, 3x3) output transform from products stored channels last: the product of point e, tile `tile` of the
/// chunk (t tiles, sample j's tiles from j * tiles) and channel c is m[(e * t + tile) * channels + c]; y plane
/// q = j * channels + c = A^T m A + bias[q] for each 4x4 tile, cropped to h x w. m is only read.
void ck_f43_output_channels_last(const float *m, float *y, long h, long w, long channels, long t, const float *bias,
                                 long first_plane, long end_plane);

/// F(2x2, 3x3) output transform from products stored channels last, as ck_f43_output_channels_last.
void ck_f22_output_channels_last(const float *m, float *y, long h, long w, long channels, long t, const float *bias,
                                 long first_plane, long end_plane);

#endif
