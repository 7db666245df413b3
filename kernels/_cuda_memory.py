"""Memory for the numba.cuda backend: device arrays, host copies, and the contract's memory rule.

The contract (``fastnn.kernels``) lets a device backend take NumPy arrays wherever it takes
device arrays. Numba would copy each host argument of a kernel launch up on its own and write
every one back after the launch, last copy wins; a host array passed as two arguments (backward's
dW is also the GEMM's spare argument; the updates pass p, g, p, p) then comes back stale. So the
contract functions never hand a host array to a launch: ``follow_spec`` wraps each one so that
every distinct host array is copied up once per call and the ones its spec writes are copied back
once, after the call; device arrays are used in place.
"""

import functools
import inspect

import numpy as np
from numba import cuda

from . import SPECS
from . import _cuda_rows
from ._cuda_math import STATE_SIZE

HOST_ARRAYS = frozenset({"shapes", "acts", "hyper"})
"""Small arrays of layout and hyper-parameters that the device backend reads on the host."""


def is_device_array(x):
    """Whether ``x`` is a GPU array: a numba device array or anything with
    ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors, ...).

    Parameters
    ----------
    x : object

    Returns
    -------
    bool
    """
    return hasattr(x, "__cuda_array_interface__") or cuda.devicearray.is_cuda_ndarray(x)


def to_device(x, dtype=None):
    """A numba device array for ``x``, without a copy when it is already on the GPU.

    Parameters
    ----------
    x : array_like or GPU array
        Host data is made C-contiguous and copied up; a numba device array is returned as is,
        and another object with ``__cuda_array_interface__`` is wrapped in place (zero-copy).
    dtype : numpy dtype, optional
        Cast host data to this dtype first. Device data is never cast here.

    Returns
    -------
    numba device array
    """
    if cuda.devicearray.is_cuda_ndarray(x):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return cuda.as_cuda_array(x)
    return cuda.to_device(np.ascontiguousarray(x, dtype=dtype))


def to_host(x):
    """A NumPy array for ``x``: copied down from the GPU, or ``np.asarray(x)`` for host data.

    Parameters
    ----------
    x : array_like or GPU array

    Returns
    -------
    numpy.ndarray
    """
    if is_device_array(x):
        return to_device(x).copy_to_host()
    return np.asarray(x)


def device_zeros(shape, dtype=np.float32):
    """A zero-filled C-contiguous device array.

    Parameters
    ----------
    shape : int or tuple of int
    dtype : numpy dtype, default float32

    Returns
    -------
    numba.cuda.cudadrv.devicearray.DeviceNDArray
    """
    dtype = np.dtype(dtype)
    out = cuda.device_array(shape, dtype=dtype)
    flat = out.reshape(out.size)
    if out.size:
        fill = _cuda_rows.flat_kernels()[0]
        fill[_cuda_rows.blocks(out.size), _cuda_rows.threads()](flat, dtype.type(0))
    return out


def flat(x):
    """A 1-D numba device array over the C-contiguous GPU array ``x`` (no copy)."""
    x = to_device(x)
    return x.reshape(x.size) if x.ndim != 1 else x


def dtype_of(a):
    """float64 or float32, from any array's dtype (NumPy, numba, CuPy or torch)."""
    return np.dtype(np.float64 if a.dtype.itemsize == 8 else np.float32)


def _params(signature):
    """The parameter names of a spec's signature, ``"f(a, b) -> r"`` -> ``("a", "b")``."""
    inside = signature[signature.index("(") + 1:signature.index(")")]
    return tuple(p.strip() for p in inside.split(","))


def _same_memory(a):
    """A key that two NumPy arrays share exactly when they are views of the same elements."""
    return a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str


def follow_spec(func):
    """Make the contract function ``func`` follow the memory rule of its spec (``SPECS``).

    Each distinct host array among its arguments (the same object, or a view of the same
    elements, counts once) is copied up once per call, except the host-side ``HOST_ARRAYS``;
    those its spec ``writes`` are copied back once, after the call returns. Device arrays, and
    every call without host arrays, pass straight through.
    """
    spec = SPECS[func.__name__]
    params = _params(spec.signature)
    movable = tuple(i for i, p in enumerate(params) if p not in HOST_ARRAYS)
    written = frozenset(i for i in movable if params[i] in spec.writes)

    bind = inspect.signature(func).bind

    @functools.wraps(func)
    def call(*args, **kwargs):
        if kwargs:
            args = bind(*args, **kwargs).args
        host = [i for i in movable if isinstance(args[i], np.ndarray)]
        if not host:
            return func(*args)
        args = list(args)
        copies, back = {}, {}
        for i in host:
            key = _same_memory(args[i])
            dev = copies.get(key)
            if dev is None:
                dev = copies[key] = cuda.to_device(args[i])
            if i in written:
                back[key] = (args[i], dev)
            args[i] = dev
        out = func(*args)
        for host_array, dev in back.values():
            dev.copy_to_host(host_array)
        return out

    return call


# --- device constants, made once per process --------------------------------------------------

_made = {}


def idle_state():
    """A zero state vector (``_cuda_math.S_*``): kernels read it and never stop."""
    s = _made.get("state")
    if s is None:
        s = _made["state"] = cuda.to_device(np.zeros(STATE_SIZE))
    return s


def no_bounds():
    """The int64 ``bounds`` that a layer-less update (L2 on every element) passes along."""
    s = _made.get("bounds")
    if s is None:
        s = _made["bounds"] = cuda.to_device(np.zeros(1, np.int64))
    return s


def layer_bounds(shapes):
    """Device int64 [layer starts..., total, weight ends...] for the update's L2 mask."""
    key = tuple(map(tuple, np.asarray(shapes).tolist()))
    got = _made.get(key)
    if got is None:
        starts, ends, pos = [], [], 0
        for o, i in key:
            starts.append(pos)
            ends.append(pos + o * i)
            pos += o * i + o
        got = _made[key] = cuda.to_device(np.array(starts + [pos] + ends, np.int64))
    return got
