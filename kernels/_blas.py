"""The BLAS that fastnn's compiled kernels call, chosen and loaded once, lazily.

NumPy's and SciPy's bundled OpenBLAS pick their CPU kernels when they load, and on some CPUs with
AVX-512 (AMD Zen 4 under older OpenBLAS builds, or where the CPU is not recognised) they settle on
the AVX2 "Haswell" kernels at half the GEMM rate. fastnn therefore loads a copy of OpenBLAS of its
own, from the ``scipy-openblas32`` wheel (symbols prefixed ``scipy_``), after setting
``OPENBLAS_CORETYPE=SkylakeX`` when the CPU really has AVX-512 and the user has not set the
variable. Being a separate library, it picks its kernels whatever the user imported first.

If the wheel is missing, or ``FASTNN_BLAS=scipy`` is set, the kernels call SciPy's BLAS
(``scipy.linalg.cython_blas``) instead. Either way the kernels get the addresses of the
Fortran-interface ``sgemm``/``dgemm`` (same signature in both libraries), so both paths run the
same compiled code. Nothing here runs at ``import fastnn``: :func:`load` is called by the first
kernel module that needs a BLAS.
"""

import ctypes
import os
import threading

from . import _threads

_lock = threading.Lock()
_info = None

# OpenBLAS core types whose sgemm/dgemm kernels use AVX-512.
AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


def cpu_has(*features):
    """True if the CPU and the OS support every one of ``features``: names in NumPy's runtime
    dispatch table ("AVX2", "FMA3", "AVX512_SKX", ...), which checks both."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    return all(feats.get(name, False) for name in features)


def cpu_has_avx512():
    """True if the CPU and the OS support the AVX-512 subset (F, CD, BW, DQ, VL) of SkylakeX kernels."""
    return cpu_has("AVX512_SKX")


def _capsule_address(module, name):
    """Address of a function exported by a Cython module's ``__pyx_capi__``."""
    cap = module.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype = ctypes.c_void_p
    get_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_ptr(cap, get_name(cap))


def _load_scipy():
    from scipy.linalg import cython_blas

    return {
        "library": "scipy",
        "filepath": cython_blas.__file__,
        "sgemm": _capsule_address(cython_blas, "sgemm"),
        "dgemm": _capsule_address(cython_blas, "dgemm"),
        "coretype_forced": False,
        "handle": None,
    }


def _load_own():
    import scipy_openblas32

    path = os.path.join(scipy_openblas32.get_lib_dir(), "libscipy_openblas.so")
    if not os.path.exists(path):
        path = os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library() + ".so")
    prefix = scipy_openblas32.get_prefix() if hasattr(scipy_openblas32, "get_prefix") else "scipy_"
    forced = False
    if "OPENBLAS_CORETYPE" not in os.environ and cpu_has_avx512():
        # read by OpenBLAS's constructor when the library loads; removed again afterwards so
        # the user's environment (and libraries loaded later) are left as they were
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
        forced = True
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    finally:
        if forced:
            del os.environ["OPENBLAS_CORETYPE"]
    sgemm = ctypes.cast(getattr(lib, prefix + "sgemm_"), ctypes.c_void_p).value
    dgemm = ctypes.cast(getattr(lib, prefix + "dgemm_"), ctypes.c_void_p).value
    info = {
        "library": "scipy-openblas32",
        "filepath": path,
        "sgemm": sgemm,
        "dgemm": dgemm,
        "coretype_forced": forced,
        "handle": lib,
        "prefix": prefix,
    }
    for key, fn in (("version", "openblas_get_config"), ("coretype", "openblas_get_corename")):
        f = getattr(lib, prefix + fn, None)
        if f is not None:
            f.restype = ctypes.c_char_p
            info[key] = f().decode()
    return info


def load():
    """Load fastnn's BLAS once and return a dict describing it.

    Keys: ``library`` ("scipy-openblas32" or "scipy"), ``filepath``, ``sgemm`` and ``dgemm``
    (addresses of the Fortran-interface routines), ``coretype`` (OpenBLAS's kernel set, where
    known), ``version``, ``coretype_forced`` (whether fastnn set ``OPENBLAS_CORETYPE``) and
    ``fallback_reason`` when the own copy could not be used.
    """
    global _info
    with _lock:
        if _info is not None:
            return _info
        choice = os.environ.get("FASTNN_BLAS", "").strip().lower()
        reason = None
        info = None
        if choice in ("", "auto", "openblas", "scipy-openblas32"):
            try:
                info = _load_own()
            except (ImportError, OSError, AttributeError) as exc:
                reason = f"scipy-openblas32 could not be loaded ({exc})"
        else:
            reason = f"FASTNN_BLAS={choice}"
        if info is None:
            info = _load_scipy()
            info["fallback_reason"] = reason
        _info = info
    _threads.follow(set_num_threads)
    return _info


def loaded():
    """The dict of :func:`load` if fastnn's BLAS is loaded already, else None (loads nothing)."""
    return _info


def _own_function(name, restype, argtypes):
    """A routine of fastnn's own OpenBLAS copy by its unprefixed name, or None if not loaded."""
    info = _info
    if info is None or info.get("handle") is None:
        return None
    f = getattr(info["handle"], info["prefix"] + name, None)
    if f is not None:
        f.restype, f.argtypes = restype, argtypes
    return f


def set_num_threads(n):
    """Set the thread count of fastnn's own OpenBLAS copy, if it is loaded. Returns True if set."""
    f = _own_function("openblas_set_num_threads", None, [ctypes.c_int])
    if f is None:
        return False
    f(int(n))
    return True


def get_num_threads():
    """Thread count of fastnn's own OpenBLAS copy, or None if it is not loaded."""
    f = _own_function("openblas_get_num_threads", ctypes.c_int, [])
    return None if f is None else int(f())
