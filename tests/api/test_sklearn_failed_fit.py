"""A failed fit or partial_fit leaves a scikit-learn estimator exactly as it was."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import fastnn.training  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _data(rng, regression):
    X = rng.standard_normal((60, 4))
    y = X[:, 0] - X[:, 1] if regression else (X[:, 0] > X[:, 1]).astype(int)
    return X, y


def _fitted(Est, X, y, **params):
    est = Est(hidden_layer_sizes=(6,), max_iter=3, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _picture(est, X):
    """Everything a later call can see: attributes, parameters, optimiser state, the stream."""
    store = est.model_.store
    return (est.n_features_in_, est.n_iter_, est.t_, list(est.loss_curve_),
            est.history_.as_dict(), est.history_.epochs, [c.copy() for c in est.coefs_],
            [b.copy() for b in est.intercepts_], store.opt_code, store.step, store.s1.copy(),
            est._rng.bit_generator.state, est._state.samples_seen, est.predict(X).copy())


def _same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        if isinstance(u, list) and u and isinstance(u[0], np.ndarray):
            for p, q in zip(u, v):
                np.testing.assert_array_equal(p, q)
        elif isinstance(u, np.ndarray):
            np.testing.assert_array_equal(u, v)
        else:
            assert u == v


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("how", ["fit", "partial_fit", "warm_start"])
def test_bad_input_changes_nothing(Est, how, rng):
    X, y = _data(rng, Est is MLPRegressor)
    est = _fitted(Est, X, y, warm_start=how == "warm_start")
    est.partial_fit(X, y)  # the optimiser state and the partial_fit record exist
    before = _picture(est, X)
    wide = np.c_[X, X[:, :1]]
    wide[3, 2] = np.nan
    call = est.partial_fit if how == "partial_fit" else est.fit
    for Xb, yb in ((wide, y), (X, y[:10]), (np.full_like(X, np.inf), y)):
        with pytest.raises(ValueError):
            call(Xb, yb)
        _same(before, _picture(est, X))


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_an_interrupt_after_training_changes_nothing(Est, how, rng, monkeypatch):
    # the epochs ran and moved the parameters, then the call failed: all of it is undone
    X, y = _data(rng, Est is MLPRegressor)
    est = _fitted(Est, X, y, warm_start=how == "warm_start")
    before = _picture(est, X)
    train = fastnn.training.train

    def train_then_interrupt(*args, **kwargs):
        train(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(fastnn.training, "train", train_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        (est.partial_fit if how == "partial_fit" else est.fit)(X, y)
    _same(before, _picture(est, X))
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(X, y)  # and it trains on from there
    assert est.n_iter_ == before[1] + 1


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the L2 term's
def test_divergence_changes_nothing(rng):
    # with this rate the first epochs move the parameters, the third diverges
    X, y = _data(rng, True)
    est = _fitted(MLPRegressor, X, y, warm_start=True, solver="sgd")
    before = _picture(est, X)
    est.set_params(learning_rate_init=1e30, max_iter=50)
    with pytest.raises(FloatingPointError, match="diverged at epoch [2-9]"):
        est.fit(X, y * 1e30)
    est.set_params(learning_rate_init=0.001, max_iter=3)  # as set before the failed fit
    _same(before, _picture(est, X))
