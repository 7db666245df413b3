"""fastnn's BLAS: which library and core type are in effect, and that its GEMMs are right."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastnn.kernels import _blas
from fastnn.kernels import codes as C

cy = pytest.importorskip("fastnn.kernels.cython_cpu")
HAVE_WHEEL = __import__("importlib").util.find_spec("scipy_openblas32") is not None

REPORT = """
import json, sys
PRE
import numpy as np
from fastnn.kernels import _blas
from fastnn.kernels import cython_cpu as cy
info = _blas.load()
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 200)).astype(np.float32)
W = rng.standard_normal((100, 200)).astype(np.float32)
out = np.empty((300, 100), np.float32)
cy.forward(X, W, np.zeros(100, np.float32), 0, out)
err = float(np.abs(out - X.astype(np.float64) @ W.T.astype(np.float64)).max())
print(json.dumps({k: info.get(k) for k in ("library", "coretype", "coretype_forced",
                                            "fallback_reason")} | {"err": err}))
"""


def report(pre="", **env):
    full = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "FASTNN_BLAS")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", REPORT.replace("PRE", pre)], env=full,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not HAVE_WHEEL, reason="scipy-openblas32 is not installed")
def test_own_openblas_with_best_core_type():
    r = report()
    assert r["library"] == "scipy-openblas32"
    assert r["err"] < 1e-2
    core = (r["coretype"] or "").lower()
    assert core
    if _blas.cpu_has_avx512():
        assert core in _blas.AVX512_CORES
    else:
        assert core not in _blas.AVX512_CORES and not r["coretype_forced"]


@pytest.mark.skipif(not HAVE_WHEEL, reason="scipy-openblas32 is not installed")
def test_user_coretype_is_respected():
    r = report(OPENBLAS_CORETYPE="Sandybridge")
    assert r["library"] == "scipy-openblas32"
    assert r["coretype"].lower() == "sandybridge" and not r["coretype_forced"]
    assert r["err"] < 1e-2
    assert "OPENBLAS_CORETYPE" not in os.environ


def test_scipy_fallback_on_request():
    r = report(FASTNN_BLAS="scipy")
    assert r["library"] == "scipy" and "FASTNN_BLAS" in r["fallback_reason"]
    assert r["err"] < 1e-2


def test_scipy_fallback_when_wheel_missing():
    r = report(pre="sys.modules['scipy_openblas32'] = None  # as if not installed")
    assert r["library"] == "scipy" and "scipy-openblas32" in r["fallback_reason"]
    assert r["err"] < 1e-2


def test_forced_coretype_does_not_leak_into_environment():
    _blas.load()
    assert os.environ.get("OPENBLAS_CORETYPE") != "SkylakeX" or not _blas.load()["coretype_forced"]


def test_extension_and_numba_use_the_loaded_blas():
    from fastnn.kernels import cython_cpu

    info = _blas.load()
    assert cython_cpu.ext.blas_addresses() == (info["sgemm"], info["dgemm"])
    pytest.importorskip("numba")
    import llvmlite.binding as llvm

    from fastnn.kernels import numba_cpu  # noqa: F401  (registers the names)

    assert llvm.address_of_symbol("fastnn_sgemm_") == info["sgemm"]
    assert llvm.address_of_symbol("fastnn_dgemm_") == info["dgemm"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,fin,fout", [(1, 1, 1), (3, 700, 1), (513, 257, 129), (64, 1024, 2048)])
def test_gemm_products_are_right(dtype, n, fin, fout):
    rng = np.random.default_rng(n + fin)
    X = rng.standard_normal((n, fin)).astype(dtype)
    W = rng.standard_normal((fout, fin)).astype(dtype)
    dZ = rng.standard_normal((n, fout)).astype(dtype)
    X64, W64, dZ64 = (a.astype(np.float64) for a in (X, W, dZ))
    rtol = 1e-4 if dtype == np.float32 else 1e-11
    scale = np.sqrt(fin) + np.sqrt(n) + np.sqrt(fout)
    mods = [cy]
    if __import__("importlib").util.find_spec("numba") is not None:
        from fastnn.kernels import numba_cpu

        mods.append(numba_cpu)
    for mod in mods:
        out = np.empty((n, fout), dtype)
        mod.forward(X, W, np.zeros(fout, dtype), C.IDENTITY, out)
        np.testing.assert_allclose(out, X64 @ W64.T, rtol=rtol, atol=rtol * scale)
        dW, db, dX = np.empty_like(W), np.empty(fout, dtype), np.empty_like(X)
        mod.backward(dZ.copy(), out, X, W, C.IDENTITY, dW, db, dX)
        np.testing.assert_allclose(dW, dZ64.T @ X64, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(dX, dZ64 @ W64, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(db, dZ64.sum(0), rtol=rtol, atol=rtol * scale)
