"""Numba options, kept in one place: every Numba kernel is compiled through ``jit`` here.

- ``fastmath`` never includes ``nnan``/``ninf``, so NaN and inf checks stay true.
- ``cache=True`` is used when Numba can find a writable cache location (the package's
  ``__pycache__``, ``NUMBA_CACHE_DIR`` or the user-wide cache); on a read-only install with none
  of these, caching is quietly turned off instead of raising.
- Nothing compiles at import: functions are compiled lazily on first call.
"""

import warnings

import numba

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})
OPTIONS = {"nogil": True, "fastmath": set(FASTMATH), "error_model": "numpy", "boundscheck": False}
# for code whose rounding depends on the order of its float operations (reassoc would undo it)
FASTMATH_ORDERED = FASTMATH - {"reassoc"}


def jit(func=None, **overrides):
    """``numba.njit`` with fastnn's options; usable as ``@jit`` or ``@jit(parallel=True)``."""

    def wrap(f):
        opts = {**OPTIONS, **overrides}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", numba.NumbaWarning)
                return numba.njit(cache=True, **opts)(f)
        except RuntimeError:  # no writable cache locator: compile without caching
            return numba.njit(cache=False, **opts)(f)

    return wrap if func is None else wrap(func)


def overload(func, **overrides):
    """``numba.extending.overload`` with fastnn's options, for helpers specialised by type."""
    from numba.extending import overload as numba_overload

    return numba_overload(func, jit_options={**OPTIONS, **overrides})


# --- CUDA -------------------------------------------------------------------------------------
# numba.cuda is imported lazily (only the cuda backend pays for it). fastmath stays off: CUDA's
# fastmath turns on nnan/ninf, which would make the non-finite checks of train_epoch lie.
CUDA_OPTIONS = {"fastmath": False}

# GEMM tiles (BM, BN, BK, TM, TN): a block computes a BM x BN tile of C, K in steps of BK, each
# thread a TM x TN register tile, so a block has (BM/TM) * (BN/TN) threads. The largest tile that
# still gives at least 64 blocks is used: "huge" (8x8 per thread) for the largest products (on an
# H100 its three 1024x2048x2048 forms ran at 52-55% of cuBLAS, 0.31-0.36 ms against 0.49-0.50 ms
# for "big"), "big" for large ones, "small" keeps enough blocks in flight for small ones.
# TM and TN must be even (a thread's rows and columns are two runs, half a tile apart).
# The simulator runs every thread as a Python thread, so it gets tiny tiles (same code paths).
GEMM_TILES = {"huge": (128, 128, 8, 8, 8), "big": (64, 64, 16, 4, 4), "small": (32, 32, 16, 2, 2)}
SIM_GEMM_TILES = {"huge": (8, 8, 4, 2, 2), "big": (8, 8, 4, 2, 2), "small": (8, 8, 4, 2, 2)}
# threads per block (and a cap on blocks) for element-wise and row kernels
THREADS, SIM_THREADS = 256, 16
MAX_BLOCKS, SIM_MAX_BLOCKS = 1024, 2


def cuda_simulated():
    """True when numba runs CUDA kernels in its simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def cuda_jit(func=None, **overrides):
    """``numba.cuda.jit`` with fastnn's CUDA options; compiles lazily, on first launch."""

    def wrap(f):
        from numba import cuda

        return cuda.jit(**{**CUDA_OPTIONS, **overrides})(f)

    return wrap if func is None else wrap(func)
