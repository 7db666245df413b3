"""Which build of the Cython kernels runs: the AVX2 one exactly where the CPU can run it, the
baseline elsewhere or when asked, and a clear error (never an illegal instruction) for a build
that cannot run here or a value that names none."""

import importlib.util
import os
import subprocess
import sys

import pytest

cython_cpu = pytest.importorskip("fastnn.kernels.cython_cpu")


def _build_in_child(value):
    """(returncode, stdout, stderr) of importing cython_cpu with FASTNN_CYTHON_BUILD=value."""
    env = {**os.environ, "FASTNN_CYTHON_BUILD": value}
    code = ("from fastnn.kernels import cython_cpu as c; "
            "print(c.BUILD, c.ext.__name__.rpartition('.')[2])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    return out.returncode, out.stdout.strip(), out.stderr


def test_build_choice_follows_the_cpu_and_the_override():
    rc, out, err = _build_in_child("baseline")
    assert rc == 0, err
    assert out == "baseline _cython_cpu"
    rc, out, err = _build_in_child("")
    assert rc == 0, err
    usable = cython_cpu.cpu_has_avx2_fma() and importlib_find("fastnn.kernels._cython_cpu_avx2")
    assert out == ("avx2 _cython_cpu_avx2" if usable else "baseline _cython_cpu")
    rc, out, err = _build_in_child("avx2")
    if usable:
        assert rc == 0 and out == "avx2 _cython_cpu_avx2", err
    else:  # never an illegal instruction: a clear error instead
        assert rc != 0 and "FASTNN_CYTHON_BUILD=avx2" in err
    rc, out, err = _build_in_child("sse9")
    assert rc != 0 and "FASTNN_CYTHON_BUILD='sse9'" in err


def importlib_find(name):
    return importlib.util.find_spec(name) is not None
