# Scalar math in the array's precision (``floating``), inline: exp, sigmoid, tanh, softplus, a
# branch-free select and log1p, and one unit's activation g(z) and delta d * g'(z).
# Included by _cython_cpu.pyx.

from cython cimport floating
from libc.math cimport exp, expf, expm1, expm1f, fabs, fabsf, log1p, log1pf, tanh

from fastnn_cpu cimport fastnn_expf_nonpos_inplace


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _sigmoid(floating z) noexcept nogil:
    cdef floating e
    if z >= 0:
        return 1 / (1 + _exp(-z))
    e = _exp(z)
    return e / (1 + e)


cdef inline floating _tanh(floating z) noexcept nogil:
    """float32 tanh from one expf (libm's tanhf measured 1.7x slower here): (1 - t) / (1 + t) with
    t = exp(-2|z|), and the odd Taylor series near 0 where 1 - t would cancel."""
    cdef floating a = z if z >= 0 else -z, t, r
    if floating is float:
        if a < <float>0.0625:
            t = z * z
            return z * (1 + t * (<float>(-1.0 / 3) + t * (<float>(2.0 / 15)
                                                           + t * <float>(-17.0 / 315))))
        t = expf(-2 * a)
        r = (1 - t) / (1 + t)
        return r if z >= 0 else -r
    else:
        return tanh(z)


cdef inline floating _softplus(floating z) noexcept nogil:
    cdef floating m = z if z > 0 else 0
    if floating is float:
        return m + log1pf(expf(-(z if z >= 0 else -z)))
    else:
        return m + log1p(exp(-(z if z >= 0 else -z)))


cdef inline floating _pick(bint c, floating a, floating b) noexcept nogil:
    """``a if c else b`` as arithmetic (exact: one product is 0), so that gcc emits no branch on
    a data-dependent sign: SSE2 has no blend, and a mispredicted branch costs ~15 cycles."""
    cdef floating m = c
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


cdef inline void _exp_nonpos_inplace(floating *a, Py_ssize_t size) noexcept nogil:
    """a = exp(a) for a <= 0, in the array's precision (float32's loop vectorises)."""
    cdef Py_ssize_t j
    if floating is float:
        fastnn_expf_nonpos_inplace(a, size)
    else:
        for j in range(size):
            a[j] = exp(a[j])


cdef inline floating _act1(floating z, int act) noexcept nogil:
    """One hidden unit's g(z), as ``_row_bias_act`` computes it; sigmoid without a branch on
    the sign of z (data-dependent, so often mispredicted)."""
    cdef floating e, r
    if act == SIGMOID:
        if floating is float:
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


cdef inline floating _delta1(floating d, floating a, int act) noexcept nogil:
    """d * g'(z) written from the output a = g(z), as ``_cols_delta_db`` computes it."""
    if act == SIGMOID:
        return d * a * (1 - a)
    if act == RELU:
        return d if a > 0 else 0
    if act == TANH:
        return d * (1 - a * a)
    if act == SOFTPLUS:
        if floating is float:
            return d * -expm1f(-a)
        else:
            return d * -expm1(-a)
    return d
