"""Inference near the float limits: finite results or a FloatingPointError, never NaN."""

import numpy as np
import pytest

import fastnn
from helpers import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_overflowing_layer_raises_instead_of_nan(backend, dtype):
    big = float(np.finfo(dtype).max) / 4
    X = np.full((4, 3), big, dtype)
    clf = fastnn.MLP.from_sizes([3, 4, 2], dtype=dtype, seed=0)
    reg = fastnn.MLP.from_sizes([3, 4, 1], output="identity", dtype=dtype, seed=0)
    for model in (clf, reg):  # every unit sums 3 * max / 4 and more: the first layer overflows
        for layer in model.layers:
            layer.W = np.ones_like(layer.W)
    for call in (lambda: clf.predict(X), lambda: clf.predict_proba(X),
                 lambda: clf.score(X, [0, 1, 0, 1]), lambda: reg.predict(X),
                 lambda: reg.score(X, np.arange(4.0))):
        with pytest.raises(FloatingPointError, match="output is not finite"):
            call()
    for model, y in ((clf, [0, 1, 0, 1]), (reg, np.arange(4.0))):
        with pytest.raises(FloatingPointError, match="loss is not finite"):
            model.loss(X, y)
        assert not np.isfinite(model.forward(X)).all()  # forward gives the raw numbers


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_but_finite_inputs_still_score(backend, dtype):
    # a softmax of large logits is finite (computed from the max): no false alarm
    X = np.full((4, 3), 1e3, dtype)
    clf = fastnn.MLP.from_sizes([3, 4, 2], dtype=dtype, seed=0)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert 0.0 <= clf.score(X, [0, 1, 0, 1]) <= 1.0
    assert np.isfinite(clf.loss(X, [0, 1, 0, 1]))
