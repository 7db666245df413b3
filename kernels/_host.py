"""The memory helpers of a host backend (``reference``, ``numba_cpu``, ``cython_cpu``), and the
contract's ``copy_into`` for NumPy arrays.

A host backend's memory is NumPy's: its kernels take C-contiguous NumPy arrays, so moving data
"to the backend" is at most a contiguous copy or a cast, and nothing is ever on a device.
"""

import numpy as np

ON_DEVICE = False
"""A host backend's arrays live in host memory."""


def to_backend(x, dtype=None):
    """``x`` as a C-contiguous NumPy array (of ``dtype`` when given); no copy when it is one."""
    return np.ascontiguousarray(x, dtype=dtype)


def to_host(x):
    """``x`` as a NumPy array (it already is one on a host backend)."""
    return np.asarray(x)


def zeros(shape, dtype):
    """A zero-filled C-contiguous NumPy array."""
    return np.zeros(shape, dtype)


def copy_into(dst, src):
    """The contract's ``copy_into`` on NumPy arrays: ``dst[...] = src`` (a memcpy; faster from
    Python than a compiled loop, whose dispatch costs more than the copy of a small model)."""
    dst[...] = src
