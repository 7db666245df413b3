# The API layer's compiled checks (not kernels: these validate, and never raise): all_finite,
# copy_into and step_inputs. ``MLP.train_step`` on a small batch costs as much in NumPy checks
# (a finiteness scan, label min/max, a one-hot fill, a parameter copy and scan) as in the step
# itself; these do the same work in single compiled passes. They answer yes or no: on no, the
# caller runs its NumPy checks, which convert what they can and raise the ValueError that names
# the problem. Included by _cython_cpu.pyx.

cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

ctypedef fused _bits:
    uint32_t
    uint64_t


cdef inline bint _finite_bits(_bits *u, Py_ssize_t size, _bits exponent, _bits one,
                              _bits sign) noexcept nogil:
    """True if no element has all ``exponent`` bits set: adding ``one`` to those bits then
    carries into ``sign``. Sixteen independent accumulators keep several vectors in flight
    (one chain is latency-bound), and the loop vectorises."""
    cdef Py_ssize_t i, j, body = size - size % 16
    cdef _bits acc[16]
    cdef _bits a = 0
    for j in range(16):
        acc[j] = 0
    for i in range(0, body, 16):
        for j in range(16):
            acc[j] |= (u[i + j] & exponent) + one
    for j in range(16):
        a |= acc[j]
    for i in range(body, size):
        a |= (u[i] & exponent) + one
    return (a & sign) == 0


cdef bint _all_finite(floating *x, Py_ssize_t size) noexcept nogil:
    """True if no element is inf or NaN (an exponent-bits test on the IEEE layout)."""
    if floating is float:
        return _finite_bits(<uint32_t *>x, size, <uint32_t>0x7f800000u, <uint32_t>0x00800000u,
                            <uint32_t>0x80000000u)
    else:
        return _finite_bits(<uint64_t *>x, size, <uint64_t>0x7ff0000000000000u,
                            <uint64_t>0x0010000000000000u, <uint64_t>0x8000000000000000u)


cdef inline bint _native_aligned(cnp.ndarray a):
    return cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISNOTSWAPPED(a)


cdef inline int64_t _label(char *p, bint wide) noexcept nogil:
    return (<int64_t *>p)[0] if wide else (<int32_t *>p)[0]


cdef bint _labels_below(char *labels, Py_ssize_t stride, bint wide, Py_ssize_t n,
                        Py_ssize_t k) noexcept nogil:
    """True if all n labels (int64 if ``wide``, else int32, ``stride`` bytes apart) are in
    [0, k)."""
    cdef Py_ssize_t i
    cdef int64_t label
    for i in range(n):
        label = _label(labels + i * stride, wide)
        if label < 0 or label >= k:
            return False
    return True


cdef void _one_hot(floating *Y, char *labels, Py_ssize_t stride, bint wide, Py_ssize_t n,
                   Py_ssize_t k) noexcept nogil:
    """Y[:n] (n, k) = the labels one-hot."""
    cdef Py_ssize_t i
    memset(Y, 0, n * k * sizeof(floating))
    for i in range(n):
        Y[i * k + _label(labels + i * stride, wide)] = 1


def step_inputs(X, y, Y, Py_ssize_t n_in):
    """Check a batch for ``train_step`` and write its labels one-hot into ``Y``; returns n.

    Returns the row count n when ``X`` is a finite, C-contiguous (n, n_in) ndarray (n >= 1) of
    ``Y``'s dtype and ``y`` an ndarray of n int32/int64 labels in [0, k), k = ``Y.shape[1]``;
    ``Y[:n]`` then holds them one-hot. Returns 0 when any of this does not hold (nothing is
    raised: the caller checks again in NumPy), and -n when ``Y``, the caller's C-contiguous
    buffer, has fewer than n rows.
    """
    cdef cnp.ndarray ax, ay, aY = <cnp.ndarray>Y
    cdef Py_ssize_t n, k, stride
    cdef char *pl
    cdef void *px
    cdef void *pY
    cdef bint wide, ok, f32
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
    k = cnp.PyArray_DIM(aY, 1)
    if cnp.PyArray_DIM(aY, 0) < n:
        return -n
    wide = cnp.PyArray_ITEMSIZE(ay) == 8
    stride = cnp.PyArray_STRIDE(ay, 0)
    pl = cnp.PyArray_BYTES(ay)
    px = cnp.PyArray_DATA(ax)
    pY = cnp.PyArray_DATA(aY)
    f32 = cnp.PyArray_TYPE(ax) == cnp.NPY_FLOAT32
    with nogil:
        ok = _labels_below(pl, stride, wide, n, k) and (
            _all_finite[float](<float *>px, n * n_in) if f32
            else _all_finite[double](<double *>px, n * n_in))
        if ok and f32:
            _one_hot[float](<float *>pY, pl, stride, wide, n, k)
        elif ok:
            _one_hot[double](<double *>pY, pl, stride, wide, n, k)
    return n if ok else 0


def copy_into(dst, src):
    """``dst[...] = src`` for two C-contiguous arrays of one dtype and size (a memcpy)."""
    cdef void *pd = cnp.PyArray_DATA(<cnp.ndarray>dst)
    cdef void *ps = cnp.PyArray_DATA(<cnp.ndarray>src)
    cdef size_t nbytes = cnp.PyArray_NBYTES(<cnp.ndarray>src)
    with nogil:
        memcpy(pd, ps, nbytes)


def all_finite(x):
    """True if the C-contiguous float32/float64 array ``x`` holds no NaN or infinity."""
    cdef Py_ssize_t size = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void *p = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef bint ok, f32 = cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_FLOAT32
    with nogil:
        ok = (_all_finite[float](<float *>p, size) if f32
              else _all_finite[double](<double *>p, size))
    return ok
