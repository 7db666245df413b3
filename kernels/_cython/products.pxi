# The matrix products on row-major arrays: x_wt (X @ W.T), dzt_a (beta dW + alpha dZ.T @ A_prev)
# and dz_w (dZ @ W). Each goes to the AVX2 build's register tiles (small_gemm.h) when small,
# to BLAS when large (column-major, so each product is written transposed), and to plain loops
# below SMALL_GEMM multiply-adds in the baseline build. Included by _cython_cpu.pyx.

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm as scipy_sgemm, dgemm as scipy_dgemm

from fastnn_cpu cimport (
    sgemm_t, dgemm_t, FASTNN_SMALL_GEMM, fastnn_small_sgemm, fastnn_small_dgemm, SMALL_GEMM,
    TILE_ALL_F32, TILE_ALL_F64, TILE_THIN, TILE_SIDE, TILE_WT_ROWS, TILE_WT_SIZE,
)

# the BLAS in use (set_blas installs fastnn's own) and whether the tiles take small products
cdef sgemm_t _sgemm = scipy_sgemm
cdef dgemm_t _dgemm = scipy_dgemm
cdef bint _tiles = FASTNN_SMALL_GEMM


cdef inline void _gemm(char ta, char tb, int m, int n, int k, floating alpha, floating *a,
                       int lda, floating *b, int ldb, floating beta, floating *c,
                       int ldc) noexcept nogil:
    if floating is float:
        _sgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)
    else:
        _dgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)


cdef inline bint _tiled(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, bint single) noexcept nogil:
    """True if the (m, n, k) product (float32 if ``single``) goes to the register tiles."""
    cdef Py_ssize_t macs = m * n * k
    if not _tiles:
        return False
    if (macs <= TILE_ALL_F32) if single else (macs < TILE_ALL_F64):
        return True
    return macs <= TILE_THIN and (m <= TILE_SIDE or n <= TILE_SIDE or k <= TILE_SIDE)


cdef inline void _tile_gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating *a,
                            Py_ssize_t ars, Py_ssize_t aks, floating *B, Py_ssize_t ldb,
                            floating *C, Py_ssize_t ldc, floating alpha,
                            floating beta) noexcept nogil:
    """C (m, n) = beta * C + alpha * a @ B, a's element (r, k) at ``a[r * ars + k * aks]``."""
    if floating is float:
        fastnn_small_sgemm(m, n, k, a, ars, aks, B, ldb, C, ldc, alpha, beta)
    else:
        fastnn_small_dgemm(m, n, k, a, ars, aks, B, ldb, C, ldc, alpha, beta)


cdef inline void _x_wt(floating *X, floating *W, floating *out, int n, int fin, int fout,
                       floating *wt) noexcept nogil:
    """out (n, fout) = X (n, fin) @ W.T, W (fout, fin).

    ``wt`` is NULL or fin * fout elements of scratch: with it, small products run on the
    register tiles, which need W.T row-major and get it copied there. The copy costs about what
    32 rows of the product do, so it is made only for a small W or a batch of 64 rows or more.
    """
    cdef Py_ssize_t i, j, p, p4
    cdef floating s0, s1, s2, s3
    cdef floating *x
    cdef floating *w
    if (wt != NULL and (n >= TILE_WT_ROWS or fin * fout <= TILE_WT_SIZE)
            and _tiled(n, fout, fin, sizeof(floating) == 4)):
        for j in range(fout):
            w = W + j * fin
            for p in range(fin):
                wt[p * fout + j] = w[p]
        _tile_gemm(n, fout, fin, X, fin, 1, wt, fout, out, fout, <floating>1, <floating>0)
        return
    if <Py_ssize_t>n * fin * fout > SMALL_GEMM:
        _gemm(c'T', c'N', fout, n, fin, <floating>1, W, fin, X, fin, <floating>0, out, fout)
        return
    p4 = fin - fin % 4
    for i in range(n):
        x = X + i * fin
        for j in range(fout):
            w = W + j * fin
            s0 = s1 = s2 = s3 = 0
            for p in range(0, p4, 4):
                s0 = s0 + x[p] * w[p]
                s1 = s1 + x[p + 1] * w[p + 1]
                s2 = s2 + x[p + 2] * w[p + 2]
                s3 = s3 + x[p + 3] * w[p + 3]
            for p in range(p4, fin):
                s0 = s0 + x[p] * w[p]
            out[i * fout + j] = (s0 + s1) + (s2 + s3)


cdef inline void _dzt_a(floating *dZ, floating *A_prev, floating *dW, int n, int fin, int fout,
                        floating alpha, floating beta) noexcept nogil:
    """dW (fout, fin) = beta * dW + alpha * dZ.T @ A_prev."""
    cdef Py_ssize_t i, j, p
    cdef floating d
    cdef floating *a
    cdef floating *w
    if _tiled(fout, fin, n, sizeof(floating) == 4):
        _tile_gemm(fout, fin, n, dZ, 1, fout, A_prev, fin, dW, fin, alpha, beta)
        return
    if <Py_ssize_t>n * fin * fout > SMALL_GEMM:
        _gemm(c'N', c'T', fin, fout, n, alpha, A_prev, fin, dZ, fout, beta, dW, fin)
        return
    for j in range(<Py_ssize_t>fout * fin):
        dW[j] = 0 if beta == 0 else beta * dW[j]
    for i in range(n):
        a = A_prev + i * fin
        for j in range(fout):
            d = alpha * dZ[i * fout + j]
            w = dW + j * fin
            for p in range(fin):
                w[p] = w[p] + d * a[p]


cdef inline void _dz_w(floating *dZ, floating *W, floating *dA, int n, int fin,
                       int fout) noexcept nogil:
    """dA (n, fin) = dZ (n, fout) @ W (fout, fin)."""
    cdef Py_ssize_t i, j, p
    cdef floating d
    cdef floating *a
    cdef floating *w
    if _tiled(n, fin, fout, sizeof(floating) == 4):
        _tile_gemm(n, fin, fout, dZ, fout, 1, W, fin, dA, fin, <floating>1, <floating>0)
        return
    if <Py_ssize_t>n * fin * fout > SMALL_GEMM:
        _gemm(c'N', c'N', fin, n, fout, <floating>1, W, fin, dZ, fout, <floating>0, dA, fin)
        return
    for i in range(n):
        a = dA + i * fin
        for p in range(fin):
            a[p] = 0
        for j in range(fout):
            d = dZ[i * fout + j]
            w = W + j * fin
            for p in range(fin):
                a[p] = a[p] + d * w[p]
