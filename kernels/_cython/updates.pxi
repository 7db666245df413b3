# The optimiser steps: SGD, momentum (and Nesterov) and Adam over a range of a flat vector
# (update_range), over a whole vector in chunks over threads (_update_all), and over a whole
# model with L2 on the weights only (_update_model: the contract's update, and the update of
# train_epoch and train_samples). Included by _cython_cpu.pyx.

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf
from libc.stdint cimport int64_t

from fastnn_cpu cimport PAR_MIN


cdef inline void _sgd_range(floating *p, floating *g, Py_ssize_t lo, Py_ssize_t hi, floating lr,
                            floating l2) noexcept nogil:
    cdef Py_ssize_t i
    if l2 != 0:
        for i in range(lo, hi):
            p[i] = p[i] - lr * (g[i] + l2 * p[i])
    else:
        for i in range(lo, hi):
            p[i] = p[i] - lr * g[i]


cdef inline void _momentum_range(floating *p, floating *g, floating *v, Py_ssize_t lo,
                                 Py_ssize_t hi, floating lr, floating mu, floating l2,
                                 bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, vi
    for i in range(lo, hi):
        gi = g[i] + l2 * p[i]
        vi = mu * v[i] - lr * gi
        v[i] = vi
        if nesterov:
            p[i] = p[i] + (mu * vi - lr * gi)
        else:
            p[i] = p[i] + vi


cdef inline void _adam_range(floating *p, floating *g, floating *m, floating *v, Py_ssize_t lo,
                             Py_ssize_t hi, floating step, floating b1, floating b2, floating eps,
                             floating l2) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, mi, vi, c1 = 1 - b1, c2 = 1 - b2
    for i in range(lo, hi):
        gi = g[i] + l2 * p[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        if floating is float:
            p[i] = p[i] - step * mi / (sqrtf(vi) + eps)
        else:
            p[i] = p[i] - step * mi / (sqrt(vi) + eps)


cdef void _update_range(int kind, floating *p, floating *g, floating *s1, floating *s2,
                        Py_ssize_t lo, Py_ssize_t hi, floating lr, floating mu, floating step,
                        floating b1, floating b2, floating eps, floating l2) noexcept nogil:
    """Optimiser ``kind`` on p[lo:hi] (``step`` is Adam's bias-corrected learning rate)."""
    if kind == OPT_SGD:
        _sgd_range(p, g, lo, hi, lr, l2)
    elif kind == OPT_ADAM:
        _adam_range(p, g, s1, s2, lo, hi, step, b1, b2, eps, l2)
    else:
        _momentum_range(p, g, s1, lo, hi, lr, mu, l2, kind == OPT_NESTEROV)


cdef void _update_all(int kind, floating *p, floating *g, floating *s1, floating *s2,
                      Py_ssize_t size, floating lr, floating mu, floating step, floating b1,
                      floating b2, floating eps, floating l2) noexcept nogil:
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
    """Adam's learning rate with the bias correction of step t (1-based)."""
    return (lr * sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t))


cdef void _update_layers(int opt, double *hyper, floating *theta, floating *grad, floating *s1,
                         floating *s2, bint has_state, int64_t *shapes, Py_ssize_t L, double t,
                         bint skip_w0) noexcept nogil:
    """``_update_model`` layer by layer: W with L2, b without (skip_w0: all but layer 0's W)."""
    cdef floating lr = <floating>hyper[H_LR], mu = <floating>hyper[H_MOMENTUM]
    cdef floating b1 = <floating>hyper[H_BETA1], b2 = <floating>hyper[H_BETA2]
    cdef floating eps = <floating>hyper[H_EPS], l2 = <floating>hyper[H_L2], step = 0
    cdef Py_ssize_t l, w0 = 0, b0, end, s
    if opt == OPT_ADAM:
        step = <floating>_adam_step(hyper[H_LR], hyper[H_BETA1], hyper[H_BETA2], t)
    for l in range(L):
        b0 = w0 + shapes[2 * l] * shapes[2 * l + 1]
        end = b0 + shapes[2 * l]
        if not (skip_w0 and l == 0):
            s = w0 if has_state else 0
            _update_all(opt, theta + w0, grad + w0, s1 + s, s2 + s, b0 - w0, lr, mu, step, b1,
                        b2, eps, l2)
        s = b0 if has_state else 0
        _update_all(opt, theta + b0, grad + b0, s1 + s, s2 + s, end - b0, lr, mu, step, b1, b2,
                    eps, <floating>0)
        w0 = end


cdef inline void _update_model(int opt, double *hyper, floating *theta, floating *grad,
                               floating *s1, floating *s2, bint has_state, int64_t *shapes,
                               Py_ssize_t L, double t, bint skip_w0) noexcept nogil:
    """One step of optimiser ``opt`` over a whole model's flat vectors (the contract's update).

    Layer by layer, W with L2 ``hyper[H_L2]`` and b without; s1/s2 follow theta's layout when
    ``has_state``. ``skip_w0`` leaves the first layer's W alone (train_epoch folded its update
    into a GEMM). Plain SGD without L2 is one pass over all of theta, the same arithmetic, inline
    where it is too short to split over threads (train_samples takes a step in ~100 ns).
    """
    cdef floating lr = <floating>hyper[H_LR]
    cdef Py_ssize_t l, size = 0
    if opt == OPT_SGD and hyper[H_L2] == 0 and not skip_w0:
        for l in range(L):
            size += shapes[2 * l] * shapes[2 * l + 1] + shapes[2 * l]
        if size < PAR_MIN or _nthreads == 1:
            _sgd_range(theta, grad, 0, size, lr, <floating>0)
        else:
            _update_all(opt, theta, grad, s1, s2, size, lr, 0, 0, 0, 0, 0, 0)
    else:
        _update_layers(opt, hyper, theta, grad, s1, s2, has_state, shapes, L, t, skip_w0)
