"""Numba CPU backend: fused kernels and a whole-epoch training loop (the contract in ``fastnn.kernels``).

Matrix products go to fastnn's BLAS (``fastnn._blas``, via ``_numba_blas``); the bias, activation,
derivative and bias-gradient work is fused into single passes over each product while it is hot.
``train_epoch`` runs a whole epoch in compiled code, so ``fit`` pays no Python or dispatch cost per
step. Beside this module: ``_numba_math`` (activations, derivatives, BCE terms), ``_numba_update``
(optimiser updates on ranges of the flat parameters) and ``_numba_sample`` (the batch-size-1 epoch).
"""

import math

import numpy as np
from numba import types

from .codes import BCE, CROSS_ENTROPY, H_L2, H_LR, IDENTITY, OPT_SGD, RELU, SOFTMAX
from ._jit import FASTMATH_ORDERED, jit, overload
from ._numba_blas import dz_w, dzt_a_update, x_wt
from ._numba_math import _act, _bce_terms, _deriv
from ._numba_sample import _sample_epoch, _sample_plan
from ._numba_update import _adam_range, _all_finite, _momentum_range, _sgd_range, _update_range


# Products below this many multiply-adds run as plain loops: a BLAS call costs more than the work.
SMALL_GEMM = 1 << 14


@jit
def _matmul_nt(A, B, out):
    """out = A @ B.T (rows of both operands are contiguous: a dot product per entry)."""
    n, k = A.shape
    m = B.shape[0]
    if n * m * k > SMALL_GEMM:
        x_wt(A, B, out)
        return
    for i in range(n):
        for j in range(m):
            s = 0.0
            for p in range(k):
                s += A[i, p] * B[j, p]
            out[i, j] = s


@jit
def _matmul_tn(A, B, out):
    """out = A.T @ B, the sum of per-row outer products (the weight gradient)."""
    _matmul_tn_update(A, B, out, 1.0, 0.0)


@jit
def _matmul_tn_update(A, B, out, alpha, beta):
    """out = beta * out + alpha * A.T @ B: plain SGD's weight update folded into the product.

    beta = 0 overwrites ``out`` (whatever it held, NaN included), as BLAS does.
    """
    n, m = A.shape
    k = B.shape[1]
    if n * m * k > SMALL_GEMM:
        dzt_a_update(A, B, out, alpha, beta)
        return
    al, be = out.dtype.type(alpha), out.dtype.type(beta)  # float32 stays float32 (vectorised)
    if beta == 0.0:
        out[:, :] = 0.0
    elif beta != 1.0:
        for j in range(m):
            for p in range(k):
                out[j, p] *= be
    for i in range(n):
        for j in range(m):
            a = al * A[i, j]
            for p in range(k):
                out[j, p] += a * B[i, p]


@jit
def _matmul_nn(A, B, out):
    """out = A @ B (the input gradient dZ @ W)."""
    n, m = A.shape
    k = B.shape[1]
    if n * m * k > SMALL_GEMM:
        dz_w(A, B, out)
        return
    out[:, :] = 0.0
    for i in range(n):
        for j in range(m):
            a = A[i, j]
            for p in range(k):
                out[i, p] += a * B[j, p]


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
    _matmul_nt(X, W, out)
    _bias_act(out, b, act)


@jit
def _delta_and_db(dZ, A, act, db):
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
    _delta_and_db(dZ, A, act, db)
    _matmul_tn(dZ, A_prev, dW)
    if dA_prev is not None:
        _matmul_nn(dZ, W, dA_prev)


def _exp_nonpos_inplace(a):
    """``a = exp(a)`` in place for a 1-D array of values <= 0 (or NaN), in a's precision."""


@overload(_exp_nonpos_inplace, fastmath=set(FASTMATH_ORDERED))
def _exp_nonpos_inplace_impl(a):
    if a.dtype != types.float32:
        def exp_any(a):
            for i in range(a.size):
                a[i] = math.exp(a[i])
        return exp_any

    def exp_f32(a):
        # Cephes' expf without branches, so that the loop vectorises (as in the Cython
        # kernels): x = n ln2 + r, a degree-6 polynomial for exp(r), 2^n put in the exponent
        # bits of the float that rounded x / ln2 (the 1.5 * 2^23 trick: no reassociation).
        # Bit-mask selects: x < -87 gives 0, a NaN comes back as it went in.
        u = a.view(np.uint32)
        for i in range(a.size):
            ux = u[i]
            ax = np.uint32(ux & np.uint32(0x7FFFFFFF))
            big = np.uint32(np.uint32(0) - np.uint32(ax > np.uint32(0x42AE0000)))
            nan = np.uint32(np.uint32(0) - np.uint32(ax > np.uint32(0x7F800000)))
            xc = np.uint32((big & np.uint32(0xC2AE0000)) | (~big & ux)).view(np.float32)
            t = np.float32(xc * np.float32(1.44269504088896341) + np.float32(12582912.0))
            n = np.float32(t - np.float32(12582912.0))
            r = (xc - n * np.float32(0.693359375)) - n * np.float32(-2.12194440e-4)
            p = ((((np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)) * r
                   + np.float32(8.3334519073e-3)) * r + np.float32(4.1665795894e-2)) * r
                 + np.float32(1.6666665459e-1)) * r + np.float32(5.0000001201e-1)
            p = np.float32(p * (r * r) + r + np.float32(1.0))
            scale = np.uint32((t.view(np.uint32) - np.uint32(0x4B400000) + np.uint32(127))
                              << np.uint32(23)).view(np.float32)
            p = np.float32(p * scale)
            a[i] = np.uint32((~big & p.view(np.uint32)) | (nan & ux)).view(np.float32)
    return exp_f32


@jit
def _cross_entropy(Z, Y, dZ, sw):
    """The cross-entropy output step: one exponential per logit, all rows' in one loop."""
    n, k = Z.shape
    inv_n = 1.0 / n
    for i in range(n):  # dZ = Z - (row maximum), all <= 0 (NaN where Z is NaN)
        m = Z[i, 0]
        for j in range(1, k):
            if Z[i, j] > m:
                m = Z[i, j]
        for j in range(k):
            dZ[i, j] = Z[i, j] - m
    _exp_nonpos_inplace(dZ.reshape(n * k))
    total = 0.0
    for i in range(n):  # the sum, the log and the loss in float64
        w = inv_n if sw is None else sw[i] * inv_n
        m = Z[i, 0]
        for j in range(1, k):
            if Z[i, j] > m:
                m = Z[i, j]
        s = 0.0
        for j in range(k):
            s += dZ[i, j]
        lse = m + math.log(s)
        scale = w / s
        li = 0.0
        for j in range(k):
            y = Y[i, j]
            if y != 0:  # skip 0 * inf when the logit gap overflows
                li += y * (lse - Z[i, j])
            dZ[i, j] = dZ[i, j] * scale - y * w
        total += li * (1.0 if sw is None else sw[i])
    return total * inv_n


@jit
def output_step(Z, Y, loss, dZ, sw):
    if loss == CROSS_ENTROPY:
        return _cross_entropy(Z, Y, dZ, sw)
    n, k = Z.shape
    inv_n = 1.0 / n
    total = 0.0
    for i in range(n):
        w = inv_n if sw is None else sw[i] * inv_n
        li = 0.0
        if loss == BCE:
            for j in range(k):
                z = Z[i, j]
                y = Y[i, j]
                sp, sig = _bce_terms(z)
                li += sp - y * z
                dZ[i, j] = (sig - y) * w
        else:
            for j in range(k):
                d = Z[i, j] - Y[i, j]
                li += 0.5 * d * d
                dZ[i, j] = d * w
        total += li * (1.0 if sw is None else sw[i])
    return total * inv_n


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
            _delta_and_db(dZ, A, act, db)
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
        _matmul_tn_update(dZ0, Xb, theta[:w0_end].reshape(shapes[0, 0], shapes[0, 1]), -lr,
                          1.0 - lr * l2)
        _update_range(opt, hyper, theta, grad, s1, s2, w0_end, p_off[1], t, 0.0)
        first = 1
    else:
        if not (math.isfinite(value) and _all_finite(grad[:p_off[L]])):
            return False
        first = 0
    for l in range(first, L):
        w_end = p_off[l] + shapes[l, 0] * shapes[l, 1]
        _update_range(opt, hyper, theta, grad, s1, s2, p_off[l], w_end, t, l2)  # weights
        _update_range(opt, hyper, theta, grad, s1, s2, w_end, p_off[l + 1], t, 0.0)  # biases
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
        return _sample_epoch(X, Y, sw, order, theta, grad, plan, acts, loss, opt, hyper, s1, s2,
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


# --- placeholders until the contract branch lands (memory helpers and array checks) ----------
ON_DEVICE = False


def to_backend(x, dtype=None):
    return np.ascontiguousarray(x, dtype=dtype)


def to_host(x):
    return np.asarray(x)


def zeros(shape, dtype):
    return np.zeros(shape, dtype)


def all_finite(x):
    return bool(_all_finite(x.reshape(-1)))


def copy_into(dst, src):
    dst[...] = src


def update(theta, grad, s1, s2, shapes, opt, hyper, t):
    from .reference import update_model
    import sys

    update_model(sys.modules[__name__], theta, grad, s1, s2, shapes, opt, hyper, t)
