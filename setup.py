"""Build script: maps kernels/ to the subpackage fastnn.kernels and builds the Cython kernels.

Project metadata lives in pyproject.toml; this file holds what needs code: the package mapping and
the compiled extensions. Cython's compiler directives are set here, once, for every .pyx.

OpenMP is used when the C compiler accepts it (probed by compiling and linking a tiny program);
otherwise the kernels build serial. ``FASTNN_REQUIRE_OPENMP=1`` turns a failed probe into a build
error, and ``FASTNN_DISABLE_OPENMP=1`` skips OpenMP.

On x86-64 the kernels are built twice from one source: a baseline build (the compiler's default
instruction set, which runs on any x86-64 CPU) and ``_cython_cpu_avx2`` with AVX2 and FMA, which
``fastnn.kernels.cython_cpu`` picks at import when the CPU has both. The second build is skipped
when the compiler rejects the flags, or with ``FASTNN_NO_AVX2_BUILD=1``.
"""

import os
import platform
import shutil
import sys
import tempfile

from setuptools import Extension, setup

CYTHON_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
    "embedsignature": True,
    "binding": False,
}


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _compiles(code, cflags, lflags=None):
    """True if ``code`` compiles (and, with ``lflags``, links) with these flags."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CompileError, LinkError
    from setuptools._distutils.sysconfig import customize_compiler

    tmp = tempfile.mkdtemp(prefix="fastnn-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        cc = new_compiler()
        customize_compiler(cc)
        try:
            objs = cc.compile([src], output_dir=tmp, extra_postargs=cflags)
            if lflags is not None:
                cc.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=lflags)
        except (CompileError, LinkError):
            return False
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def openmp_flags():
    """(compile_args, link_args) for OpenMP, or ([], []) when the compiler has none."""
    if _flag("FASTNN_DISABLE_OPENMP"):
        return [], []
    candidates = [(["/openmp"], [])] if sys.platform == "win32" else [
        (["-fopenmp"], ["-fopenmp"]),
        (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),  # Apple clang with libomp
    ]
    code = (
        "#include <omp.h>\n"
        "int main(void) { int n = 0;\n"
        "#pragma omp parallel reduction(+:n)\n"
        "n += 1; return omp_get_max_threads() > 0 ? 0 : n; }\n"
    )
    for cflags, lflags in candidates:
        if _compiles(code, cflags, lflags):
            return cflags, lflags
    if _flag("FASTNN_REQUIRE_OPENMP"):
        raise RuntimeError("FASTNN_REQUIRE_OPENMP is set but the C compiler has no OpenMP")
    print("fastnn: no OpenMP found; building the Cython kernels serial", file=sys.stderr)
    return [], []


def avx2_flags():
    """Compiler flags for the AVX2 + FMA build, or None where there is none to make."""
    if _flag("FASTNN_NO_AVX2_BUILD"):
        return None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    flags = ["/arch:AVX2"] if sys.platform == "win32" else ["-mavx2", "-mfma"]
    code = ("#include <immintrin.h>\n"
            "double f(double *a) { __m256d x = _mm256_loadu_pd(a);\n"
            "  x = _mm256_fmadd_pd(x, x, x); _mm256_storeu_pd(a, x); return a[0]; }\n")
    return flags if _compiles(code, flags) else None


def extensions():
    import numpy
    from Cython.Build import cythonize

    cflags, lflags = openmp_flags()
    opt = ["/O2"] if sys.platform == "win32" else ["-O3"]
    builds = [("_cython_cpu", [])]
    simd = avx2_flags()
    if simd is not None:
        builds.append(("_cython_cpu_avx2", simd))
    exts = [
        Extension(
            "fastnn.kernels." + name,
            sources=[f"kernels/{name}.pyx"],
            # the shared source and the tiles' header: rebuilt on change, shipped in the sdist
            depends=["kernels/_cython_cpu.pyx", "kernels/_small_gemm.h"],
            include_dirs=[numpy.get_include(), "kernels"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=opt + extra + cflags,
            extra_link_args=lflags,
        )
        for name, extra in builds
    ]
    return cythonize(exts, compiler_directives=CYTHON_DIRECTIVES)


setup(
    packages=["fastnn", "fastnn.bench", "fastnn.kernels"],
    package_dir={"fastnn": "fastnn", "fastnn.kernels": "kernels"},
    ext_modules=extensions(),
)
