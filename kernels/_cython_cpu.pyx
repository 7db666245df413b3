"""Cython CPU kernels: the contract of ``fastnn.kernels``, fused, on BLAS and OpenMP.

Matrix products go to the Fortran-interface ``sgemm``/``dgemm`` whose addresses ``set_blas``
installs (fastnn's own OpenBLAS, see ``fastnn._blas``); until then SciPy's BLAS is used. The bias,
activation, derivative, bias-gradient, loss and update work runs in single fused passes, split
over OpenMP threads (``prange``) when the array is large enough for that to pay. BLAS is never
called from inside a parallel region, so BLAS threads and OpenMP threads never nest.

The Python-level functions take NumPy arrays and trust their callers (C-contiguous, one float
dtype, right shapes): they read data pointers straight from the arrays, so a call costs well
under a microsecond of overhead. Compiler directives live in ``setup.py``.
"""

cimport numpy as cnp
from libc.math cimport (
    exp, expf, expm1, expm1f, fabs, fabsf, log, log1p, log1pf, sqrt, sqrtf, tanh, INFINITY,
)
from libc.stdint cimport uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memcpy, memset
from cython.parallel cimport prange
from scipy.linalg.cython_blas cimport sgemm as scipy_sgemm, dgemm as scipy_dgemm

cnp.import_array()

# register-tiled AVX2/FMA products for small shapes (the _cython_cpu_avx2 build only; in the
# baseline build FASTNN_SMALL_GEMM is 0 and BLAS or the plain loops below take every product)
cdef extern from "_small_gemm.h" nogil:
    int FASTNN_SMALL_GEMM
    void fastnn_small_sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t K, const float *a,
                            Py_ssize_t ars, Py_ssize_t aks, const float *B, Py_ssize_t ldb,
                            float *C, Py_ssize_t ldc, float alpha, float beta)
    void fastnn_small_dgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t K, const double *a,
                            Py_ssize_t ars, Py_ssize_t aks, const double *B, Py_ssize_t ldb,
                            double *C, Py_ssize_t ldc, double alpha, double beta)

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fastnn_have_openmp(void) { return 1; }
    #else
    static int fastnn_have_openmp(void) { return 0; }
    #endif
    """
    int fastnn_have_openmp() nogil

cdef extern from *:
    """
    #include <float.h>
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    /* exp(x) for float32 x <= 0 (or NaN), without branches so that a loop over it vectorises
       (libm's expf is a call per element). Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, a
       degree-6 polynomial for exp(r) (about 1 ulp), and 2^n put in the exponent bits of the
       float that rounded x / ln2. The selects are bit masks, as the vectoriser needs: x < -87,
       where exp(x) < 2e-38 is below what a softmax sum of at least 1 can tell from 0, gives 0,
       and a NaN comes back as it went in. */
    static inline float fastnn_expf_nonpos(float x) {
    #if FLT_EVAL_METHOD == 0
        const float magic = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer */
        uint32_t ux, ax, big, nan, uxc, ut, us, up;
        float xc, t, n, r, p, scale;
        memcpy(&ux, &x, 4);
        ax = ux & 0x7FFFFFFFu;
        big = -(uint32_t)(ax > 0x42AE0000u);   /* |x| > 87, inf or NaN */
        nan = -(uint32_t)(ax > 0x7F800000u);
        uxc = (big & 0xC2AE0000u) | (~big & ux);  /* x, or -87 */
        memcpy(&xc, &uxc, 4);
        t = xc * 1.44269504088896341f + magic;
        n = t - magic;
        r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
        p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
              + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
        p = p * (r * r) + r + 1.0f;
        memcpy(&ut, &t, 4);
        us = (ut - 0x4B400000u + 127u) << 23;  /* 2^n */
        memcpy(&scale, &us, 4);
        p = p * scale;
        memcpy(&up, &p, 4);
        up = (~big & up) | (nan & ux);
        memcpy(&p, &up, 4);
        return p;
    #else  /* excess precision would break the rounding trick */
        return expf(x);
    #endif
    }

    /* a[i] = exp(a[i]) for a[i] <= 0, in place: one long loop that the compiler vectorises */
    static void fastnn_expf_nonpos_inplace(float *a, Py_ssize_t size) {
        Py_ssize_t i;
        for (i = 0; i < size; i++)
            a[i] = fastnn_expf_nonpos(a[i]);
    }
    """
    void fastnn_expf_nonpos_inplace(float *a, Py_ssize_t size) nogil

ctypedef fused real:
    float
    double

ctypedef void (*sgemm_t)(char *ta, char *tb, int *m, int *n, int *k, float *alpha, float *a,
                         int *lda, float *b, int *ldb, float *beta, float *c,
                         int *ldc) noexcept nogil
ctypedef void (*dgemm_t)(char *ta, char *tb, int *m, int *n, int *k, double *alpha, double *a,
                         int *lda, double *b, int *ldb, double *beta, double *c,
                         int *ldc) noexcept nogil

cdef sgemm_t _sgemm = scipy_sgemm
cdef dgemm_t _dgemm = scipy_dgemm
cdef int _nthreads = 1
cdef bint _fold_sgd = True
cdef bint _tiles = FASTNN_SMALL_GEMM

# activation, loss and optimiser codes (fastnn._codes; checked against it by the tests)
cdef enum:
    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    SOFTPLUS = 4
    STEP = 5
    SOFTMAX = 6
    MSE = 0
    BCE = 1
    CROSS_ENTROPY = 2
    OPT_SGD = 0
    OPT_MOMENTUM = 1
    OPT_NESTEROV = 2
    OPT_ADAM = 3
    H_LR = 0
    H_L2 = 1
    H_MOMENTUM = 2
    H_BETA1 = 3
    H_BETA2 = 4
    H_EPS = 5


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

CODES = {
    "IDENTITY": IDENTITY, "SIGMOID": SIGMOID, "TANH": TANH, "RELU": RELU, "SOFTPLUS": SOFTPLUS,
    "STEP": STEP, "SOFTMAX": SOFTMAX, "MSE": MSE, "BCE": BCE, "CROSS_ENTROPY": CROSS_ENTROPY,
    "OPT_SGD": OPT_SGD, "OPT_MOMENTUM": OPT_MOMENTUM, "OPT_NESTEROV": OPT_NESTEROV,
    "OPT_ADAM": OPT_ADAM, "H_LR": H_LR, "H_L2": H_L2, "H_MOMENTUM": H_MOMENTUM,
    "H_BETA1": H_BETA1, "H_BETA2": H_BETA2, "H_EPS": H_EPS,
}


# ---------------------------------------------------------------------------------------------
# configuration

def set_blas(size_t sgemm_address, size_t dgemm_address):
    """Install the Fortran-interface sgemm/dgemm the kernels call (0 keeps the current one)."""
    global _sgemm, _dgemm
    if sgemm_address:
        _sgemm = <sgemm_t>sgemm_address
    if dgemm_address:
        _dgemm = <dgemm_t>dgemm_address


def blas_addresses():
    """Addresses of the sgemm/dgemm in use, as a tuple of ints."""
    return <size_t>_sgemm, <size_t>_dgemm


def set_num_threads(int n):
    """Threads for the OpenMP loops (ignored without OpenMP)."""
    global _nthreads
    _nthreads = n if n > 0 else 1


def get_num_threads():
    """Threads the OpenMP loops use (1 without OpenMP)."""
    return _nthreads if fastnn_have_openmp() else 1


def set_fold_sgd(bint on):
    """Fold plain SGD's first-layer update into its weight-gradient GEMM in train_epoch (default).

    Folding saves writing, checking and re-reading the first layer's dW; the layer's slot in
    ``grad`` is then not written. Off, train_epoch fills all of ``grad`` (the tests compare both).
    """
    global _fold_sgd
    _fold_sgd = on


def set_small_tiles(bint on):
    """Run small products on the register tiles of ``_small_gemm.h`` (default in the AVX2 build).

    Off, BLAS (or plain loops) takes every product, as in the baseline build; the tests compare
    both. Returns whether the tiles are now in use (never in the baseline build).
    """
    global _tiles
    _tiles = on and FASTNN_SMALL_GEMM
    return _tiles


def openmp_enabled():
    """True if this module was compiled with OpenMP."""
    return bool(fastnn_have_openmp())


# ---------------------------------------------------------------------------------------------
# scalar helpers, in the array's precision

cdef inline real _exp(real x) noexcept nogil:
    if real is float:
        return expf(x)
    else:
        return exp(x)


cdef inline real _sigmoid(real z) noexcept nogil:
    cdef real e
    if z >= 0:
        return 1 / (1 + _exp(-z))
    e = _exp(z)
    return e / (1 + e)


cdef inline real _tanh(real z) noexcept nogil:
    """float32 tanh from one expf (libm's tanhf measured 1.7x slower here): (1 - t) / (1 + t) with
    t = exp(-2|z|), and the odd Taylor series near 0 where 1 - t would cancel."""
    cdef real a = z if z >= 0 else -z, t, r
    if real is float:
        if a < <float>0.0625:
            t = z * z
            return z * (1 + t * (<float>(-1.0 / 3) + t * (<float>(2.0 / 15)
                                                           + t * <float>(-17.0 / 315))))
        t = expf(-2 * a)
        r = (1 - t) / (1 + t)
        return r if z >= 0 else -r
    else:
        return tanh(z)


cdef inline real _softplus(real z) noexcept nogil:
    cdef real m = z if z > 0 else 0
    if real is float:
        return m + log1pf(expf(-(z if z >= 0 else -z)))
    else:
        return m + log1p(exp(-(z if z >= 0 else -z)))


cdef inline double _softplus_d(double z) noexcept nogil:
    return (z if z > 0 else 0.0) + log1p(exp(-(z if z >= 0 else -z)))


cdef inline double _sigmoid_d(double z) noexcept nogil:
    cdef double e
    if z >= 0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


cdef inline real _pick(bint c, real a, real b) noexcept nogil:
    """``a if c else b`` as arithmetic (exact: one product is 0), so that gcc emits no branch on
    a data-dependent sign: SSE2 has no blend, and a mispredicted branch costs ~15 cycles."""
    cdef real m = c
    return m * a + (1 - m) * b


cdef inline double _log1p_unit(double e) noexcept nogil:
    """log1p(e) for 0 <= e <= 1 (BCE's softplus term), inline and within 1 ulp of libm.

    fdlibm's log1p (s_log1p.c, its constants): the reduction 1 + e = 2^k (1 + f) is exact here
    without bit tricks, f = e (k = 0) below sqrt(2) - 1, else f = (e - 1) / 2 (k = 1). The libm
    call cost a per-sample step ~10%.
    """
    cdef double k = e > 0.41421356237309503
    cdef double f = _pick(k != 0, 0.5 * (e - 1.0), e)
    cdef double s = f / (2.0 + f), z, w, r, hfsq
    z = s * s
    w = z * z
    r = (w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01
                                               + w * 1.531383769920937332e-01)))
    r += z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01
                                             + w * (1.818357216161805012e-01
                                                    + w * 1.479819860511658591e-01)))
    hfsq = 0.5 * f * f
    return (k * 6.93147180369123816490e-01
            + (f - (hfsq - (s * (hfsq + r) + k * 1.90821492927058770002e-10))))


cdef double _sum_log1p(double *e, double *w, int n) noexcept nogil:
    """sum_i w[i] * log1p(e[i]): independent evaluations that the CPU overlaps."""
    cdef double total = 0.0
    cdef int i
    for i in range(n):
        total += w[i] * _log1p_unit(e[i])
    return total


cdef inline real _act1(real z, int act) noexcept nogil:
    """One hidden unit's g(z), as ``_row_bias_act`` computes it; sigmoid without a branch on
    the sign of z (data-dependent, so often mispredicted)."""
    cdef real e, r
    if act == SIGMOID:
        if real is float:
            e = expf(-fabsf(z))
        else:
            e = exp(-fabs(z))
        r = 1 / (1 + e)
        return _pick(z >= 0, r, e * r)
    if act == RELU:
        return 0 if z < 0 else z
    if act == TANH:
        return _tanh(z)
    if act == SOFTPLUS:
        return _softplus(z)
    if act == STEP:
        return 1 if z >= 0 else 0
    return z


cdef inline real _delta1(real d, real a, int act) noexcept nogil:
    """d * g'(z) written from the output a = g(z), as ``_cols_delta_db`` computes it."""
    if act == SIGMOID:
        return d * a * (1 - a)
    if act == RELU:
        return d if a > 0 else 0
    if act == TANH:
        return d * (1 - a * a)
    if act == SOFTPLUS:
        if real is float:
            return d * -expm1f(-a)
        else:
            return d * -expm1(-a)
    return d


# ---------------------------------------------------------------------------------------------
# BLAS products on row-major arrays (the BLAS is column-major, so each product is transposed)

cdef inline void _gemm(char ta, char tb, int m, int n, int k, real alpha, real *a, int lda,
                       real *b, int ldb, real beta, real *c, int ldc) noexcept nogil:
    if real is float:
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


cdef inline void _tile_gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, real *a, Py_ssize_t ars,
                            Py_ssize_t aks, real *B, Py_ssize_t ldb, real *C, Py_ssize_t ldc,
                            real alpha, real beta) noexcept nogil:
    """C (m, n) = beta * C + alpha * a @ B, a's element (r, k) at ``a[r * ars + k * aks]``."""
    if real is float:
        fastnn_small_sgemm(m, n, k, a, ars, aks, B, ldb, C, ldc, alpha, beta)
    else:
        fastnn_small_dgemm(m, n, k, a, ars, aks, B, ldb, C, ldc, alpha, beta)


cdef inline void _x_wt(real *X, real *W, real *out, int n, int fin, int fout,
                       real *wt) noexcept nogil:
    """out (n, fout) = X (n, fin) @ W.T, W (fout, fin).

    ``wt`` is None (NULL) or fin * fout elements of scratch: with it, small products run on the
    register tiles, which need W.T row-major and get it copied there. The copy costs about what
    32 rows of the product do, so it is made only for a small W or a batch of 64 rows or more.
    """
    cdef Py_ssize_t i, j, p, p4
    cdef real s0, s1, s2, s3
    cdef real *x
    cdef real *w
    if (wt != NULL and (n >= TILE_WT_ROWS or fin * fout <= TILE_WT_SIZE)
            and _tiled(n, fout, fin, sizeof(real) == 4)):
        for j in range(fout):
            w = W + j * fin
            for p in range(fin):
                wt[p * fout + j] = w[p]
        _tile_gemm(n, fout, fin, X, fin, 1, wt, fout, out, fout, <real>1, <real>0)
        return
    if <Py_ssize_t>n * fin * fout > SMALL_GEMM:
        _gemm(c'T', c'N', fout, n, fin, <real>1, W, fin, X, fin, <real>0, out, fout)
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


cdef inline void _dzt_a(real *dZ, real *A_prev, real *dW, int n, int fin, int fout,
                        real alpha, real beta) noexcept nogil:
    """dW (fout, fin) = beta * dW + alpha * dZ.T @ A_prev."""
    cdef Py_ssize_t i, j, p
    cdef real d
    cdef real *a
    cdef real *w
    if _tiled(fout, fin, n, sizeof(real) == 4):
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


cdef inline void _dz_w(real *dZ, real *W, real *dA, int n, int fin, int fout) noexcept nogil:
    """dA (n, fin) = dZ (n, fout) @ W (fout, fin)."""
    cdef Py_ssize_t i, j, p
    cdef real d
    cdef real *a
    cdef real *w
    if _tiled(n, fin, fout, sizeof(real) == 4):
        _tile_gemm(n, fin, fout, dZ, fout, 1, W, fin, dA, fin, <real>1, <real>0)
        return
    if <Py_ssize_t>n * fin * fout > SMALL_GEMM:
        _gemm(c'N', c'N', fin, n, fout, <real>1, W, fin, dZ, fout, <real>0, dA, fin)
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


# ---------------------------------------------------------------------------------------------
# fused element passes

cdef inline void _row_bias_act(real *z, real *b, int act, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t j
    cdef real v, m, s
    if act == RELU:
        for j in range(k):
            v = z[j] + b[j]
            z[j] = 0 if v < 0 else v      # NaN passes through, as in np.maximum
    elif act == IDENTITY:
        for j in range(k):
            z[j] = z[j] + b[j]
    elif act == SIGMOID:
        for j in range(k):
            z[j] = _sigmoid(z[j] + b[j])
    elif act == TANH:
        for j in range(k):
            z[j] = _tanh(z[j] + b[j])
    elif act == SOFTPLUS:
        for j in range(k):
            z[j] = _softplus(z[j] + b[j])
    elif act == STEP:
        for j in range(k):
            z[j] = 1 if z[j] + b[j] >= 0 else 0
    elif act == SOFTMAX:
        m = -INFINITY
        for j in range(k):
            v = z[j] + b[j]
            z[j] = v
            if v > m:
                m = v
        s = 0
        for j in range(k):
            v = _exp(z[j] - m)
            z[j] = v
            s = s + v
        s = 1 / s
        for j in range(k):
            z[j] = z[j] * s


cdef void _bias_act(real *out, real *b, int act, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """out = g(out + b), row by row."""
    cdef Py_ssize_t i
    if n * k >= PAR_MIN and n > 1 and _nthreads > 1:
        for i in prange(n, num_threads=_nthreads, schedule='static'):
            _row_bias_act(out + i * k, b, act, k)
    else:
        for i in range(n):
            _row_bias_act(out + i * k, b, act, k)


cdef inline void _cols_delta_db(real *dZ, real *A, int act, real *db, Py_ssize_t n,
                                Py_ssize_t k, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """dZ[:, j0:j1] *= g'(A[:, j0:j1]) and db[j0:j1] = dZ[:, j0:j1].sum(0)."""
    cdef Py_ssize_t i, j
    cdef real d, a
    cdef real *z
    cdef real *ar
    for j in range(j0, j1):
        db[j] = 0
    for i in range(n):
        z = dZ + i * k
        ar = A + i * k
        if act == IDENTITY:
            for j in range(j0, j1):
                db[j] = db[j] + z[j]
        elif act == RELU:
            for j in range(j0, j1):
                d = z[j] if ar[j] > 0 else 0
                z[j] = d
                db[j] = db[j] + d
        elif act == SIGMOID:
            for j in range(j0, j1):
                a = ar[j]
                d = z[j] * a * (1 - a)
                z[j] = d
                db[j] = db[j] + d
        elif act == TANH:
            for j in range(j0, j1):
                a = ar[j]
                d = z[j] * (1 - a * a)
                z[j] = d
                db[j] = db[j] + d
        else:  # SOFTPLUS: g' = 1 - exp(-a)
            for j in range(j0, j1):
                if real is float:
                    d = z[j] * -expm1f(-ar[j])
                else:
                    d = z[j] * -expm1(-ar[j])
                z[j] = d
                db[j] = db[j] + d


cdef void _delta_db(real *dZ, real *A, int act, real *db, Py_ssize_t n,
                    Py_ssize_t k) noexcept nogil:
    """The fused first half of backward, split over column blocks when large."""
    cdef Py_ssize_t nb = (k + COL_BLOCK - 1) // COL_BLOCK, blk, j0, j1
    if n * k >= PAR_MIN and nb > 1 and _nthreads > 1:
        for blk in prange(nb, num_threads=_nthreads, schedule='static'):
            j0 = blk * COL_BLOCK
            j1 = j0 + COL_BLOCK
            if j1 > k:
                j1 = k
            _cols_delta_db(dZ, A, act, db, n, k, j0, j1)
    else:
        _cols_delta_db(dZ, A, act, db, n, k, 0, k)


cdef inline real _row_max(real *z, Py_ssize_t k) noexcept nogil:
    """The largest of z[:k], NaNs aside (-inf if none)."""
    cdef Py_ssize_t j
    cdef real m = -INFINITY
    for j in range(k):
        if z[j] > m:
            m = z[j]
    return m


cdef inline real _row_shift(real *z, real *dz, Py_ssize_t k) noexcept nogil:
    """dz = z - max(z), all <= 0 (NaN where z is NaN, or everywhere if all z are -inf);
    returns the maximum."""
    cdef Py_ssize_t j
    cdef real m = _row_max(z, k)
    for j in range(k):
        dz[j] = z[j] - m
    return m


cdef inline double _row_cross_entropy(real *z, real *y, real *dz, double m, double w,
                                      Py_ssize_t k) noexcept nogil:
    """Cross-entropy of one sample, from dz = exp(z - m) (m its largest logit); leaves
    dz = w * (softmax(z) - y). The sum, log and loss are in double."""
    cdef Py_ssize_t j
    cdef double s = 0.0, lse, li = 0.0, yj, scale
    for j in range(k):
        s += dz[j]
    lse = m + log(s)
    scale = w / s
    for j in range(k):
        yj = y[j]
        if yj != 0:  # skip 0 * inf when the logit gap overflows
            li += yj * (lse - z[j])
        dz[j] = <real>(dz[j] * scale - yj * w)
    return li


cdef inline void _exp_nonpos_inplace(real *a, Py_ssize_t size) noexcept nogil:
    """a = exp(a) for a <= 0, in the array's precision (float32's loop vectorises)."""
    cdef Py_ssize_t j
    if real is float:
        fastnn_expf_nonpos_inplace(a, size)
    else:
        for j in range(size):
            a[j] = exp(a[j])


cdef inline double _row_output(real *z, real *y, int loss, real *dz, double w,
                               Py_ssize_t k) noexcept nogil:
    """Loss of one sample from its logits, and dz = w * (g(z) - y)."""
    cdef Py_ssize_t j
    cdef double m, li = 0.0, zj, yj, d
    if loss == CROSS_ENTROPY:  # one exponential per logit
        m = _row_shift(z, dz, k)
        _exp_nonpos_inplace(dz, k)
        li = _row_cross_entropy(z, y, dz, m, w, k)
    elif loss == BCE:
        for j in range(k):
            zj = z[j]
            yj = y[j]
            li += _softplus_d(zj) - yj * zj
            dz[j] = <real>((_sigmoid_d(zj) - yj) * w)
    else:
        for j in range(k):
            d = <double>z[j] - y[j]
            li += 0.5 * d * d
            dz[j] = <real>(d * w)
    return li


cdef double _output_step(real *Z, real *Y, int loss, real *dZ, real *sw, Py_ssize_t n,
                         Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t i
    cdef double inv_n = 1.0 / n, total = 0.0, w
    if n * k >= PAR_MIN and n > 1 and _nthreads > 1:
        for i in prange(n, num_threads=_nthreads, schedule='static'):
            w = 1.0 if sw == NULL else sw[i]
            total += w * _row_output(Z + i * k, Y + i * k, loss, dZ + i * k, w * inv_n, k)
    elif loss == CROSS_ENTROPY:  # the exponentials of all rows in one loop
        for i in range(n):
            _row_shift(Z + i * k, dZ + i * k, k)
        _exp_nonpos_inplace(dZ, n * k)
        for i in range(n):
            w = 1.0 if sw == NULL else sw[i]
            total += w * _row_cross_entropy(Z + i * k, Y + i * k, dZ + i * k,
                                            _row_max(Z + i * k, k), w * inv_n, k)
    else:
        for i in range(n):
            w = 1.0 if sw == NULL else sw[i]
            total += w * _row_output(Z + i * k, Y + i * k, loss, dZ + i * k, w * inv_n, k)
    return total * inv_n


# ---------------------------------------------------------------------------------------------
# parameter updates

cdef inline void _sgd_range(real *p, real *g, Py_ssize_t lo, Py_ssize_t hi, real lr,
                            real l2) noexcept nogil:
    cdef Py_ssize_t i
    if l2 != 0:
        for i in range(lo, hi):
            p[i] = p[i] - lr * (g[i] + l2 * p[i])
    else:
        for i in range(lo, hi):
            p[i] = p[i] - lr * g[i]


cdef inline void _momentum_range(real *p, real *g, real *v, Py_ssize_t lo, Py_ssize_t hi,
                                 real lr, real mu, real l2, bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef real gi, vi
    for i in range(lo, hi):
        gi = g[i] + l2 * p[i]
        vi = mu * v[i] - lr * gi
        v[i] = vi
        if nesterov:
            p[i] = p[i] + (mu * vi - lr * gi)
        else:
            p[i] = p[i] + vi


cdef inline void _adam_range(real *p, real *g, real *m, real *v, Py_ssize_t lo, Py_ssize_t hi,
                             real step, real b1, real b2, real eps, real l2) noexcept nogil:
    cdef Py_ssize_t i
    cdef real gi, mi, vi, c1 = 1 - b1, c2 = 1 - b2
    for i in range(lo, hi):
        gi = g[i] + l2 * p[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        if real is float:
            p[i] = p[i] - step * mi / (sqrtf(vi) + eps)
        else:
            p[i] = p[i] - step * mi / (sqrt(vi) + eps)


cdef void _update_range(int kind, real *p, real *g, real *s1, real *s2, Py_ssize_t lo,
                        Py_ssize_t hi, real lr, real mu, real step, real b1, real b2, real eps,
                        real l2) noexcept nogil:
    if kind == OPT_SGD:
        _sgd_range(p, g, lo, hi, lr, l2)
    elif kind == OPT_ADAM:
        _adam_range(p, g, s1, s2, lo, hi, step, b1, b2, eps, l2)
    else:
        _momentum_range(p, g, s1, lo, hi, lr, mu, l2, kind == OPT_NESTEROV)


cdef void _update_all(int kind, real *p, real *g, real *s1, real *s2, Py_ssize_t size, real lr,
                      real mu, real step, real b1, real b2, real eps, real l2) noexcept nogil:
    """One optimiser pass over ``size`` elements, in equal chunks over threads when large."""
    cdef Py_ssize_t c, nchunk, lo, hi
    if size >= PAR_MIN and _nthreads > 1:
        nchunk = _nthreads
        for c in prange(nchunk, num_threads=_nthreads, schedule='static', chunksize=1):
            lo = (size * c) // nchunk
            hi = (size * (c + 1)) // nchunk
            _update_range(kind, p, g, s1, s2, lo, hi, lr, mu, step, b1, b2, eps, l2)
    else:
        _update_range(kind, p, g, s1, s2, 0, size, lr, mu, step, b1, b2, eps, l2)


cdef inline double _adam_step(double lr, double beta1, double beta2, double t) noexcept nogil:
    return (lr * sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t))


cdef void _update(int opt, double *hyper, real *p, real *g, real *s1, real *s2,
                  Py_ssize_t size, double t, real l2) noexcept nogil:
    cdef real step = 0
    if opt == OPT_ADAM:
        step = <real>_adam_step(hyper[H_LR], hyper[H_BETA1], hyper[H_BETA2], t)
    _update_all(opt, p, g, s1, s2, size, <real>hyper[H_LR], <real>hyper[H_MOMENTUM], step,
                <real>hyper[H_BETA1], <real>hyper[H_BETA2], <real>hyper[H_EPS], l2)


cdef bint _all_finite(real *x, Py_ssize_t size) noexcept nogil:
    """True if no element is inf or NaN: an exponent-bits test that vectorises. Sixteen
    independent accumulators keep several vectors in flight (one chain is latency-bound)."""
    cdef Py_ssize_t i, j, body = size - size % 16
    cdef uint32_t acc32[16]
    cdef uint64_t acc64[16]
    cdef uint32_t a32 = 0
    cdef uint64_t a64 = 0
    cdef uint32_t *u32
    cdef uint64_t *u64
    if real is float:
        u32 = <uint32_t *>x
        for j in range(16):
            acc32[j] = 0
        for i in range(0, body, 16):
            for j in range(16):
                acc32[j] |= (u32[i + j] & 0x7f800000u) + 0x00800000u
        for j in range(16):
            a32 |= acc32[j]
        for i in range(body, size):
            a32 |= (u32[i] & 0x7f800000u) + 0x00800000u
        return (a32 & 0x80000000u) == 0
    else:
        u64 = <uint64_t *>x
        for j in range(16):
            acc64[j] = 0
        for i in range(0, body, 16):
            for j in range(16):
                acc64[j] |= (u64[i + j] & 0x7ff0000000000000u) + 0x0010000000000000u
        for j in range(16):
            a64 |= acc64[j]
        for i in range(body, size):
            a64 |= (u64[i] & 0x7ff0000000000000u) + 0x0010000000000000u
        return (a64 & 0x8000000000000000u) == 0


# ---------------------------------------------------------------------------------------------
# train_step's checks, for the API layer (not kernels: these validate, and never raise)
#
# ``MLP.train_step`` on a small batch costs as much in NumPy checks (a finiteness scan, label
# min/max, a one-hot fill, a parameter copy and scan) as in the step itself; these do the same
# work in single compiled passes. They answer yes or no: on no, the caller runs its NumPy
# checks, which convert what they can and raise the ValueError that names the problem.

cdef inline bint _native_aligned(cnp.ndarray a):
    return cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISNOTSWAPPED(a)


cdef inline int64_t _label(char *p, bint wide) noexcept nogil:
    return (<int64_t *>p)[0] if wide else (<int32_t *>p)[0]


def step_inputs(X, y, Y, Py_ssize_t n_in):
    """Check a batch for ``train_step`` and write its labels one-hot into ``Y``; returns n.

    Returns the row count n when ``X`` is a finite, C-contiguous (n, n_in) ndarray (n >= 1) of
    ``Y``'s dtype and ``y`` an ndarray of n int32/int64 labels in [0, k), k = ``Y.shape[1]``;
    ``Y[:n]`` then holds them one-hot. Returns 0 when any of this does not hold (nothing is
    raised: the caller checks again in NumPy), and -n when ``Y``, the caller's C-contiguous
    buffer, has fewer than n rows.
    """
    cdef cnp.ndarray ax, ay, aY = <cnp.ndarray>Y
    cdef Py_ssize_t n, k, cap, i, stride
    cdef int64_t label
    cdef char *pl
    cdef void *px
    cdef void *pY
    cdef bint wide, ok
    if not (cnp.PyArray_CheckExact(X) and cnp.PyArray_CheckExact(y)):
        return 0
    ax = <cnp.ndarray>X
    ay = <cnp.ndarray>y
    if (cnp.PyArray_TYPE(ax) != cnp.PyArray_TYPE(aY) or cnp.PyArray_NDIM(ax) != 2
            or not cnp.PyArray_IS_C_CONTIGUOUS(ax) or not _native_aligned(ax)
            or cnp.PyArray_DIM(ax, 1) != n_in):
        return 0
    n = cnp.PyArray_DIM(ax, 0)
    if (n == 0 or cnp.PyArray_NDIM(ay) != 1 or cnp.PyArray_DIM(ay, 0) != n
            or not cnp.PyArray_ISSIGNED(ay) or not _native_aligned(ay)
            or cnp.PyArray_ITEMSIZE(ay) not in (4, 8)):
        return 0
    cap = cnp.PyArray_DIM(aY, 0)
    k = cnp.PyArray_DIM(aY, 1)
    if cap < n:
        return -n
    wide = cnp.PyArray_ITEMSIZE(ay) == 8
    stride = cnp.PyArray_STRIDE(ay, 0)
    pl = cnp.PyArray_BYTES(ay)
    px = cnp.PyArray_DATA(ax)
    pY = cnp.PyArray_DATA(aY)
    with nogil:
        ok = True
        for i in range(n):
            label = _label(pl + i * stride, wide)
            if label < 0 or label >= k:
                ok = False
                break
        if ok:
            if cnp.PyArray_TYPE(ax) == cnp.NPY_FLOAT32:
                ok = _all_finite(<float *>px, n * n_in)
            else:
                ok = _all_finite(<double *>px, n * n_in)
        if ok:
            memset(pY, 0, n * k * cnp.PyArray_ITEMSIZE(aY))
            for i in range(n):
                label = _label(pl + i * stride, wide)
                if cnp.PyArray_TYPE(ax) == cnp.NPY_FLOAT32:
                    (<float *>pY)[i * k + label] = 1
                else:
                    (<double *>pY)[i * k + label] = 1
    return n if ok else 0


def copy_into(dst, src):
    """``dst[...] = src`` for two C-contiguous arrays of one dtype and size (a memcpy)."""
    cdef void *pd = cnp.PyArray_DATA(<cnp.ndarray>dst)
    cdef void *ps = cnp.PyArray_DATA(<cnp.ndarray>src)
    cdef size_t nbytes = cnp.PyArray_NBYTES(<cnp.ndarray>src)
    with nogil:
        memcpy(pd, ps, nbytes)


def all_finite(a):
    """True if the C-contiguous float32/float64 array ``a`` holds no NaN or infinity."""
    cdef Py_ssize_t size = cnp.PyArray_SIZE(<cnp.ndarray>a)
    cdef void *p = cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef bint ok
    if cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_FLOAT32:
        with nogil:
            ok = _all_finite(<float *>p, size)
    else:
        with nogil:
            ok = _all_finite(<double *>p, size)
    return ok


# ---------------------------------------------------------------------------------------------
# the whole epoch

cdef int _train_samples(real *X, real *Y, real *sw, int64_t *order64, int32_t *order32,
                        Py_ssize_t N, real *theta, real *grad, int64_t *shapes, int64_t *acts,
                        int L, int loss, int opt, double *hyper, real *s1, real *s2,
                        bint has_state, int64_t t0, real *work, Py_ssize_t *p_off,
                        Py_ssize_t *a_off, Py_ssize_t d_off0, Py_ssize_t d_off1,
                        double *loss_sum) noexcept nogil:
    """``_train_epoch`` for batch size 1 on small layers: plain loops on flat offsets, no BLAS
    and no calls per layer, the features read in place and plain SGD as one pass over theta.
    A step of a 2-2-1 sigmoid/BCE network costs ~100 ns here, ~165 ns through the batch path."""
    cdef Py_ssize_t n_in = shapes[1], k = shapes[2 * (L - 1)], P = p_off[L]
    cdef Py_ssize_t i, l, j, p, p4, r, o, fi, cur, nxt
    cdef real *x
    cdef real *y
    cdef real *inp
    cdef real *a
    cdef real *wr
    cdef real *dz
    cdef real *dn
    cdef real *gr
    cdef real sacc, s0, s1_, s2_, s3, dzj, g, chk
    cdef real lr = <real>hyper[H_LR], l2 = <real>hyper[H_L2]
    cdef double value, wt, zj, yj, e, q, m, ssum, lse, total = 0.0
    # BCE's log1p(e) terms, evaluated 64 at a time (always finite, so the check needs none of
    # them): one at a time, their long dependent chain held up every step (~15 ns)
    cdef double ebuf[64]
    cdef double wbuf[64]
    cdef int ne = 0, ne_new = 0
    cdef bint defer = loss == BCE and k <= 32
    cdef int done = 0, act
    for i in range(N):
        r = i if order64 == NULL and order32 == NULL else (
            order64[i] if order64 != NULL else order32[i])
        x = X + r * n_in
        y = Y + r * k
        wt = 1.0 if sw == NULL else sw[r]
        # forward: the pre-activations, then g; the output layer keeps its logits
        inp = x
        for l in range(L):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            a = work + a_off[l]
            p4 = fi & ~3
            for j in range(o):
                wr = theta + p_off[l] + j * fi
                s0 = s1_ = s2_ = s3 = 0
                for p in range(0, p4, 4):
                    s0 = s0 + wr[p] * inp[p]
                    s1_ = s1_ + wr[p + 1] * inp[p + 1]
                    s2_ = s2_ + wr[p + 2] * inp[p + 2]
                    s3 = s3 + wr[p + 3] * inp[p + 3]
                for p in range(p4, fi):
                    s0 = s0 + wr[p] * inp[p]
                a[j] = theta[p_off[l] + o * fi + j] + ((s0 + s1_) + (s2_ + s3))
            if l < L - 1:
                act = <int>acts[l]
                for j in range(o):
                    a[j] = _act1(a[j], act)
            inp = a
        # fused output step (in double, as _row_output) into the output layer's delta buffer
        dz = work + d_off0
        value = 0.0
        if loss == BCE:
            if defer and ne + k > 64:
                total += _sum_log1p(ebuf, wbuf, ne)
                ne = 0
            ne_new = ne
            for j in range(k):
                zj = inp[j]
                yj = y[j]
                e = exp(-fabs(zj))
                q = 1.0 / (1.0 + e)
                if defer:
                    ebuf[ne_new] = e
                    wbuf[ne_new] = wt
                    ne_new += 1
                    value += _pick(zj > 0, zj, 0.0) - yj * zj
                else:
                    value += _pick(zj > 0, zj, 0.0) + _log1p_unit(e) - yj * zj
                dz[j] = <real>((_pick(zj >= 0, q, e * q) - yj) * wt)

        elif loss == CROSS_ENTROPY:
            value = _row_output(inp, y, loss, dz, wt, k)
        else:
            for j in range(k):
                zj = <double>inp[j] - y[j]
                value += 0.5 * zj * zj
                dz[j] = <real>(zj * wt)
        value *= wt
        # backward: db = dz, dW = dz x in, then the previous layer's delta, summed in a register;
        # chk stays 0 unless a gradient entry is inf or NaN
        chk = 0
        cur = d_off0
        nxt = d_off1
        for l in range(L - 1, -1, -1):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            dz = work + cur
            inp = x if l == 0 else work + a_off[l - 1]
            gr = grad + p_off[l]
            for j in range(o):
                dzj = dz[j]
                gr[o * fi + j] = dzj
                chk = chk + dzj * 0
                for p in range(fi):
                    g = dzj * inp[p]
                    gr[j * fi + p] = g
                    chk = chk + g * 0
            if l > 0:
                act = <int>acts[l - 1]
                dn = work + nxt
                wr = theta + p_off[l]
                for p in range(fi):
                    sacc = 0
                    for j in range(o):
                        sacc = sacc + dz[j] * wr[j * fi + p]
                    dn[p] = _delta1(sacc, inp[p], act)
                cur, nxt = nxt, cur
        if not (value - value == 0.0 and chk == 0):
            break
        if opt == OPT_SGD and l2 == 0:
            for j in range(P):
                theta[j] = theta[j] - lr * grad[j]
        else:
            for l in range(L):
                o = shapes[2 * l]
                fi = shapes[2 * l + 1]
                j = p_off[l] + o * fi
                p = 0 if not has_state else p_off[l]
                _update(opt, hyper, theta + p_off[l], grad + p_off[l], s1 + p, s2 + p, o * fi,
                        <double>(t0 + done + 1), l2)
                p = 0 if not has_state else j
                _update(opt, hyper, theta + j, grad + j, s1 + p, s2 + p, o,
                        <double>(t0 + done + 1), 0)
        total += value
        ne = ne_new
        done += 1
    if defer:
        total += _sum_log1p(ebuf, wbuf, ne)
    loss_sum[0] = total
    return done


cdef int _train_epoch(real *X, real *Y, real *sw, int64_t *order64, int32_t *order32,
                      Py_ssize_t N, real *theta, real *grad, int64_t *shapes, int64_t *acts,
                      int L, int loss, Py_ssize_t B, int opt, double *hyper, real *s1, real *s2,
                      bint has_state, int64_t t0, real *work, double *loss_sum) noexcept nogil:
    cdef Py_ssize_t n_in = shapes[1], k = shapes[2 * (L - 1)], width = 0
    cdef Py_ssize_t l, i, j, start, n, r, o, fi, off, w0, b0, b1, a_prev_off
    cdef Py_ssize_t p_off[64]
    cdef Py_ssize_t a_off[64]
    cdef Py_ssize_t d_off0, d_off1
    cdef real *Xb
    cdef real *Yb
    cdef real *swb
    cdef real *prev
    cdef real *dZ
    cdef real *nxt
    cdef real l2 = <real>hyper[H_L2], lr = <real>hyper[H_LR]
    cdef double value, total = 0.0
    cdef int done = 0, act
    cdef bint ok, fold, small
    for l in range(L):
        if shapes[2 * l] > width:
            width = shapes[2 * l]
    p_off[0] = 0
    a_off[0] = B * (n_in + k + 1)
    for l in range(L):
        p_off[l + 1] = p_off[l] + shapes[2 * l] * shapes[2 * l + 1] + shapes[2 * l]
        a_off[l + 1] = a_off[l] + B * shapes[2 * l]
    d_off0 = a_off[L]
    d_off1 = d_off0 + B * width
    if B == 1:
        small = True
        for l in range(L):
            if shapes[2 * l] * shapes[2 * l + 1] > SMALL_GEMM:
                small = False
        if small:
            return _train_samples(X, Y, sw, order64, order32, N, theta, grad, shapes, acts, L,
                                  loss, opt, hyper, s1, s2, has_state, t0, work, p_off, a_off,
                                  d_off0, d_off1, loss_sum)
    start = 0
    while start < N:
        n = B if N - start > B else N - start
        # gather the batch (rows in place when there is no order)
        if order64 == NULL and order32 == NULL:
            Xb = X + start * n_in
            Yb = Y + start * k
            swb = NULL if sw == NULL else sw + start
        else:
            Xb = work
            Yb = work + B * n_in
            swb = NULL if sw == NULL else work + B * (n_in + k)
            for i in range(n):
                r = order64[start + i] if order64 != NULL else order32[start + i]
                for j in range(n_in):
                    Xb[i * n_in + j] = X[r * n_in + j]
                for j in range(k):
                    Yb[i * k + j] = Y[r * k + j]
                if sw != NULL:
                    swb[i] = sw[r]
        # forward; the last layer keeps its logits for the fused output step
        prev = Xb
        for l in range(L):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            # this layer's dW slot of ``grad`` is free until backward: scratch for W.T
            _x_wt(prev, theta + p_off[l], work + a_off[l], <int>n, <int>fi, <int>o,
                  grad + p_off[l])
            _bias_act(work + a_off[l], theta + p_off[l] + o * fi,
                      IDENTITY if l == L - 1 else <int>acts[l], n, o)
            prev = work + a_off[l]
        dZ = work + d_off0
        value = _output_step(prev, Yb, loss, dZ, swb, n, k)
        # backward, ping-ponging the delta between the two buffers. With plain SGD the first
        # layer's update is folded into its weight-gradient GEMM (W = (1 - lr*l2) W - lr dZ.T X,
        # beta = 1, no dW), done after every other gradient and that layer's dZ are checked.
        fold = _fold_sgd and opt == OPT_SGD
        for l in range(L - 1, -1, -1):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            act = IDENTITY if l == L - 1 else <int>acts[l]
            _delta_db(dZ, work + a_off[l], act, grad + p_off[l] + o * fi, n, o)
            prev = Xb if l == 0 else work + a_off[l - 1]
            if l > 0 or not fold:
                _dzt_a(dZ, prev, grad + p_off[l], <int>n, <int>fi, <int>o, <real>1, <real>0)
            if l > 0:
                off = d_off1 if (L - l) % 2 == 1 else d_off0
                nxt = work + off
                _dz_w(dZ, theta + p_off[l], nxt, <int>n, <int>fi, <int>o)
                dZ = nxt
        if fold:  # dZ is the first layer's delta, and db its column sums: a NaN or inf in
            # dZ leaves one in db (a sum never turns finite again), so checking db checks dZ
            o = shapes[0]
            fi = shapes[1]
            ok = value - value == 0.0 and _all_finite(grad + o * fi, p_off[L] - o * fi)
        else:
            ok = value - value == 0.0 and _all_finite(grad, p_off[L])
        if not ok:
            break
        for l in range(L):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            w0 = p_off[l]
            b0 = w0 + o * fi
            b1 = p_off[l + 1]
            if fold and l == 0:
                _dzt_a(dZ, Xb, theta, <int>n, <int>fi, <int>o, -lr, 1 - lr * l2)
                _update(opt, hyper, theta + b0, grad + b0, s1, s2, b1 - b0,
                        <double>(t0 + done + 1), 0)
            elif has_state:
                _update(opt, hyper, theta + w0, grad + w0, s1 + w0, s2 + w0, b0 - w0,
                        <double>(t0 + done + 1), l2)
                _update(opt, hyper, theta + b0, grad + b0, s1 + b0, s2 + b0, b1 - b0,
                        <double>(t0 + done + 1), 0)
            else:
                _update(opt, hyper, theta + w0, grad + w0, s1, s2, b0 - w0,
                        <double>(t0 + done + 1), l2)
                _update(opt, hyper, theta + b0, grad + b0, s1, s2, b1 - b0,
                        <double>(t0 + done + 1), 0)
        total += value * n
        done += 1
        start += B
    loss_sum[0] = total
    return done


# ---------------------------------------------------------------------------------------------
# the contract (see fastnn.kernels)

cdef inline void *_data(object a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline bint _is_int64_c(object a):
    return (cnp.PyArray_Check(a) and cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_INT64
            and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>a)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a))


cdef inline bint _is_f32(object a):
    return cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_FLOAT32


def forward(X, W, b, int act, out):
    """``out[:] = g(X @ W.T + b)``; see ``fastnn.kernels``."""
    cdef cnp.npy_intp *ws = cnp.PyArray_DIMS(<cnp.ndarray>W)
    cdef int n = <int>cnp.PyArray_DIM(<cnp.ndarray>X, 0), fout = <int>ws[0], fin = <int>ws[1]
    cdef void *px = _data(X)
    cdef void *pw = _data(W)
    cdef void *pb = _data(b)
    cdef void *po = _data(out)
    if _is_f32(X):
        with nogil:
            _x_wt(<float *>px, <float *>pw, <float *>po, n, fin, fout, NULL)
            _bias_act(<float *>po, <float *>pb, act, n, fout)
    else:
        with nogil:
            _x_wt(<double *>px, <double *>pw, <double *>po, n, fin, fout, NULL)
            _bias_act(<double *>po, <double *>pb, act, n, fout)


def backward(dZ, A, A_prev, W, int act, dW, db, dA_prev):
    """dZ *= g'(A); dW = dZ.T @ A_prev; db = dZ.sum(0); dA_prev = dZ @ W unless None."""
    cdef cnp.npy_intp *ws = cnp.PyArray_DIMS(<cnp.ndarray>W)
    cdef int n = <int>cnp.PyArray_DIM(<cnp.ndarray>dZ, 0), fout = <int>ws[0], fin = <int>ws[1]
    cdef void *pz = _data(dZ)
    cdef void *pa = _data(A)
    cdef void *pp = _data(A_prev)
    cdef void *pw = _data(W)
    cdef void *pdw = _data(dW)
    cdef void *pdb = _data(db)
    cdef void *pda = NULL if dA_prev is None else _data(dA_prev)
    if _is_f32(dZ):
        with nogil:
            _delta_db(<float *>pz, <float *>pa, act, <float *>pdb, n, fout)
            _dzt_a(<float *>pz, <float *>pp, <float *>pdw, n, fin, fout, 1, 0)
            if pda != NULL:
                _dz_w(<float *>pz, <float *>pw, <float *>pda, n, fin, fout)
    else:
        with nogil:
            _delta_db(<double *>pz, <double *>pa, act, <double *>pdb, n, fout)
            _dzt_a(<double *>pz, <double *>pp, <double *>pdw, n, fin, fout, 1, 0)
            if pda != NULL:
                _dz_w(<double *>pz, <double *>pw, <double *>pda, n, fin, fout)


def output_step(Z, Y, int loss, dZ, sw):
    """Loss from the logits Z and ``dZ = sw * (g(Z) - Y) / n`` in one pass; returns the loss."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray>Z, 0), k = cnp.PyArray_DIM(<cnp.ndarray>Z, 1)
    cdef void *pz = _data(Z)
    cdef void *py = _data(Y)
    cdef void *pd = _data(dZ)
    cdef void *ps = NULL if sw is None else _data(sw)
    cdef double value
    if _is_f32(Z):
        with nogil:
            value = _output_step(<float *>pz, <float *>py, loss, <float *>pd, <float *>ps, n, k)
    else:
        with nogil:
            value = _output_step(<double *>pz, <double *>py, loss, <double *>pd, <double *>ps,
                                 n, k)
    return value


def sgd_update(p, g, double lr, double l2):
    """``p -= lr * (g + l2 * p)``."""
    cdef Py_ssize_t size = cnp.PyArray_SIZE(<cnp.ndarray>p)
    cdef void *pp = _data(p)
    cdef void *pg = _data(g)
    if _is_f32(p):
        with nogil:
            _update_all(OPT_SGD, <float *>pp, <float *>pg, NULL, NULL, size, <float>lr, 0, 0,
                        0, 0, 0, <float>l2)
    else:
        with nogil:
            _update_all(OPT_SGD, <double *>pp, <double *>pg, NULL, NULL, size, lr, 0, 0, 0, 0,
                        0, l2)


def momentum_update(p, g, v, double lr, double mu, double l2, bint nesterov):
    """``v = mu * v - lr * (g + l2 * p)``; ``p += v`` (or the Nesterov step)."""
    cdef Py_ssize_t size = cnp.PyArray_SIZE(<cnp.ndarray>p)
    cdef void *pp = _data(p)
    cdef void *pg = _data(g)
    cdef void *pv = _data(v)
    cdef int kind = OPT_NESTEROV if nesterov else OPT_MOMENTUM
    if _is_f32(p):
        with nogil:
            _update_all(kind, <float *>pp, <float *>pg, <float *>pv, NULL, size, <float>lr,
                        <float>mu, 0, 0, 0, 0, <float>l2)
    else:
        with nogil:
            _update_all(kind, <double *>pp, <double *>pg, <double *>pv, NULL, size, lr, mu, 0,
                        0, 0, 0, l2)


def adam_update(p, g, m, v, double lr, double beta1, double beta2, double eps, double t,
                double l2):
    """Adam with bias correction at step ``t`` (1-based) on ``g + l2 * p``."""
    cdef Py_ssize_t size = cnp.PyArray_SIZE(<cnp.ndarray>p)
    cdef void *pp = _data(p)
    cdef void *pg = _data(g)
    cdef void *pm = _data(m)
    cdef void *pv = _data(v)
    if _is_f32(p):
        with nogil:
            _update_all(OPT_ADAM, <float *>pp, <float *>pg, <float *>pm, <float *>pv, size, 0, 0,
                        <float>_adam_step(lr, beta1, beta2, t), <float>beta1, <float>beta2,
                        <float>eps, <float>l2)
    else:
        with nogil:
            _update_all(OPT_ADAM, <double *>pp, <double *>pg, <double *>pm, <double *>pv, size,
                        0, 0, _adam_step(lr, beta1, beta2, t), beta1, beta2, eps, l2)


def train_epoch(X, Y, sw, order, theta, grad, shapes, acts, int loss, Py_ssize_t batch_size,
                int opt, hyper, s1, s2, long long t0, work):
    """One epoch of mini-batch training in compiled code; returns ``(loss_sum, n_done)``."""
    cdef int L = <int>cnp.PyArray_DIM(<cnp.ndarray>shapes, 0)
    cdef Py_ssize_t N = cnp.PyArray_DIM(<cnp.ndarray>(X if order is None else order), 0)
    cdef void *px = _data(X)
    cdef void *py = _data(Y)
    cdef void *ps = NULL if sw is None else _data(sw)
    cdef int64_t *o64 = NULL
    cdef int32_t *o32 = NULL
    cdef void *pt = _data(theta)
    cdef void *pg = _data(grad)
    cdef void *p1 = _data(s1)
    cdef void *p2 = _data(s2)
    cdef void *pw = _data(work)
    cdef int64_t *psh
    cdef int64_t *pac
    cdef double *ph = <double *>_data(hyper)
    cdef bint has_state = cnp.PyArray_SIZE(<cnp.ndarray>s1) > 0
    cdef double loss_sum = 0.0
    cdef int done
    if L > 63:
        raise ValueError("at most 63 layers")
    # small int arrays of any integer dtype: normalise, unless they already are (the models'
    # own are; at batch 32 the two conversions cost 2% of a step)
    if not (_is_int64_c(shapes) and _is_int64_c(acts)):
        import numpy as np
        shapes = np.ascontiguousarray(shapes, dtype=np.int64)
        acts = np.ascontiguousarray(acts, dtype=np.int64)
    psh = <int64_t *>_data(shapes)
    pac = <int64_t *>_data(acts)
    if order is not None:
        if cnp.PyArray_ITEMSIZE(<cnp.ndarray>order) == 4:
            o32 = <int32_t *>_data(order)
        else:
            o64 = <int64_t *>_data(order)
    if _is_f32(X):
        with nogil:
            done = _train_epoch(<float *>px, <float *>py, <float *>ps, o64, o32, N,
                                <float *>pt, <float *>pg, psh, pac, L, loss, batch_size, opt,
                                ph, <float *>p1, <float *>p2, has_state, t0, <float *>pw,
                                &loss_sum)
    else:
        with nogil:
            done = _train_epoch(<double *>px, <double *>py, <double *>ps, o64, o32, N,
                                <double *>pt, <double *>pg, psh, pac, L, loss, batch_size, opt,
                                ph, <double *>p1, <double *>p2, has_state, t0, <double *>pw,
                                &loss_sum)
    return loss_sum, done
