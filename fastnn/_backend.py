"""Backend selection: which kernel module the API layer calls.

Backends are imported lazily, on first use, so ``import fastnn`` stays fast and compiles nothing.
"""

import importlib
import importlib.util
import os
import threading

from .kernels import BACKENDS as MODULES  # name -> module that implements the kernel contract
# Preference order for the default: the fastest available CPU backend, per the benchmarks
# (benchmarks/compare_cpu.py: cython was fastest at every size measured, then numba, then numpy).
# cuda is chosen explicitly (set_backend("cuda") or FASTNN_BACKEND=cuda).
DEFAULT_ORDER = ("cython", "numba", "numpy")

_lock = threading.Lock()
_current = None
_loaded = {}


def why_unavailable(name):
    """None if backend ``name`` can be used here, else a sentence saying why not."""
    if name == "numpy":
        return None
    if name in ("numba", "cuda") and importlib.util.find_spec("numba") is None:
        return "numba is not installed"
    if name == "cython" and importlib.util.find_spec("fastnn.kernels._cython_cpu") is None:
        return "the compiled Cython extension fastnn.kernels._cython_cpu was not built"
    if name == "cuda":
        if importlib.util.find_spec("fastnn.kernels.numba_cuda") is None:
            return "the numba_cuda kernel module is missing"
        from numba import cuda

        if not cuda.is_available():
            return "no CUDA GPU is available (numba.cuda.is_available() is False)"
    return None


def available_backends():
    """Names of the backends that can run on this machine, fastest CPU backend first."""
    names = [n for n in DEFAULT_ORDER if why_unavailable(n) is None]
    if why_unavailable("cuda") is None:
        names.append("cuda")
    return names


def check_backend(name):
    """ValueError for an unknown backend name, RuntimeError (saying why) for one not available."""
    if type(name) is str and name in _loaded:  # imported once, so available (saves ~1 µs)
        return
    if not isinstance(name, str) or name not in MODULES:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(MODULES)}")
    why = why_unavailable(name)
    if why is not None:
        raise RuntimeError(
            f"backend {name!r} is not available: {why}; available backends: "
            + ", ".join(available_backends())
        )


def set_backend(name):
    """Choose the backend that fastnn's models use from now on.

    Parameters
    ----------
    name : {"numpy", "numba", "cython", "cuda"}
        The backend. ValueError for an unknown name, RuntimeError (saying why) for one that is
        not available here.
    """
    global _current
    check_backend(name)
    with _lock:
        _current = name


def get_backend():
    """Name of the backend in use: set_backend's choice, else ``FASTNN_BACKEND``, else the fastest."""
    global _current
    current = _current
    if current is not None:  # set already: no lock needed to read one name (hot path)
        return current
    with _lock:
        if _current is None:
            env = os.environ.get("FASTNN_BACKEND", "").strip()
            if env:
                check_backend(env)
                _current = env
            else:
                _current = available_backends()[0]
        return _current


def kernels(name=None):
    """The kernel module for backend ``name`` (default: the current backend), imported on first use."""
    if name is None:  # once chosen, the current backend is read without taking the lock
        name = _current if _current is not None else get_backend()
    mod = _loaded.get(name)
    if mod is None:
        check_backend(name)
        mod = _loaded[name] = importlib.import_module(MODULES[name])
    return mod
