"""Each cuda layer kernel and update against kernels/reference.py, for every code and dtype."""

import numpy as np
import pytest

from fastnn.kernels import codes as C

DTYPES = [np.float32, np.float64]
ACTS = sorted(C.ACTIVATIONS.values())
TRAINABLE = [a for a in ACTS if a not in C.NO_GRADIENT | C.OUTPUT_ONLY]
# (n, in, out): one sample, odd sizes, and one that spans several tiles
SHAPES = [(1, 1, 1), (5, 7, 6), (19, 13, 11)]


def _arr(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", SHAPES[:2])
def test_forward(K, R, rng, tol, dtype, act, shape):
    n, fi, o = shape
    X, W, b = _arr(rng, (n, fi), dtype), _arr(rng, (o, fi), dtype), _arr(rng, o, dtype)
    want = np.empty((n, o), dtype)
    R.forward(X, W, b, act, want)
    out = K.device_zeros((n, o), dtype)
    K.forward(K.to_device(X), K.to_device(W), K.to_device(b), act, out)
    got = K.to_host(out)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", TRAINABLE)
@pytest.mark.parametrize("with_prev", [True, False])
def test_backward(K, R, rng, tol, dtype, act, with_prev):
    n, fi, o = SHAPES[2] if act == C.RELU else SHAPES[1]
    A_prev, W = _arr(rng, (n, fi), dtype), _arr(rng, (o, fi), dtype)
    A = np.empty((n, o), dtype)
    R.forward(A_prev, W, _arr(rng, o, dtype), act, A)
    dZ = _arr(rng, (n, o), dtype)
    want_dZ, want_dW, want_db = dZ.copy(), np.empty((o, fi), dtype), np.empty(o, dtype)
    want_dA = np.empty((n, fi), dtype) if with_prev else None
    R.backward(want_dZ, A, A_prev, W, act, want_dW, want_db, want_dA)
    d = {k: K.to_device(v) for k, v in dict(dZ=dZ, A=A, A_prev=A_prev, W=W).items()}
    dW, db = K.device_zeros((o, fi), dtype), K.device_zeros(o, dtype)
    dA = K.device_zeros((n, fi), dtype) if with_prev else None
    K.backward(d["dZ"], d["A"], d["A_prev"], d["W"], act, dW, db, dA)
    np.testing.assert_allclose(K.to_host(d["dZ"]), want_dZ, **tol(dtype))
    np.testing.assert_allclose(K.to_host(dW), want_dW, **tol(dtype))
    np.testing.assert_allclose(K.to_host(db), want_db, **tol(dtype))
    if with_prev:
        np.testing.assert_allclose(K.to_host(dA), want_dA, **tol(dtype))


@pytest.mark.parametrize("form", ["nt", "tn", "nn"])
@pytest.mark.parametrize("size", ["small", "big", "huge"])
def test_gemm_gpu_tiles(K, rng, form, size):
    """The GPU's own tile shape (not the simulator's small one) on a ragged product."""
    from fastnn.kernels import _cuda_gemm
    from fastnn.kernels._jit import GEMM_TILES

    M, N, Kd = {"small": (37, 45, 21), "big": (67, 9, 19), "huge": (131, 140, 27)}[size]
    tile = GEMM_TILES[size]
    A = rng.standard_normal((Kd, M) if form == "tn" else (M, Kd)).astype(np.float32)
    B = rng.standard_normal((N, Kd) if form == "nt" else (Kd, N)).astype(np.float32)
    want = (A.T if form == "tn" else A) @ (B.T if form == "nt" else B)
    vec = K.device_zeros(max(M, N), np.float32)
    out = K.device_zeros((M, N), np.float32)
    state = K.new_state()
    _cuda_gemm.launch(form, np.dtype(np.float32), K.to_device(A), K.to_device(B), out, M, N, Kd,
                      vec, out, C.IDENTITY, state, tile=tile)
    np.testing.assert_allclose(K.to_host(out), want, rtol=1e-4, atol=1e-4)
    if form == "tn":
        np.testing.assert_allclose(K.to_host(vec)[:M], A.sum(0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", sorted(C.LOSSES.values()))
@pytest.mark.parametrize("n, k, weighted", [(1, 1, False), (6, 3, True), (5, 4, False)])
def test_output_step(K, R, rng, tol, dtype, loss, n, k, weighted):
    Z = _arr(rng, (n, k), dtype, 3.0)
    if loss == C.CROSS_ENTROPY:
        Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    elif loss == C.BCE:
        Y = rng.integers(0, 2, (n, k)).astype(dtype)
    else:
        Y = _arr(rng, (n, k), dtype)
    sw = rng.uniform(0.5, 2.0, n).astype(dtype) if weighted else None
    want_dZ = np.empty_like(Z)
    want = R.output_step(Z, Y, loss, want_dZ, sw)
    dZ = K.device_zeros((n, k), dtype)
    got = K.output_step(K.to_device(Z), K.to_device(Y), loss, dZ,
                        None if sw is None else K.to_device(sw))
    assert isinstance(got, float)
    np.testing.assert_allclose(got, want, **tol(dtype))
    np.testing.assert_allclose(K.to_host(dZ), want_dZ, **tol(dtype))


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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_updates(K, R, rng, tol, dtype, opt, l2):
    size = 23
    p, g = _arr(rng, size, dtype), _arr(rng, size, dtype)
    s1 = _arr(rng, size, dtype, 0.1)
    s2 = np.abs(_arr(rng, size, dtype, 0.1))
    host = [p.copy(), g.copy(), s1.copy(), s2.copy()]
    dev = [K.to_device(a) for a in (p, g, s1, s2)]
    lr = dtype(0.05)
    if opt == "sgd":
        R.sgd_update(host[0], host[1], lr, l2)
        K.sgd_update(dev[0], dev[1], lr, l2)
    elif opt == "adam":
        args = (lr, 0.9, 0.999, 1e-8, 3, l2)
        R.adam_update(*host, *args)
        K.adam_update(*dev, *args)
    else:
        nest = opt == "nesterov"
        R.momentum_update(host[0], host[1], host[2], lr, dtype(0.9), l2, nest)
        K.momentum_update(dev[0], dev[1], dev[2], lr, dtype(0.9), l2, nest)
    for h, d in zip(host, dev):
        got = K.to_host(d)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, h, **tol(dtype))


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
