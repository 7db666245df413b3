"""What a user can assign never reaches a kernel unchecked: the architecture and dtype are
read-only, and new weights are checked and cast into the model's store."""

import numpy as np
import pytest

import fastnn


def _model(dtype=np.float32):
    return fastnn.MLP.from_sizes([4, 5, 2], dtype=dtype, seed=0)


def _trains(model):
    X = np.random.default_rng(0).standard_normal((16, 4))
    h = model.fit(X, (X[:, 0] > 0).astype(int), epochs=2, progress=False)
    assert np.isfinite(h.loss).all() and np.isfinite(model.store.theta).all()


def test_the_dtype_and_the_layers_are_read_only(backend):
    # changing dtype on a float32 model used to corrupt the Cython backend's heap
    model = _model()
    with pytest.raises(AttributeError):
        model.dtype = np.float64
    with pytest.raises(AttributeError):
        model.layers = model.layers[:1]
    with pytest.raises(AttributeError):
        model.layers.append(fastnn.Dense(2, 2))
    with pytest.raises(AttributeError):
        model.layers[0].dtype = np.float64
    assert model.dtype == np.float32 and len(model.layers) == 2
    _trains(model)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_new_weights_are_checked_and_cast_into_the_store(backend, dtype):
    model = _model(dtype)
    layer = model.layers[0]
    layer.W = np.ones((5, 4), dtype=np.float64 if dtype == np.float32 else np.float32)
    assert layer.W.dtype == dtype and np.shares_memory(layer.W, model.store.theta)
    layer.W = np.asfortranarray(np.full((5, 4), 0.5))  # any layout: copied into the store
    np.testing.assert_array_equal(layer.W, 0.5)
    for bad in (np.ones((4, 5)), np.ones(20), np.full((5, 4), np.nan), np.ones((5, 4), complex),
                np.array([["a"] * 4] * 5)):
        with pytest.raises((ValueError, TypeError)):
            layer.W = bad
    np.testing.assert_array_equal(layer.W, 0.5)  # a refused assignment changes nothing
    with pytest.raises(ValueError):
        layer.b = np.ones(4)
    _trains(model)
