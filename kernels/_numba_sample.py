"""Per-sample SGD for the Numba CPU backend: ``train_epoch`` at batch size 1, in one function.

At one sample a step of a small network costs under 100 ns, so the whole epoch (forward, fused
output step, backward, update) runs in ``_train_samples`` on flat offsets, with no call per sample.
"""

import math

import numpy as np

from .codes import BCE, CROSS_ENTROPY, H_L2, H_LR, OPT_SGD
from ._jit import jit
from ._numba_math import _act1, _deriv, _log1p_unit, _sum_log1p
from ._numba_update import _update_range


@jit
def _sample_plan(shapes, p_off, a_off, d_off0, d_off1):
    """Per layer, the offsets the batch-size-1 loop uses, as uint64 (Numba then skips the
    negative-index wraparound on every access): out, in, W, b, A, input, delta, next delta."""
    L = shapes.shape[0]
    plan = np.empty((L, 8), np.uint64)
    for l in range(L):
        o, fi = shapes[l, 0], shapes[l, 1]
        plan[l, 0] = o
        plan[l, 1] = fi
        plan[l, 2] = p_off[l]
        plan[l, 3] = p_off[l] + o * fi
        plan[l, 4] = a_off[l]
        plan[l, 5] = a_off[l - 1] if l > 0 else 0
        even = (L - 1 - l) % 2 == 0
        plan[l, 6] = d_off0 if even else d_off1
        plan[l, 7] = d_off1 if even else d_off0
    return plan


@jit
def _train_samples(X, Y, sw, order, theta, grad, plan, acts, loss, opt, hyper, s1, s2, t0, work):
    """``train_epoch`` for batch size 1: forward, output step, backward and update per sample.

    Everything runs in this one function on flat uint64 offsets from ``_sample_plan``: a step
    of a small network costs under 100 ns, and a call per sample that passes arrays would cost
    more than that in reference counting alone. The sample's features are copied to
    ``work[0:in]``. Returns ``(loss_sum, n_done)`` as ``train_epoch`` does.
    """
    N = X.shape[0] if order is None else order.shape[0]
    L = plan.shape[0]
    n_in = plan[0, 1]
    k = plan[L - 1, 0]
    P = plan[L - 1, 3] + k
    pz = plan[L - 1, 4]
    d0 = plan[L - 1, 6]
    lr = hyper[H_LR]
    l2 = hyper[H_L2]
    # BCE's log1p(e) terms, evaluated 64 at a time (always finite, so the check needs none of
    # them): one at a time, their long dependent chain held up every step
    defer = loss == BCE and k <= 32
    ebuf = np.empty(64)
    wbuf = np.empty(64)
    ne = 0
    ne_new = 0
    loss_sum = 0.0
    done = 0
    for start in range(N):
        r = start if order is None else order[start]
        for p in range(n_in):
            work[p] = X[r, p]
        w = 1.0 if sw is None else sw[r]
        # forward: the pre-activations, then g; the output layer keeps its logits
        for l in range(L):
            o, fi, pw, pb = plan[l, 0], plan[l, 1], plan[l, 2], plan[l, 3]
            pa, pin = plan[l, 4], plan[l, 5]
            for j in range(o):
                s = theta[pb + j]
                row = pw + j * fi
                for p in range(fi):
                    s += theta[row + p] * work[pin + p]
                work[pa + j] = s
            if l < L - 1:
                act = acts[l]
                for j in range(o):
                    work[pa + j] = _act1(work[pa + j], act)
        # fused output step into the output layer's delta buffer
        value = 0.0
        if loss == BCE:
            if defer and ne + k > 64:
                loss_sum += _sum_log1p(ebuf, wbuf, ne)
                ne = 0
            ne_new = ne
            for j in range(k):
                z = work[pz + j]
                y = Y[r, j]
                e = math.exp(-abs(z))
                q = 1.0 / (1.0 + e)
                if defer:
                    ebuf[ne_new] = e
                    wbuf[ne_new] = w
                    ne_new += 1
                    value += max(z, 0.0) - y * z
                else:
                    value += max(z, 0.0) + _log1p_unit(e) - y * z
                work[d0 + j] = ((q if z >= 0 else e * q) - y) * w
        elif loss == CROSS_ENTROPY:
            m = -np.inf
            for j in range(k):
                m = max(m, work[pz + j])
            s = 0.0
            for j in range(k):
                s += math.exp(work[pz + j] - m)
            lse = m + math.log(s)
            for j in range(k):
                z = work[pz + j]
                y = Y[r, j]
                if y != 0:  # skip 0 * inf when the logit gap overflows
                    value += y * (lse - z)
                work[d0 + j] = (math.exp(z - m) / s - y) * w
        else:
            for j in range(k):
                d = work[pz + j] - Y[r, j]
                value += 0.5 * d * d
                work[d0 + j] = d * w
        value *= w
        # backward: db = dz, dW = dz x in, then the previous layer's delta
        # d_in[p] = g'(a[p]) * sum_j dz[j] W[j, p], summed in a register. ``chk`` stays 0 unless
        # the loss or a gradient entry is inf or NaN (fastmath keeps NaN and inf semantics).
        chk = value * 0.0
        for l in range(L - 1, -1, -1):
            o, fi, pw, pb, pin = plan[l, 0], plan[l, 1], plan[l, 2], plan[l, 3], plan[l, 5]
            cur, nxt = plan[l, 6], plan[l, 7]
            for j in range(o):
                dz = work[cur + j]
                grad[pb + j] = dz
                chk += dz * 0.0
                row = pw + j * fi
                for p in range(fi):
                    g = dz * work[pin + p]
                    grad[row + p] = g
                    chk += g * 0.0
            if l > 0:
                act = acts[l - 1]
                for p in range(fi):
                    s = 0.0
                    for j in range(o):
                        s += work[cur + j] * theta[pw + j * fi + p]
                    work[nxt + p] = s * _deriv(work[pin + p], act)
        if chk != 0.0:
            break
        # update: plain SGD without L2 is one pass over theta
        if opt == OPT_SGD and l2 == 0:
            for i in range(P):
                theta[i] -= lr * grad[i]
        else:
            t = t0 + done + 1
            for l in range(L):
                w0 = np.int64(plan[l, 2])
                b0 = np.int64(plan[l, 3])
                _update_range(opt, hyper, theta, grad, s1, s2, w0, b0, t, l2)  # weights
                _update_range(opt, hyper, theta, grad, s1, s2, b0, b0 + np.int64(plan[l, 0]), t,
                              0.0)  # biases
        loss_sum += value
        ne = ne_new
        done += 1
    if defer:
        loss_sum += _sum_log1p(ebuf, wbuf, ne)
    return loss_sum, done
