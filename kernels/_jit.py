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
