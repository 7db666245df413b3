"""train_step takes fit's optimisers, and their state lives in the model's store."""

import numpy as np
import pytest

import fastnn
from fastnn.optim import Adaptive, InvScaling

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam"]


def _data(rng, n=24):
    X = rng.normal(size=(n, 5))
    return X, rng.integers(0, 3, n)


def _model(seed=0):
    return fastnn.MLP.from_sizes([5, 7, 3], dtype=np.float64, seed=seed)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_train_steps_equal_full_batch_fit(backend, rng, optimizer):
    """k train_steps on the whole data are k epochs of full-batch fit, for every optimiser."""
    X, y = _data(rng)
    stepped, fitted = _model(), _model()
    losses = [stepped.train_step(X, y, 0.05, optimizer=optimizer) for _ in range(4)]
    h = fitted.fit(X, y, epochs=4, batch_size=len(y), lr=0.05, optimizer=optimizer,
                   shuffle=False, progress=False)
    np.testing.assert_allclose(losses, h.loss, rtol=1e-12)
    np.testing.assert_allclose(stepped.store.theta, fitted.store.theta, rtol=1e-12,
                               atol=1e-15)
    assert stepped.store.step == fitted.store.step == 4


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_train_step_matches_the_numpy_backend(backend, rng, optimizer):
    X, y = _data(rng)
    runs = []
    for name in (backend, "numpy"):
        fastnn.set_backend(name)
        m = _model()
        runs.append(([m.train_step(X, y, 0.05, optimizer=optimizer) for _ in range(3)],
                     m.store.theta.copy()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-10)
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-9, atol=1e-12)


def test_an_optimizer_instance_steps_at_its_own_rate_and_state_carries_on(rng):
    X, y = _data(rng)
    adam = fastnn.Adam(0.01)
    a, b = _model(), _model()
    for _ in range(3):
        a.train_step(X, y, optimizer=adam)  # no lr: the instance's own
    b.fit(X, y, epochs=3, batch_size=len(y), optimizer=fastnn.Adam(0.01), shuffle=False,
          progress=False)
    np.testing.assert_allclose(a.store.theta, b.store.theta, rtol=1e-12, atol=1e-15)
    assert a.store.step == 3 and a.store.opt_code == adam.code
    a.train_step(X, y, 0.1)  # another kind: its state starts afresh
    assert a.store.step == 1 and a.store.s1.size == 0


def test_a_named_optimizer_needs_lr(rng):
    X, y = _data(rng)
    m = _model()
    with pytest.raises(ValueError, match="lr"):
        m.train_step(X, y, optimizer="adam")
    with pytest.raises(ValueError, match="unknown optimizer"):
        m.train_step(X, y, 0.1, optimizer="rmsprop")
    assert m.store.opt_code is None


def test_schedules_live_in_the_optimizer(rng):
    """An optimiser's own schedule runs in fit; fit's schedule option is the same schedule."""
    X, y = _data(rng)
    own = _model().fit(X, y, epochs=3, lr=0.2, progress=False, shuffle=False,
                       optimizer=fastnn.SGD(0.2, schedule=InvScaling(0.5)))
    named = _model().fit(X, y, epochs=3, lr=0.2, progress=False, shuffle=False,
                         schedule="invscaling", power_t=0.5)
    assert own.lr == named.lr == [0.2 / (t * 24 + 1) ** 0.5 for t in range(3)]
    opt = fastnn.SGD(0.08, schedule=Adaptive(factor=0.5))
    h = _model().fit(X, y, epochs=5, progress=False, optimizer=opt, tol=100.0,
                     n_iter_no_change=2)
    assert h.lr == [0.08, 0.08, 0.08, 0.04, 0.04]
    assert opt.learning_rate == 0.02  # the optimiser holds the rate it moved to


def test_store_views_are_the_layers(rng):
    m = _model()
    for (W, b), layer in zip(m.store.views(m.store.theta), m.layers):
        assert np.shares_memory(W, layer.W) and np.shares_memory(b, layer.b)
    assert m.store.size == m.n_params == m.store.theta.size
    m.reset_optimizer()
    assert m.store.opt_code is None and m.store.step == 0
