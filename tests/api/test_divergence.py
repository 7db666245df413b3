"""Divergence: a non-finite loss, gradient or parameter stops training with FloatingPointError.

fit names the epoch and step, the model keeps its last finite parameters (never NaN or inf), and
this holds in every CPU backend, including inside the compiled whole-epoch loops. train_step
leaves the model unchanged. Every test runs with warnings turned into errors, so a diverging
run must also stay free of NumPy RuntimeWarnings.
"""

import re
import warnings

import numpy as np
import pytest
from helpers import DTYPES

import fastnn

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam"]
STEP_RE = re.compile(r"epoch (\d+), step (\d+)")


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _scalar_net(dtype):
    """1 -> 1 identity/MSE net with W = 1, b = 0: on x = 1, y = 0 each SGD step multiplies the
    output z = W + b by (1 - 2 lr), so it explodes geometrically for lr >> 1."""
    m = fastnn.MLP([fastnn.Dense(1, 1, "identity", dtype=dtype)])
    m.layers[0].W = [[1.0]]
    m.layers[0].b = [0.0]
    return m


def _all_params_finite(model):
    return all(np.isfinite(l.W).all() and np.isfinite(l.b).all() for l in model.layers)


def _parse(err):
    match = STEP_RE.search(str(err))
    assert match, f"the error does not name the epoch and step: {err}"
    return int(match.group(1)), int(match.group(2))


def _replay_with_train_step(model, X, y, batch_size, lr, max_steps):
    """Plain SGD over the rows in order, batch by batch, via train_step; returns how many steps
    succeeded before train_step raised (or max_steps)."""
    n = X.shape[0]
    for s in range(max_steps):
        start = (s * batch_size) % n
        if start + batch_size > n:  # keep batches aligned with fit's (n is a multiple here)
            raise AssertionError("n must be a multiple of batch_size")
        try:
            model.train_step(X[start:start + batch_size], y[start:start + batch_size], lr)
        except FloatingPointError:
            return s
    return max_steps


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_exploding_identity_net_raises_and_keeps_finite_parameters(backend, dtype, optimizer):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)) * 10
    y = rng.normal(size=(64, 1)) * 100
    model = fastnn.MLP.from_sizes([4, 16, 16, 1], hidden="identity", output="identity",
                                  dtype=dtype, seed=0)
    # Adam moves each parameter by at most ~lr per step, so it needs a huge lr to overflow.
    lr = (1e30 if dtype == np.float32 else 1e120) if optimizer == "adam" else 1e3
    with pytest.raises(FloatingPointError, match="diverged") as err:
        model.fit(X, y, epochs=200, batch_size=8, lr=lr, optimizer=optimizer, progress=False,
                  seed=0)
    epoch, step = _parse(err.value)
    assert 1 <= epoch <= 200 and 1 <= step <= 8
    assert _all_params_finite(model)
    assert np.isfinite(model.store.theta).all()
    for state in (model.store.s1, model.store.s2):  # optimiser state restored too
        assert np.isfinite(state).all()
    assert model.forward(X[:3]).shape == (3, 1)  # still usable (values may overflow)


@pytest.mark.parametrize("batch_size", [1, 3, 12])
def test_divergence_in_the_loss_names_the_exact_step_float64(backend, batch_size):
    # float64: the loss 0.5 z^2 overflows (z > ~1e154) long before the update lr * z does, so
    # the compiled loop stops before the bad batch's update.
    n, lr = 240, 50.0
    X, y = np.ones((n, 1)), np.zeros((n, 1))
    ref = _scalar_net(np.float64)
    done = _replay_with_train_step(ref, X, y, batch_size, lr, 10_000)
    assert 0 < done < 10_000
    model = _scalar_net(np.float64)
    with pytest.raises(FloatingPointError) as err:
        model.fit(X, y, epochs=10_000, batch_size=batch_size, lr=lr, shuffle=False,
                  progress=False)
    per_epoch = n // batch_size
    assert _parse(err.value) == (done // per_epoch + 1, done % per_epoch + 1)
    np.testing.assert_array_equal(model.store.theta, ref.store.theta)  # the last finite parameters
    assert _all_params_finite(model)


def test_divergence_in_the_update_keeps_finite_parameters_float32(backend):
    # float32: the update lr * z overflows (z > ~3e36 for lr = 100) before z itself does, i.e.
    # the gradient is finite but the new parameters are not.
    n, lr = 200, 100.0
    X, y = np.ones((n, 1)), np.zeros((n, 1))
    model = _scalar_net(np.float32)
    with pytest.raises(FloatingPointError) as err:
        model.fit(X, y, epochs=3, batch_size=1, lr=lr, shuffle=False, progress=False)
    epoch, step = _parse(err.value)
    assert epoch == 1
    assert _all_params_finite(model)
    ref = _scalar_net(np.float32)
    done = _replay_with_train_step(ref, X, y, 1, lr, n)
    assert 0 < done < n
    assert step <= done + 1  # never later than the step that really overflowed


def test_divergence_in_the_update_names_the_exact_step_float32(backend):
    n, lr = 200, 100.0
    X, y = np.ones((n, 1)), np.zeros((n, 1))
    ref = _scalar_net(np.float32)
    done = _replay_with_train_step(ref, X, y, 1, lr, n)
    model = _scalar_net(np.float32)
    with pytest.raises(FloatingPointError) as err:
        model.fit(X, y, epochs=3, batch_size=1, lr=lr, shuffle=False, progress=False)
    assert _parse(err.value) == (1, done + 1)
    np.testing.assert_array_equal(model.store.theta, ref.store.theta)


@pytest.mark.parametrize("dtype", DTYPES)
def test_divergence_in_a_later_epoch_names_that_epoch(backend, dtype):
    # Full batch, so each epoch is one step; the epochs before the bad one must run cleanly and
    # leave exactly the parameters the diverged model keeps.
    X, y = np.ones((5, 1)), np.zeros((5, 1))
    model = _scalar_net(dtype)
    with pytest.raises(FloatingPointError) as err:
        model.fit(X, y, epochs=1000, batch_size=5, lr=20.0, progress=False)
    epoch, step = _parse(err.value)
    assert step == 1 and epoch > 5
    again = _scalar_net(dtype)
    try:
        again.fit(X, y, epochs=epoch - 1, batch_size=5, lr=20.0, progress=False)
    except FloatingPointError:
        pytest.fail("the epochs before the reported one must not diverge")
    assert _all_params_finite(model)
    if dtype == np.float64:  # the loss overflowed before any update did: exact match
        np.testing.assert_array_equal(model.store.theta, again.store.theta)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_from_inf_minus_inf_is_caught(backend, dtype):
    # Huge relu weights: hidden activations overflow to inf and the softmax logits become
    # inf - inf = NaN; NaN must be caught as well as inf, also in the compiled loop.
    model = fastnn.MLP.from_sizes([2, 4, 3], hidden="relu", output="softmax", dtype=dtype, seed=0)
    big = float(np.finfo(dtype).max) / 4
    model.layers[0].W = np.full((4, 2), big)
    model.layers[1].W = np.array([[1, 1, 1, 1], [-1, -1, -1, -1], [1, -1, 1, -1]]) * big
    before = model.store.theta.copy()
    X, y = np.array([[1.0, 1.0]] * 4), np.array([0, 1, 2, 0])
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 1"):
        model.fit(X, y, epochs=2, batch_size=2, lr=0.1, progress=False)
    np.testing.assert_array_equal(model.store.theta, before)
    with pytest.raises(FloatingPointError):
        model.train_step(X, y, lr=0.1)
    np.testing.assert_array_equal(model.store.theta, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_step_with_a_non_finite_loss_leaves_the_model_unchanged(backend, dtype):
    model = _scalar_net(dtype)
    model.layers[0].W = [[float(np.finfo(dtype).max) / 2]]
    before = model.store.theta.copy()
    with pytest.raises(FloatingPointError, match="not finite"):
        model.train_step([[4.0]], [0.0], lr=1e-3)  # z = 2 * max overflows
    np.testing.assert_array_equal(model.store.theta, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_step_whose_update_overflows_leaves_the_model_unchanged(backend, dtype):
    model = _scalar_net(dtype)
    before = model.store.theta.copy()
    lr = float(np.finfo(dtype).max)  # finite loss and gradient, but W - lr * dW overflows
    with pytest.raises(FloatingPointError, match="overflow"):
        model.train_step([[1.0]], [-3.0], lr=lr)
    np.testing.assert_array_equal(model.store.theta, before)
    assert model.train_step([[1.0]], [0.0], lr=0.1) == pytest.approx(0.5)  # still trains


def test_fit_after_divergence_can_continue_with_a_smaller_lr(backend):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    model = fastnn.MLP.from_sizes([3, 8, 2], hidden="identity", dtype=np.float32, seed=0)
    model.layers[0].W = np.full((8, 3), 1e20)  # logits ~1e41 overflow float32 at once
    model.layers[1].W = np.full((2, 8), 1e20)
    with pytest.raises(FloatingPointError, match="epoch 1, step 1"):
        model.fit(X, y, epochs=50, batch_size=4, lr=0.1, optimizer="momentum", progress=False)
    assert _all_params_finite(model)
    model.layers[0].W = rng.normal(size=(8, 3)) * 0.1
    model.layers[1].W = rng.normal(size=(2, 8)) * 0.1
    model.reset_optimizer()
    history = model.fit(X, y, epochs=5, batch_size=4, lr=0.1, progress=False)
    assert np.isfinite(history.loss).all()
    assert history.loss[-1] < history.loss[0]


def _huge_l2(optimizer):
    """A model fitted one epoch with ``optimizer``, its data, and a fit with a huge L2 term."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = fastnn.MLP.from_sizes([4, 5, 2], dtype=np.float32, seed=0)
    model.fit(X, y, epochs=1, optimizer=optimizer, lr=0.01, progress=False)
    return model, lambda: model.fit(X, y, epochs=3, optimizer=optimizer, lr=0.01, l2=1e38,
                                    progress=False)


def test_an_optimiser_state_that_overflows_is_divergence(backend):
    # the gradient stays finite and so do the parameters, but Adam's v = g² overflows: it is
    # reported, never kept in the store
    model, huge = _huge_l2("adam")
    store = model.store
    before, m, v, step = store.theta.copy(), store.s1.copy(), store.s2.copy(), store.step
    with pytest.raises(FloatingPointError, match="overflowed the parameters or the optimiser"):
        huge()
    # the model is at the end of the last whole step that left it finite: here, none
    assert store.step == step
    for now, then in ((store.theta, before), (store.s1, m), (store.s2, v)):
        np.testing.assert_array_equal(now, then)


def test_a_huge_l2_term_with_momentum_keeps_a_finite_model(backend):
    model, huge = _huge_l2("momentum")
    with pytest.raises(FloatingPointError, match="diverged"):
        huge()
    assert np.isfinite(model.store.theta).all() and np.isfinite(model.store.s1).all()
