// F(4x4, 3x3)'s B^T and A^T as macros over a vector type and its operations, so that the AVX2 transforms
// (ck_winograd.c) and the AVX-512 ones (ck_winograd_avx512.c) run the same operations in the same order and give the
// same bits by construction. `d`/`r`: arrays of six vectors; `m0`..`m5` vectors; `o` an array of four.
#ifndef CK_WINOGRAD_FORMULAS_H
#define CK_WINOGRAD_FORMULAS_H

/// r = B^T d, B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
#define CK_F43_BT(T, add, sub, fmadd, fnmadd, set1, d, r) do {                                \
    const T two_ = set1(2), four_ = set1(4), five_ = set1(5);                                    \
    T s12 = add(d[1], d[2]), m12 = sub(d[1], d[2]);                                                \
    T s34 = add(d[3], d[4]), m43 = sub(d[4], d[3]);                                                \
    T m31 = sub(d[3], d[1]), m42 = sub(d[4], d[2]);                                                \
    r[0] = fmadd(four_, d[0], fnmadd(five_, d[2], d[4]));                                          \
    r[1] = fnmadd(four_, s12, s34);                                                                \
    r[2] = fmadd(four_, m12, m43);                                                                 \
    r[3] = fmadd(two_, m31, m42);                                                                  \
    r[4] = fnmadd(two_, m31, m42);                                                                 \
    r[5] = fmadd(four_, d[1], fnmadd(five_, d[3], d[5]));                                          \
} while (0)

/// o = A^T m, four outputs of six values, A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
#define CK_F43_AT(T, add, sub, fmadd, set1, m0, m1, m2, m3, m4, m5, o) do {                   \
    T p12 = add(m1, m2), n12 = sub(m1, m2);                                                        \
    T p34 = add(m3, m4), n34 = sub(m3, m4);                                                        \
    o[0] = add(add(m0, p12), p34);                                                                 \
    o[1] = fmadd(set1(2), n34, n12);                                                               \
    o[2] = fmadd(set1(4), p34, p12);                                                               \
    o[3] = add(fmadd(set1(8), n34, n12), m5);                                                      \
} while (0)

#endif
