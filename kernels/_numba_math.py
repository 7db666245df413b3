"""Scalar math for the Numba CPU kernels, inlined where it is used: activations and their
derivatives (written from the output), the BCE terms, and an inline log1p.
"""

import math

import numba

from .codes import SIGMOID
from ._jit import jit
from ._numba_scalar import scalar_math


# the activations and derivatives shared with the CUDA kernels (``_numba_scalar``)
_sigmoid, _softplus, _act, _deriv = scalar_math(jit(inline="always"), numba.float64)


@jit(inline="always")
def _bce_terms(z):
    """(softplus(z), sigmoid(z)) from one exponential: the BCE loss term and its dZ term."""
    e = math.exp(-abs(z))
    sig = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
    return max(z, 0.0) + math.log1p(e), sig


@jit(inline="always")
def _sigmoid_nb(z):
    """sigmoid(z) from exp(-|z|) with a select instead of a branch: the sign of a hidden unit's
    z is data-dependent, and a mispredicted branch costs more than the multiply."""
    e = math.exp(-abs(z))
    r = 1.0 / (1.0 + e)
    return r if z >= 0 else e * r


@jit(inline="always")
def _act1(z, act):
    """``_act`` for the per-sample path: sigmoid without a branch."""
    if act == SIGMOID:
        return _sigmoid_nb(z)
    return _act(z, act)


# fdlibm's log1p (s_log1p.c): ln 2 split in two, and the minimax coefficients of R(s)
_SQRT2M1 = 0.41421356237309503
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LP1, _LP2, _LP3 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01
_LP4, _LP5 = 2.222219843214978396e-01, 1.818357216161805012e-01
_LP6, _LP7 = 1.531383769920937332e-01, 1.479819860511658591e-01


@jit(inline="always")
def _log1p_unit(e):
    """log1p(e) for 0 <= e <= 1 (BCE's softplus term), inline: a libm call cost ~12 ns a step.

    fdlibm's reduction 1 + e = 2^k (1 + f) is exact here without bit tricks: f = e (k = 0)
    below sqrt(2) - 1, else f = (e - 1) / 2 (k = 1). Within 1 ulp of libm in IEEE order; the
    kernels' fastmath reassociation makes that up to 3 ulp (keeping it exact cost ~8 ns a step).
    """
    big = e > _SQRT2M1
    f = 0.5 * (e - 1.0) if big else e
    k = 1.0 if big else 0.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = w * (_LP2 + w * (_LP4 + w * _LP6)) + z * (_LP1 + w * (_LP3 + w * (_LP5 + w * _LP7)))
    hfsq = 0.5 * f * f
    return k * _LN2_HI + (f - (hfsq - (s * (hfsq + r) + k * _LN2_LO)))


@jit(inline="always")
def _sum_log1p(e, w, n):
    """sum_i w[i] * log1p(e[i]) for i < n: independent evaluations that the CPU overlaps."""
    total = 0.0
    for i in range(n):
        total += w[i] * _log1p_unit(e[i])
    return total
