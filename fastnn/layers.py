"""Dense: one fully connected layer, ``A = g(X @ W.T + b)``, usable alone or inside an MLP."""

import numbers

import numpy as np

from . import _backend
from ._init import init_weights
from ._validation import as_matrix, check_dtype, check_seed
from .kernels.codes import ACTIVATION_NAMES, IDENTITY, SOFTMAX, STEP, activation_code


def _view(attr, doc, settable=False):
    """A property for the array in ``attr``, up to date with a device copy; with ``settable``,
    assigning copies a checked array into it."""

    def get(self):
        return self._fresh(getattr(self, attr))

    def put(self, value):
        self._assign(get(self), value, attr.lstrip("_"))

    return property(get, put if settable else None, doc=doc)


class Dense:
    """A fully connected layer with weights ``W`` (out, in) and bias ``b`` (out,).

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    activation : str
        One of identity, sigmoid, tanh, relu, softplus, step, softmax.
    dtype : {np.float32, np.float64}
        Parameter dtype; inputs are converted to it once.
    seed : int or np.random.Generator, optional
        Seed for the initial weights (He for relu/softplus, Glorot otherwise).

    Notes
    -----
    When a layer is put in an MLP, its ``W``, ``b``, ``dW`` and ``db`` become views into the
    model's parameter store; assigning ``layer.W = array`` copies into that storage.
    ``forward`` keeps its input and output for ``backward``, so a Dense used on its own is not
    safe to share between threads (``MLP`` inference does not use this cache).
    """

    def __init__(self, in_features, out_features, activation="relu", *, dtype=np.float32,
                 seed=None):
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        act = activation_code(activation)
        dtype = check_dtype(dtype)
        rng = np.random.default_rng(check_seed(seed))
        W = init_weights(rng, int(out_features), int(in_features), act, dtype)
        self._set(W, np.zeros(int(out_features), dtype=dtype), act)

    @classmethod
    def from_weights(cls, W, b, activation="relu"):
        """A layer holding ``W`` (out, in) and ``b`` (out,): no draw, and no copy where none is
        needed.

        Both must be finite arrays of one float dtype (float32 or float64); that dtype is the
        layer's. The scikit-learn estimators build their layers from their own initial draws
        this way.
        """
        act = activation_code(activation)
        W, b = np.ascontiguousarray(W), np.ascontiguousarray(b)
        dtype = check_dtype(W.dtype)
        if W.ndim != 2 or 0 in W.shape or b.shape != (W.shape[0],) or b.dtype != dtype:
            raise ValueError(f"W must be 2-D (out, in) and b (out,) of W's dtype, got W "
                             f"{W.shape} {W.dtype} and b {b.shape} {b.dtype}")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError("W and b must hold finite numbers")
        layer = cls.__new__(cls)
        layer._set(W, b, act)
        return layer

    def _set(self, W, b, act):
        self._act = act
        self._W, self._b = W, b
        self._dW, self._db = np.zeros_like(W), np.zeros_like(b)
        self._store = None  # the model's ParamStore, once attached
        self._cache = None

    def attach(self, store, index):
        """Move this layer's parameters into layer ``index`` of a model's ``ParamStore``.

        ``MLP`` calls this when it takes the layer: from then on ``W``, ``b``, ``dW`` and ``db``
        are views into the store's flat vectors, kept up to date with a device copy.
        """
        (W, b), (dW, db) = store.views(store.theta)[index], store.views(store.grad)[index]
        W[...] = self._W
        b[...] = self._b
        self._W, self._b, self._dW, self._db = W, b, dW, db
        self._store = store

    # parameters -------------------------------------------------------------------------
    def _fresh(self, a):
        if self._store is not None:
            self._store.sync()
        return a

    @property
    def dtype(self):
        """The dtype of W and b (float32 or float64), fixed once built."""
        return self._W.dtype

    @property
    def in_features(self):
        return self._W.shape[1]

    @property
    def out_features(self):
        return self._W.shape[0]

    @property
    def activation(self):
        """The activation's name."""
        return ACTIVATION_NAMES[self._act]

    @property
    def activation_code(self):
        """The activation's integer code (``fastnn.kernels.codes``)."""
        return self._act

    W = _view("_W", "Weights, shape (out_features, in_features).", settable=True)
    b = _view("_b", "Bias, shape (out_features,).", settable=True)
    dW = _view("_dW", "Weight gradient from the last backward pass.")
    db = _view("_db", "Bias gradient from the last backward pass.")

    def _assign(self, dest, value, name):
        value = np.asarray(value)
        if value.shape != dest.shape:
            raise ValueError(f"{name} must have shape {dest.shape}, got {value.shape}")
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold finite real numbers")
        with np.errstate(over="ignore", invalid="ignore"):
            converted = value.astype(self.dtype)
        if not np.isfinite(converted).all():  # NaN/inf, or too large for the layer's dtype
            raise ValueError(f"{name} must hold finite real numbers that fit in {self.dtype}")
        dest[...] = converted

    def __repr__(self):
        return (f"Dense({self.in_features}, {self.out_features}, activation={self.activation!r}, "
                f"dtype={self.dtype.name})")

    # computation ------------------------------------------------------------------------
    def forward(self, X):
        """Return ``g(X @ W.T + b)``; keeps X and A for ``backward``."""
        X = as_matrix(X, self.dtype, self.in_features)
        A = np.empty((X.shape[0], self.out_features), dtype=self.dtype)
        _backend.kernels().forward(X, self.W, self.b, self._act, A)
        self._cache = (X, A)
        return A

    def backward(self, dA):
        """Given dL/dA for the last ``forward``, store ``dW``, ``db`` and return dL/dX."""
        if self._cache is None:
            raise ValueError("backward needs a forward pass first")
        if self._act == STEP:
            raise ValueError("cannot backpropagate through 'step': it has no useful gradient")
        X, A = self._cache
        dZ = as_matrix(dA, self.dtype, self.out_features, name="dA")
        if dZ.shape[0] != X.shape[0]:
            raise ValueError(f"dA has {dZ.shape[0]} rows but the last forward had {X.shape[0]}")
        act = self._act
        if isinstance(dA, np.ndarray) and np.shares_memory(dZ, dA):
            dZ = dZ.copy()  # backward overwrites dZ in place; never the caller's array
        if act == SOFTMAX:  # Jacobian-vector product of the row-wise softmax
            dZ = A * (dZ - np.sum(dZ * A, axis=1, keepdims=True))
            act = IDENTITY
        dX = np.empty_like(X)
        _backend.kernels().backward(dZ, A, X, self.W, act, self.dW, self.db, dX)
        return dX
