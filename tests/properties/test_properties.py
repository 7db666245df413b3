"""Property tests (hypothesis) over random shapes (1 included), dtypes, memory layouts,
activations, losses and backends, through the public API:

- every CPU backend agrees with the NumPy reference (forward, loss, gradients, train_step, fit);
- the forward pass of N rows equals the forward pass of its row chunks;
- a call that fails with ValueError leaves the model unchanged.

Example counts follow the hypothesis profile of conftest.py (small and derandomized in CI).
"""

import contextlib
import warnings

import numpy as np
import pytest
from helpers import CPU_BACKENDS, HIDDEN, PAIRS, make_targets

import fastnn

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def scaled(n):
    """``n`` examples under the CI profile (25 by default), proportionally more when thorough."""
    return max(1, n * settings.default.max_examples // 25)


TOL = {np.float32: dict(rtol=2e-3, atol=2e-4), np.float64: dict(rtol=1e-8, atol=1e-10)}
LAYOUTS = ["C", "F", "strided", "reversed", "int", "float16", "list"]


def lay_out(X, layout):
    """The same values as X (float64, or exactly representable) in another memory layout."""
    if layout == "F":
        return np.asfortranarray(X)
    if layout == "strided":
        big = np.zeros((X.shape[0] * 2, X.shape[1] * 3))
        big[::2, ::3] = X
        return big[::2, ::3]
    if layout == "reversed":
        return np.ascontiguousarray(X[::-1, ::-1])[::-1, ::-1]
    if layout == "int":
        return np.round(X).astype(np.int32)
    if layout == "float16":
        return X.astype(np.float16)
    if layout == "list":
        return X.tolist()
    return np.ascontiguousarray(X)


def canonical(X, layout):
    """What the model should see: the values of ``lay_out(X, layout)`` as float64."""
    return np.asarray(lay_out(X, layout), dtype=np.float64)


@st.composite
def problems(draw, min_rows=1):
    """A random model spec, data, layout and targets."""
    n_layers = draw(st.integers(1, 3))
    widths = draw(st.lists(st.integers(1, 6), min_size=n_layers + 1, max_size=n_layers + 1))
    loss, out = draw(st.sampled_from(PAIRS))
    if loss == "cross_entropy" and widths[-1] < 2:
        widths[-1] = 2
    hidden = draw(st.sampled_from(HIDDEN))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n = draw(st.integers(min_rows, 9))
    seed = draw(st.integers(0, 2**16))
    layout = draw(st.sampled_from(LAYOUTS))
    onehot = draw(st.booleans())
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, widths[0]))
    y = make_targets(rng, loss, n, widths[-1], onehot=onehot)
    if loss == "mse" and widths[-1] == 1 and draw(st.booleans()):
        y = y[:, 0]
    if loss == "bce" and widths[-1] == 1 and draw(st.booleans()):
        y = y[:, 0].astype(np.int64)
    return dict(sizes=widths, hidden=hidden, out=out, dtype=dtype, seed=seed, X=X, y=y,
                layout=layout)


def build(p):
    return fastnn.MLP.from_sizes(p["sizes"], hidden=p["hidden"], output=p["out"],
                                 dtype=p["dtype"], seed=p["seed"])


@contextlib.contextmanager
def using(backend):
    old = fastnn.get_backend()
    fastnn.set_backend(backend)
    try:
        yield
    finally:
        fastnn.set_backend(old)


def run_all(p, backend, lr=0.02):
    """Everything the public API computes for problem p on one backend."""
    with using(backend):
        X = lay_out(p["X"], p["layout"])
        y = p["y"]
        m = build(p)
        out = {"forward": m.forward(X), "loss": m.loss(X, y)}
        out["grads"] = np.concatenate([np.concatenate([dW.ravel(), db.ravel()])
                                       for dW, db in m.gradients(X, y)])
        out["step_loss"] = m.train_step(X, y, lr=lr)
        out["after_step"] = m.store.theta.copy()
        try:
            hist = m.fit(X, y, epochs=2, batch_size=3, lr=lr, optimizer="momentum",
                         shuffle=True, seed=1, progress=False)
            out["fit_loss"] = np.array(hist.loss)
        except FloatingPointError as e:  # must then diverge at the same step everywhere
            out["fit_loss"] = str(e)
        out["after_fit"] = m.store.theta.copy()
        return out


@settings(max_examples=scaled(25))
@given(problems())
def test_every_backend_agrees_with_the_reference(p):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        want = run_all(p, "numpy")
        for backend in CPU_BACKENDS:
            if backend == "numpy":
                continue
            got = run_all(p, backend)
            tol = TOL[p["dtype"]]
            for key in want:
                if key in ("forward",):
                    assert got[key].dtype == p["dtype"]
                if isinstance(want[key], str) or isinstance(got[key], str):
                    assert got[key] == want[key], backend
                    continue
                np.testing.assert_allclose(got[key], want[key], **tol,
                                           err_msg=f"{backend}: {key}")


@settings(max_examples=scaled(25))
@given(problems(), st.data())
def test_forward_of_all_rows_equals_forward_of_row_chunks(p, data):
    X = canonical(p["X"], p["layout"])
    n = X.shape[0]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, n - 1)), max_size=4))) if n > 1 else []
    chunks = np.split(np.arange(n), cuts)
    # The BLAS may pick a different kernel for 1 row than for many, so summation order (and the
    # last bits) may differ between a chunk and the whole: compare to a few ulps.
    tol = dict(rtol=1e-5, atol=1e-6) if p["dtype"] == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for backend in CPU_BACKENDS:
        with using(backend):
            m = build(p)
            whole = m.forward(lay_out(p["X"], p["layout"]))
            parts = np.concatenate([m.forward(X[idx]) for idx in chunks if idx.size])
            assert parts.shape == whole.shape
            np.testing.assert_allclose(parts, whole, **tol, err_msg=backend)
            # one row at a time as well
            np.testing.assert_allclose(m.forward(X[-1:]), whole[-1:], **tol)


def _snapshot(m):
    return (m.store.theta.copy(), m.store.s1.copy(), m.store.s2.copy(), m.store.step, m.store.opt_code,
            [(l.W.copy(), l.b.copy()) for l in m.layers])


def _assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert a[3:5] == b[3:5]
    for (W1, b1), (W2, b2) in zip(a[5], b[5]):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)


BAD_CALLS = {
    "nan in X": lambda m, X, y: m.fit(np.where(np.arange(X.size).reshape(X.shape) == 0, np.nan,
                                               X), y, epochs=1, progress=False),
    "inf in X (train_step)": lambda m, X, y: m.train_step(np.full_like(X, np.inf), y, lr=0.1),
    "too large for float32": lambda m, X, y: m.fit(X * 1e300, y, epochs=1, progress=False)
    if m.dtype == np.float32 else m.fit(X * np.inf, y, epochs=1, progress=False),
    "wrong features": lambda m, X, y: m.fit(np.ones((X.shape[0], X.shape[1] + 1)), y,
                                            progress=False),
    "wrong rows in y": lambda m, X, y: m.train_step(X, np.concatenate([y, y[:1]]), lr=0.1),
    "bad lr": lambda m, X, y: m.fit(X, y, lr=-1.0, progress=False),
    "nan lr": lambda m, X, y: m.train_step(X, y, lr=float("nan")),
    "bad epochs": lambda m, X, y: m.fit(X, y, epochs=0, progress=False),
    "bad batch": lambda m, X, y: m.fit(X, y, batch_size=1.5, progress=False),
    "bad optimizer": lambda m, X, y: m.fit(X, y, optimizer="rmsprop", progress=False),
    "bad l2": lambda m, X, y: m.fit(X, y, l2=-1, optimizer="adam", progress=False),
    "object X": lambda m, X, y: m.gradients(np.array(X, dtype=object), y),
    "complex X": lambda m, X, y: m.loss(X.astype(complex), y),
    "3-D X": lambda m, X, y: m.fit(X[None], y, progress=False),
    "nan in y": lambda m, X, y: m.fit(X, np.full(np.shape(y), np.nan), progress=False),
    "bad W": lambda m, X, y: setattr(m.layers[0], "W", np.full(m.layers[0].W.shape, np.nan)),
    "bad b shape": lambda m, X, y: setattr(m.layers[-1], "b", np.zeros(7)),
}


@settings(max_examples=scaled(20))
@given(problems(), st.sampled_from(sorted(BAD_CALLS)), st.sampled_from(["sgd", "adam"]))
def test_a_failed_call_leaves_the_model_unchanged(p, bad, optimizer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for backend in CPU_BACKENDS:
            with using(backend):
                X = canonical(p["X"], p["layout"])
                m = build(p)
                # some optimiser state first, so that it too must survive the failed call
                m.fit(X, p["y"], epochs=1, batch_size=2, lr=0.01, optimizer=optimizer, seed=0,
                      progress=False)
                before = _snapshot(m)
                with pytest.raises(ValueError):
                    BAD_CALLS[bad](m, X, p["y"])
                _assert_same(before, _snapshot(m))
                # and the model still works exactly as an untouched copy does
                twin = build(p)
                twin.fit(X, p["y"], epochs=1, batch_size=2, lr=0.01, optimizer=optimizer, seed=0,
                         progress=False)
                for a, b in ((m, twin),):
                    a.fit(X, p["y"], epochs=1, batch_size=2, lr=0.01, optimizer=optimizer, seed=0,
                          progress=False)
                    b.fit(X, p["y"], epochs=1, batch_size=2, lr=0.01, optimizer=optimizer, seed=0,
                          progress=False)
                    np.testing.assert_array_equal(a.store.theta, b.store.theta)


@settings(max_examples=scaled(15))
@given(problems(), st.integers(1, 12), st.booleans())
def test_fit_batch_size_and_shuffle_agree_across_backends(p, batch_size, shuffle):
    results = []
    for backend in CPU_BACKENDS:
        with using(backend):
            m = build(p)
            X = lay_out(p["X"], p["layout"])
            # (not Adam: its update is ~lr * sign(g) for tiny g, so rounding noise in a gradient
            # that is zero in exact arithmetic would flip whole steps between backends)
            h = m.fit(X, p["y"], epochs=2, batch_size=batch_size, lr=0.05,
                      optimizer="nesterov", shuffle=shuffle, seed=3, progress=False, l2=1e-3)
            results.append((backend, np.array(h.loss), m.store.theta.copy()))
    _, loss0, theta0 = results[0]
    for backend, loss, theta in results[1:]:
        np.testing.assert_allclose(loss, loss0, **TOL[p["dtype"]], err_msg=backend)
        np.testing.assert_allclose(theta, theta0, **TOL[p["dtype"]], err_msg=backend)
