"""The one thread policy: fastnn.set_num_threads/get_num_threads, the environment, and every pool."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn.kernels import _blas, _threads


def run_py(code, **env):
    """Run ``code`` in a fresh interpreter with extra environment; return its stdout (JSON)."""
    full = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                         "OPENBLAS_CORETYPE", "FASTNN_BLAS")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def restore_threads():
    old = fastnn.get_num_threads()
    yield
    fastnn.set_num_threads(old)


def blas_thread_counts():
    from threadpoolctl import threadpool_info

    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"}


def test_set_and_get(restore_threads):
    from fastnn.kernels import cython_cpu  # loads fastnn's BLAS first

    _cython_cpu = cython_cpu.ext  # the build in use

    fastnn.set_num_threads(1)
    assert fastnn.get_num_threads() == 1
    assert _cython_cpu.get_num_threads() == 1
    counts = blas_thread_counts()
    assert counts and set(counts.values()) == {1}
    if _blas.load()["library"] == "scipy-openblas32":
        assert _blas.get_num_threads() == 1
    fastnn.set_num_threads(2)
    assert fastnn.get_num_threads() == 2
    if _cython_cpu.openmp_enabled():
        # one thread when another library loaded a spinning libgomp first (scikit-learn's, when
        # its tests ran earlier in this process): see cython_cpu.OPENMP_SHARED_SPINNING
        assert _cython_cpu.get_num_threads() == (1 if cython_cpu.OPENMP_SHARED_SPINNING else 2)
    if _blas.load()["library"] == "scipy-openblas32":
        assert _blas.get_num_threads() == min(2, 64)


CODE_NUMBA_POOL = """
import json, numpy as np, fastnn, numba
from fastnn.kernels import _blas
fastnn.set_backend("numba")
fastnn.set_num_threads(1)
m = fastnn.MLP.from_sizes([300, 200, 10], seed=0)
m.train_step(np.ones((64, 300)), np.zeros(64, int), 0.1)
try:
    layer = numba.threading_layer()
except ValueError:  # numba: "Threading layer is not initialized."
    layer = None
print(json.dumps([layer, _blas.get_num_threads()]))
"""


def test_numba_backend_never_starts_numba_pool():
    """Starting Numba's OpenMP pool would load libgomp with an active wait policy, whose spinning
    threads starve BLAS after every Cython parallel loop; the Numba backend's products follow the
    thread count through fastnn's BLAS instead."""
    pytest.importorskip("numba")
    layer, blas = run_py(CODE_NUMBA_POOL)
    assert layer is None
    assert blas in (1, None)


@pytest.mark.parametrize("bad", [0, -3])
def test_rejects_nonpositive(bad):
    with pytest.raises(ValueError):
        fastnn.set_num_threads(bad)


@pytest.mark.parametrize("bad", ["2", 2.0, True, None])
def test_rejects_non_integers(bad):
    with pytest.raises(TypeError):
        fastnn.set_num_threads(bad)


def test_numpy_integer_accepted(restore_threads):
    fastnn.set_num_threads(np.int64(1))
    assert fastnn.get_num_threads() == 1


CODE_ENV = """
import json, fastnn
from fastnn.kernels import cython_cpu
from fastnn.kernels import _blas
print(json.dumps([fastnn.get_num_threads(), cython_cpu.ext.get_num_threads(),
                  _blas.get_num_threads(), cython_cpu.ext.openmp_enabled()]))
"""


def test_omp_num_threads_respected():
    n, omp, blas, has_omp = run_py(CODE_ENV, OMP_NUM_THREADS="1")
    assert n == 1 and omp == 1
    assert blas in (1, None)


def test_numba_num_threads_respected():
    n, omp, blas, has_omp = run_py(CODE_ENV, NUMBA_NUM_THREADS="1")
    assert n == 1 and omp == 1
    assert blas in (1, None)


def test_default_is_cpu_count():
    n, omp, blas, has_omp = run_py(CODE_ENV)
    assert n == _threads.cpu_count()
    if has_omp:
        assert omp == n


def test_import_loads_no_backend_and_no_blas():
    code = ("import json, sys, fastnn\n"
            "from fastnn.kernels import _blas\n"
            "mods = [m for m in sys.modules if m.startswith(('numba', 'scipy_openblas32')) or m.endswith(('_cpu', '_cuda', '_numba_blas'))]\n"
            "print(json.dumps([mods, _blas.loaded() is None]))")
    mods, not_loaded = run_py(code)
    assert mods == [] and not_loaded


def test_results_do_not_depend_on_thread_count(restore_threads):
    from fastnn.kernels import codes as C
    from fastnn.kernels import cython_cpu as cy

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 300)).astype(np.float32)
    W = rng.standard_normal((200, 300)).astype(np.float32)
    b = rng.standard_normal(200).astype(np.float32)
    outs = []
    for n in (1, 2):
        fastnn.set_num_threads(n)
        out = np.empty((400, 200), np.float32)
        cy.forward(X, W, b, C.TANH, out)
        dZ = out.copy()
        dW, db = np.empty_like(W), np.empty_like(b)
        cy.backward(dZ, out, X, W, C.TANH, dW, db, None)
        outs.append((out, dZ, dW, db))
    for a, c in zip(*outs):
        # BLAS may sum in another order with another thread count: equal to rounding
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(c).max()))


def test_show_config_reports_blas_openmp_and_threads():
    import io

    buf = io.StringIO()
    fastnn.show_config(file=buf)
    text = buf.getvalue()
    info = _blas.load()
    assert info["library"] in text
    core = info.get("coretype")
    if core:
        assert f"BLAS core type        {core}" in text
    assert f"threads               {fastnn.get_num_threads()}" in text
    assert "OpenMP (Cython)" in text and "threading layer" in text
    assert "backends available" in text and "numpy" in text


CODE_PRELOADED_GOMP = """
import ctypes, ctypes.util, json, sys
if sys.argv[-1] == "preload":
    ctypes.CDLL(ctypes.util.find_library("gomp"), mode=ctypes.RTLD_GLOBAL)
import fastnn
fastnn.set_num_threads(2)
from fastnn.kernels import cython_cpu
print(json.dumps([cython_cpu.OPENMP_SHARED_SPINNING, cython_cpu.ext.get_num_threads(),
                  fastnn.get_num_threads()]))
"""


@pytest.mark.parametrize("preload", [False, True])
def test_openmp_loops_avoid_a_spinning_libgomp_loaded_by_another_library(preload):
    """PyTorch loads libgomp (same soname) with the spinning wait policy before fastnn can ask for
    a passive one; then the Cython OpenMP loops run on one thread so they never fight BLAS."""
    pytest.importorskip("fastnn.kernels._cython_cpu")
    import ctypes.util

    if ctypes.util.find_library("gomp") is None:
        pytest.skip("no libgomp on this machine to preload")
    code = CODE_PRELOADED_GOMP.replace("sys.argv[-1]", repr("preload" if preload else "no"))
    shared, omp, n = run_py(code)
    assert n == 2
    if not _cython_cpu_has_openmp():
        assert omp == 1
    elif preload:
        assert shared is True and omp == 1
    else:
        assert shared is False and omp == 2


def _cython_cpu_has_openmp():
    from fastnn.kernels import cython_cpu

    return cython_cpu.ext.openmp_enabled()
