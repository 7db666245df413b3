"""The boundary checks' fast paths: they must reject exactly what the full checks reject."""

import math
import warnings

import numpy as np
import pytest

from fastnn import _validation as V
from fastnn.kernels.codes import BCE, CROSS_ENTROPY, MSE
import fastnn
from fastnn._hooks import Plateau
from fastnn._loop import Orders, State
from fastnn.history import History
from fastnn.optim import SGD

DTYPES = [np.float32, np.float64]
SIZES = [1, 2, 7, V._SMALL, V._SMALL + 1, 3 * V._SMALL]  # both sides of the small-array path


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_all_finite_finds_each_nan_and_infinity_anywhere(dtype, size):
    a = np.linspace(-1, 1, size).astype(dtype)
    assert V.all_finite(a) and V.all_finite(a.reshape(size, 1)) and V.all_finite(a[::2])
    for bad in (np.nan, np.inf, -np.inf):
        for pos in sorted({0, size // 2, size - 1}):
            b = a.copy()
            b[pos] = bad
            assert not V.all_finite(b), (bad, pos)
            assert not V.all_finite(b.reshape(1, size))
    b = a.copy()
    b[:] = np.nan
    assert not V.all_finite(b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_all_finite_takes_the_extremes_silently(dtype, size):
    top = np.finfo(dtype).max
    a = np.full(size, top, dtype=dtype)
    a[::2] = -top
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning from the check itself
        with np.errstate(all="raise"):
            assert V.all_finite(a)
            a[-1] = np.inf
            assert not V.all_finite(a)


def test_all_finite_of_an_empty_array_is_true():
    assert V.all_finite(np.zeros(0)) and V.all_finite(np.zeros((3, 0), np.float32))
    assert V.in_unit_interval(np.zeros(0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_in_unit_interval(dtype, size):
    a = np.linspace(0, 1, size).astype(dtype)
    assert V.in_unit_interval(a)
    for bad in (np.nan, np.inf, -np.inf, -1e-7, 1.0001, 2.0):
        for pos in sorted({0, size // 2, size - 1}):
            b = a.copy()
            b[pos] = bad
            assert not V.in_unit_interval(b), (bad, pos)


@pytest.mark.parametrize("loss,k", [(BCE, 1), (BCE, 3), (CROSS_ENTROPY, 3), (MSE, 1), (MSE, 2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_targets_fast_path_returns_the_input_and_checks_it(loss, k, dtype):
    rng = np.random.default_rng(0)
    y = (rng.random((6, k)) > 0.5).astype(dtype)
    Y = V.targets(y, loss, 6, k, dtype)
    assert Y is y  # nothing to convert: no copy
    if k == 1 and loss != CROSS_ENTROPY:
        Y1 = V.targets(y[:, 0], loss, 6, k, dtype)
        assert Y1.shape == (6, 1) and np.shares_memory(Y1, y)
    for bad, message in [(np.nan, "NaN or infinity"), (np.inf, "NaN or infinity"),
                         (-np.inf, "NaN or infinity"), (2.0, "must lie in")]:
        if loss == MSE and message == "must lie in":
            continue  # any finite value is a regression target
        b = y.copy()
        b[3, k - 1] = bad
        with pytest.raises(ValueError, match=message):
            V.targets(b, loss, 6, k, dtype)


def test_as_matrix_fast_path_keeps_every_check():
    X = np.ones((4, 3))
    assert V.as_matrix(X, np.dtype(np.float64), 3) is X
    with pytest.raises(ValueError, match="expects 2"):
        V.as_matrix(X, np.dtype(np.float64), 2)
    with pytest.raises(ValueError, match="empty"):
        V.as_matrix(X[:0], np.dtype(np.float64), 3)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        V.as_matrix(X, np.dtype(np.float64), 3)


@pytest.mark.parametrize("check,good,bad", [
    (V.check_positive_int, [1, 7, np.int64(3)], [0, -1, 1.0, True, "2", None]),
    (V.check_positive_float, [1e-9, 2.0, 3, np.float32(0.5)],
     [0.0, -1.0, math.inf, math.nan, True, "1"]),
    (V.check_nonnegative_float, [0.0, 2.0, 0, np.float64(1.5)],
     [-1e-9, math.inf, math.nan, False, None]),
])
def test_scalar_checks_agree_on_both_paths(check, good, bad):
    for v in good:
        out = check(v, "x")
        assert out == v and type(out) in (int, float)
    for v in bad:
        with pytest.raises(ValueError, match="x must"):
            check(v, "x")


def test_check_fraction_intervals():
    assert V.check_fraction(0.0, "f") == 0.0
    with pytest.raises(ValueError):
        V.check_fraction(0.0, "f", low_open=True)
    for v in (1.0, -0.1, math.nan):
        with pytest.raises(ValueError):
            V.check_fraction(v, "f")
    assert V.check_fraction(1.0, "f", high_open=False) == 1.0


def test_plateau_counts_a_fall_of_exactly_tol_as_improvement():
    """scikit-learn's rule: no improvement when ``loss > best - tol``."""
    state, history = State(), History()
    plateau = Plateau(None, SGD(0.1), state, history, tol=0.25, patience=2, monitor="loss",
                      restore_best=False)
    stops = [plateau.epoch_end(e, {"loss": v}) for e, v in enumerate([1.0, 0.75, 0.5, 0.3, 0.2], 1)]
    # 0.75 and 0.5 fall by exactly tol: improvements; 0.3 and 0.2 do not: the second stops
    assert stops == [None, None, None, None, "no_improvement"]
    assert state.best == 0.2 and history.best_epoch == 5


@pytest.mark.parametrize("n", [1, 3, 112, 5000])
@pytest.mark.parametrize("epochs, taken", [(1, 1), (5, 2), (16, 16), (40, 40), (40, 17),
                                           (40, 32), (40, 0)])
def test_block_orders_are_the_permutations_drawn_one_at_a_time(n, epochs, taken):
    """Orders drawn in blocks equal rng.permutation(n) epoch by epoch, and after settle the
    generator stands where those calls leave it (however many of the block were used)."""
    ours, theirs = np.random.default_rng(n + epochs), np.random.default_rng(n + epochs)
    orders = Orders(ours, n, epochs)
    for epoch in range(1, taken + 1):
        np.testing.assert_array_equal(orders.take(epoch), theirs.permutation(n))
    orders.settle()
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_fit_stopping_early_leaves_the_seed_generator_one_order_per_epoch_on(rng):
    X = rng.normal(size=(50, 3))
    y = X.sum(axis=1, keepdims=True)
    model = fastnn.MLP.from_sizes([3, 4, 1], output="identity", dtype=np.float64, seed=0)
    ours, theirs = np.random.default_rng(7), np.random.default_rng(7)
    history = model.fit(X, y, epochs=500, batch_size=8, lr=1e-3, seed=ours, tol=1e9,
                        n_iter_no_change=3, progress=False)
    assert history.stop_reason == "no_improvement" and history.epochs == 4
    for _ in range(history.epochs):
        theirs.permutation(50)
    assert ours.bit_generator.state == theirs.bit_generator.state


# --- numeric extremes and odd shapes at the boundary ---------------------------------------

@pytest.mark.parametrize("scale", [1e300, 8e307, 1.0, 1e-300, 5e-324])
def test_sample_weight_scale_never_overflows(scale):
    # only the ratios matter: weights near the float limits (8e307 sums past the largest
    # double; 5e-324 is the smallest subnormal) give the same mean-1 weights as plain ones
    w = np.array([1.0, 2.0, 0.0, 1.0]) * scale
    with np.errstate(all="raise"):
        out, mean = V.check_sample_weight(w, 4, np.float64, return_mean=True)
    np.testing.assert_allclose(out, [1.0, 2.0, 0.0, 1.0], rtol=1e-12)
    assert mean == pytest.approx(scale, rel=1e-12)  # the mean of [1, 2, 0, 1] * scale


@pytest.mark.parametrize("scale", [1e307, 1e-310])  # 64 * 1e307 overflows a sum
def test_fit_learns_with_extreme_sample_weights(scale):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    plain = fastnn.MLP.from_sizes([3, 8, 2], seed=1)
    heavy = fastnn.MLP.from_sizes([3, 8, 2], seed=1)
    plain.fit(X, y, epochs=3, progress=False, shuffle=False)
    heavy.fit(X, y, epochs=3, progress=False, shuffle=False, sample_weight=np.full(64, scale))
    for a, b in zip(plain.layers, heavy.layers):
        np.testing.assert_allclose(a.W, b.W, rtol=1e-5, atol=1e-6)


def test_zero_d_target_of_the_model_dtype_is_a_value_error():
    m = fastnn.MLP.from_sizes([4, 3, 2], seed=0)
    X = np.ones((1, 4), np.float32)
    for y in (np.array(1.0, np.float32), np.array(1)):
        with pytest.raises(ValueError, match="y must be 1-D or 2-D"):
            m.loss(X, y)
        with pytest.raises(ValueError, match="y must be 1-D or 2-D"):
            m.train_step(X, y, 0.1)


def test_ragged_input_names_the_argument():
    m = fastnn.MLP.from_sizes([2, 3, 2], seed=0)
    with pytest.raises(ValueError, match="y is not a regular array"):
        m.fit(np.ones((2, 2)), [[0, 1], [1]], progress=False)
    with pytest.raises(ValueError, match="X is not a regular array"):
        m.fit([[1.0, 2.0], [1.0]], [0, 1], progress=False)
