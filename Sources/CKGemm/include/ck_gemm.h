#ifndef CK_GEMM_H
#define CK_GEMM_H

/// 1 when this build has the AVX-512 product below and the CPU runs it; 0 otherwise (OpenBLAS runs every product).
int ck_gemm_available(void);

/// C = op(A) op(B) (+ C when accumulate), row-major, on the calling thread: op(A) is m x k, op(B) k x n.
/// op(A)(i, p) = transpose_a ? a[p * lda + i] : a[i * lda + p]; op(B)(p, j) = transpose_b ? b[j * ldb + p] : b[p * ldb + j].
void ck_sgemm(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
              int accumulate, float *c, long ldc);

/// C = op(A) op(B) + bias in every row (bias: n floats), as ck_sgemm: a Linear layer's output without first copying
/// the bias into each row of C.
void ck_sgemm_bias(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b,
                   long ldb, const float *bias, float *c, long ldc);

#endif
