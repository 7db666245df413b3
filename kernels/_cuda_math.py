"""Per-dtype CUDA device functions (activations and their derivatives written from the output)
and the layout of the device state vector.

The scalar math is the CPU kernels' own (``_numba_scalar``), compiled for the device once per
dtype on first use, so float32 code never touches a float64 constant (a float64 literal would
silently promote a float32 kernel to slow double precision).
"""

import functools

import numba
import numpy as np

from ._jit import cuda_jit
from ._numba_scalar import scalar_math

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
    """``(sigmoid, softplus, act, deriv)`` device functions for ``dtype`` (``np.dtype``), from
    the math the CPU kernels share (``_numba_scalar``), with constants of that dtype."""
    return scalar_math(cuda_jit(device=True), numba_float(dtype))
