"""One thread count for everything fastnn runs in parallel: BLAS and Cython's OpenMP loops.

The compiled kernels call BLAS only from outside their own parallel regions, so BLAS threads and
fastnn's OpenMP threads take turns on the same ``n`` cores instead of nesting into ``n * n``.
The default ``n`` is ``OMP_NUM_THREADS`` when it is set, else ``NUMBA_NUM_THREADS``, else the
number of CPUs this process may run on. Setting the count touches only libraries already loaded;
those loaded later pick it up when they load.

fastnn's Numba kernels have no parallel regions (their products run on the shared BLAS), so
Numba's own thread pool is never started: starting it would load libgomp with OpenMP's default
*active* wait policy, and threads spinning after each Cython parallel loop then starve the BLAS
threads (measured: a 784-512-512-10 step went from 6 ms to 40 ms).
"""

import os
import threading

_lock = threading.Lock()
_n = None


def _env_int(name):
    value = os.environ.get(name, "").split(",")[0].strip()
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n > 0 else None


def cpu_count():
    """Number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_num_threads():
    """``OMP_NUM_THREADS``, else ``NUMBA_NUM_THREADS``, else :func:`cpu_count`."""
    return _env_int("OMP_NUM_THREADS") or _env_int("NUMBA_NUM_THREADS") or cpu_count()


def get_num_threads():
    """Number of threads fastnn's kernels (BLAS, OpenMP, Numba) use.

    Returns
    -------
    int
        The count set by :func:`set_num_threads`, else the default from the environment.
    """
    global _n
    with _lock:
        if _n is None:
            _n = default_num_threads()
        return _n


_followers = []  # set_num_threads of each thread pool loaded so far (fastnn's BLAS, Cython's)


def follow(set_count):
    """Register ``set_count(n)``, a pool's thread setter, and apply the current count to it now.

    Each library with threads of its own calls this when it loads (fastnn's BLAS copy, the Cython
    extension's OpenMP loops), so this module needs to know none of them.
    """
    n = get_num_threads()
    with _lock:
        _followers.append(set_count)
    set_count(n)


def _apply(n):
    from threadpoolctl import threadpool_limits

    with _lock:
        followers = list(_followers)
    for set_count in followers:
        set_count(n)
    threadpool_limits(limits=n, user_api="blas")


def set_num_threads(n):
    """Set how many threads fastnn uses, for BLAS and for its own parallel loops alike.

    Parameters
    ----------
    n : int
        At least 1. Applies to fastnn's BLAS and to the BLAS of NumPy/SciPy (through
        threadpoolctl, so the NumPy backend follows too) and to the Cython backend's OpenMP loops.
        The Numba backend's parallel work is its BLAS calls, so it follows too.
    """
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"the number of threads must be an integer, got {n!r}")
    n = int(n.__index__())
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    global _n
    with _lock:
        _n = n
    _apply(n)
