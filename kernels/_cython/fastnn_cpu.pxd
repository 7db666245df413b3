# Shared declarations of the Cython CPU kernels (_cython_cpu.pyx and the .pxi files it
# includes): the BLAS function-pointer types, the C helpers of fastnn_math.h and small_gemm.h,
# and the size thresholds the passes split on. Types and constants only: nothing here needs a
# module of its own at run time.

ctypedef void (*sgemm_t)(char *ta, char *tb, int *m, int *n, int *k, float *alpha, float *a,
                         int *lda, float *b, int *ldb, float *beta, float *c,
                         int *ldc) noexcept nogil
ctypedef void (*dgemm_t)(char *ta, char *tb, int *m, int *n, int *k, double *alpha, double *a,
                         int *lda, double *b, int *ldb, double *beta, double *c,
                         int *ldc) noexcept nogil

cdef extern from "fastnn_math.h" nogil:
    int fastnn_have_openmp()
    void fastnn_expf_nonpos_inplace(float *a, Py_ssize_t size)

# register-tiled AVX2/FMA products for small shapes (the _cython_cpu_avx2 build only; in the
# baseline build FASTNN_SMALL_GEMM is 0 and BLAS or plain loops take every product)
cdef extern from "small_gemm.h" nogil:
    int FASTNN_SMALL_GEMM
    void fastnn_small_sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t K, const float *a,
                            Py_ssize_t ars, Py_ssize_t aks, const float *B, Py_ssize_t ldb,
                            float *C, Py_ssize_t ldc, float alpha, float beta)
    void fastnn_small_dgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t K, const double *a,
                            Py_ssize_t ars, Py_ssize_t aks, const double *B, Py_ssize_t ldb,
                            double *C, Py_ssize_t ldc, double alpha, double beta)

# Element count from which a pass is split over threads, and the column block of backward.
cdef enum:
    PAR_MIN = 65536
    SMALL_GEMM = 2048   # multiply-adds below which a product runs as plain loops, not BLAS
    # Products that the AVX2 build's register tiles take from BLAS (measured on Zen 3, 1 thread:
    # 1.1-4x faster there, BLAS's cache blocking wins beyond): up to TILE_ALL_F32 (float32) or
    # below TILE_ALL_F64 (float64) multiply-adds, or up to TILE_THIN when a side is at most
    # TILE_SIDE (an output layer, a narrow input).
    TILE_ALL_F32 = 1 << 19
    TILE_ALL_F64 = 1 << 18
    TILE_THIN = 1 << 22
    TILE_SIDE = 16
    TILE_WT_ROWS = 64    # forward: rows from which copying W.T for the tiles pays...
    TILE_WT_SIZE = 4096  # ...or the W small enough for the copy to cost little anyway
    COL_BLOCK = 64
