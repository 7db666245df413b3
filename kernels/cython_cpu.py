"""Cython CPU backend: the compiled kernels of ``_cython_cpu``, on fastnn's own BLAS.

Importing this module (done lazily by ``fastnn._backend``) picks the build of the extension for
this CPU (``ext``: the AVX2 + FMA build ``_cython_cpu_avx2`` where the CPU has both and it was
built, else the baseline ``_cython_cpu``; both are compiled from ``kernels/_cython/``), loads
fastnn's BLAS (``fastnn.kernels._blas``), hands its sgemm/dgemm to the extension and gives it
fastnn's thread count. The contract functions are the extension's own, so a call pays no Python
wrapper; the memory helpers are the reference backend's (host NumPy arrays).

``FASTNN_CYTHON_BUILD=baseline`` (or ``avx2``) overrides the choice; asking for the AVX2 build on
a CPU without AVX2 and FMA is an error, never an illegal instruction.
"""

import importlib
import importlib.util
import os

from . import _blas, _threads
# host memory: NumPy arrays, as the reference backend's
from ._host import ON_DEVICE, to_backend, to_host, zeros  # noqa: F401 (shared)

_PACKAGE = __name__.rpartition(".")[0]
_MODULES = {"baseline": _PACKAGE + "._cython_cpu", "avx2": _PACKAGE + "._cython_cpu_avx2"}


def cpu_has_avx2_fma():
    """True if the CPU (and the OS, which must save the AVX registers) supports AVX2 and FMA."""
    return _blas.cpu_has("AVX2", "FMA3")


def _choose_build():
    """The extension build to import: "avx2" or "baseline" (see the module docstring)."""
    asked = os.environ.get("FASTNN_CYTHON_BUILD", "").strip().lower() or "auto"
    if asked not in ("auto", "avx2", "baseline"):
        raise ValueError(f"FASTNN_CYTHON_BUILD={asked!r}: use 'auto', 'avx2' or 'baseline'")
    if asked == "baseline":
        return "baseline"
    built = importlib.util.find_spec(_MODULES["avx2"]) is not None
    usable = built and cpu_has_avx2_fma()
    if asked == "avx2" and not usable:
        raise RuntimeError(
            "FASTNN_CYTHON_BUILD=avx2, but "
            + ("this CPU lacks AVX2 or FMA" if built else "the AVX2 build was not compiled"))
    return "avx2" if usable else "baseline"


BUILD = _choose_build()

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
WAIT_POLICY_SET = not _USER_POLICY and "GOMP_SPINCOUNT" not in os.environ  # fastnn chose PASSIVE
# the OpenMP loops may use several threads only if their idle threads will sleep
OPENMP_SHARED_SPINNING = _libgomp_loaded() and _USER_POLICY != "passive"
if WAIT_POLICY_SET:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    ext = importlib.import_module(_MODULES[BUILD])
finally:
    if WAIT_POLICY_SET:
        del os.environ["OMP_WAIT_POLICY"]
# the kernel contract: the extension's own functions, so a call pays no Python wrapper
adam_update, backward, forward = ext.adam_update, ext.backward, ext.forward
momentum_update, output_step, sgd_update = ext.momentum_update, ext.output_step, ext.sgd_update
train_epoch, update = ext.train_epoch, ext.update
all_finite, copy_into = ext.all_finite, ext.copy_into
# train_step's compiled input check, which fastnn.model also uses with the numba backend
step_inputs = ext.step_inputs

__all__ = ["ON_DEVICE", "adam_update", "all_finite", "backward", "copy_into", "forward",
           "momentum_update", "openmp_enabled", "output_step", "sgd_update", "step_inputs",
           "to_backend", "to_host", "train_epoch", "update", "zeros"]

_info = _blas.load()
ext.set_blas(_info["sgemm"], _info["dgemm"])


def set_num_threads(n):
    """Threads for the OpenMP loops: ``n``, or 1 when they would share a spinning libgomp."""
    ext.set_num_threads(1 if OPENMP_SHARED_SPINNING else n)


_threads.follow(set_num_threads)


def openmp_enabled():
    """True if the extension was compiled with OpenMP."""
    return ext.openmp_enabled()
