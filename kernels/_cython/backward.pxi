# The fused backward: delta_db turns dL/dA into dZ = dL/dA * g'(A) in place and sums db in the
# same pass, split over threads by column blocks when large; then the two products.
# Included by _cython_cpu.pyx.

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport expm1, expm1f

from fastnn_cpu cimport COL_BLOCK, PAR_MIN


cdef inline void _cols_delta_db(floating *dZ, floating *A, int act, floating *db, Py_ssize_t n,
                                Py_ssize_t k, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """dZ[:, j0:j1] *= g'(A[:, j0:j1]) and db[j0:j1] = dZ[:, j0:j1].sum(0)."""
    cdef Py_ssize_t i, j
    cdef floating d, a
    cdef floating *z
    cdef floating *ar
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
                if floating is float:
                    d = z[j] * -expm1f(-ar[j])
                else:
                    d = z[j] * -expm1(-ar[j])
                z[j] = d
                db[j] = db[j] + d


cdef void _delta_db(floating *dZ, floating *A, int act, floating *db, Py_ssize_t n,
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


cdef void _backward(floating *dZ, floating *A, floating *A_prev, floating *W, int act,
                    floating *dW, floating *db, floating *dA_prev, int n, int fin,
                    int fout) noexcept nogil:
    """The contract's backward (dA_prev may be NULL: then it is not computed)."""
    _delta_db(dZ, A, act, db, n, fout)
    _dzt_a(dZ, A_prev, dW, n, fin, fout, 1, 0)
    if dA_prev != NULL:
        _dz_w(dZ, W, dA_prev, n, fin, fout)
