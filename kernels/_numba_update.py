"""Optimiser updates for the Numba CPU kernels, on index ranges of the flat parameter vector
(so a layer's weights and biases are updated in place, with no views): one home for the step
that ``update``, the epoch loop and the per-sample loop all take, and the finiteness check that
gates every update.
"""

import math

from .codes import H_BETA1, H_BETA2, H_EPS, H_LR, H_MOMENTUM, OPT_ADAM, OPT_NESTEROV, OPT_SGD
from ._jit import jit


@jit(inline="always")
def _sgd_range(p, g, lo, hi, lr, l2):
    if l2 != 0:
        for i in range(lo, hi):
            p[i] -= lr * (g[i] + l2 * p[i])
    else:
        for i in range(lo, hi):
            p[i] -= lr * g[i]


@jit(inline="always")
def _momentum_range(p, g, v, lo, hi, lr, mu, l2, nesterov):
    for i in range(lo, hi):
        gi = g[i] + l2 * p[i]
        vi = mu * v[i] - lr * gi
        v[i] = vi
        if nesterov:
            p[i] += mu * vi - lr * gi
        else:
            p[i] += vi


@jit(inline="always")
def _adam_range(p, g, m, v, lo, hi, lr, beta1, beta2, eps, t, l2):
    step = lr * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
    for i in range(lo, hi):
        gi = g[i] + l2 * p[i]
        mi = beta1 * m[i] + (1.0 - beta1) * gi
        vi = beta2 * v[i] + (1.0 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= step * mi / (math.sqrt(vi) + eps)


@jit(inline="always")
def _update_range(opt, hyper, theta, grad, s1, s2, lo, hi, t, l2):
    """Apply optimiser ``opt`` to ``theta[lo:hi]`` in place, indexing the flat vectors directly."""
    lr = hyper[H_LR]
    if opt == OPT_SGD:
        _sgd_range(theta, grad, lo, hi, lr, l2)
    elif opt == OPT_ADAM:
        _adam_range(theta, grad, s1, s2, lo, hi, lr, hyper[H_BETA1], hyper[H_BETA2],
                    hyper[H_EPS], t, l2)
    else:
        _momentum_range(theta, grad, s1, lo, hi, lr, hyper[H_MOMENTUM], l2,
                        opt == OPT_NESTEROV)


@jit(inline="always")
def _update_layers(opt, hyper, theta, grad, s1, s2, shapes, first, t, l2):
    """Apply optimiser ``opt`` to layers ``first, first + 1, ...`` of the flat vectors: L2
    ``l2`` on each layer's weights, none on its biases (the contract's ``update`` and the batch
    loop's step; the per-sample loop takes the same two ranges per layer from its plan)."""
    pos = 0
    for l in range(shapes.shape[0]):
        b0 = pos + shapes[l, 0] * shapes[l, 1]
        end = b0 + shapes[l, 0]
        if l >= first:
            _update_range(opt, hyper, theta, grad, s1, s2, pos, b0, t, l2)  # weights
            _update_range(opt, hyper, theta, grad, s1, s2, b0, end, t, 0.0)  # biases
        pos = end


@jit
def _all_finite(x):
    s = 0.0
    for i in range(x.size):
        s += x[i] * 0.0
    return s == 0.0
