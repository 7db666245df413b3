"""Numerics at the edges: extreme logits stay finite, no RuntimeWarning escapes, NaN checks survive
fastmath.

Logits of ±1e4 and far beyond (up to near the dtype's maximum for the bounded losses) must give
finite forward outputs, probabilities, losses and gradients in float32 and float64, in every CPU
backend. All tests here run with warnings turned into errors.
"""

import math
import warnings

import numpy as np
import pytest
from helpers import COMPILED_BACKENDS, DTYPES

import fastnn
from fastnn import _backend
from fastnn.kernels import codes as C


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _magnitudes(dtype, limit=None):
    top = float(np.finfo(dtype).max)
    mags = [1e4, 1e6, 1e30, top / 4]
    if dtype == np.float64:
        mags += [1e100, 1e300]
    return sorted(m for m in mags if m <= top / 4 and (limit is None or m <= limit))


def _finite_grads(grads):
    return all(np.isfinite(dW).all() and np.isfinite(db).all() for dW, db in grads)


def _model_with_logits(dtype, out_act, logits):
    """A 1 -> k net whose logits on x = 0 are exactly ``logits`` (W = 0, b = logits)."""
    k = len(logits)
    m = fastnn.MLP([fastnn.Dense(1, k, out_act, dtype=dtype)])
    m.layers[0].W = np.zeros((k, 1))
    m.layers[0].b = logits
    return m


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_with_extreme_logits(backend, dtype):
    for big in _magnitudes(dtype):
        m = _model_with_logits(dtype, "softmax", [big, -big, 0.0])
        X = np.zeros((3, 1))
        P = m.predict_proba(X)
        assert np.isfinite(P).all() and P.dtype == dtype
        np.testing.assert_allclose(P, [[1, 0, 0]] * 3, atol=1e-6)
        np.testing.assert_array_equal(m.predict(X), 0)
        assert m.loss(X, [0, 0, 0]) == pytest.approx(0.0, abs=1e-6)
        # the loss of the wrong class is the logit gap, exactly as log-sum-exp gives it (the
        # loss sums over rows before dividing by n, so keep 3 * 2 * big below the maximum)
        if big <= float(np.finfo(dtype).max) / 8:
            assert m.loss(X, [1, 1, 1]) == pytest.approx(2 * big, rel=1e-6)
            assert m.loss(X, [2, 2, 2]) == pytest.approx(big, rel=1e-6)
        grads = m.gradients(X, [1, 2, 0])
        assert _finite_grads(grads)
        # dZ = (p - y) / n summed over rows: bounded by 1 per class
        assert np.abs(grads[0][1]).max() <= 1 + 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_bce_with_extreme_logits(backend, dtype):
    for big in _magnitudes(dtype):
        for z in (big, -big):
            m = _model_with_logits(dtype, "sigmoid", [z])
            X = np.zeros((2, 1))
            P = m.predict_proba(X)
            assert np.isfinite(P).all()
            np.testing.assert_allclose(P[:, 1], 1.0 if z > 0 else 0.0, atol=1e-6)
            right, wrong = (1, 0) if z > 0 else (0, 1)
            assert m.loss(X, [right, right]) == pytest.approx(0.0, abs=1e-6)
            assert m.loss(X, [wrong, wrong]) == pytest.approx(big, rel=1e-6)
            g = m.gradients(X, [wrong, right])
            assert _finite_grads(g)
            assert abs(float(g[0][1][0])) <= 1 + 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_mse_with_large_logits(backend, dtype):
    # MSE grows as z²: the loss (summed in float64) and gradients stay finite while z² fits.
    limit = 1e15 if dtype == np.float32 else 1e150
    for big in _magnitudes(dtype, limit):
        m = _model_with_logits(dtype, "identity", [big, -big])
        X = np.zeros((2, 1))
        assert np.isfinite(m.forward(X)).all()
        assert m.loss(X, np.zeros((2, 2))) == pytest.approx(big * big, rel=1e-5)
        assert _finite_grads(m.gradients(X, np.zeros((2, 2))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["identity", "sigmoid", "tanh", "relu", "softplus", "step"])
def test_activations_at_extreme_inputs_in_forward_and_backward(backend, dtype, act):
    limits = {
        "identity": lambda z: z, "relu": lambda z: max(z, 0.0), "softplus": lambda z: max(z, 0.0),
        "sigmoid": lambda z: 1.0 if z > 0 else 0.0, "tanh": lambda z: math.copysign(1.0, z),
        "step": lambda z: 1.0 if z >= 0 else 0.0,
    }
    for big in _magnitudes(dtype):
        layer = fastnn.Dense(1, 2, act, dtype=dtype)
        layer.W = np.zeros((2, 1))
        layer.b = [big, -big]
        A = layer.forward(np.zeros((2, 1)))
        assert A.dtype == dtype and np.isfinite(A).all(), (act, big, A)
        np.testing.assert_allclose(A[0], [limits[act](big), limits[act](-big)], rtol=1e-6)
        if act != "step":
            dX = layer.backward(np.ones_like(A))
            assert np.isfinite(dX).all() and np.isfinite(layer.dW).all()
            assert np.isfinite(layer.db).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_and_sigmoid_named_cases(backend, dtype):
    # the cases the issue names: softplus(1e4) in float32 and sigmoid(-1e4)
    sp = fastnn.Dense(1, 3, "softplus", dtype=dtype)
    sp.W, sp.b = np.zeros((3, 1)), [1e4, -1e4, 0.0]
    np.testing.assert_allclose(sp.forward([[0.0]])[0], [1e4, 0.0, math.log(2)], rtol=1e-6)
    sg = fastnn.Dense(1, 3, "sigmoid", dtype=dtype)
    sg.W, sg.b = np.zeros((3, 1)), [-1e4, 1e4, 0.0]
    np.testing.assert_allclose(sg.forward([[0.0]])[0], [0.0, 1.0, 0.5], rtol=1e-6)
    sm = fastnn.Dense(1, 3, "softmax", dtype=dtype)
    sm.W, sm.b = np.zeros((3, 1)), [1e4, 1e4, -1e4]
    np.testing.assert_allclose(sm.forward([[0.0]])[0], [0.5, 0.5, 0.0], rtol=1e-6)
    dX = sm.backward(np.ones((1, 3)))
    assert np.isfinite(dX).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_with_logits_spanning_the_whole_range(backend, dtype, request):
    # z - max(z) itself overflows to -inf here; exp(-inf) = 0 is the right answer, without a
    # RuntimeWarning (the NumPy reference used to warn "overflow encountered in subtract")
    top = float(np.finfo(dtype).max) * 0.9
    m = _model_with_logits(dtype, "softmax", [top, -top])
    P = m.predict_proba(np.zeros((1, 1)))
    np.testing.assert_array_equal(P, [[1.0, 0.0]])
    assert m.loss(np.zeros((1, 1)), [0]) == 0.0
    assert math.isinf(m.loss(np.zeros((1, 1)), [1])) or m.loss(np.zeros((1, 1)), [1]) > 1e38


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_with_saturated_outputs_stays_finite(backend, dtype):
    # Well-classified points with huge logits: the loss is ~0, gradients ~0, training is stable.
    m = fastnn.MLP.from_sizes([2, 4, 3], hidden="tanh", output="softmax", dtype=dtype, seed=0)
    m.layers[1].W = np.array([[1, 1, 1, 1], [-1, -1, -1, -1], [0, 0, 0, 0]]) * 1e4
    X = np.abs(np.random.default_rng(0).normal(size=(32, 2)))
    m.layers[0].W = np.ones((4, 2))
    h = m.fit(X, np.zeros(32, int), epochs=3, batch_size=8, lr=0.5, progress=False)
    assert np.isfinite(h.loss).all() and h.loss[-1] < 1e-6
    assert np.isfinite(m.store.theta).all()


def test_a_normal_workflow_emits_no_runtime_warning(backend):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    for out, k, target in (("softmax", 2, y), ("sigmoid", 1, y), ("identity", 1, X[:, 2])):
        for dtype in DTYPES:
            m = fastnn.MLP.from_sizes([5, 7, k], hidden="softplus", output=out, dtype=dtype,
                                      seed=1)
            for opt in ("sgd", "momentum", "nesterov", "adam"):
                m.fit(X, target, epochs=2, batch_size=16, lr=0.05, optimizer=opt, l2=1e-3,
                      progress=False, seed=0)
            m.train_step(X[:8], target[:8], lr=0.01)
            m.predict(X)
            m.loss(X, target)
            m.gradients(X, target)
            m.score(X, target)
            if out != "identity":
                m.predict_proba(X)
            layer = m.layers[0]
            layer.backward(np.ones_like(layer.forward(X)))


# --- fastmath keeps NaN/inf semantics --------------------------------------------------------
def test_fastmath_flags_exclude_nnan_and_ninf():
    from fastnn.kernels import _jit

    assert "nnan" not in _jit.FASTMATH and "ninf" not in _jit.FASTMATH
    assert _jit.OPTIONS["fastmath"] == set(_jit.FASTMATH)
    assert "fast" not in _jit.FASTMATH


def test_nan_and_inf_checks_work_inside_compiled_kernels():
    pytest.importorskip("numba")
    from fastnn.kernels import _jit

    @_jit.jit
    def checks(x):
        # each check is a form fastmath with nnan/ninf would fold to a constant
        n_nan = n_inf = n_self_ne = 0
        for i in range(x.size):
            v = x[i]
            if math.isnan(v):
                n_nan += 1
            if math.isinf(v):
                n_inf += 1
            if v != v:
                n_self_ne += 1
        return n_nan, n_inf, n_self_ne

    for dt in DTYPES:
        x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, np.nan], dtype=dt)
        assert checks(x) == (2, 2, 2)
        assert checks(np.ones(4, dtype=dt)) == (0, 0, 0)


@pytest.mark.parametrize("name", COMPILED_BACKENDS)
def test_compiled_epoch_loop_sees_nan_and_inf(name, rng):
    """The compiled whole-epoch loop must stop on a NaN or inf loss; with nnan/ninf it would not."""
    K = _backend.kernels(name)
    if name == "numba":
        for bad in (np.nan, np.inf, -np.inf):
            for dt in DTYPES:
                g = np.ones(5, dtype=dt)
                g[3] = bad
                assert not K._all_finite(g)
                assert K._all_finite(np.ones(5, dtype=dt))
    for dt in DTYPES:
        for bad in (np.nan, np.inf):
            X = np.ones((4, 2), dt)
            Y = np.zeros((4, 1), dt)
            shapes = np.array([[1, 2]], np.int64)
            acts = np.array([C.IDENTITY], np.int64)
            theta = np.array([1.0, 1.0, bad], dt)  # W = (1, 1), b = bad
            from fastnn.kernels.layout import workspace_size

            work = np.zeros(workspace_size(shapes, 2), dt)
            empty = np.zeros(0, dt)
            before = theta.copy()
            hyper = np.zeros(C.N_HYPER)
            hyper[C.H_LR] = 0.1
            _, done = K.train_epoch(X, Y, None, None, theta, np.zeros_like(theta), shapes, acts,
                                    C.MSE, 2, C.OPT_SGD, hyper, empty, empty, 0, work)
            assert done == 0
            np.testing.assert_array_equal(theta, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_step_propagates_nan_in_every_backend(backend, dtype):
    K = _backend.kernels()
    for loss in (C.MSE, C.BCE, C.CROSS_ENTROPY):
        Z = np.array([[0.5, np.nan], [0.1, 0.2]], dtype=dtype)
        Y = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
        dZ = np.empty_like(Z)
        value = K.output_step(Z, Y, loss, dZ, None)
        assert math.isnan(value), (loss, value)
