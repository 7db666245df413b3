"""Small builders shared by the tests."""

import numpy as np

import fastnn
from fastnn.kernels import codes as C

CPU_BACKENDS = [b for b in fastnn.available_backends() if b != "cuda"]
COMPILED_BACKENDS = [b for b in CPU_BACKENDS if b != "numpy"]

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "softplus"]
# (loss, output activation)
PAIRS = [("cross_entropy", "softmax"), ("bce", "sigmoid"), ("mse", "identity")]
DTYPES = [np.float32, np.float64]


def make_targets(rng, loss, n, k, dtype=np.float64, onehot=False):
    """Random targets of the form each loss takes."""
    if loss == "cross_entropy":
        labels = rng.integers(0, k, n)
        return np.eye(k, dtype=dtype)[labels] if onehot else labels
    if loss == "bce":
        return rng.integers(0, 2, (n, k)).astype(dtype)
    return rng.normal(size=(n, k)).astype(dtype)


def dense_targets(rng, loss, n, k, dtype):
    y = make_targets(rng, loss, n, k, dtype, onehot=True)
    return np.ascontiguousarray(y, dtype=dtype)


def code(name):
    return C.ACTIVATIONS[name]


def tol(dtype):
    """Comparison tolerance against the reference for a dtype."""
    if np.dtype(dtype) == np.float32:
        return dict(rtol=2e-4, atol=2e-5)
    return dict(rtol=1e-9, atol=1e-11)


# --- API-level parity (tests/api/test_parity.py, tests/cuda/test_parity.py) -------------------

PARITY_MODELS = [([4, 6, 3], "tanh", "softmax"), ([4, 5, 2], "relu", "sigmoid"),
                 ([4, 3, 2], "softplus", "identity")]


def _parity_data(loss, dtype, n=10, d=4, k=3):
    rng = np.random.default_rng(99)
    X = rng.standard_normal((n, d)).astype(dtype)
    if loss == "cross_entropy":
        return X, rng.integers(0, k, n)
    if loss == "bce":
        return X, rng.integers(0, 2, (n, k)).astype(dtype)
    return X, rng.standard_normal((n, k)).astype(dtype)


def api_numbers(backend, dtype=np.float32, put=None, quick=False):
    """Every number the public API gives on small problems, under ``backend``, as a flat dict.

    ``put(array)`` turns an input (X, and y for fit) into the form under test (default: the
    NumPy array itself; tests/cuda passes device arrays). ``quick`` trains one model, with two
    fits (for the CUDA simulator). Compared key by key against the "numpy" backend's dict.
    """
    put = put or (lambda a: a)
    old = fastnn.get_backend()
    fastnn.set_backend(backend)
    out = {}
    try:
        X, _ = _parity_data("mse", dtype)
        dA = np.random.default_rng(5).standard_normal((X.shape[0], 5)).astype(dtype)
        for act in HIDDEN + ["softmax"]:
            layer = fastnn.Dense(4, 5, activation=act, dtype=dtype, seed=1)
            out[f"dense-{act}-A"] = np.asarray(layer.forward(put(X)))
            out[f"dense-{act}-dX"] = np.asarray(layer.backward(put(dA)))
            out[f"dense-{act}-dW"], out[f"dense-{act}-db"] = layer.dW, layer.db
        for sizes, hidden, output in PARITY_MODELS:
            loss = {"softmax": "cross_entropy", "sigmoid": "bce", "identity": "mse"}[output]
            X, y = _parity_data(loss, dtype, k=sizes[-1])

            def model():
                return fastnn.MLP.from_sizes(sizes, hidden=hidden, output=output, dtype=dtype,
                                             seed=3)

            m = model()
            tag = f"{hidden}-{output}"
            for l, (dW, db) in enumerate(m.gradients(put(X), y)):
                out[f"{tag}-grad{l}-dW"], out[f"{tag}-grad{l}-db"] = dW, db
            out[f"{tag}-loss"] = m.loss(put(X), y)
            out[f"{tag}-predict"] = m.predict(put(X))
            if quick and output != "softmax":
                continue  # quick: one model trains
            out[f"{tag}-steps"] = [m.train_step(put(X), y, 0.1) for _ in range(2)]
            out.update(_params_of(m, f"{tag}-after-steps"))
            runs = [("sgd", False), ("adam", True)] if quick else [
                (opt, shuffle) for opt in ("sgd", "momentum", "adam") for shuffle in (False, True)]
            for opt, shuffle in runs:
                m = model()
                h = m.fit(put(X), put(y), epochs=2, batch_size=4, lr=0.05, optimizer=opt,
                          shuffle=shuffle, seed=7, progress=False)
                out[f"{tag}-fit-{opt}-{shuffle}-loss"] = h.loss
                out.update(_params_of(m, f"{tag}-fit-{opt}-{shuffle}"))
                out[f"{tag}-fit-{opt}-{shuffle}-predict"] = m.predict(put(X))
    finally:
        fastnn.set_backend(old)
    return out


def _params_of(m, tag):
    return {f"{tag}-{l}-{name}": np.array(getattr(layer, name))
            for l, layer in enumerate(m.layers) for name in ("W", "b")}


def assert_same_numbers(got, want, dtype, slack=1.0):
    """``api_numbers`` dicts equal to dtype tolerance (predicted labels exactly)."""
    assert got.keys() == want.keys()
    t = tol(dtype)
    for key in want:
        np.testing.assert_allclose(np.asarray(got[key], dtype=np.float64),
                                   np.asarray(want[key], dtype=np.float64), err_msg=key,
                                   rtol=t["rtol"] * slack, atol=t["atol"] * slack)
