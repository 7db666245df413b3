"""What ``fastnn bench`` reports about the machine: CPU, BLAS, and the best measured GEMM rate."""

import ctypes
import os
import platform

import numpy as np

from .base import threads
from .timing import measure


def cpu_model():
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_libraries():
    """``[{"library", "version", "coretype", "threads"}]`` for the BLAS libraries loaded.

    Read with threadpoolctl where it is installed; fastnn's own BLAS
    (``fastnn.kernels.blas_info()``) where the build has one.
    """
    out = []
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        for lib in threadpoolctl.threadpool_info():
            if lib.get("user_api") == "blas":
                out.append({"library": os.path.basename(lib.get("filepath", "?")),
                            "version": lib.get("version"),
                            "coretype": lib.get("architecture"),
                            "threads": lib.get("num_threads")})
    info = fastnn_blas()
    if info is not None:
        out.append({"library": "fastnn: " + str(info.get("library")),
                    "version": info.get("version"), "coretype": info.get("coretype"),
                    "threads": None})
    return out


def fastnn_blas():
    """``fastnn.kernels.blas_info()`` (library, sgemm address, ...), or None where it fails."""
    from fastnn import kernels

    try:
        return kernels.blas_info()
    except Exception:  # a missing or broken BLAS install must not stop the benchmark
        return None


def machine_info():
    """A dict describing this machine and the libraries the benchmark used."""
    import fastnn

    info = {"cpu": cpu_model(), "cpus": os.cpu_count(), "threads": threads(),
            "python": platform.python_version(), "numpy": np.__version__,
            "fastnn": fastnn.__version__, "backends": fastnn.available_backends(),
            "blas": blas_libraries()}
    for mod in ("numba", "torch", "jax"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    return info


_c_int_p = ctypes.POINTER(ctypes.c_int)
_c_float_p = ctypes.POINTER(ctypes.c_float)
_SGEMM = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, _c_int_p, _c_int_p, _c_int_p,
                          _c_float_p, ctypes.c_void_p, _c_int_p, ctypes.c_void_p, _c_int_p,
                          _c_float_p, ctypes.c_void_p, _c_int_p, ctypes.c_size_t,
                          ctypes.c_size_t)


def sgemm_from_address(address):
    """A Python ``f(A, B, C)`` doing ``C = A @ B`` through a Fortran-interface sgemm at ``address``.

    A, B, C are C-contiguous float32 square matrices; row-major ``A @ B`` is column-major
    ``B' A'``, so the call passes B first.
    """
    fn = _SGEMM(address)
    one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)

    def gemm(A, B, C):
        n = ctypes.c_int(A.shape[0])
        fn(b"N", b"N", n, n, n, one, B.ctypes.data, n, A.ctypes.data, n, zero, C.ctypes.data, n,
           1, 1)

    return gemm


def gemm_rates(sizes=(1024, 2048), repeat=5):
    """Best float32 GEMM rate in GFLOP/s per size, via NumPy and via fastnn's BLAS if it has one.

    Returns
    -------
    list of dict
        ``{"via", "n", "gflops"}`` rows; ``2·n³`` FLOPs per product, best of ``repeat`` samples.
    """
    rng = np.random.default_rng(0)
    callers = [("numpy", lambda A, B, C: np.matmul(A, B, out=C))]
    info = fastnn_blas()
    if info is not None and info.get("sgemm"):
        callers.append((f"fastnn BLAS ({info.get('library')})", sgemm_from_address(info["sgemm"])))
    rows = []
    for n in sizes:
        A = rng.standard_normal((n, n), dtype=np.float32)
        B = rng.standard_normal((n, n), dtype=np.float32)
        C = np.empty((n, n), np.float32)
        for via, gemm in callers:
            best = min(measure(lambda: gemm(A, B, C), repeat=repeat, min_time=0.05))
            rows.append({"via": via, "n": n, "gflops": 2 * n**3 / best / 1e9})
    return rows
