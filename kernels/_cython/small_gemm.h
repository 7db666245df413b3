/* Small matrix products for the Cython kernels, where a BLAS call costs more in dispatch and
 * packing than in arithmetic (a side of 1 to 16, or a few thousand multiply-adds in all).
 *
 *   C[r, j] = beta * C[r, j] + alpha * sum_k a[r * ars + k * aks] * B[k * ldb + j]
 *
 * for r < m, j < n, k < K: any strides for the left operand, rows of B and C contiguous. With
 * AVX2 and FMA (the _cython_cpu_avx2 build) it runs 4-row register tiles of two vectors, B rows
 * read once per tile row; otherwise FASTNN_SMALL_GEMM is 0 and the callers use BLAS.
 */
#ifndef FASTNN_SMALL_GEMM_H
#define FASTNN_SMALL_GEMM_H

#include <stddef.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define FASTNN_SMALL_GEMM 1

/* lanes [0, count) of a load/store mask, count in 0..4 (doubles) or 0..8 (floats) */
static inline __m256i fastnn_mask64(ptrdiff_t count) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), _mm256_setr_epi64x(0, 1, 2, 3));
}
static inline __m256i fastnn_mask32(ptrdiff_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define FASTNN_TILE(T, V, W, LOAD, MLOAD, STORE, FMA, MUL, SET1, ZERO, MASK)                   \
    const T *ar[4];                                                                              \
    for (int r = 0; r < 4; r++) ar[r] = a + (r < mr ? r : 0) * ars;                             \
    V c00 = ZERO(), c01 = ZERO(), c10 = ZERO(), c11 = ZERO();                                    \
    V c20 = ZERO(), c21 = ZERO(), c30 = ZERO(), c31 = ZERO();                                    \
    if (nc == 2 * W) {                                                                           \
        for (ptrdiff_t k = 0; k < K; k++) {                                                      \
            const T *b = B + k * ldb;                                                            \
            V b0 = LOAD(b), b1 = LOAD(b + W), x;                                                 \
            x = SET1(ar[0][k * aks]); c00 = FMA(x, b0, c00); c01 = FMA(x, b1, c01);              \
            x = SET1(ar[1][k * aks]); c10 = FMA(x, b0, c10); c11 = FMA(x, b1, c11);              \
            x = SET1(ar[2][k * aks]); c20 = FMA(x, b0, c20); c21 = FMA(x, b1, c21);              \
            x = SET1(ar[3][k * aks]); c30 = FMA(x, b0, c30); c31 = FMA(x, b1, c31);              \
        }                                                                                        \
    } else {                                                                                     \
        __m256i m0 = MASK(nc), m1 = MASK(nc - W);                                                \
        for (ptrdiff_t k = 0; k < K; k++) {                                                      \
            const T *b = B + k * ldb;                                                            \
            V b0 = MLOAD(b, m0), b1 = MLOAD(b + W, m1), x;                                       \
            x = SET1(ar[0][k * aks]); c00 = FMA(x, b0, c00); c01 = FMA(x, b1, c01);              \
            x = SET1(ar[1][k * aks]); c10 = FMA(x, b0, c10); c11 = FMA(x, b1, c11);              \
            x = SET1(ar[2][k * aks]); c20 = FMA(x, b0, c20); c21 = FMA(x, b1, c21);              \
            x = SET1(ar[3][k * aks]); c30 = FMA(x, b0, c30); c31 = FMA(x, b1, c31);              \
        }                                                                                        \
    }                                                                                            \
    V acc[8] = {c00, c01, c10, c11, c20, c21, c30, c31};                                         \
    V va = SET1(alpha), vb = SET1(beta);                                                         \
    for (int r = 0; r < mr; r++) {                                                               \
        T *c = C + r * ldc;                                                                      \
        V lo = MUL(va, acc[2 * r]), hi = MUL(va, acc[2 * r + 1]);                                \
        if (nc == 2 * W) {                                                                       \
            if (beta != 0) { lo = FMA(vb, LOAD(c), lo); hi = FMA(vb, LOAD(c + W), hi); }         \
            STORE(c, lo); STORE(c + W, hi);                                                      \
        } else {                                                                                 \
            T tmp[2 * W];                                                                        \
            STORE(tmp, lo); STORE(tmp + W, hi);                                                  \
            for (ptrdiff_t j = 0; j < nc; j++)                                                   \
                c[j] = beta != 0 ? beta * c[j] + tmp[j] : tmp[j];                                \
        }                                                                                        \
    }

/* one tile: rows [0, mr) (mr <= 4) and columns [0, nc) (nc <= 8 doubles) of C */
static inline void fastnn_dtile(ptrdiff_t mr, ptrdiff_t nc, ptrdiff_t K, const double *a,
                                ptrdiff_t ars, ptrdiff_t aks, const double *B, ptrdiff_t ldb,
                                double *C, ptrdiff_t ldc, double alpha, double beta) {
    FASTNN_TILE(double, __m256d, 4, _mm256_loadu_pd, _mm256_maskload_pd, _mm256_storeu_pd,
                _mm256_fmadd_pd, _mm256_mul_pd, _mm256_set1_pd, _mm256_setzero_pd, fastnn_mask64)
}

/* one tile: rows [0, mr) (mr <= 4) and columns [0, nc) (nc <= 16 floats) of C */
static inline void fastnn_stile(ptrdiff_t mr, ptrdiff_t nc, ptrdiff_t K, const float *a,
                                ptrdiff_t ars, ptrdiff_t aks, const float *B, ptrdiff_t ldb,
                                float *C, ptrdiff_t ldc, float alpha, float beta) {
    FASTNN_TILE(float, __m256, 8, _mm256_loadu_ps, _mm256_maskload_ps, _mm256_storeu_ps,
                _mm256_fmadd_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps, fastnn_mask32)
}

#define FASTNN_GEMM(TILE, NR)                                                                    \
    for (ptrdiff_t r = 0; r < m; r += 4) {                                                       \
        ptrdiff_t mr = m - r < 4 ? m - r : 4;                                                    \
        for (ptrdiff_t j = 0; j < n; j += NR)                                                    \
            TILE(mr, n - j < NR ? n - j : NR, K, a + r * ars, ars, aks, B + j, ldb,              \
                 C + r * ldc + j, ldc, alpha, beta);                                             \
    }

static inline void fastnn_small_dgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t K, const double *a,
                                      ptrdiff_t ars, ptrdiff_t aks, const double *B,
                                      ptrdiff_t ldb, double *C, ptrdiff_t ldc, double alpha,
                                      double beta) {
    FASTNN_GEMM(fastnn_dtile, 8)
}

static inline void fastnn_small_sgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t K, const float *a,
                                      ptrdiff_t ars, ptrdiff_t aks, const float *B,
                                      ptrdiff_t ldb, float *C, ptrdiff_t ldc, float alpha,
                                      float beta) {
    FASTNN_GEMM(fastnn_stile, 16)
}

#else
#define FASTNN_SMALL_GEMM 0
/* never called in this build (callers check FASTNN_SMALL_GEMM); present so the code links */
static inline void fastnn_small_dgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t K, const double *a,
                                      ptrdiff_t ars, ptrdiff_t aks, const double *B,
                                      ptrdiff_t ldb, double *C, ptrdiff_t ldc, double alpha,
                                      double beta) {}
static inline void fastnn_small_sgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t K, const float *a,
                                      ptrdiff_t ars, ptrdiff_t aks, const float *B,
                                      ptrdiff_t ldb, float *C, ptrdiff_t ldc, float alpha,
                                      float beta) {}
#endif
#endif
