"""Every compiled backend's kernels against the NumPy reference, one kernel at a time.

Covers every activation, loss and optimiser, float32 and float64, and shapes with N=1, in=1 and
odd sizes.
"""

import numpy as np
import pytest
from helpers import COMPILED_BACKENDS, DTYPES, dense_targets, tol

from fastnn import _backend
from fastnn.kernels import codes as C
from fastnn.kernels import layout
from fastnn.kernels import reference as R

SHAPES = [(1, 1, 1), (1, 3, 2), (7, 1, 5), (13, 9, 6), (33, 17, 11)]  # (n, in, out)
ACTS = list(C.ACTIVATIONS.values())
LOSSES = list(C.LOSSES.values())


@pytest.fixture(params=COMPILED_BACKENDS)
def K(request):
    return _backend.kernels(request.param)


def _layer(rng, n, fi, fo, dtype):
    X = rng.normal(size=(n, fi)).astype(dtype)
    W = (rng.normal(size=(fo, fi)) / np.sqrt(fi)).astype(dtype)
    b = rng.normal(size=fo).astype(dtype)
    return X, W, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS)
def test_forward(K, rng, act, shape, dtype):
    n, fi, fo = shape
    X, W, b = _layer(rng, n, fi, fo, dtype)
    want, got = np.empty((n, fo), dtype), np.full((n, fo), np.nan, dtype)
    R.forward(X, W, b, act, want)
    K.forward(X, W, b, act, got)
    np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", [a for a in ACTS if a not in (C.STEP, C.SOFTMAX)])
@pytest.mark.parametrize("need_dx", [True, False])
def test_backward(K, rng, act, shape, dtype, need_dx):
    n, fi, fo = shape
    X, W, b = _layer(rng, n, fi, fo, dtype)
    A = np.empty((n, fo), dtype)
    R.forward(X, W, b, act, A)
    dA = rng.normal(size=(n, fo)).astype(dtype)
    outs = []
    for kern in (R, K):
        dZ = dA.copy()
        dW, db = np.full_like(W, np.nan), np.full_like(b, np.nan)
        dX = np.full_like(X, np.nan) if need_dx else None
        kern.backward(dZ, A, X, W, act, dW, db, dX)
        outs.append((dZ, dW, db, dX))
    for want, got in zip(*outs):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (9, 1), (17, 7)])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_output_step(K, rng, loss, shape, dtype, weighted):
    n, k = shape
    Z = (3 * rng.normal(size=(n, k))).astype(dtype)
    Y = dense_targets(rng, C.LOSS_NAMES[loss], n, k, dtype)
    sw = rng.uniform(0.1, 2, n).astype(dtype) if weighted else None
    dz_want, dz_got = np.empty_like(Z), np.full_like(Z, np.nan)
    want = R.output_step(Z, Y, loss, dz_want, sw)
    got = K.output_step(Z, Y, loss, dz_got, sw)
    assert np.isclose(got, want, **tol(dtype))
    np.testing.assert_allclose(dz_got, dz_want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
def test_output_step_extreme_logits_are_finite(K, loss, dtype):
    Z = np.array([[1e4, -1e4], [-3e4, 3e4], [0.0, 5e4]], dtype=dtype)
    Y = np.array([[1, 0], [1, 0], [0, 1]], dtype=dtype)
    dZ = np.empty_like(Z)
    value = K.output_step(Z, Y, loss, dZ, None)
    assert np.isfinite(value) and np.isfinite(dZ).all()
    assert np.isclose(value, R.output_step(Z, Y, loss, np.empty_like(Z), None), rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_updates(K, rng, dtype, l2):
    p0, g = rng.normal(size=37).astype(dtype), rng.normal(size=37).astype(dtype)
    s0 = rng.normal(size=37).astype(dtype)
    v0 = rng.uniform(0, 1, 37).astype(dtype)
    cases = [
        ("sgd_update", lambda k, p, s, v: k.sgd_update(p, g, dtype(0.1), dtype(l2))),
        ("momentum", lambda k, p, s, v: k.momentum_update(p, g, s, 0.1, 0.9, l2, False)),
        ("nesterov", lambda k, p, s, v: k.momentum_update(p, g, s, 0.1, 0.9, l2, True)),
        ("adam", lambda k, p, s, v: k.adam_update(p, g, s, v, 0.01, 0.9, 0.999, 1e-8, 3, l2)),
    ]
    for name, run in cases:
        res = []
        for kern in (R, K):
            p, s, v = p0.copy(), s0.copy(), v0.copy()
            run(kern, p, s, v)
            res.append((p, s, v))
        for want, got in zip(*res):
            np.testing.assert_allclose(got, want, err_msg=name, **tol(dtype))


NETS = [
    ([3], [C.SOFTMAX], C.CROSS_ENTROPY),
    ([5, 3], [C.RELU, C.SOFTMAX], C.CROSS_ENTROPY),
    ([4, 6, 2], [C.SIGMOID, C.TANH, C.SIGMOID], C.BCE),
    ([7, 1], [C.SOFTPLUS, C.SIGMOID], C.BCE),
    ([6, 5, 2], [C.TANH, C.IDENTITY, C.IDENTITY], C.MSE),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("opt", [C.OPT_SGD, C.OPT_MOMENTUM, C.OPT_NESTEROV, C.OPT_ADAM])
@pytest.mark.parametrize("batch", [1, 4, 23])
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_train_epoch(K, rng, net, opt, dtype, batch, shuffled, weighted):
    widths, acts, loss = net
    n, fi = 23, 5
    shapes = np.array(list(zip(widths, [fi] + widths[:-1])), np.int64)
    acts = np.array(acts, np.int64)
    P = layout.param_size(shapes)
    X = rng.normal(size=(n, fi)).astype(dtype)
    Y = dense_targets(rng, C.LOSS_NAMES[loss], n, widths[-1], dtype)
    sw = rng.uniform(0.5, 1.5, n).astype(dtype) if weighted else None
    order = rng.permutation(n)[:19] if shuffled else None
    theta0 = (0.5 * rng.normal(size=P)).astype(dtype)
    hyper = np.array([0.02, 0.01, 0.5, 0.9, 0.999, 1e-8])
    n_state = {C.OPT_SGD: 0, C.OPT_MOMENTUM: 1, C.OPT_NESTEROV: 1, C.OPT_ADAM: 2}[opt]
    results = []
    for kern in (R, K):
        theta, grad = theta0.copy(), np.zeros(P, dtype)
        s1 = np.zeros(P if n_state >= 1 else 0, dtype)
        s2 = np.zeros(P if n_state >= 2 else 0, dtype)
        work = np.full(layout.workspace_size(shapes, batch), np.nan, dtype)
        out1 = kern.train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, batch, opt,
                                hyper, s1, s2, 0, work)
        out2 = kern.train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, batch, opt,
                                hyper, s1, s2, out1[1], work)
        results.append((out1, out2, theta, s1, s2))
    (a1, a2, *want), (b1, b2, *got) = results
    n_rows = n if order is None else len(order)
    assert a1[1] == b1[1] == -(-n_rows // batch)
    assert np.isclose(b1[0], a1[0], **tol(dtype)) and np.isclose(b2[0], a2[0], **tol(dtype))
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=tol(dtype)["rtol"] * 10, atol=tol(dtype)["atol"] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", NETS + [([2, 1], [C.SIGMOID, C.SIGMOID], C.BCE),
                                        ([40], [C.SIGMOID], C.BCE)])
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_train_epoch_per_sample_sgd(K, rng, net, dtype, shuffled, weighted):
    # batch size 1 with plain SGD and no L2 takes its own fused path in the compiled backends
    # (one pass over theta per update); test_train_epoch covers batch 1 with L2. 40 rows of 2
    # BCE outputs fill the 64-entry buffer of deferred log1p terms; 40 outputs bypass it.
    widths, acts, loss = net
    n, fi = 40, 2
    shapes = np.array(list(zip(widths, [fi] + widths[:-1])), np.int64)
    acts = np.array(acts, np.int64)
    P = layout.param_size(shapes)
    X = (2 * rng.normal(size=(n, fi))).astype(dtype)
    Y = dense_targets(rng, C.LOSS_NAMES[loss], n, widths[-1], dtype)
    sw = rng.uniform(0.5, 1.5, n).astype(dtype) if weighted else None
    order = rng.permutation(n)[:31] if shuffled else None
    theta0 = (0.5 * rng.normal(size=P)).astype(dtype)
    hyper = np.array([0.05, 0.0, 0.0, 0.9, 0.999, 1e-8])
    results = []
    for kern in (R, K):
        theta, grad = theta0.copy(), np.zeros(P, dtype)
        work = np.full(layout.workspace_size(shapes, 1), np.nan, dtype)
        none = np.zeros(0, dtype)
        out = kern.train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, 1, C.OPT_SGD,
                               hyper, none, none, 0, work)
        results.append((out, theta))
    (want_out, want), (got_out, got) = results
    assert got_out[1] == want_out[1] == (n if order is None else len(order))
    assert np.isclose(got_out[0], want_out[0], **tol(dtype))
    np.testing.assert_allclose(got, want, rtol=tol(dtype)["rtol"] * 10,
                               atol=tol(dtype)["atol"] * 10)


def test_numba_log1p_unit_matches_libm():
    # the per-sample BCE loss uses an inline fdlibm log1p on [0, 1] instead of a libm call; 1 ulp
    # in IEEE order, up to 3 under the kernels' fastmath reassociation
    numba = pytest.importorskip("numba")
    from fastnn.kernels._jit import OPTIONS
    from fastnn.kernels._numba_math import _log1p_unit

    @numba.njit(**OPTIONS)  # the kernels' fastmath flags
    def f(e):
        out = np.empty_like(e)
        for i in range(e.size):
            out[i] = _log1p_unit(e[i])
        return out

    e = np.concatenate([np.linspace(0.0, 1.0, 20001), np.exp(-np.linspace(0.0, 746.0, 20001)),
                        np.nextafter(0.41421356237309503, [0.0, 1.0]), [5e-324, 1e-300]])
    want = np.log1p(e)
    err = np.abs(f(e) - want) / np.spacing(np.maximum(want, np.finfo(float).tiny))
    assert err.max() <= 3.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_epoch_stops_before_a_non_finite_update(K, rng, dtype):
    shapes = np.array([[3, 2]], np.int64)
    acts = np.array([C.SOFTMAX], np.int64)
    X = rng.normal(size=(6, 2)).astype(dtype)
    X[4, 0] = np.inf  # the third batch of two rows
    Y = np.eye(3, dtype=dtype)[[0, 1, 2, 0, 1, 2]]
    theta = rng.normal(size=9).astype(dtype)
    grad = np.zeros_like(theta)
    hyper = np.array([0.1, 0, 0, 0, 0, 0], float)
    none = np.zeros(0, dtype)
    work = np.zeros(layout.workspace_size(shapes, 2), dtype)
    t_ref = theta.copy()
    R.train_epoch(X[:4], Y[:4], None, None, t_ref, grad.copy(), shapes, acts, C.CROSS_ENTROPY,
                  2, C.OPT_SGD, hyper, none, none, 0, work.copy())
    loss_sum, done = K.train_epoch(X, Y, None, None, theta, grad, shapes, acts,
                                   C.CROSS_ENTROPY, 2, C.OPT_SGD, hyper, none, none, 0, work)
    assert done == 2
    assert np.isfinite(theta).all()
    np.testing.assert_allclose(theta, t_ref, **tol(dtype))
