"""Correctness tests derived from the lecture notes in ``shared/seeds/``: small networks on
XOR, seed 003's hard-threshold networks, and seed 001's logistic and linear regression.

Expected values come from ``seed_data.py`` (printed figures and independent re-derivations).
Every test that touches the library runs once per available backend except "cuda".
"""

import numpy as np
import pytest
from seed_checks import _a, _close, _params, _rounds_to, sd

import fastnn


# ==========================================================================================
# XOR with small networks (sigmoid hidden and tanh hidden, sigmoid output, BCE)
# ==========================================================================================
XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0.0, 1.0, 1.0, 0.0])


def _xor_init(hidden_units, seed):
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0.0, 1.0, (hidden_units, 2))
    W2 = rng.normal(0.0, 1.0, (1, hidden_units))
    return W1, np.zeros(hidden_units), W2, np.zeros(1)


def _xor_reference(hidden, hidden_units, seed, lr, epochs):
    """Full-batch gradient descent on XOR in plain NumPy (mean BCE, dZ = (A - Y) / N)."""
    W1, b1, W2, b2 = _xor_init(hidden_units, seed)
    g = (lambda z: 1.0 / (1.0 + np.exp(-z))) if hidden == "sigmoid" else np.tanh
    dg = (lambda a: a * (1.0 - a)) if hidden == "sigmoid" else (lambda a: 1.0 - a * a)
    Y = XOR_Y[:, None]
    for _ in range(epochs):
        A1 = g(XOR_X @ W1.T + b1)
        A2 = 1.0 / (1.0 + np.exp(-(A1 @ W2.T + b2)))
        dZ2 = (A2 - Y) / len(XOR_X)
        dZ1 = (dZ2 @ W2) * dg(A1)
        W2, b2 = W2 - lr * (dZ2.T @ A1), b2 - lr * dZ2.sum(0)
        W1, b1 = W1 - lr * (dZ1.T @ XOR_X), b1 - lr * dZ1.sum(0)
    A1 = g(XOR_X @ W1.T + b1)
    return (1.0 / (1.0 + np.exp(-(A1 @ W2.T + b2)))).ravel()


@pytest.mark.parametrize("hidden, units, lr, epochs", [
    ("sigmoid", 4, 2.0, 2000),
    ("tanh", 8, 1.0, 1000),
])
def test_xor_learned(backend, hidden, units, lr, epochs):
    W1, b1, W2, b2 = _xor_init(units, seed=0)
    model = fastnn.MLP([fastnn.Dense(2, units, hidden, dtype=np.float64),
                        fastnn.Dense(units, 1, "sigmoid", dtype=np.float64)])
    for layer, (W, b) in zip(model.layers, ((W1, b1), (W2, b2))):
        layer.W[...] = W
        layer.b[...] = b
    hist = model.fit(XOR_X, XOR_Y, epochs=epochs, batch_size=4, lr=lr, optimizer="sgd",
                     shuffle=False, progress=False)
    assert np.ravel(model.predict(XOR_X)).tolist() == [0, 1, 1, 0]
    proba = model.predict_proba(XOR_X)
    assert proba.shape == (4, 2)
    _close(proba.sum(axis=1), np.ones(4))
    proba = proba[:, 1]
    assert np.all(np.abs(proba - XOR_Y) < 0.05), proba
    assert len(hist.loss) == epochs
    assert hist.loss[-1] < 0.02 < hist.loss[0]
    # full-batch GD is deterministic: same trajectory as the plain NumPy derivation
    _close(proba, _xor_reference(hidden, units, 0, lr, epochs), atol=1e-7, rtol=0)


def test_xor_learned_from_sizes_seeded_per_sample_sgd(backend):
    """MLP.from_sizes with its own seeded initialisation; batch size 1 (the seeds' Algorithm
    3.1) with seeded shuffling."""
    model = fastnn.MLP.from_sizes([2, 4, 1], hidden="sigmoid", output="sigmoid",
                                  dtype=np.float64, seed=0)
    hist = model.fit(XOR_X, XOR_Y, epochs=1000, batch_size=1, lr=0.5, optimizer="sgd",
                     shuffle=True, seed=0, progress=False)
    assert np.ravel(model.predict(XOR_X)).tolist() == [0, 1, 1, 0]
    assert hist.loss[-1] < 0.1 < hist.loss[0]


def test_xor_learned_from_sizes_tanh_adam(backend):
    model = fastnn.MLP.from_sizes([2, 8, 1], hidden="tanh", output="sigmoid", dtype=np.float64,
                                  seed=0)
    model.fit(XOR_X, XOR_Y, epochs=500, batch_size=4, lr=0.05, optimizer="adam", shuffle=True,
              seed=0, progress=False)
    assert np.ravel(model.predict(XOR_X)).tolist() == [0, 1, 1, 0]


def test_xor_seeds_make_training_reproducible(backend):
    runs = []
    for _ in range(2):
        model = fastnn.MLP.from_sizes([2, 4, 1], hidden="tanh", output="sigmoid",
                                      dtype=np.float64, seed=7)
        hist = model.fit(XOR_X, XOR_Y, epochs=50, batch_size=1, lr=0.5, shuffle=True, seed=3,
                         progress=False)
        runs.append((np.asarray(hist.loss), _params(model)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for (W, b), (W0, b0) in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


# ==========================================================================================
# Seed 003, problems 1-3: hard-threshold networks (step hidden units, threshold output)
# ==========================================================================================
def _layer(in_f, out_f, activation, W, b):
    layer = fastnn.Dense(in_f, out_f, activation, dtype=np.float64)
    layer.W[...] = W
    layer.b[...] = b
    return layer


def _threshold_net(p, n_in, n_hidden):
    """The seed's network as Dense layers: step hidden, step output, plus the output layer with
    identity activation to read the logit zO, and the hidden layer with identity to read zH."""
    return dict(
        zH=_layer(n_in, n_hidden, "identity", p["WH"], p["bH"]),
        uH=_layer(n_in, n_hidden, "step", p["WH"], p["bH"]),
        zO=_layer(n_hidden, 1, "identity", p["WO"], p["bO"]),
        mlp=fastnn.MLP([_layer(n_in, n_hidden, "step", p["WH"], p["bH"]),
                        _layer(n_hidden, 1, "step", p["WO"], p["bO"])]),
    )


# x values on both sides of, and exactly at, the thresholds 1 and 3
S003_P1_XS = [-5.0, 0.0, 0.5, 0.999, 1.0, 1.5, 2.0, 2.999, 3.0, 3.001, 4.0, 10.0]


def test_s003_problem1(backend):
    net = _threshold_net(sd.S003_P1, 1, 2)
    X = np.array(S003_P1_XS)[:, None]
    expected = [sd.s003_p1_expected(x) for x in S003_P1_XS]
    zH = net["zH"].forward(X)
    uH = net["uH"].forward(X)
    zO = net["zO"].forward(uH)
    _close(zH, [e[0] for e in expected], err_msg="zH = (x-1, x-3)")
    np.testing.assert_array_equal(uH, [e[1] for e in expected], err_msg="uH")
    np.testing.assert_array_equal(np.ravel(zO), [e[2] for e in expected], err_msg="zO")
    yhat = [e[3] for e in expected]       # 0 exactly on [1, 3), else 1
    assert yhat == [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_array_equal(np.ravel(net["mlp"].forward(X)), yhat)
    np.testing.assert_array_equal(np.ravel(net["mlp"].predict(X)), yhat)
    # (a) Nh = 2, No = 1
    assert [layer.W.shape[0] for layer in net["mlp"].layers] == [2, 1]


def test_s003_problem2_table(backend):
    t = sd.S003_P2_TABLE
    net = _threshold_net(sd.S003_P2, 1, 2)
    X = np.array(t["x"])[:, None]
    zH = net["zH"].forward(X)
    uH = net["uH"].forward(X)
    _close(zH[:, 0], t["zH1"], err_msg="zH1 = x - 2")
    # the seed's table prints +0.5 for x = 3.5 in this row (a sign typo: x - 4 = -0.5; its
    # u_i2 = 0 in that column only fits -0.5)
    _close(zH[:, 1], t["zH2"], err_msg="zH2 = x - 4")
    assert sd.S003_P2_Z2_PRINTED_TEST != zH[4, 1]
    np.testing.assert_array_equal(uH[:, 0], t["uH1"])
    np.testing.assert_array_equal(uH[:, 1], t["uH2"])
    _close(np.ravel(net["zO"].forward(uH)), t["zO"], err_msg="zO = uH1 - 2 uH2 - 0.5")
    yhat = np.ravel(net["mlp"].predict(X))
    np.testing.assert_array_equal(yhat, t["yhat"])
    # (b) the network classifies all four training points correctly; (c) x = 3.5 gives 1
    np.testing.assert_array_equal(yhat[:4], t["y"])
    assert yhat[4] == 1
    # and the closed form: yhat = 1 exactly on [2, 4)
    xs = np.array([-1.0, 1.999, 2.0, 3.0, 3.999, 4.0, 6.0])
    np.testing.assert_array_equal(np.ravel(net["mlp"].predict(xs[:, None])),
                                  ((xs >= 2) & (xs < 4)).astype(float))


def test_s003_problem3_regions(backend):
    net = _threshold_net(sd.S003_P3, 2, 3)
    # grid of binary fractions, so x1 + x2 - 1 is exact and the boundaries are hit exactly
    vals = [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
    pts = [(a, b) for a in vals for b in vals]
    X = np.array(pts)
    expected = [sd.s003_p3_expected(a, b) for a, b in pts]
    zH = net["zH"].forward(X)
    _close(zH, [[a, b, a + b - 1.0] for a, b in pts], err_msg="zH = (x1, x2, x1+x2-1)")
    uH = net["uH"].forward(X)
    np.testing.assert_array_equal(uH, [e[0] for e in expected], err_msg="uH regions")
    zO = np.ravel(net["zO"].forward(uH))
    _close(zO, [e[1] for e in expected], err_msg="zO")
    yhat = np.ravel(net["mlp"].predict(X))
    np.testing.assert_array_equal(yhat, [e[2] for e in expected])
    inside = np.array([e[2] for e in expected]) == 1
    # in the triangle zO = 1 + 1 - 0 - 1.5 = 0.5; outside it zO < 0
    assert np.all(zO[inside] == 0.5)
    assert np.all(zO[~inside] < 0)
    # spot checks: corners (0,0) in; (0.5,0.5) on x1+x2=1 out; (-0.25, 0.25) out; (0.25,0.5) in
    lookup = dict(zip(pts, yhat))
    assert lookup[(0.0, 0.0)] == 1 and lookup[(0.25, 0.5)] == 1 and lookup[(0.0, 0.75)] == 1
    assert lookup[(0.5, 0.5)] == 0 and lookup[(-0.25, 0.25)] == 0 and lookup[(1.0, 0.0)] == 0
    assert inside.sum() == 10   # grid points with x1, x2 >= 0 and x1 + x2 < 1


@pytest.mark.parametrize("hidden, output", [("step", "step"), ("step", "sigmoid"),
                                            ("sigmoid", "step")])
def test_training_through_step_raises(backend, hidden, output):
    """An MLP ending in step is inference-only; step anywhere cannot be trained through."""
    p = sd.S003_P2
    model = fastnn.MLP([_layer(1, 2, hidden, p["WH"], p["bH"]),
                        _layer(2, 1, output, p["WO"], p["bO"])])
    X = np.array(sd.S003_P2_TABLE["x"][:4])[:, None]
    y = np.array(sd.S003_P2_TABLE["y"])
    before = _params(model)
    with pytest.raises(ValueError, match="step"):
        model.train_step(X, y, 0.1)
    with pytest.raises(ValueError, match="step"):
        model.fit(X, y, epochs=2, batch_size=2, lr=0.1, progress=False)
    for (W, b), (W0, b0) in zip(_params(model), before):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    # inference still works after the refused training
    if (hidden, output) == ("step", "step"):
        np.testing.assert_array_equal(np.ravel(model.predict(X)), y)


# ==========================================================================================
# Seed 001: logistic regression (1-layer sigmoid network) forward values and gradients
# ==========================================================================================
S001_X = np.array(sd.S001_X)
S001_REF = sd.s001_reference()


def s001_model(activation="sigmoid"):
    layer = fastnn.Dense(5, 1, activation, dtype=np.float64)
    layer.W[...] = sd.S001_W
    layer.b[...] = sd.S001_B
    return fastnn.MLP([layer])


def test_s001_forward_matches_printed(backend):
    model = s001_model()
    # single sample xT = (-8, 1, -3, 5, 2): a = 0.0788
    a1 = model.forward(S001_X[:1])
    assert np.shape(a1) == (1, 1)
    _rounds_to(a1, [[sd.S001_A_PRINTED[0]]])
    # batch X (3, 5): a = (0.0788, 0.9598, 0.9981)
    A = model.forward(S001_X)
    assert np.shape(A) == (3, 1)
    _rounds_to(np.ravel(A), sd.S001_A_PRINTED)
    _close(np.ravel(A), S001_REF["a"])
    # z = X W^T + b: printed (-2.4591, 3.1721, 6.2782), from W rounded to 4 decimals in the print,
    # so the gap may be up to 5e-5 * (sum|x| + 1) per row (actual gaps 3e-4, 2e-4, 0).
    lin = s001_model("identity")
    Z = np.ravel(lin.forward(S001_X))
    _close(Z, S001_REF["z"])
    assert np.all(np.abs(Z - _a(sd.S001_Z_PRINTED)) <= _a(sd.S001_Z_ROUNDING_BOUND))


def test_s001_single_sample_gradient(backend):
    """dL/dz = yhat - y, dL/dw = (yhat - y) x^T, dL/db = yhat - y (y = 1 assumed; the seed
    gives no label for this sample)."""
    model = s001_model()
    x = S001_X[:1]
    a = S001_REF["a"][0]
    for y in (1.0, 0.0):
        (dW, db), = model.gradients(x, np.array([y]))
        _close(dW, [[(a - y) * v for v in sd.S001_X[0]]])
        _close(db, [a - y])
        loss = model.loss(x, np.array([y]))
        assert loss == pytest.approx(-np.log(a) if y == 1 else -np.log(1 - a), rel=1e-12)


@pytest.mark.parametrize("y_shape", ["(N,)", "(N,1)"])
def test_s001_batch_loss_gradients_and_update(backend, y_shape):
    """Batch form dL/dZ = (A - Y) / N with labels y = (0, 1, 1)."""
    y = np.array(sd.S001_Y)
    if y_shape == "(N,1)":
        y = y[:, None]
    model = s001_model()
    assert model.loss(S001_X, y) == pytest.approx(S001_REF["bce"], rel=1e-12)
    (dW, db), = model.gradients(S001_X, y)
    _close(dW, S001_REF["dW"])
    _close(db, S001_REF["db"])
    lr = 0.1
    loss = model.train_step(S001_X, y, lr)
    assert loss == pytest.approx(S001_REF["bce"], rel=1e-12)
    (W, b), = _params(model)
    _close(W, _a(sd.S001_W) - lr * _a(S001_REF["dW"]))
    _close(b, _a(sd.S001_B) - lr * _a(S001_REF["db"]))


def test_s001_linear_regression_mse(backend):
    """Seed 001's linear regression: yhat = x w^T + b, div = 1/2 (yhat - y)^2, mean over the
    batch, so dL/dZ = (A - Y) / N."""
    model = s001_model("identity")
    y = np.array(sd.S001_Y)
    assert model.loss(S001_X, y) == pytest.approx(S001_REF["mse"], rel=1e-12)
    (dW, db), = model.gradients(S001_X, y[:, None])
    _close(dW, S001_REF["dW_mse"])
    _close(db, S001_REF["db_mse"])
