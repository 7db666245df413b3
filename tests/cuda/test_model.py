"""MLP with set_backend("cuda"): training stays on the device and matches the NumPy backend."""

import pickle

import numpy as np
import pytest

import fastnn
from fastnn.model import MLP


@pytest.fixture
def use_backend():
    old = fastnn.get_backend()
    yield fastnn.set_backend
    fastnn.set_backend(old)


def _data(rng, n=10, d=4, k=3):
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, k, n)


def _model():
    return MLP.from_sizes([4, 5, 3], hidden="tanh", output="softmax", seed=0)


def test_fit_matches_numpy_backend(use_backend, rng):
    X, y = _data(rng)
    kw = dict(epochs=2, batch_size=4, lr=0.05, optimizer="adam", seed=1, progress=False, l2=0.01)
    use_backend("numpy")
    ref = _model()
    h_ref = ref.fit(X, y, **kw)
    use_backend("cuda")
    m = _model()
    h = m.fit(X, y, **kw)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-4)
    for a, b in zip(m.layers, ref.layers):  # reading W pulls the device copy down
        np.testing.assert_allclose(a.W, b.W, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(a.b, b.b, rtol=1e-4, atol=1e-5)


def test_train_step_predict_and_device_input(use_backend, rng):
    from fastnn.kernels import numba_cuda as K

    X, y = _data(rng)
    use_backend("numpy")
    ref = _model()
    want = [ref.train_step(X, y, 0.1) for _ in range(2)]
    use_backend("cuda")
    m = _model()
    got = [m.train_step(X, y, 0.1) for _ in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert m.store.device_is_newer  # parameters stayed on the device between steps
    P = m.forward(X)
    assert isinstance(P, np.ndarray)
    np.testing.assert_allclose(P, ref.forward(X), rtol=1e-4, atol=1e-6)
    D = m.forward(K.to_device(X))
    assert K.is_device_array(D)
    np.testing.assert_allclose(K.to_host(D), P, rtol=1e-6)
    np.testing.assert_array_equal(m.predict(K.to_device(X)), ref.predict(X))
    with pytest.raises(ValueError, match="dtype"):
        m.forward(K.to_device(X.astype(np.float64)))


def test_host_edits_reach_the_device_and_pickle(use_backend, rng):
    X, y = _data(rng)
    use_backend("cuda")
    m = _model()
    m.train_step(X, y, 0.1)
    m.layers[0].W = np.zeros((5, 4), np.float32)  # read, then write, the host copy
    m.layers[0].b = np.zeros(5, np.float32)
    out = m.forward(X)
    np.testing.assert_allclose(out, np.broadcast_to(m.forward(X[:1]), out.shape), rtol=1e-6)
    m2 = pickle.loads(pickle.dumps(m))
    use_backend("numpy")
    np.testing.assert_allclose(m2.forward(X), out, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m.forward(X), out, rtol=1e-5, atol=1e-7)


def test_divergence_keeps_last_finite_parameters(use_backend, rng):
    X = rng.standard_normal((12, 4)).astype(np.float32)
    y = (1e3 * rng.standard_normal(12)).astype(np.float32)
    use_backend("cuda")
    m = MLP.from_sizes([4, 5, 1], hidden="relu", output="identity", seed=0)
    with pytest.raises(FloatingPointError, match="diverged"):
        m.fit(X, y, epochs=3, batch_size=4, lr=1e30, shuffle=False, progress=False)
    assert all(np.isfinite(l.W).all() and np.isfinite(l.b).all() for l in m.layers)
