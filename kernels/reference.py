"""NumPy baseline: the seeds' formulas written plainly. Every other backend is checked against it.

It follows the kernel contract of ``fastnn.kernels`` and works in the dtype of its inputs (loss
values are summed in float64, as in the compiled backends). Like the compiled kernels, it lets
overflow produce inf/NaN without a RuntimeWarning: the API layer checks finiteness itself and
raises FloatingPointError where it matters, so NumPy's floating-point warnings are silenced here.
"""

import functools
import sys

import numpy as np

from .codes import (
    BCE, CROSS_ENTROPY, H_BETA1, H_BETA2, H_EPS, H_L2, H_LR, H_MOMENTUM, IDENTITY, MSE, OPT_ADAM,
    OPT_MOMENTUM, OPT_NESTEROV, OPT_SGD, RELU, SIGMOID, SOFTMAX, SOFTPLUS, STEP, TANH,
)
from ._host import ON_DEVICE, copy_into, to_backend, to_host, zeros  # noqa: F401 (shared)
from .passes import batch_gradients
from .layout import param_views, work_views

# Overflow in a kernel is reported by the caller's finiteness checks, never by NumPy warnings, so
# the reference behaves like the compiled backends (which never warn).
def _quiet(func):
    """Run ``func`` with NumPy's floating-point warnings off (a fresh errstate per call, so it is
    reentrant and thread-safe)."""

    @functools.wraps(func)
    def quiet(*args):
        with np.errstate(all="ignore"):
            return func(*args)

    return quiet


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def _softplus(z):
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def activate(Z, act):
    """Return g(Z) for activation code ``act``."""
    if act == IDENTITY:
        return Z
    if act == SIGMOID:
        return _sigmoid(Z)
    if act == TANH:
        return np.tanh(Z)
    if act == RELU:
        return np.maximum(Z, 0)
    if act == SOFTPLUS:
        return _softplus(Z)
    if act == STEP:
        return (Z >= 0).astype(Z.dtype)
    if act == SOFTMAX:
        return _softmax(Z)
    raise ValueError(f"unknown activation code {act}")


def derivative(A, act):
    """Return g'(z) written from the output A = g(z) (the seeds' forms)."""
    if act == IDENTITY:
        return np.ones_like(A)
    if act == SIGMOID:
        return A * (1 - A)
    if act == TANH:
        return 1 - A * A
    if act == RELU:
        return (A > 0).astype(A.dtype)
    if act == SOFTPLUS:
        return -np.expm1(-A)
    raise ValueError(f"activation code {act} has no derivative in backward")


@_quiet
def forward(X, W, b, act, out):
    out[...] = activate(X @ W.T + b, act)


@_quiet
def backward(dZ, A, A_prev, W, act, dW, db, dA_prev):
    if act != IDENTITY:
        dZ *= derivative(A, act)
    np.matmul(dZ.T, A_prev, out=dW)
    np.sum(dZ, axis=0, out=db)
    if dA_prev is not None:
        np.matmul(dZ, W, out=dA_prev)


def per_sample_loss(Z, Y, loss):
    """Per-sample loss from the logits Z, in stable log-sum-exp / softplus form, in float64.

    float64 keeps e.g. the MSE of float32 logits near 1e30 finite, as the compiled kernels do.
    """
    Z = np.asarray(Z, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if loss == MSE:
        return 0.5 * np.sum((Z - Y) ** 2, axis=1)
    if loss == BCE:
        return np.sum(_softplus(Z) - Y * Z, axis=1)
    if loss == CROSS_ENTROPY:
        m = Z.max(axis=1, keepdims=True)
        lse = m + np.log(np.sum(np.exp(Z - m), axis=1, keepdims=True))
        # classes with target 0 add nothing, even when lse - z overflows (0 * inf would be NaN)
        return np.sum(np.where(Y != 0, Y * (lse - Z), 0.0), axis=1)
    raise ValueError(f"unknown loss code {loss}")


_OUTPUT_ACT = {MSE: IDENTITY, BCE: SIGMOID, CROSS_ENTROPY: SOFTMAX}


@_quiet
def output_step(Z, Y, loss, dZ, sw):
    n = Z.shape[0]
    li = per_sample_loss(Z, Y, loss)
    A = activate(Z, _OUTPUT_ACT[loss])
    if sw is None:
        np.subtract(A, Y, out=dZ)
        dZ /= n
        return float(li.sum(dtype=np.float64) / n)
    np.subtract(A, Y, out=dZ)
    dZ *= (sw / n)[:, None]
    return float(np.dot(sw.astype(np.float64), li.astype(np.float64)) / n)


@_quiet
def sgd_update(p, g, lr, l2):
    if l2 != 0:
        p -= lr * (g + l2 * p)
    else:
        p -= lr * g


@_quiet
def momentum_update(p, g, v, lr, mu, l2, nesterov):
    gg = g + l2 * p if l2 != 0 else g
    v *= mu
    v -= lr * gg
    if nesterov:
        p += mu * v - lr * gg
    else:
        p += v


@_quiet
def adam_update(p, g, m, v, lr, beta1, beta2, eps, t, l2):
    gg = g + l2 * p if l2 != 0 else g
    m *= beta1
    m += (1 - beta1) * gg
    v *= beta2
    v += (1 - beta2) * gg * gg
    step = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    p -= step * m / (np.sqrt(v) + eps)


def _update_array(opt, hyper, p, g, s1, s2, t, l2):
    """Apply optimiser ``opt`` to one parameter array (l2 is 0 for biases)."""
    lr = p.dtype.type(hyper[H_LR])
    if opt == OPT_SGD:
        sgd_update(p, g, lr, l2)
    elif opt == OPT_MOMENTUM or opt == OPT_NESTEROV:
        momentum_update(p, g, s1, lr, p.dtype.type(hyper[H_MOMENTUM]), l2, opt == OPT_NESTEROV)
    elif opt == OPT_ADAM:
        adam_update(p, g, s1, s2, lr, hyper[H_BETA1], hyper[H_BETA2], hyper[H_EPS], t, l2)
    else:
        raise ValueError(f"unknown optimiser code {opt}")


def _update_views(opt, hyper, tv, gv, s1v, s2v, t, l2):
    """Apply optimiser ``opt`` to every layer's (W, b) views (L2 on the weights only)."""
    for l in range(len(tv)):
        for j, pen in ((0, l2), (1, 0)):
            _update_array(opt, hyper, tv[l][j], gv[l][j], s1v[l][j] if s1v else None,
                          s2v[l][j] if s2v else None, t, pen)


def _state_views(s, shapes):
    """Per-layer views of optimiser state ``s`` (None for an optimiser without state)."""
    return param_views(s, shapes) if s.size else None


@_quiet
def update(theta, grad, s1, s2, shapes, opt, hyper, t):
    _update_views(opt, hyper, param_views(theta, shapes), param_views(grad, shapes),
                  _state_views(s1, shapes), _state_views(s2, shapes), t,
                  theta.dtype.type(hyper[H_L2]))


def all_finite(x):
    return bool(np.isfinite(x).all())


_SELF = sys.modules[__name__]


@_quiet
def train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, batch_size, opt, hyper, s1, s2,
                t0, work):
    N = X.shape[0] if order is None else order.shape[0]
    tv, gv = param_views(theta, shapes), param_views(grad, shapes)
    s1v, s2v = _state_views(s1, shapes), _state_views(s2, shapes)
    l2 = theta.dtype.type(hyper[H_L2])
    loss_sum, done, t = 0.0, 0, t0
    for start in range(0, N, batch_size):
        n = min(batch_size, N - start)
        Xb, Yb, swb, As, D0, D1 = work_views(work, shapes, batch_size, n)
        rows = slice(start, start + n) if order is None else order[start:start + n]
        Xb[...] = X[rows]
        Yb[...] = Y[rows]
        wb = None
        if sw is not None:
            swb[...] = sw[rows]
            wb = swb
        value = batch_gradients(_SELF, Xb, Yb, wb, tv, gv, acts, loss, As, D0, D1)
        if not (np.isfinite(value) and np.isfinite(grad).all()):
            break
        t += 1
        _update_views(opt, hyper, tv, gv, s1v, s2v, t, l2)
        loss_sum += value * n
        done += 1
    return loss_sum, done
