"""``fastnn.show_config()``: what this install runs on (backends, BLAS, OpenMP, threads)."""

import importlib.util
import os
import platform
import sys


def config():
    """Return the facts that :func:`show_config` prints, as a dict.

    Loads fastnn's BLAS (and, if built, the Cython extension) to report on them; compiles nothing.
    """
    from . import _backend
    from ._version import __version__
    from .kernels import _blas, _threads

    info = {
        "fastnn": __version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "backends_available": _backend.available_backends(),
        "backends_unavailable": {
            name: _backend.why_unavailable(name)
            for name in _backend.MODULES
            if name not in _backend.available_backends()
        },
        "backend": _backend.get_backend(),
        "cpu_avx512": _blas.cpu_has_avx512(),
    }
    blas = _blas.load()
    info["blas"] = {
        key: blas.get(key)
        for key in ("library", "version", "coretype", "coretype_forced", "filepath",
                    "fallback_reason")
    }
    if blas.get("coretype") is None:
        info["blas"]["coretype"] = _threadpool_coretype(blas["filepath"])
    info["blas"]["num_threads"] = _blas.get_num_threads()
    info["num_threads"] = _threads.get_num_threads()
    info["openmp"] = None
    info["cython_omp_threads"] = None
    info["cython_build"] = None
    if "cython" in info["backends_available"]:
        _backend.kernels("cython")  # sets the extension's BLAS and thread count
        from .kernels import cython_cpu

        info["openmp"] = cython_cpu.ext.openmp_enabled()
        info["cython_omp_threads"] = cython_cpu.ext.get_num_threads()
        info["cython_build"] = cython_cpu.BUILD

        if cython_cpu.OPENMP_SHARED_SPINNING:
            info["omp_wait_policy"] = ("active (libgomp was loaded by another library first; "
                                       "the OpenMP loops run on 1 thread)")
        elif cython_cpu.WAIT_POLICY_SET:
            info["omp_wait_policy"] = "passive (set by fastnn)"
        else:
            info["omp_wait_policy"] = ("OMP_WAIT_POLICY=" + os.environ.get("OMP_WAIT_POLICY", "")
                                       + " GOMP_SPINCOUNT=" + os.environ.get("GOMP_SPINCOUNT", ""))
    info["numba"] = _numba_info()
    return info


def _threadpool_coretype(filepath):
    """The OpenBLAS core type of the library at ``filepath``, through threadpoolctl, if loaded."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return lib.get("architecture")
    return None


def _numba_info():
    if importlib.util.find_spec("numba") is None:
        return None
    import numba
    from numba import config as ncfg

    try:
        layer = numba.threading_layer()  # only once numba has started its pool
    except ValueError:
        layer = f"not started (configured: {ncfg.THREADING_LAYER})"
    return {"version": numba.__version__, "threading_layer": layer,
            "max_threads": int(ncfg.NUMBA_NUM_THREADS)}


def show_config(file=None):
    """Print which backends are available, the BLAS in use (library, version, core type), OpenMP,
    thread counts and Numba's threading layer.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default: ``sys.stdout``).
    """
    file = sys.stdout if file is None else file
    c = config()
    b = c["blas"]

    def out(label, value):
        print(f"{label:<22}{value}", file=file)

    out("fastnn", c["fastnn"])
    out("python", f"{c['python']} ({c['machine']})")
    out("backends available", ", ".join(c["backends_available"]))
    for name, why in c["backends_unavailable"].items():
        out(f"  not {name}", why)
    out("backend in use", c["backend"])
    out("BLAS", f"{b['library']}: {b['version'] or 'version unknown'}")
    forced = " (OPENBLAS_CORETYPE set by fastnn)" if b["coretype_forced"] else ""
    out("BLAS core type", f"{b['coretype'] or 'unknown'}{forced}")
    out("CPU has AVX-512", "yes" if c["cpu_avx512"] else "no")
    if b["fallback_reason"]:
        out("BLAS fallback", b["fallback_reason"])
    out("BLAS library", b["filepath"])
    out("threads", c["num_threads"])
    out("BLAS threads", b["num_threads"] if b["num_threads"] is not None else "(SciPy's BLAS)")
    if c["cython_build"] is not None:
        out("Cython build", "AVX2 + FMA, small products on register tiles"
            if c["cython_build"] == "avx2" else "baseline (any x86-64 / this architecture)")
    if c["openmp"] is None:
        out("OpenMP (Cython)", "extension not built")
    else:
        out("OpenMP (Cython)", f"on, {c['cython_omp_threads']} threads, wait policy "
            f"{c['omp_wait_policy']}" if c["openmp"] else "off (built without OpenMP)")
    n = c["numba"]
    if n is None:
        out("numba", "not installed")
    else:
        out("numba", f"{n['version']}, threading layer: {n['threading_layer']}, "
                     f"max threads {n['max_threads']}")
