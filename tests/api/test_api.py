"""The public API: Dense, MLP, backends, input handling and its errors."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from helpers import make_targets

import fastnn
from fastnn.kernels import reference as R


def _digits_like(rng, n=120, d=8, k=3):
    centers = rng.normal(size=(k, d)) * 3
    y = rng.integers(0, k, n)
    return centers[y] + rng.normal(size=(n, d)), y


# --- Dense ------------------------------------------------------------------------------
def test_dense_attributes_and_forward(backend, rng):
    layer = fastnn.Dense(3, 5, "tanh", seed=0)
    assert layer.W.shape == (5, 3) and layer.b.shape == (5,)
    assert layer.W.dtype == np.float32 and layer.activation == "tanh"
    X = rng.normal(size=(4, 3))
    want = np.tanh(X.astype(np.float32) @ layer.W.T + layer.b)
    np.testing.assert_allclose(layer.forward(X), want, rtol=1e-5, atol=1e-6)


def test_dense_rejects_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        fastnn.Dense(2, 2, "gelu")
    with pytest.raises(ValueError, match="in_features"):
        fastnn.Dense(0, 2)
    with pytest.raises(ValueError, match="dtype"):
        fastnn.Dense(2, 2, dtype=np.int32)
    layer = fastnn.Dense(2, 3)
    with pytest.raises(ValueError, match="shape"):
        layer.W = np.zeros((2, 3))
    with pytest.raises(ValueError, match="forward"):
        layer.backward(np.zeros((1, 3)))


def test_dense_backward_through_step_raises():
    layer = fastnn.Dense(2, 2, "step")
    layer.forward(np.ones((1, 2)))
    with pytest.raises(ValueError, match="step"):
        layer.backward(np.ones((1, 2)))


def test_dense_backward_does_not_modify_callers_array(backend, rng):
    layer = fastnn.Dense(3, 4, "sigmoid", seed=1)
    layer.forward(rng.normal(size=(2, 3)).astype(np.float32))
    dA = rng.normal(size=(2, 4)).astype(np.float32)
    keep = dA.copy()
    layer.backward(dA)
    np.testing.assert_array_equal(dA, keep)


# --- construction -----------------------------------------------------------------------
def test_from_sizes_is_seeded_and_uses_he_or_glorot():
    a = fastnn.MLP.from_sizes([10, 20, 3], seed=7)
    b = fastnn.MLP.from_sizes([10, 20, 3], seed=7)
    c = fastnn.MLP.from_sizes([10, 20, 3], seed=8)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.W, lb.W)
    assert not np.array_equal(a.layers[0].W, c.layers[0].W)
    big = fastnn.MLP.from_sizes([400, 300, 200], hidden="relu", output="softmax", seed=0)
    he, glorot = np.sqrt(6 / 400), np.sqrt(6 / (300 + 200))
    assert np.abs(big.layers[0].W).max() <= he and np.abs(big.layers[0].W).max() > 0.95 * he
    assert np.abs(big.layers[1].W).max() <= glorot
    assert np.abs(big.layers[1].W).max() > 0.95 * glorot
    np.testing.assert_array_equal(big.layers[0].b, 0)


def test_loss_is_inferred_and_checked():
    assert fastnn.MLP.from_sizes([2, 3], output="softmax").loss_name == "cross_entropy"
    assert fastnn.MLP.from_sizes([2, 1], output="sigmoid").loss_name == "bce"
    assert fastnn.MLP.from_sizes([2, 1], output="identity").loss_name == "mse"
    assert fastnn.MLP.from_sizes([2, 1], output="step").loss_name is None
    with pytest.raises(ValueError, match="fused"):
        fastnn.MLP([fastnn.Dense(2, 1, "sigmoid")], loss="mse")
    with pytest.raises(ValueError, match="output layer only"):
        fastnn.MLP([fastnn.Dense(2, 3, "softmax"), fastnn.Dense(3, 2, "softmax")])
    with pytest.raises(ValueError, match="expects 4 inputs"):
        fastnn.MLP([fastnn.Dense(2, 3), fastnn.Dense(4, 2)])
    with pytest.raises(ValueError, match="dtype"):
        fastnn.MLP([fastnn.Dense(2, 3), fastnn.Dense(3, 2, dtype=np.float64)])


def test_layers_are_views_of_the_model():
    model = fastnn.MLP.from_sizes([3, 4, 2], seed=0)
    model.layers[0].W = np.ones((4, 3))
    np.testing.assert_array_equal(model.store.theta[:12], 1)


# --- inference --------------------------------------------------------------------------
def test_forward_matches_reference_formulas(backend, rng):
    model = fastnn.MLP.from_sizes([5, 7, 3], hidden="softplus", output="softmax", seed=2)
    X = rng.normal(size=(6, 5)).astype(np.float32)
    A = X
    for layer in model.layers:
        A = R.activate(A @ layer.W.T + layer.b, fastnn.kernels.codes.ACTIVATIONS[layer.activation])
    np.testing.assert_allclose(model.forward(X), A, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(X).sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X), A.argmax(1))


def test_predict_kinds(backend, rng):
    X = rng.normal(size=(8, 3))
    sig = fastnn.MLP.from_sizes([3, 4, 1], output="sigmoid", seed=0)
    p = sig.predict(X)
    assert p.shape == (8,) and set(np.unique(p)) <= {0, 1}
    proba = sig.predict_proba(X)
    assert proba.shape == (8, 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(p, (proba[:, 1] >= 0.5).astype(int))
    reg = fastnn.MLP.from_sizes([3, 4, 2], output="identity", seed=0)
    assert reg.predict(X).shape == (8, 2)
    with pytest.raises(ValueError, match="predict_proba"):
        reg.predict_proba(X)


def test_float32_model_never_upcasts(backend, rng):
    model = fastnn.MLP.from_sizes([4, 6, 3], seed=0)
    X64 = rng.normal(size=(5, 4))
    assert model.forward(X64).dtype == np.float32
    assert all(g.dtype == np.float32 for pair in model.gradients(X64, [0, 1, 2, 0, 1])
               for g in pair)


def test_layouts_and_dtypes_are_converted_once(backend, rng):
    model = fastnn.MLP.from_sizes([4, 6, 3], seed=0)
    X = rng.normal(size=(10, 8))
    base = model.forward(np.ascontiguousarray(X[:, ::2], dtype=np.float32))
    for variant in (X[:, ::2], np.asfortranarray(X[:, ::2]), X[:, ::2].astype(np.float16)):
        np.testing.assert_allclose(model.forward(variant), base, rtol=2e-3, atol=2e-3)
    ints = rng.integers(-3, 3, size=(5, 4))
    np.testing.assert_allclose(model.forward(ints), model.forward(ints.astype(np.float32)))


# --- training ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_train_step_returns_loss_before_a_plain_sgd_update(backend, rng, dtype):
    model = fastnn.MLP.from_sizes([4, 5, 3], hidden="tanh", dtype=dtype, seed=0)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    before = model.loss(X, y)
    grads = model.gradients(X, y)
    want = [(l.W - 0.1 * dW, l.b - 0.1 * db) for l, (dW, db) in zip(model.layers, grads)]
    got_loss = model.train_step(X, y, 0.1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.isclose(got_loss, before, rtol=tol)
    for layer, (W, b) in zip(model.layers, want):
        np.testing.assert_allclose(layer.W, W, rtol=tol, atol=tol)
        np.testing.assert_allclose(layer.b, b, rtol=tol, atol=tol)


def test_target_shapes_are_equivalent(backend, rng):
    X = rng.normal(size=(6, 3))
    ce = fastnn.MLP.from_sizes([3, 4], output="softmax", seed=0)
    labels = np.array([0, 1, 2, 3, 1, 0])
    assert np.isclose(ce.loss(X, labels), ce.loss(X, np.eye(4)[labels]))
    bce = fastnn.MLP.from_sizes([3, 1], output="sigmoid", seed=0)
    y01 = np.array([0, 1, 1, 0, 1, 0])
    assert np.isclose(bce.loss(X, y01), bce.loss(X, y01.reshape(-1, 1)))
    mse = fastnn.MLP.from_sizes([3, 1], output="identity", seed=0)
    yr = rng.normal(size=6)
    assert np.isclose(mse.loss(X, yr), mse.loss(X, yr.reshape(-1, 1)))
    pred = mse.forward(X)[:, 0].astype(np.float64)
    assert np.isclose(mse.loss(X, yr), 0.5 * np.mean((pred - yr) ** 2), rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_fit_learns_and_records_history(backend, rng, optimizer):
    X, y = _digits_like(rng)
    model = fastnn.MLP.from_sizes([8, 16, 3], seed=0)
    lr = 0.01 if optimizer == "adam" else 0.05
    history = model.fit(X, y, epochs=15, batch_size=16, lr=lr, optimizer=optimizer, seed=0,
                        progress=False)
    assert isinstance(history, fastnn.History) and len(history.loss) == 15
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert model.score(X, y) > 0.9


def test_fit_is_reproducible_with_a_seed(backend, rng):
    X, y = _digits_like(rng)
    runs = []
    for _ in range(2):
        model = fastnn.MLP.from_sizes([8, 16, 3], seed=0)
        model.fit(X, y, epochs=3, lr=0.05, seed=42, progress=False)
        runs.append(model.layers[0].W.copy())
    np.testing.assert_array_equal(*runs)


def test_fit_shows_a_progress_bar(backend, rng, capsys):
    X, y = _digits_like(rng, n=40)
    fastnn.MLP.from_sizes([8, 4, 3], seed=0).fit(X, y, epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "fit" in err and "loss=" in err


def test_full_batch_and_per_sample_fit_match_the_reference(backend, rng):
    X, y = _digits_like(rng, n=30)
    results = []
    for name in (backend, "numpy"):
        fastnn.set_backend(name)
        model = fastnn.MLP.from_sizes([8, 5, 3], hidden="sigmoid", dtype=np.float64, seed=0)
        h1 = model.fit(X, y, epochs=2, batch_size=1, lr=0.1, seed=3, progress=False)
        h2 = model.fit(X, y, epochs=2, batch_size=30, lr=0.1, shuffle=False, progress=False)
        results.append((h1.loss + h2.loss, model.layers[0].W.copy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10)


# --- validation -------------------------------------------------------------------------
def _snapshot(model):
    return [p.copy() for l in model.layers for p in (l.W, l.b)]


BAD_CALLS = [
    ("NaN", lambda m, X, y: m.fit(np.where(X > 1, np.nan, X), y, progress=False)),
    ("infinity", lambda m, X, y: m.train_step(np.where(X > 1, np.inf, X), y, 0.1)),
    ("NaN", lambda m, X, y: m.fit(X, np.where(y == 1, np.nan, y), progress=False)),
    ("has 7 features, but the model expects 8", lambda m, X, y: m.fit(X[:, :7], y,
                                                                       progress=False)),
    ("out of range", lambda m, X, y: m.fit(X, y + 1, progress=False)),
    ("out of range", lambda m, X, y: m.train_step(X, y - 1, 0.1)),
    ("rows but X has", lambda m, X, y: m.fit(X, y[:-1], progress=False)),
    ("empty", lambda m, X, y: m.fit(X[:0], y[:0], progress=False)),
    ("rank", lambda m, X, y: m.fit(X[0], y, progress=False)),
    ("rank", lambda m, X, y: m.predict(X[None])),
    ("lr", lambda m, X, y: m.fit(X, y, lr=0, progress=False)),
    ("lr", lambda m, X, y: m.fit(X, y, lr=float("nan"), progress=False)),
    ("lr", lambda m, X, y: m.train_step(X, y, -1.0)),
    ("epochs", lambda m, X, y: m.fit(X, y, epochs=0, progress=False)),
    ("batch_size", lambda m, X, y: m.fit(X, y, batch_size=0, progress=False)),
    ("optimizer", lambda m, X, y: m.fit(X, y, optimizer="lbfgs", progress=False)),
    ("integers", lambda m, X, y: m.fit(X, y + 0.5, progress=False)),
    ("real numbers", lambda m, X, y: m.fit(X.astype(str), y, progress=False)),
    ("too large", lambda m, X, y: m.fit(X * 1e300, y, progress=False)),
]


@pytest.mark.parametrize("message,call", BAD_CALLS)
def test_bad_input_names_the_problem_and_leaves_the_model_unchanged(backend, rng, message,
                                                                    call):
    X, y = _digits_like(rng, n=20)
    model = fastnn.MLP.from_sizes([8, 5, 3], seed=0)
    before = _snapshot(model)
    with pytest.raises(ValueError, match=message):
        call(model, X, y)
    for a, b in zip(before, _snapshot(model)):
        np.testing.assert_array_equal(a, b)


def test_training_through_step_raises(backend, rng):
    model = fastnn.MLP([fastnn.Dense(2, 2, "step"), fastnn.Dense(2, 1, "sigmoid")])
    with pytest.raises(ValueError, match="step"):
        model.train_step(np.ones((2, 2)), [0, 1], 0.1)
    out = fastnn.MLP.from_sizes([2, 1], output="step")
    with pytest.raises(ValueError, match="step"):
        out.fit(np.ones((2, 2)), [0, 1], progress=False)
    relu_out = fastnn.MLP.from_sizes([2, 1], output="relu")
    with pytest.raises(ValueError, match="no paired loss"):
        relu_out.fit(np.ones((2, 2)), [0, 1], progress=False)


# --- backends, pickling, import ---------------------------------------------------------
def test_backend_selection_errors():
    with pytest.raises(ValueError, match="unknown backend"):
        fastnn.set_backend("tpu")
    assert "numpy" in fastnn.available_backends()
    assert fastnn.get_backend() in fastnn.available_backends()
    if "cuda" not in fastnn.available_backends():
        with pytest.raises(RuntimeError, match="not available.*available backends: "):
            fastnn.set_backend("cuda")


def _python(code, tmp_path, **env):
    """Run ``code`` in a fresh interpreter outside the source tree (so the install is imported)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, **env})


def test_backend_from_environment(tmp_path):
    code = "import fastnn; print(fastnn.get_backend())"
    out = _python(code, tmp_path, FASTNN_BACKEND="numpy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "numpy"
    bad = _python(code, tmp_path, FASTNN_BACKEND="nope")
    assert bad.returncode != 0 and "unknown backend 'nope'" in bad.stderr


def test_import_compiles_nothing(tmp_path):
    code = "import sys, fastnn; print('numba' in sys.modules, 'scipy' in sys.modules)"
    out = _python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_pickle_round_trip_keeps_layers_bound(backend, rng):
    X, y = _digits_like(rng, n=20)
    model = fastnn.MLP.from_sizes([8, 5, 3], seed=0)
    model.fit(X, y, epochs=2, optimizer="adam", lr=0.01, progress=False)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict_proba(X), model.predict_proba(X))
    clone.train_step(X, y, 0.5)
    np.testing.assert_array_equal(clone.store.theta[:40], clone.layers[0].W.ravel())
    assert not np.array_equal(clone.layers[0].W, model.layers[0].W)


def test_loss_on_bce_and_mse_uses_the_documented_conventions(backend, rng):
    X = rng.normal(size=(5, 3))
    model = fastnn.MLP.from_sizes([3, 2], output="sigmoid", dtype=np.float64, seed=0)
    y = make_targets(rng, "bce", 5, 2)
    z = X @ model.layers[0].W.T + model.layers[0].b
    p = 1 / (1 + np.exp(-z))
    want = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / 5
    assert np.isclose(model.loss(X, y), want, rtol=1e-12)
