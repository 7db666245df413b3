"""Cython CPU backend: the compiled kernels of ``_cython_cpu``, on fastnn's own BLAS.

Importing this module (done lazily by ``fastnn._backend``) loads fastnn's BLAS (``fastnn._blas``),
hands its sgemm/dgemm to the extension and gives it fastnn's thread count; the contract functions
are the extension's own, so a call pays no Python wrapper.
"""

from .. import _blas, _threads
from . import _cython_cpu
from ._cython_cpu import (  # noqa: F401  (the kernel contract)
    adam_update, backward, forward, momentum_update, output_step, sgd_update, train_epoch,
)

_info = _blas.load()
_cython_cpu.set_blas(_info["sgemm"], _info["dgemm"])
_cython_cpu.set_num_threads(_threads.get_num_threads())


def openmp_enabled():
    """True if the extension was compiled with OpenMP."""
    return _cython_cpu.openmp_enabled()
