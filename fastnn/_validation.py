"""Checks at the API boundary: every public call validates once here, then kernels trust their input.

Each check raises ValueError with a message that names the problem, and converts the input once
to the model's dtype as a C-contiguous array.
"""

import importlib
import math
import numbers

import numpy as np

from .kernels import BACKENDS

from .kernels.codes import BCE, CROSS_ENTROPY

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_isfinite, _isfinite_scalar = np.isfinite, math.isfinite
_minimum, _maximum = np.minimum.reduce, np.maximum.reduce


def check_dtype(dtype):
    """Return the model dtype as np.dtype, float32 or float64 only."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


_SMALL = 4096  # elements: below this, ufunc calls cost more in set-up than in the work


def all_finite(a):
    """True when every element of the float array ``a`` is finite.

    A small array is checked through its smallest and largest elements: argmin/argmax return
    the first NaN when there is one, allocate nothing and do no arithmetic (so raise no
    floating-point warnings), ~0.9 µs against ~2 µs for ``isfinite(a).all()``, which checks
    the large arrays.
    """
    size = a.size
    if 0 < size <= _SMALL:
        r = a.ravel()
        return _isfinite_scalar(r[r.argmin()]) and _isfinite_scalar(r[r.argmax()])
    return bool(_isfinite(a).all())


def in_unit_interval(a):
    """True when every element of the float array ``a`` lies in [0, 1] (NaN does not).

    argmin/argmax return the first NaN when there is one, so NaN and ±inf fail; for small
    arrays they cost a third of a min/max reduction.
    """
    r = a.ravel()
    if r.size == 0:
        return True
    if r.size <= _SMALL:
        return bool(r[r.argmin()] >= 0 and r[r.argmax()] <= 1)
    return bool(_minimum(r) >= 0 and _maximum(r) <= 1)


def _numeric(a, name):
    try:
        a = np.asarray(a)
    except ValueError as exc:  # a ragged nested sequence
        raise ValueError(f"{name} is not a regular array (ragged rows?): {exc}") from None
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a


def as_matrix(X, dtype, n_features=None, name="X"):
    """Return X as a finite C-contiguous (n, features) array of ``dtype``.

    Parameters
    ----------
    X : array_like
        Input, any memory layout and any real dtype (converted once).
    dtype : np.dtype
        The model's dtype.
    n_features : int, optional
        The feature count the model expects.
    name : str
        Name used in error messages.
    """
    if type(X) is np.ndarray and X.dtype == dtype and X.ndim == 2 and X.flags.c_contiguous:
        n, f = X.shape  # already in shape and dtype (the common case): only the checks
        if n and f and (n_features is None or f == n_features) and all_finite(X):
            return X
    X = _numeric(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got an array of rank {X.ndim}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the model expects {n_features}"
        )
    if X.dtype == dtype:
        out = np.ascontiguousarray(X)
    else:
        with np.errstate(over="ignore"):  # overflow in the cast is reported below
            out = np.ascontiguousarray(X, dtype=dtype)
    if not all_finite(out):
        if X.dtype.kind == "f" and not all_finite(X):
            raise ValueError(f"{name} contains NaN or infinity")
        raise ValueError(f"{name} has values too large for {np.dtype(dtype)}")
    return out


def targets(y, loss, n_rows, n_out, dtype):
    """Return y as dense (n_rows, n_out) targets of ``dtype`` for the fused output step.

    cross_entropy takes integer labels (n,) or one-hot/probabilities (n, k); bce takes 0/1 as
    (n,) or (n, k); mse takes (n,) when there is one output, or (n, k).
    """
    if type(y) is np.ndarray and y.ndim and y.dtype == dtype and y.shape[0] == n_rows:
        Y = _dense_targets(y, loss, n_rows, n_out)
        if Y is not None:
            return Y
    y = _numeric(y, "y")
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(f"y must be 1-D or 2-D, got an array of rank {y.ndim}")
    if y.shape[0] != n_rows:
        raise ValueError(f"y has {y.shape[0]} rows but X has {n_rows}")
    if y.dtype.kind == "f" and not all_finite(y):
        raise ValueError("y contains NaN or infinity")
    if loss == CROSS_ENTROPY and y.ndim == 1:
        labels = y
        if labels.dtype.kind == "f":
            if not np.all(labels == np.round(labels)):
                raise ValueError("cross-entropy labels must be integers")
            lo, hi = labels.min(), labels.max()  # before the cast: 1e30 has no int64 value
            if lo < 0 or hi >= n_out:
                bad = lo if lo < 0 else hi
                raise ValueError(f"label {bad:g} is out of range: the model has {n_out} classes "
                                 f"(0..{n_out - 1})")
        elif labels.dtype.kind == "u" and labels.max() >= n_out:
            raise ValueError(f"label {labels.max()} is out of range: the model has {n_out} "
                             f"classes (0..{n_out - 1})")
        labels = labels.astype(np.int64, copy=False)
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= n_out:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"label {bad} is out of range: the model has {n_out} classes (0..{n_out - 1})"
            )
        Y = np.zeros((n_rows, n_out), dtype=dtype)
        Y[np.arange(n_rows), labels] = 1
        return Y
    if y.ndim == 1:
        if n_out != 1:
            what = "one-hot" if loss == CROSS_ENTROPY else f"{n_out} columns"
            raise ValueError(f"y must be 2-D ({what}) for a model with {n_out} outputs")
        y = y.reshape(-1, 1)
    if y.shape[1] != n_out:
        raise ValueError(f"y has {y.shape[1]} columns but the model has {n_out} outputs")
    if y.dtype.kind == "f" and y.dtype.itemsize > np.dtype(dtype).itemsize:
        with np.errstate(over="ignore"):  # a narrowing cast may overflow: checked below
            Y = np.ascontiguousarray(y, dtype=dtype)
        if not all_finite(Y):
            raise ValueError(f"y has values too large for {np.dtype(dtype)}")
    else:  # the values are finite already, and a widening cast keeps them so
        Y = np.ascontiguousarray(y, dtype=dtype)
    if loss in (BCE, CROSS_ENTROPY) and (Y.min() < 0 or Y.max() > 1):
        kind = "bce targets" if loss == BCE else "one-hot targets"
        raise ValueError(f"{kind} must lie in [0, 1]")
    return Y


def _dense_targets(y, loss, n_rows, n_out):
    """``targets``' fast path for an ndarray of the model's dtype that needs no conversion.

    Returns the (n_rows, n_out) targets, or None when ``y`` is anything else or fails a check
    (``targets`` then runs every check in order, for the error message). For bce and one-hot
    targets the range check alone also rejects NaN and ±inf: min and max propagate NaN.
    """
    if y.ndim == 2:
        if y.shape[1] != n_out:
            return None
    elif y.ndim != 1 or n_out != 1 or loss == CROSS_ENTROPY:
        return None
    Y = np.ascontiguousarray(y)
    if y.ndim == 1:
        Y = Y.reshape(n_rows, 1)
    ok = in_unit_interval(Y) if loss == BCE or loss == CROSS_ENTROPY else all_finite(Y)
    return Y if ok else None


def check_bool(value, name):
    """True or False (NumPy's bool too); anything else raises ValueError."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_trainable(spec):
    """ValueError unless a model of ``spec`` (``_spec.ModelSpec``) can be trained."""
    reason = spec.untrainable_reason()
    if reason is not None:
        raise ValueError(reason)


def check_sample_weight(sample_weight, n, dtype, return_mean=False):
    """Per-sample weights as a finite, non-negative (n,) array of ``dtype`` rescaled to mean 1.

    Only the ratios between weights matter: rescaling keeps the step size independent of their
    scale. ValueError if any is negative or non-finite, or all are zero. With ``return_mean``,
    also returns the weights' mean before rescaling (1.0 for None).
    """
    if sample_weight is None:
        return (None, 1.0) if return_mean else None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if (w < 0).any():
        raise ValueError("sample_weight must be >= 0")
    top = w.max() if n else 0.0
    if top <= 0:
        raise ValueError("sample_weight sums to zero: there is nothing to learn from")
    # scaled by the largest first, so that neither the sum (huge weights) nor its inverse
    # (subnormal weights) can overflow: w / top is in [0, 1] and its sum in [1, n]
    w = w / top
    total = w.sum()
    out = np.ascontiguousarray(w * (n / total), dtype=dtype)
    return (out, top * (total / n)) if return_mean else out


class _CompiledChecks(dict):
    """Kernel module -> its compiled checks (see ``compiled_checks``), found on first use."""

    def __missing__(self, K):
        checks = None
        if getattr(K, "__name__", None) in (BACKENDS["cython"], BACKENDS["numba"]):
            try:
                checks = importlib.import_module(BACKENDS["cython"])
            except (ImportError, RuntimeError):  # the extension was not built
                checks = None
        self[K] = checks
        return checks


compiled_checks = _CompiledChecks().__getitem__
"""compiled_checks(K): the Cython extension's compiled API checks for kernel module ``K``, or
None.

``step_inputs``, ``all_finite`` and ``copy_into`` of ``kernels/_cython`` (checks.pxi) take any
C-contiguous NumPy arrays, so they serve both compiled CPU backends (numba and cython): from
Python they cost less per call than a Numba dispatch, which matters at ``train_step``'s small
batches. The NumPy reference backend keeps its NumPy checks, as the baseline it is, and so
does every backend when the extension was not built. (A dict lookup, not a Python function:
``train_step`` calls it on every batch.)
"""


def snapshot_helpers(K):
    """``(copy_into, all_finite)`` for the snapshots and divergence checks of training on
    kernel module ``K``: the compiled checks where ``compiled_checks`` has them, else ``K``'s
    own (the contract's)."""
    checks = compiled_checks(K)
    src = K if checks is None else checks
    return src.copy_into, src.all_finite


def check_positive_int(value, name):
    """An int >= 1 (bools rejected)."""
    if type(value) is int and value >= 1:  # the common case, without the ABC checks
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_positive_float(value, name):
    """A finite real > 0."""
    if type(value) is float and 0 < value < math.inf:  # the common case (NaN fails here)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_fraction(value, name, low_open=False, high_open=True):
    """A finite real in [0, 1) (or the interval the flags say)."""
    if type(value) is float and (0 < value < 1 or value == 0 and not low_open):
        return value  # the common case, inside the interval the flags give
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    v = float(value)
    lo_ok = v > 0 if low_open else v >= 0
    hi_ok = v < 1 if high_open else v <= 1
    if not (math.isfinite(v) and lo_ok and hi_ok):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lo}0, 1{hi}, got {value!r}")
    return v


def check_nonnegative_float(value, name):
    """A finite real >= 0."""
    if type(value) is float and 0 <= value < math.inf:  # the common case (NaN fails here)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        math.isfinite(float(value)) and float(value) >= 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def as_list(value, name):
    """``list(value)``, or ValueError when ``value`` is not iterable."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a sequence, got {value!r}")
    try:
        return list(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence, got {type(value).__name__}") from None


def check_seed(seed):
    """A seed that ``np.random.default_rng`` takes: None, an int >= 0, a Generator, or a
    SeedSequence/BitGenerator; anything else raises ValueError (not TypeError)."""
    if seed is None:
        return None
    if type(seed) is int and seed >= 0:
        return seed
    if isinstance(seed, (np.random.Generator, np.random.BitGenerator,
                                         np.random.SeedSequence)):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    return int(seed)
