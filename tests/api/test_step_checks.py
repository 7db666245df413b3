"""train_step's compiled checks (the Cython extension's step_inputs, copy_into, all_finite).

They must accept exactly the batches they can handle, refuse everything else (the NumPy checks
then convert it or raise), and give train_step the same results as the NumPy path on every
compiled backend, errors included.
"""

import numpy as np
import pytest
from helpers import COMPILED_BACKENDS, DTYPES

import fastnn
from fastnn import _validation

cy = pytest.importorskip("fastnn.kernels.cython_cpu")


class _Sub(np.ndarray):
    """An ndarray subclass, which may behave differently: the checks leave it to NumPy."""


def _batch(dtype, n=7, n_in=5, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)).astype(dtype), rng.integers(0, k, n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.intp])
def test_step_inputs_fills_one_hot_rows(dtype, label_dtype):
    X, y = _batch(dtype)
    Y = np.full((9, 4), 7, dtype=dtype)  # more rows than the batch, not zeroed
    assert cy.step_inputs(X, y.astype(label_dtype), Y, 5) == 7
    np.testing.assert_array_equal(Y[:7], np.eye(4, dtype=dtype)[y])
    # strided labels are read with their stride
    y2 = np.repeat(y, 2)[::2]
    assert cy.step_inputs(X, y2, Y, 5) == 7
    np.testing.assert_array_equal(Y[:7], np.eye(4, dtype=dtype)[y])


def test_step_inputs_asks_for_a_larger_buffer():
    X, y = _batch(np.float32)
    assert cy.step_inputs(X, y, np.zeros((6, 4), np.float32), 5) == -7


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", [0, 17, 34])  # first, middle, last element
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_step_inputs_refuses_non_finite_X(dtype, where, bad):
    X, y = _batch(dtype)
    X.flat[where] = bad
    assert cy.step_inputs(X, y, np.zeros((7, 4), dtype), 5) == 0


REFUSED = {
    "label -1": lambda X, y: (X, np.where(np.arange(7) == 3, -1, y)),
    "label k": lambda X, y: (X, np.where(np.arange(7) == 6, 4, y)),
    "huge label": lambda X, y: (X, np.where(np.arange(7) == 0, 2**40, y)),
    "unsigned labels": lambda X, y: (X, y.astype(np.uint32)),
    "int8 labels": lambda X, y: (X, y.astype(np.int8)),
    "float labels": lambda X, y: (X, y.astype(np.float64)),
    "one-hot y": lambda X, y: (X, np.eye(4)[y]),
    "list y": lambda X, y: (X, list(y)),
    "short y": lambda X, y: (X, y[:-1]),
    "other dtype X": lambda X, y: (X.astype(np.float64), y),
    "wrong width": lambda X, y: (X[:, :4].copy(), y),
    "F-order X": lambda X, y: (np.asfortranarray(X), y),
    "strided X": lambda X, y: (np.repeat(X, 2, axis=1)[:, ::2], y),
    "1-D X": lambda X, y: (X[0], y[:1]),
    "empty X": lambda X, y: (X[:0], y[:0]),
    "big-endian X": lambda X, y: (X.astype(">f4"), y),
    "big-endian y": lambda X, y: (X, y.astype(">i8")),
    "subclass X": lambda X, y: (X.view(_Sub), y),
    "list X": lambda X, y: (X.tolist(), y),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_step_inputs_refuses_what_it_cannot_take(case):
    X, y = _batch(np.float32)
    X, y = REFUSED[case](X, y)
    assert cy.step_inputs(X, y, np.zeros((8, 4), np.float32), 5) == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_finite_and_copy_into(dtype):
    a = np.random.default_rng(0).normal(size=1001).astype(dtype)
    b = np.empty_like(a)
    cy.copy_into(b, a)
    np.testing.assert_array_equal(a, b)
    assert cy.all_finite(a)
    for i in (0, 500, 1000):
        for bad in (np.nan, np.inf, -np.inf):
            c = a.copy()
            c[i] = bad
            assert not cy.all_finite(c)
    assert cy.all_finite(np.array([np.finfo(dtype).max, -np.finfo(dtype).max], dtype))


def _train(backend, dtype, X, y, lr, steps=3):
    fastnn.set_backend(backend)
    m = fastnn.MLP.from_sizes([5, 6, 4], dtype=dtype, seed=1)
    losses = [m.train_step(X, y, lr) for _ in range(steps)]
    return losses, m.store.theta.copy()


@pytest.mark.parametrize("backend_name", COMPILED_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_train_step_agrees_with_the_numpy_checks(backend_name, dtype, monkeypatch):
    old = fastnn.get_backend()
    try:
        X, y = _batch(dtype)
        for batch in (X[:3], X):  # a larger batch after a smaller one grows the one-hot buffer
            n = batch.shape[0]
            fast = _train(backend_name, dtype, batch, y[:n], 0.1)
            with monkeypatch.context() as mp:
                mp.setattr(fastnn.model, "compiled_checks", lambda K: None)
                slow = _train(backend_name, dtype, batch, y[:n], 0.1)
            assert fast[0] == slow[0]
            np.testing.assert_array_equal(fast[1], slow[1])
    finally:
        fastnn.set_backend(old)


BAD_STEPS = [
    ("NaN", lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 9, np.nan, X), y)),
    ("NaN", lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == X.size - 1, np.nan, X),
                          y)),
    ("out of range", lambda X, y: (X, np.where(np.arange(7) == 6, 4, y))),
    ("out of range", lambda X, y: (X, np.where(np.arange(7) == 0, -1, y).astype(np.int32))),
    ("rows but X has", lambda X, y: (X, y[:-1])),
    ("features", lambda X, y: (X[:, :4].copy(), y)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("message,change", BAD_STEPS)
def test_bad_batch_raises_and_leaves_the_model_unchanged(backend, dtype, message, change):
    X, y = _batch(dtype)
    m = fastnn.MLP.from_sizes([5, 6, 4], dtype=dtype, seed=1)
    m.train_step(X, y, 0.1)  # the buffers exist, sized for this batch
    before = m.store.theta.copy()
    bad_X, bad_y = change(X, y)
    with pytest.raises(ValueError, match=message):
        m.train_step(bad_X, bad_y, 0.1)
    np.testing.assert_array_equal(m.store.theta, before)
    m.train_step(X, y, 0.1)  # and it still trains


@pytest.mark.parametrize("lr", [0.5, np.float32(0.5), np.float64(0.5), 1, True, 0.0, -0.1,
                                float("nan"), float("inf"), "0.1", None])
def test_train_step_lr_check(backend, lr):
    X, y = _batch(np.float32)
    m = fastnn.MLP.from_sizes([5, 6, 4], seed=1)
    valid = not isinstance(lr, (bool, str, type(None))) and np.isfinite(lr) and lr > 0
    if valid:
        assert np.isfinite(m.train_step(X, y, lr))
    else:
        with pytest.raises(ValueError, match="lr"):
            m.train_step(X, y, lr)


def test_numpy_backend_keeps_its_numpy_checks():
    assert _validation.compiled_checks(fastnn._backend.kernels("numpy")) is None


def test_snapshot_helpers():
    # numpy keeps its own; both compiled CPU backends take the extension's compiled ones
    ref = fastnn._backend.kernels("numpy")
    assert _validation.snapshot_helpers(ref) == (ref.copy_into, ref.all_finite)
    for name in COMPILED_BACKENDS:
        copy, finite = _validation.snapshot_helpers(fastnn._backend.kernels(name))
        assert (copy, finite) == (cy.copy_into, cy.all_finite)
        a, b = np.arange(6.0, dtype=np.float32), np.zeros(6, np.float32)
        copy(b, a)
        np.testing.assert_array_equal(a, b)
        b[3] = np.inf
        assert finite(a) and not finite(b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_finite_sees_every_position(dtype):
    # the scan keeps 16 accumulators and a scalar tail: every slot of each must count
    for size in (1, 15, 16, 17, 47, 48):
        for i in range(size):
            for bad in (np.nan, np.inf, -np.inf):
                a = np.full(size, -np.finfo(dtype).max, dtype)
                a[i] = bad
                assert not cy.all_finite(a), (size, i, bad)
