"""Cython CPU backend: the compiled kernels of ``_cython_cpu``, on fastnn's own BLAS.

Importing this module (done lazily by ``fastnn._backend``) loads fastnn's BLAS (``fastnn._blas``),
hands its sgemm/dgemm to the extension and gives it fastnn's thread count; the contract functions
are the extension's own, so a call pays no Python wrapper.
"""

import os

from .. import _blas, _threads

# OpenMP threads that spin after a parallel loop (libgomp's default) steal the cores that BLAS's
# own threads need next: measured on 2 cores, a 128 x 784-256-10 step went from 1 ms to 30-70 ms.
# Unless the user chose a wait policy, make libgomp's threads sleep when idle; libgomp reads the
# variable once, when it loads with this extension, and the variable is removed again after.
# If another library (PyTorch, Numba's OpenMP layer) loaded libgomp first, it already runs with
# the default spinning policy and the extension shares it: then the OpenMP loops run on one
# thread, and BLAS alone uses the threads (measured: 784-512-512-10 at 40 ms instead of 6 ms).


def _libgomp_loaded():
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:  # not Linux: cannot tell, assume it was not
        return False


_USER_POLICY = os.environ.get("OMP_WAIT_POLICY", "").strip().lower()
_SET_WAIT_POLICY = not _USER_POLICY and "GOMP_SPINCOUNT" not in os.environ
# the OpenMP loops may use several threads only if their idle threads will sleep
OPENMP_SHARED_SPINNING = _libgomp_loaded() and _USER_POLICY != "passive"
if _SET_WAIT_POLICY:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    from . import _cython_cpu
finally:
    if _SET_WAIT_POLICY:
        del os.environ["OMP_WAIT_POLICY"]
from ._cython_cpu import (  # noqa: E402, F401  (the kernel contract)
    adam_update, backward, forward, momentum_update, output_step, sgd_update, train_epoch,
)
# train_step's compiled checks, which fastnn.model also uses with the numba backend
from ._cython_cpu import all_finite, copy_into, step_inputs  # noqa: E402, F401

__all__ = ["adam_update", "backward", "forward", "momentum_update", "openmp_enabled",
           "output_step", "sgd_update", "train_epoch"]

_info = _blas.load()
_cython_cpu.set_blas(_info["sgemm"], _info["dgemm"])


def set_num_threads(n):
    """Threads for the OpenMP loops: ``n``, or 1 when they would share a spinning libgomp."""
    _cython_cpu.set_num_threads(1 if OPENMP_SHARED_SPINNING else n)


set_num_threads(_threads.get_num_threads())


def openmp_enabled():
    """True if the extension was compiled with OpenMP."""
    return _cython_cpu.openmp_enabled()
