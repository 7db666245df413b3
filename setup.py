"""Build script: maps kernels/ to the subpackage fastnn.kernels and builds the Cython kernels.

Project metadata lives in pyproject.toml; this file holds what needs code: the package mapping and
the compiled extensions. Cython's compiler directives are set here, once, for every .pyx.

OpenMP is used when the C compiler accepts it (probed by compiling and linking a tiny program);
otherwise the kernels build serial. ``FASTNN_REQUIRE_OPENMP=1`` turns a failed probe into a build
error, and ``FASTNN_DISABLE_OPENMP=1`` skips OpenMP.
"""

import os
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


def openmp_flags():
    """(compile_args, link_args) for OpenMP, or ([], []) when the compiler has none."""
    if _flag("FASTNN_DISABLE_OPENMP"):
        return [], []
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CompileError, LinkError
    from setuptools._distutils.sysconfig import customize_compiler

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
    tmp = tempfile.mkdtemp(prefix="fastnn-omp-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        for cflags, lflags in candidates:
            cc = new_compiler()
            customize_compiler(cc)
            try:
                objs = cc.compile([src], output_dir=tmp, extra_postargs=cflags)
                cc.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=lflags)
            except (CompileError, LinkError):
                continue
            return cflags, lflags
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if _flag("FASTNN_REQUIRE_OPENMP"):
        raise RuntimeError("FASTNN_REQUIRE_OPENMP is set but the C compiler has no OpenMP")
    print("fastnn: no OpenMP found; building the Cython kernels serial", file=sys.stderr)
    return [], []


def extensions():
    import numpy
    from Cython.Build import cythonize

    cflags, lflags = openmp_flags()
    opt = ["/O2"] if sys.platform == "win32" else ["-O3"]
    ext = Extension(
        "fastnn.kernels._cython_cpu",
        sources=["kernels/_cython_cpu.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=opt + cflags,
        extra_link_args=lflags,
    )
    return cythonize([ext], compiler_directives=CYTHON_DIRECTIVES)


setup(
    packages=["fastnn", "fastnn.kernels"],
    package_dir={"fastnn": "fastnn", "fastnn.kernels": "kernels"},
    ext_modules=extensions(),
)
