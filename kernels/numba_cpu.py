"""Numba CPU backend: fused kernels and a whole-epoch training loop (the contract in ``fastnn.kernels``).

Matrix products go to fastnn's BLAS (``_blas``, via ``_numba_blas``); the bias, activation,
derivative and bias-gradient work is fused into single passes over each product while it is hot.
``train_epoch`` runs a whole epoch in compiled code, so ``fit`` pays no Python or dispatch cost per
step. Beside this module: ``_numba_math`` (activations, derivatives, BCE terms), ``_numba_output``
(the fused output step), ``_numba_update`` (optimiser updates on ranges of the flat parameters)
and ``_numba_sample`` (the batch-size-1 epoch). Its memory helpers are the host ones (``_host``).
"""

import math

import numpy as np

from .codes import H_L2, H_LR, IDENTITY, OPT_SGD, RELU, SOFTMAX
from ._host import ON_DEVICE, copy_into, to_backend, to_host, zeros  # noqa: F401 (shared)
from ._jit import jit
from ._numba_blas import blas_dz_w, blas_dzt_a, blas_x_wt
from ._numba_math import _act, _deriv
from ._numba_output import output_step
from ._numba_sample import _sample_plan, _train_samples
from ._numba_update import (
    _adam_range, _all_finite, _momentum_range, _sgd_range, _update_layers, _update_range,
)

__all__ = ["ON_DEVICE", "adam_update", "all_finite", "backward", "copy_into", "forward",
           "momentum_update", "output_step", "sgd_update", "to_backend", "to_host",
           "train_epoch", "update", "zeros"]


# Products below this many multiply-adds run as plain loops: a BLAS call costs more than the work.
# Each product tests n * out * in (X.shape[0] * W.size, dZ.size * in) against it.
SMALL_GEMM = 1 << 14


@jit
def _x_wt(X, W, out):
    """out = X @ W.T (rows of both operands are contiguous: a dot product per entry)."""
    if X.shape[0] * W.size > SMALL_GEMM:
        blas_x_wt(X, W, out)
        return
    n, k = X.shape
    for i in range(n):
        for j in range(W.shape[0]):
            s = 0.0
            for p in range(k):
                s += X[i, p] * W[j, p]
            out[i, j] = s


@jit
def _dzt_a(dZ, A_prev, dW, alpha, beta):
    """dW = beta * dW + alpha * dZ.T @ A_prev, the sum of per-row outer products: the weight
    gradient (alpha 1, beta 0), or plain SGD's update folded into it.

    beta = 0 overwrites ``dW`` (whatever it held, NaN included), as BLAS does.
    """
    if dZ.size * A_prev.shape[1] > SMALL_GEMM:
        blas_dzt_a(dZ, A_prev, dW, alpha, beta)
        return
    n, m = dZ.shape
    k = A_prev.shape[1]
    al, be = dW.dtype.type(alpha), dW.dtype.type(beta)  # float32 stays float32 (vectorised)
    if beta == 0.0:
        dW[:, :] = 0.0
    elif beta != 1.0:
        for j in range(m):
            for p in range(k):
                dW[j, p] *= be
    for i in range(n):
        for j in range(m):
            a = al * dZ[i, j]
            for p in range(k):
                dW[j, p] += a * A_prev[i, p]


@jit
def _dz_w(dZ, W, out):
    """out = dZ @ W (the input gradient)."""
    if dZ.shape[0] * W.size > SMALL_GEMM:
        blas_dz_w(dZ, W, out)
        return
    out[:, :] = 0.0
    m, k = W.shape
    for i in range(dZ.shape[0]):
        for j in range(m):
            a = dZ[i, j]
            for p in range(k):
                out[i, p] += a * W[j, p]


@jit
def _bias_act(out, b, act):
    """out = g(out + b), row by row; softmax is applied per row."""
    n, k = out.shape
    if act == SOFTMAX:
        for i in range(n):
            m = -np.inf
            for j in range(k):
                z = out[i, j] + b[j]
                out[i, j] = z
                if z > m:
                    m = z
            s = 0.0
            for j in range(k):
                e = math.exp(out[i, j] - m)
                out[i, j] = e
                s += e
            inv = 1.0 / s
            for j in range(k):
                out[i, j] *= inv
    elif act == IDENTITY:
        for i in range(n):
            for j in range(k):
                out[i, j] += b[j]
    elif act == RELU:
        for i in range(n):
            for j in range(k):
                z = out[i, j] + b[j]
                out[i, j] = z if z > 0 else 0.0
    else:
        for i in range(n):
            for j in range(k):
                out[i, j] = _act(out[i, j] + b[j], act)


@jit
def forward(X, W, b, act, out):
    _x_wt(X, W, out)
    _bias_act(out, b, act)


@jit
def _delta_db(dZ, A, act, db):
    """dZ *= g'(A) in place and db = dZ.sum(0), in one pass."""
    n, k = dZ.shape
    db[:] = 0.0
    if act == IDENTITY:
        for i in range(n):
            for j in range(k):
                db[j] += dZ[i, j]
    elif act == RELU:
        zero = dZ.dtype.type(0)  # not 0.0: a float64 d made the float32 loop scalar (4x slower)
        for i in range(n):
            for j in range(k):
                d = dZ[i, j] if A[i, j] > zero else zero
                dZ[i, j] = d
                db[j] += d
    else:
        for i in range(n):
            for j in range(k):
                d = dZ[i, j] * _deriv(A[i, j], act)
                dZ[i, j] = d
                db[j] += d


@jit
def backward(dZ, A, A_prev, W, act, dW, db, dA_prev):
    _delta_db(dZ, A, act, db)
    _dzt_a(dZ, A_prev, dW, 1.0, 0.0)
    if dA_prev is not None:
        _dz_w(dZ, W, dA_prev)


@jit
def sgd_update(p, g, lr, l2):
    _sgd_range(p, g, 0, p.size, lr, l2)


@jit
def momentum_update(p, g, v, lr, mu, l2, nesterov):
    _momentum_range(p, g, v, 0, p.size, lr, mu, l2, nesterov)


@jit
def adam_update(p, g, m, v, lr, beta1, beta2, eps, t, l2):
    _adam_range(p, g, m, v, 0, p.size, lr, beta1, beta2, eps, t, l2)


@jit
def update(theta, grad, s1, s2, shapes, opt, hyper, t):
    _update_layers(opt, hyper, theta, grad, s1, s2, shapes, 0, t, hyper[H_L2])


@jit
def all_finite(x):
    return _all_finite(x.reshape(x.size))


@jit
def _batch_gradients(Xb, Yb, swb, theta, grad, shapes, acts, loss, p_off, a_off, work, d_off0,
                     d_off1, fold):
    """Forward, fused output step and backward for one batch; returns (batch loss, first dZ).

    With ``fold`` the first layer's dW is not computed (its slot in ``grad`` is left as it was):
    ``_batch_update`` folds that layer's SGD update into the product, from the returned delta.
    """
    n = Xb.shape[0]
    L = shapes.shape[0]
    k = shapes[L - 1, 0]
    # forward; the last layer keeps its logits for the fused output step
    prev = Xb
    for l in range(L):
        o, fi = shapes[l, 0], shapes[l, 1]
        W = theta[p_off[l]:p_off[l] + o * fi].reshape(o, fi)
        b = theta[p_off[l] + o * fi:p_off[l + 1]]
        A = work[a_off[l]:a_off[l] + n * o].reshape(n, o)
        forward(prev, W, b, IDENTITY if l == L - 1 else acts[l], A)
        prev = A
    dZ = work[d_off0:d_off0 + n * k].reshape(n, k)
    value = output_step(prev, Yb, loss, dZ, swb)
    # backward, ping-ponging the delta between the two buffers
    for l in range(L - 1, -1, -1):
        o, fi = shapes[l, 0], shapes[l, 1]
        W = theta[p_off[l]:p_off[l] + o * fi].reshape(o, fi)
        dW = grad[p_off[l]:p_off[l] + o * fi].reshape(o, fi)
        db = grad[p_off[l] + o * fi:p_off[l + 1]]
        A = work[a_off[l]:a_off[l] + n * o].reshape(n, o)
        act = IDENTITY if l == L - 1 else acts[l]
        if l > 0:
            A_prev = work[a_off[l - 1]:a_off[l - 1] + n * fi].reshape(n, fi)
            off = d_off1 if (L - l) % 2 == 1 else d_off0
            nxt = work[off:off + n * fi].reshape(n, fi)
            backward(dZ, A, A_prev, W, act, dW, db, nxt)
            dZ = nxt
        elif fold:
            _delta_db(dZ, A, act, db)
        else:
            backward(dZ, A, Xb, W, act, dW, db, None)
    return value, dZ


@jit
def _batch_update(Xb, dZ0, value, theta, grad, shapes, p_off, opt, hyper, s1, s2, t, l2, fold):
    """Check one batch's loss and gradient, then update; returns False (nothing updated) if any
    is not finite. With ``fold`` (plain SGD) the first layer's weights are updated inside its
    weight-gradient product, ``W = (1 - lr * l2) W - lr * dZ0.T @ Xb``, so its dW is never
    written, checked or read back. Its inputs are checked instead: Xb is finite (the caller's
    guarantee), and a NaN or inf in ``dZ0`` would leave one in db, its column sums (a sum never
    turns finite again), which is checked with the rest of ``grad``."""
    L = shapes.shape[0]
    w0_end = shapes[0, 0] * shapes[0, 1]
    if fold:
        if not (math.isfinite(value) and _all_finite(grad[w0_end:p_off[L]])):
            return False
        lr = hyper[H_LR]
        _dzt_a(dZ0, Xb, theta[:w0_end].reshape(shapes[0, 0], shapes[0, 1]), -lr, 1.0 - lr * l2)
        _update_range(opt, hyper, theta, grad, s1, s2, w0_end, p_off[1], t, 0.0)
        first = 1
    else:
        if not (math.isfinite(value) and _all_finite(grad[:p_off[L]])):
            return False
        first = 0
    _update_layers(opt, hyper, theta, grad, s1, s2, shapes, first, t, l2)
    return True


@jit
def train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, batch_size, opt, hyper, s1, s2,
                t0, work):
    N = X.shape[0] if order is None else order.shape[0]
    L = shapes.shape[0]
    n_in = shapes[0, 1]
    k = shapes[L - 1, 0]
    width = 0
    for l in range(L):
        width = max(width, shapes[l, 0])
    B = batch_size
    # offsets of each layer in theta, and of each buffer in work (see layout.py)
    p_off = np.empty(L + 1, np.int64)
    a_off = np.empty(L + 1, np.int64)
    p_off[0] = 0
    a_off[0] = B * (n_in + k + 1)
    for l in range(L):
        p_off[l + 1] = p_off[l] + shapes[l, 0] * shapes[l, 1] + shapes[l, 0]
        a_off[l + 1] = a_off[l] + B * shapes[l, 0]
    d_off0 = a_off[L]
    d_off1 = d_off0 + B * width
    if B == 1:
        plan = _sample_plan(shapes, p_off, a_off, d_off0, d_off1)
        return _train_samples(X, Y, sw, order, theta, grad, plan, acts, loss, opt, hyper, s1, s2,
                              t0, work)
    l2 = hyper[H_L2]
    loss_sum = 0.0
    done = 0
    for start in range(0, N, B):
        n = min(B, N - start)
        if order is None:
            Xb = X[start:start + n]
            Yb = Y[start:start + n]
        else:
            Xb = work[0:n * n_in].reshape(n, n_in)
            Yb = work[B * n_in:B * n_in + n * k].reshape(n, k)
            for i in range(n):
                r = order[start + i]
                Xb[i, :] = X[r, :]
                Yb[i, :] = Y[r, :]
        if sw is None:
            swb = None
        elif order is None:
            swb = sw[start:start + n]
        else:
            swb = work[B * (n_in + k):B * (n_in + k) + n]
            for i in range(n):
                swb[i] = sw[order[start + i]]
        fold = opt == OPT_SGD
        value, dZ0 = _batch_gradients(Xb, Yb, swb, theta, grad, shapes, acts, loss, p_off, a_off,
                                      work, d_off0, d_off1, fold)
        if not _batch_update(Xb, dZ0, value, theta, grad, shapes, p_off, opt, hyper, s1, s2,
                             t0 + done + 1, l2, fold):
            break
        loss_sum += value * n
        done += 1
    return loss_sum, done
