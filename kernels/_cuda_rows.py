"""numba.cuda element-wise and row kernels: δ·σ', softmax, the fused output step, the batch
gather, the fused optimiser update and a fill. Built per dtype on first use.

Every kernel takes the device state vector (``_cuda_math.S_*``) and returns at once when its
"stopped" flag is set, so an epoch that hit a non-finite batch turns its remaining launches
into no-ops without a read-back.
"""

import functools
import math

from numba import cuda

from .codes import BCE, CROSS_ENTROPY, OPT_ADAM, OPT_NESTEROV, OPT_SGD
from ._cuda_math import (
    S_BAD, S_BATCH_LOSS, S_DONE, S_LOSS_SUM, S_STOPPED, device_math, numba_float,
)
from ._jit import MAX_BLOCKS, SIM_MAX_BLOCKS, SIM_THREADS, THREADS, cuda_jit, cuda_simulated


def threads():
    """Threads per block for element-wise and row kernels (few in the simulator)."""
    return SIM_THREADS if cuda_simulated() else THREADS


def blocks(n):
    """Blocks for a grid-stride loop over ``n`` items."""
    cap = SIM_MAX_BLOCKS if cuda_simulated() else MAX_BLOCKS
    return max(1, min(cap, -(-n // threads())))


@functools.lru_cache(maxsize=None)
def delta_kernel(dtype):
    """``(dZ, A, act, state)``: dZ *= g'(A), element-wise, in place."""
    _, _, _, deriv = device_math(dtype)

    @cuda_jit
    def kernel(dZ, A, act, state):
        if state[S_STOPPED] != 0:
            return
        n, k = dZ.shape
        for e in range(cuda.grid(1), n * k, cuda.gridsize(1)):
            i = e // k
            j = e - i * k
            dZ[i, j] *= deriv(A[i, j], act)

    return kernel


@functools.lru_cache(maxsize=None)
def softmax_kernel(dtype):
    """``(out, state)``: row-wise softmax of ``out`` in place, one thread per row."""
    F = numba_float(dtype)

    @cuda_jit
    def kernel(out, state):
        if state[S_STOPPED] != 0:
            return
        n, k = out.shape
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            m = out[i, 0]
            for j in range(1, k):
                m = max(m, out[i, j])
            s = F(0)
            for j in range(k):
                e = math.exp(out[i, j] - m)
                out[i, j] = e
                s += e
            inv = F(1) / s
            for j in range(k):
                out[i, j] *= inv

    return kernel


@functools.lru_cache(maxsize=None)
def output_kernel(dtype, nthreads):
    """``(Z, Y, sw, has_sw, loss, dZ, state)``: the fused output step, in ONE block.

    Each thread takes rows i, writes ``dZ = w_i (g_out(Z) - Y) / n`` and its weighted row loss
    (log-sum-exp / softplus forms); the block then adds them in a fixed order (deterministic)
    into ``state[S_BATCH_LOSS]``, in float64.
    """
    F, F64 = numba_float(dtype), numba_float("float64")
    sigmoid, softplus, _, _ = device_math(dtype)

    @cuda_jit
    def kernel(Z, Y, sw, has_sw, loss, dZ, state):
        if state[S_STOPPED] != 0:
            return
        part = cuda.shared.array(nthreads, F64)
        n, k = Z.shape
        t = cuda.threadIdx.x
        inv_n = F(1) / F(n)
        total = 0.0
        for i in range(t, n, nthreads):
            w = sw[i] * inv_n if has_sw else inv_n
            li = 0.0
            if loss == CROSS_ENTROPY:
                m = Z[i, 0]
                for j in range(1, k):
                    m = max(m, Z[i, j])
                s = F(0)
                for j in range(k):
                    s += math.exp(Z[i, j] - m)
                lse = m + math.log(s)
                inv_s = F(1) / s
                for j in range(k):
                    y = Y[i, j]
                    li += y * (lse - Z[i, j])
                    dZ[i, j] = (math.exp(Z[i, j] - m) * inv_s - y) * w
            elif loss == BCE:
                for j in range(k):
                    z = Z[i, j]
                    y = Y[i, j]
                    li += softplus(z) - y * z
                    dZ[i, j] = (sigmoid(z) - y) * w
            else:
                for j in range(k):
                    d = Z[i, j] - Y[i, j]
                    li += F(0.5) * d * d
                    dZ[i, j] = d * w
            total += li * sw[i] if has_sw else li
        part[t] = total
        cuda.syncthreads()
        step = nthreads // 2
        while step > 0:
            if t < step:
                part[t] += part[t + step]
            cuda.syncthreads()
            step //= 2
        if t == 0:
            state[S_BATCH_LOSS] = part[0] / n

    return kernel


@functools.lru_cache(maxsize=None)
def gather_kernel(dtype):
    """``(X, Y, sw, has_sw, order, start, n, Xb, Yb, swb, state)``: rows ``order[start:start+n]``."""

    @cuda_jit
    def kernel(X, Y, sw, has_sw, order, start, n, Xb, Yb, swb, state):
        if state[S_STOPPED] != 0:
            return
        d = X.shape[1]
        k = Y.shape[1]
        w = d + k + 1
        for e in range(cuda.grid(1), n * w, cuda.gridsize(1)):
            i = e // w
            c = e - i * w
            r = order[start + i]
            if c < d:
                Xb[i, c] = X[r, c]
            elif c < d + k:
                Yb[i, c - d] = Y[r, c - d]
            elif has_sw:
                swb[i] = sw[r]

    return kernel


@functools.lru_cache(maxsize=None)
def update_kernel(dtype):
    """The fused optimiser step over a flat parameter vector.

    ``(opt, p, g, s1, s2, lr, l2, mu, b1, b2, eps, step, bounds, L, rows, track, state)``.
    With ``L > 0``, ``bounds`` (2L+1 int64) holds each layer's start and weight end, then the
    total, and L2 applies to weights only; with ``L == 0`` it applies to every element. With
    ``track`` (train_epoch) the step is skipped when the batch loss is not finite or the GEMM
    flagged a non-finite gradient (then "stopped" is raised), and otherwise block 0 thread 0
    adds ``batch_loss * rows`` to loss_sum and counts the batch as done. ``step`` is Adam's
    bias-corrected learning rate.
    """
    F = numba_float(dtype)

    @cuda_jit
    def kernel(opt, p, g, s1, s2, lr, l2, mu, b1, b2, eps, step, bounds, L, rows, track, state):
        if state[S_STOPPED] != 0:
            return
        first = cuda.grid(1) == 0
        if track:
            if state[S_BAD] != 0 or not math.isfinite(state[S_BATCH_LOSS]):
                if first:
                    state[S_STOPPED] = 1.0
                return
            if first:
                state[S_LOSS_SUM] += state[S_BATCH_LOSS] * rows
                state[S_DONE] += 1.0
        for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
            lam = l2
            if L > 0:
                lam = F(0)
                for l in range(L):
                    if bounds[l] <= i < bounds[l + 1]:
                        if i < bounds[L + 1 + l]:
                            lam = l2
            gi = g[i] + lam * p[i]
            if opt == OPT_SGD:
                p[i] -= lr * gi
            elif opt == OPT_ADAM:
                mi = b1 * s1[i] + (F(1) - b1) * gi
                vi = b2 * s2[i] + (F(1) - b2) * gi * gi
                s1[i] = mi
                s2[i] = vi
                p[i] -= step * mi / (math.sqrt(vi) + eps)
            else:
                vi = mu * s1[i] - lr * gi
                s1[i] = vi
                if opt == OPT_NESTEROV:
                    p[i] += mu * vi - lr * gi
                else:
                    p[i] += vi

    return kernel


@functools.lru_cache(maxsize=None)
def flat_kernels():
    """``(fill, nonfinite)`` on a 1-D array ``x``, for every dtype: ``fill(x, value)`` sets
    x[:] = value; ``nonfinite(x, flag)`` sets flag[0] = 1 when a value of x is NaN or inf."""

    @cuda_jit
    def fill(x, value):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            x[i] = value

    @cuda_jit
    def nonfinite(x, flag):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            if not math.isfinite(x[i]):
                flag[0] = 1
                return

    return fill, nonfinite
