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
