# The fused forward: bias_act applies the bias and activation to each row of a product while it
# is still in cache, split over threads by rows when large. Included by _cython_cpu.pyx.

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY

from fastnn_cpu cimport PAR_MIN


cdef inline void _row_bias_act(floating *z, floating *b, int act, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating v, m, s
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


cdef void _bias_act(floating *out, floating *b, int act, Py_ssize_t n,
                    Py_ssize_t k) noexcept nogil:
    """out = g(out + b), row by row."""
    cdef Py_ssize_t i
    if n * k >= PAR_MIN and n > 1 and _nthreads > 1:
        for i in prange(n, num_threads=_nthreads, schedule='static'):
            _row_bias_act(out + i * k, b, act, k)
    else:
        for i in range(n):
            _row_bias_act(out + i * k, b, act, k)


cdef void _forward(floating *X, floating *W, floating *b, int act, floating *out, int n,
                   int fin, int fout) noexcept nogil:
    """The contract's forward: out = g(X @ W.T + b)."""
    _x_wt(X, W, out, n, fin, fout, <floating *>NULL)
    _bias_act(out, b, act, n, fout)
