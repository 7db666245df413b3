"""The fused output step of the Numba CPU backend: loss value and dZ in one pass.

Softmax with cross-entropy takes one exponential per logit, all rows' at once (a branch-free
float32 exp that vectorises); BCE and MSE are one loop over the logits.
"""

import math

import numpy as np
from numba import types

from .codes import BCE, CROSS_ENTROPY
from ._jit import FASTMATH_ORDERED, jit, overload
from ._numba_math import _bce_terms


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
