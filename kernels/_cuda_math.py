"""Per-dtype CUDA device functions: activations and their derivatives written from the output.

Each dtype gets its own set, built on first use, so float32 code never touches a float64 constant
(a float64 literal would silently promote a float32 kernel to slow double precision).
"""

import functools
import math

import numba
import numpy as np

from .codes import RELU, SIGMOID, SOFTPLUS, STEP, TANH
from ._jit import cuda_jit

# The float64 state vector that train_epoch keeps on the device (read back once per epoch):
# the current batch's loss, the running loss_sum and n_done, a "bad gradient" flag that the
# weight-gradient GEMM raises, and a "stopped" flag after which every kernel returns at once.
S_BATCH_LOSS, S_LOSS_SUM, S_DONE, S_BAD, S_STOPPED = range(5)
STATE_SIZE = 5


def numba_float(dtype):
    """The numba scalar type for a float32 or float64 NumPy dtype."""
    return numba.float64 if np.dtype(dtype) == np.float64 else numba.float32


@functools.lru_cache(maxsize=None)
def device_math(dtype):
    """``(sigmoid, softplus, act, deriv)`` device functions for ``dtype`` (``np.dtype``)."""
    F = numba_float(dtype)

    @cuda_jit(device=True)
    def sigmoid(z):
        if z >= F(0):
            return F(1) / (F(1) + math.exp(-z))
        e = math.exp(z)
        return e / (F(1) + e)

    @cuda_jit(device=True)
    def softplus(z):
        return max(z, F(0)) + math.log1p(math.exp(-abs(z)))

    @cuda_jit(device=True)
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

    @cuda_jit(device=True)
    def deriv(a, code):
        """g'(z) from a = g(z); IDENTITY (and anything unknown) gives 1."""
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

