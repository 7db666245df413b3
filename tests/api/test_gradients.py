"""Central finite-difference checks of MLP.gradients, for every backend, activation and loss."""

import numpy as np
import pytest
from helpers import HIDDEN, PAIRS, make_targets

import fastnn


def _numeric_grad(model, X, y, param, eps=1e-6):
    g = np.zeros_like(param)
    it = np.nditer(param, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = param[i]
        param[i] = old + eps
        up = model.loss(X, y)
        param[i] = old - eps
        down = model.loss(X, y)
        param[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss,output", PAIRS)
def test_gradients_match_finite_differences(backend, rng, hidden, loss, output):
    k = 1 if loss == "bce" else 3
    model = fastnn.MLP.from_sizes([4, 5, 3, k], hidden=hidden, output=output,
                                  dtype=np.float64, seed=1)
    for layer in model.layers:  # keep pre-activations away from relu's kink
        layer.b[...] = rng.uniform(0.05, 0.2, layer.b.shape)
    X = rng.normal(size=(7, 4))
    y = make_targets(rng, loss, 7, k)
    grads = model.gradients(X, y)
    for layer, (dW, db) in zip(model.layers, grads):
        np.testing.assert_allclose(dW, _numeric_grad(model, X, y, layer.W), rtol=1e-5,
                                   atol=1e-8)
        np.testing.assert_allclose(db, _numeric_grad(model, X, y, layer.b), rtol=1e-5,
                                   atol=1e-8)


def test_dense_backward_matches_finite_differences(backend, rng):
    for act in ["sigmoid", "tanh", "softplus", "relu", "identity", "softmax"]:
        layer = fastnn.Dense(3, 4, act, dtype=np.float64, seed=0)
        layer.b[...] = 0.1
        X = rng.normal(size=(5, 3))
        R = rng.normal(size=(5, 4))  # loss = sum(R * A)
        layer.forward(X)
        dX = layer.backward(R)

        def f():
            return float(np.sum(R * layer.forward(X)))

        num_W = np.zeros_like(layer.W)
        for i in np.ndindex(layer.W.shape):
            old = layer.W[i]
            layer.W[i] = old + 1e-6
            up = f()
            layer.W[i] = old - 1e-6
            num_W[i] = (up - f()) / 2e-6
            layer.W[i] = old
        layer.forward(X)
        dX = layer.backward(R)
        np.testing.assert_allclose(layer.dW, num_W, rtol=1e-5, atol=1e-8, err_msg=act)
        num_X = np.zeros_like(X)
        for i in np.ndindex(X.shape):
            Xp, Xm = X.copy(), X.copy()
            Xp[i] += 1e-6
            Xm[i] -= 1e-6
            num_X[i] = (np.sum(R * layer.forward(Xp)) - np.sum(R * layer.forward(Xm))) / 2e-6
        np.testing.assert_allclose(dX, num_X, rtol=1e-5, atol=1e-8, err_msg=act)


@pytest.mark.parametrize("loss,output", PAIRS)
def test_every_backend_gives_the_reference_gradients(backend, rng, loss, output):
    k = 1 if loss == "bce" else 4
    for dtype, rtol in ((np.float32, 2e-4), (np.float64, 1e-10)):
        model = fastnn.MLP.from_sizes([6, 8, k], hidden="tanh", output=output, dtype=dtype,
                                      seed=3)
        X = rng.normal(size=(9, 6))
        y = make_targets(rng, loss, 9, k)
        got = model.gradients(X, y)
        fastnn.set_backend("numpy")
        want = model.gradients(X, y)
        fastnn.set_backend(backend)
        for (gw, gb), (ww, wb) in zip(got, want):
            assert gw.dtype == dtype
            np.testing.assert_allclose(gw, ww, rtol=rtol, atol=rtol * 0.1)
            np.testing.assert_allclose(gb, wb, rtol=rtol, atol=rtol * 0.1)
