#ifndef CK_POINTWISE_H
#define CK_POINTWISE_H

/// 1 when this build has the AVX-512 loops below and the CPU runs them; 0 otherwise (CKTensor keeps its Swift loops).
int ck_pointwise_available(void);

/// Each computes, value for value and rounding for rounding, what CKTensor's Swift loops compute (`SiLU`,
/// `SiLUGrad`, GroupNorm's fused SiLU), with `fastExp`'s exponential; n values, any n.

/// y = x / (1 + exp(-x)).
void ck_silu(const float *x, float *y, long n);
/// out = g s (1 + x (1 - s)) with s = 1 / (1 + exp(-x)): SiLU's gradient at x times g.
void ck_silu_gradient(const float *g, const float *x, float *out, long n);
/// z = (x - shift) scale + offset, then y = z / (1 + exp(-z)): a GroupNorm channel's normalization and SiLU.
void ck_affine_silu(const float *x, float *y, long n, float shift, float scale, float offset);
/// dz = g s (1 + z (1 - s)) with z as in ck_affine_silu and s = 1 / (1 + exp(-z)).
void ck_affine_silu_gradient(const float *g, const float *x, float *dz, long n, float shift, float scale, float offset);

/// s[i] = sin(x[i]) and c[i] = cos(x[i]), to within 2.5e-7 of the true values for |x| <= 8192; larger, infinite or
/// NaN arguments go to the C library's sinf and cosf.
void ck_sincos(const float *x, float *s, float *c, long n);

#endif
