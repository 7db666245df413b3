# The fused output step: from the logits, each sample's loss (log-sum-exp and softplus forms,
# in double) and dZ = sw * (g(Z) - Y) / n in one pass, split over threads by rows when large.
# Included by _cython_cpu.pyx.

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log, INFINITY

from fastnn_cpu cimport PAR_MIN


cdef inline floating _row_max(floating *z, Py_ssize_t k) noexcept nogil:
    """The largest of z[:k], NaNs aside (-inf if none)."""
    cdef Py_ssize_t j
    cdef floating m = -INFINITY
    for j in range(k):
        if z[j] > m:
            m = z[j]
    return m


cdef inline floating _row_shift(floating *z, floating *dz, Py_ssize_t k) noexcept nogil:
    """dz = z - max(z), all <= 0 (NaN where z is NaN, or everywhere if all z are -inf);
    returns the maximum."""
    cdef Py_ssize_t j
    cdef floating m = _row_max(z, k)
    for j in range(k):
        dz[j] = z[j] - m
    return m


cdef inline double _row_cross_entropy(floating *z, floating *y, floating *dz, double m,
                                      double w, Py_ssize_t k) noexcept nogil:
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
        dz[j] = <floating>(dz[j] * scale - yj * w)
    return li


cdef inline double _row_output(floating *z, floating *y, int loss, floating *dz, double w,
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
            li += _softplus(zj) - yj * zj
            dz[j] = <floating>((_sigmoid(zj) - yj) * w)
    else:
        for j in range(k):
            d = <double>z[j] - y[j]
            li += 0.5 * d * d
            dz[j] = <floating>(d * w)
    return li


cdef double _output_step(floating *Z, floating *Y, int loss, floating *dZ, floating *sw,
                         Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """The contract's output_step: returns the mean (weighted) loss and writes dZ."""
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
