"""Scalar activation math, written once and compiled by Numba twice: for the CPU and for CUDA.

As in stumpy, the CPU and GPU kernels share their core: ``scalar_math`` builds the activations
and their derivatives (written from the output A) with a given compiler and float type.
``_numba_math`` compiles them for the CPU with ``F = float64``: float32 inputs then meet float64
constants, the typing the CPU kernels have always had. ``_cuda_math`` compiles them per dtype,
so float32 CUDA code never touches a float64 constant (that would be slow double precision).
"""

import math

from .codes import RELU, SIGMOID, SOFTPLUS, STEP, TANH


def scalar_math(compile, F):
    """``(sigmoid, softplus, act, deriv)`` compiled by ``compile``, constants of type ``F``.

    Parameters
    ----------
    compile : callable
        A decorator that compiles a scalar function (``jit(inline="always")`` on the CPU,
        ``cuda.jit(device=True)`` for CUDA).
    F : numba float type
        The type of every constant (called in the compiled code: ``F(1)``).

    Returns
    -------
    tuple of compiled functions
        ``sigmoid(z)``, ``softplus(z)``, ``act(z, code)`` (g(z) for an activation code; softmax
        is row-wise and not here) and ``deriv(a, code)`` (g'(z) from a = g(z); 1 for IDENTITY
        and any code without a derivative).
    """

    @compile
    def sigmoid(z):
        if z >= F(0):
            return F(1) / (F(1) + math.exp(-z))
        e = math.exp(z)
        return e / (F(1) + e)

    @compile
    def softplus(z):
        return max(z, F(0)) + math.log1p(math.exp(-abs(z)))

    @compile
    def act(z, code):
        if code == RELU:
            return z if z > F(0) else F(0)
        if code == SIGMOID:
            return sigmoid(z)
        if code == TANH:
            return math.tanh(z)
        if code == SOFTPLUS:
            return softplus(z)
        if code == STEP:
            return F(1) if z >= F(0) else F(0)
        return z

    @compile
    def deriv(a, code):
        if code == RELU:
            return F(1) if a > F(0) else F(0)
        if code == SIGMOID:
            return a * (F(1) - a)
        if code == TANH:
            return F(1) - a * a
        if code == SOFTPLUS:
            return -math.expm1(-a)
        return F(1)

    return sigmoid, softplus, act, deriv
