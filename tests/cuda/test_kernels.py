"""cuda kernels beyond the contract cases: the GPU's own GEMM tile shapes, extreme logits, the
device helpers and all_finite on device arrays.

forward, backward, output_step and the updates on device arrays, for every code and dtype, run
in tests/cuda/test_contract.py (with host and mixed arrays too), against kernels/reference.py.
"""

import numpy as np
import pytest

from fastnn.kernels import codes as C

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("form", ["x_wt", "dzt_a", "dz_w"])
@pytest.mark.parametrize("size", ["small", "big", "huge"])
def test_gemm_gpu_tiles(K, rng, form, size):
    """The GPU's own tile shape (not the simulator's small one) on a ragged product."""
    from fastnn.kernels import _cuda_gemm
    from fastnn.kernels._jit import GEMM_TILES

    M, N, Kd = {"small": (37, 45, 21), "big": (67, 9, 19), "huge": (131, 140, 27)}[size]
    tile = GEMM_TILES[size]
    A = rng.standard_normal((Kd, M) if form == "dzt_a" else (M, Kd)).astype(np.float32)
    B = rng.standard_normal((N, Kd) if form == "x_wt" else (Kd, N)).astype(np.float32)
    want = (A.T if form == "dzt_a" else A) @ (B.T if form == "x_wt" else B)
    vec = K.device_zeros(max(M, N), np.float32)
    out = K.device_zeros((M, N), np.float32)
    state = K.new_state()
    _cuda_gemm.launch(form, np.dtype(np.float32), K.to_device(A), K.to_device(B), out, M, N, Kd,
                      vec, out, C.IDENTITY, state, tile=tile)
    np.testing.assert_allclose(K.to_host(out), want, rtol=1e-4, atol=1e-4)
    if form == "dzt_a":
        np.testing.assert_allclose(K.to_host(vec)[:M], A.sum(0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", sorted(C.LOSSES.values()))
def test_output_step_extreme_logits(K, R, dtype, loss):
    """Huge logits give a finite loss and gradient (log-sum-exp / softplus forms)."""
    big = 1e4 if loss != C.MSE else 1e3
    Z = np.array([[big, -big], [-big, big]], dtype)
    Y = np.array([[0, 1], [1, 0]], dtype)
    want_dZ = np.empty_like(Z)
    want = R.output_step(Z, Y, loss, want_dZ, None)
    dZ = K.device_zeros(Z.shape, dtype)
    got = K.output_step(K.to_device(Z), K.to_device(Y), loss, dZ, None)
    assert np.isfinite(got) and np.isfinite(K.to_host(dZ)).all()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(K.to_host(dZ), want_dZ, rtol=1e-5, atol=1e-6)


def test_device_helpers(K):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    d = K.to_device(x)
    assert K.ON_DEVICE is True
    assert K.is_device_array(d) and not K.is_device_array(x)
    assert K.to_device(d) is d
    np.testing.assert_array_equal(K.to_host(d), x)
    np.testing.assert_array_equal(K.to_host(x), x)
    z = K.device_zeros((3, 2), np.float64)
    assert z.shape == (3, 2) and K.to_host(z).dtype == np.float64 and not K.to_host(z).any()
    assert K.to_device([1.0, 2.0], dtype=np.float32).dtype == np.float32


def test_all_finite(K):
    x = np.ones(7, np.float32)
    assert K.all_finite(K.to_device(x))
    x[5] = np.nan
    assert not K.all_finite(K.to_device(x))
    x[5] = -np.inf
    assert not K.all_finite(K.to_device(x))
    assert K.all_finite(K.device_zeros(0, np.float64))
