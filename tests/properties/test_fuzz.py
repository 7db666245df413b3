"""Fuzzing the public API with hypothesis: no input crashes the process, corrupts the model or
escapes as anything but the documented ValueError (bad input) or FloatingPointError (divergence).

Inputs: random dtypes (float16/32/64, ints, bool, complex, object, str, datetime), shapes
(0-sized, wrong rank, mismatched), NaN/inf, Python junk (None, dicts, ragged lists, strings),
labels, learning rates, batch sizes, epochs, optimisers, seeds. After every call the model must
still hold finite parameters and compute exactly what it computed before (no stray writes).
"""

import warnings

import numpy as np
import pytest
from helpers import CPU_BACKENDS

import fastnn

pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

ALLOWED = (ValueError, FloatingPointError)


def scaled(n):
    return max(1, n * settings.default.max_examples // 25)


NUMERIC_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8,
                  np.uint64, np.bool_]
OTHER_DTYPES = [np.complex64, np.complex128, np.dtype("U3"), np.dtype("M8[s]"), np.dtype("m8[s]"),
                np.dtype([("a", "f8"), ("b", "i4")])]


def _finite_floats():
    return st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def numeric_arrays(draw, shape=None):
    dtype = np.dtype(draw(st.sampled_from(NUMERIC_DTYPES)))
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    if dtype.kind == "f":
        elements = st.one_of(st.floats(-4, 4, width=16),
                             st.floats(allow_nan=True, allow_infinity=True,
                                       width=dtype.itemsize * 8))
    else:
        elements = None
    a = draw(hnp.arrays(dtype, shape, elements=elements))
    layout = draw(st.sampled_from(["C", "F", "reversed", "view"]))
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "reversed" and a.ndim:
        a = a[::-1]
    elif layout == "view" and a.ndim and a.shape[0] > 1:
        a = a[::2]
    return a


def junk():
    """Values that are not arrays of real numbers at all."""
    return st.one_of(
        st.none(), st.booleans(), st.text(max_size=3), st.binary(max_size=3),
        st.dictionaries(st.integers(), st.integers(), max_size=2),
        st.lists(st.lists(st.floats(), max_size=3), max_size=3),  # often ragged
        st.lists(st.one_of(st.none(), st.text(max_size=1), st.floats()), max_size=3),
        st.floats(allow_nan=True), st.integers(-2**70, 2**70), st.complex_numbers(),
        st.sampled_from(OTHER_DTYPES).flatmap(
            lambda dt: hnp.arrays(dt, hnp.array_shapes(max_dims=2, max_side=3))),
        hnp.arrays(object, hnp.array_shapes(max_dims=2, max_side=3),
                   elements=st.one_of(st.none(), st.floats(), st.text(max_size=2))),
    )


def matrices(n_features):
    """Mostly plausible X: the right width, some NaN/inf/huge values; sometimes anything."""
    plausible = st.integers(0, 6).flatmap(
        lambda n: numeric_arrays(shape=(n, n_features)))
    return st.one_of(plausible, plausible, numeric_arrays(), junk())


def targets(n_out):
    return st.one_of(
        st.integers(0, 6).flatmap(lambda n: numeric_arrays(shape=(n,))),
        st.integers(0, 6).flatmap(lambda n: numeric_arrays(shape=(n, n_out))),
        numeric_arrays(), junk(),
        st.lists(st.integers(-3, 5), max_size=6),
    )


def scalars():
    return st.one_of(
        _finite_floats(), st.integers(-5, 5), st.integers(-2**70, 2**70), st.none(),
        st.booleans(), st.text(max_size=2), st.just(np.float32(0.1)), st.just(np.int64(3)),
        st.just(5e-324), st.just(1e308), st.just([0.1]), st.just(np.array([2])),
    )


MODELS = [([3, 4, 2], "relu", "softmax"), ([3, 1], "tanh", "sigmoid"),
          ([3, 5, 2], "softplus", "identity"), ([3, 3], "relu", "step")]
PROBE = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -3.0]])


class Guard:
    """A model on one backend plus what it computed on a probe before the fuzzed call."""

    def __init__(self, spec, dtype, backend):
        self.backend = backend
        fastnn.set_backend(backend)
        sizes, hidden, out = spec
        self.model = fastnn.MLP.from_sizes(sizes, hidden=hidden, output=out, dtype=dtype, seed=0)
        self.probe = self.model.forward(PROBE)

    def check(self, changed):
        m = self.model
        assert np.isfinite(m.store.theta).all(), "non-finite parameters after a fuzzed call"
        for l in m.layers:
            assert l.W.dtype == m.dtype and np.shares_memory(l.W, m.store.theta)
        if not changed:
            np.testing.assert_array_equal(m.forward(PROBE), self.probe)


def _call(fn):
    """Run fn; return True if it raised an allowed error. Anything else fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fn()
    except ALLOWED:
        return True
    return False


backends = st.sampled_from(CPU_BACKENDS)
dtypes = st.sampled_from([np.float32, np.float64])
specs = st.sampled_from(MODELS)


@pytest.fixture(autouse=True)
def _restore_backend():
    old = fastnn.get_backend()
    yield
    fastnn.set_backend(old)


@settings(max_examples=scaled(60))
@given(specs, dtypes, backends, st.data())
def test_inference_calls_accept_anything(spec, dtype, backend, data):
    g = Guard(spec, dtype, backend)
    m = g.model
    X = data.draw(matrices(3), label="X")
    for name in ("forward", "predict", "predict_proba"):
        failed = _call(lambda: getattr(m, name)(X))
        if not failed:
            out = getattr(m, name)(X)
            assert isinstance(out, np.ndarray) and out.shape[0] == np.asarray(X).shape[0]
        g.check(changed=False)
    y = data.draw(targets(m.sizes[-1]), label="y")
    for name in ("loss", "gradients", "score"):
        _call(lambda: getattr(m, name)(X, y))
        g.check(changed=False)


@settings(max_examples=scaled(60))
@given(specs, dtypes, backends, st.data())
def test_training_calls_accept_anything(spec, dtype, backend, data):
    g = Guard(spec, dtype, backend)
    m = g.model
    X = data.draw(matrices(3), label="X")
    y = data.draw(targets(m.sizes[-1]), label="y")
    lr = data.draw(st.one_of(st.floats(1e-4, 1.0), scalars()), label="lr")
    _call(lambda: m.train_step(X, y, lr=lr))
    g.check(changed=True)
    kwargs = dict(
        epochs=data.draw(st.one_of(st.integers(1, 2), scalars()), label="epochs"),
        batch_size=data.draw(st.one_of(st.integers(1, 8), st.just(10**18), scalars()),
                             label="batch_size"),
        lr=lr,
        optimizer=data.draw(st.one_of(st.sampled_from(["sgd", "momentum", "nesterov", "adam"]),
                                      scalars()), label="optimizer"),
        shuffle=data.draw(st.booleans(), label="shuffle"),
        seed=data.draw(st.one_of(st.none(), st.integers(0, 2**32)), label="seed"),
        l2=data.draw(st.one_of(st.just(0.0), st.floats(0, 1), scalars()), label="l2"),
        progress=False,
    )
    if isinstance(kwargs["epochs"], (int, np.integer)) and kwargs["epochs"] > 3:
        kwargs["epochs"] = 3  # a valid but long run is not what is fuzzed here
    _call(lambda: m.fit(X, y, **kwargs))
    g.check(changed=True)


@settings(max_examples=scaled(40))
@given(dtypes, backends, st.sampled_from(["identity", "sigmoid", "tanh", "relu", "softplus",
                                           "softmax", "step"]), st.data())
def test_dense_layer_calls_accept_anything(dtype, backend, act, data):
    fastnn.set_backend(backend)
    layer = fastnn.Dense(3, 2, act, dtype=dtype, seed=0)
    W0, b0 = layer.W.copy(), layer.b.copy()
    X = data.draw(matrices(3), label="X")
    ok = not _call(lambda: layer.forward(X))
    dA = data.draw(matrices(2), label="dA")
    _call(lambda: layer.backward(dA))
    value = data.draw(st.one_of(numeric_arrays(), junk()), label="W")
    if _call(lambda: setattr(layer, "W", value)):
        np.testing.assert_array_equal(layer.W, W0)  # a rejected assignment changes nothing
    assert np.isfinite(layer.W).all() and layer.W.dtype == dtype
    if _call(lambda: setattr(layer, "b", value)):
        np.testing.assert_array_equal(layer.b, b0)
    assert np.isfinite(layer.b).all() and layer.b.dtype == dtype
    if ok:
        assert layer.forward(np.ones((1, 3))).shape == (1, 2)


@settings(max_examples=scaled(40))
@given(st.one_of(st.lists(st.one_of(st.integers(-2, 6), scalars()), max_size=4), junk()),
       st.one_of(st.sampled_from(["relu", "softmax", "step", "gelu"]), scalars()),
       st.one_of(st.sampled_from(["softmax", "sigmoid", "identity"]), scalars()),
       st.one_of(st.sampled_from([np.float32, np.float64, "float32", np.int32, "f2"]), scalars()),
       st.one_of(st.none(), st.integers(0, 10), scalars()))
def test_model_construction_accepts_anything(sizes, hidden, output, dtype, seed):
    if isinstance(sizes, list) and any(isinstance(s, (int, np.integer)) and s > 10**4
                                       for s in sizes):
        return  # a valid but huge model is a MemoryError, not a validation question
    try:
        m = fastnn.MLP.from_sizes(sizes, hidden=hidden, output=output, dtype=dtype, seed=seed)
    except ALLOWED:
        return
    assert np.isfinite(m.store.theta).all()
    assert m.forward(np.zeros((1, m.sizes[0]))).shape == (1, m.sizes[-1])


def test_backend_names_accept_anything():
    for name in (None, 3, "", "NUMBA", "numba ", b"numba", ["numba"], "cuda-sim"):
        with pytest.raises(ValueError):
            fastnn.set_backend(name)


# --- sizes at the edges ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edge_sizes(backend, dtype):
    rng = np.random.default_rng(0)
    # one feature, one output, one row, one hidden unit
    m = fastnn.MLP.from_sizes([1, 1, 1], hidden="tanh", output="sigmoid", dtype=dtype, seed=0)
    m.fit([[0.5]], [1], epochs=2, batch_size=1, progress=False)
    assert m.predict([[0.5]]).shape == (1,)
    # many rows: inference in one call, training with a batch larger than the data
    X = rng.normal(size=(200_000, 3))
    m = fastnn.MLP.from_sizes([3, 4, 2], dtype=dtype, seed=0)
    assert m.predict_proba(X).shape == (200_000, 2)
    m.fit(X[:5000], (X[:5000, 0] > 0).astype(int), epochs=1, batch_size=10**9, progress=False)
    # a wide input
    wide = fastnn.MLP.from_sizes([50_000, 1], output="identity", dtype=dtype, seed=0)
    wide.train_step(rng.normal(size=(3, 50_000)), rng.normal(size=3), lr=1e-3)
    assert np.isfinite(wide.store.theta).all()


def test_fit_rejects_a_bad_seed_with_value_error():
    m = fastnn.MLP.from_sizes([2, 2], seed=0)
    with pytest.raises(ValueError, match="seed"):
        m.fit(np.ones((2, 2)), [0, 1], seed="abc", progress=False)


def test_bad_seeds_elsewhere_raise_value_error():
    for seed in ("abc", 1.5, -1, [1.5], object()):
        with pytest.raises(ValueError, match="seed"):
            fastnn.MLP.from_sizes([2, 2], seed=seed)
        with pytest.raises(ValueError, match="seed"):
            fastnn.Dense(2, 2, seed=seed)
    fastnn.Dense(2, 2, seed=np.random.default_rng(0))  # Generators stay accepted
    fastnn.MLP.from_sizes([2, 2], seed=np.int64(3))
