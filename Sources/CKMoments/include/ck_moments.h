#ifndef CK_MOMENTS_H
#define CK_MOMENTS_H

/// 1 when this build has the AVX2 update below (x86-64); 0 elsewhere, where Swift keeps its portable one.
int ck_moments_available(void);

/// Adam's and RAdam's update of values begin ..< end of one parameter, in place:
///     g = parts[0][i] + parts[1][i] + ... (in that order);   g += weight_decay * p[i] (only when weight_decay != 0);
///     m[i] += (1 - beta1) (g - m[i]);   v[i] = beta2 v[i] + (1 - beta2) g^2;
///     p[i] -= adaptive ? scale * m[i] / (sqrt(v[i]) * v_scale + eps) : scale * m[i].
void ck_moment_update(float *p, const float *const *parts, long part_count, float *m, float *v, long begin, long end,
                      float beta1, float beta2, float weight_decay, int adaptive, float scale, float v_scale, float eps);

#endif
