"""An interrupt (or any exception) at any point of ``fit`` leaves the model at the end of a
whole step k, with its step counter at k, on every backend."""

import numpy as np
import pytest

import fastnn
from fastnn import _backend
from fastnn.kernels import reference

BATCH, ROWS = 8, 80  # 10 batches an epoch; with a progress bar each block is one batch


def _data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((ROWS, 5)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


def _model():
    return fastnn.MLP.from_sizes([5, 7, 2], dtype=np.float32, seed=0)


def _after(k, optimizer):
    """The model after exactly the first k batches (the same batches, in order)."""
    X, y = _data()
    model = _model()
    if k:
        model.fit(X[:k * BATCH], y[:k * BATCH], epochs=1, batch_size=BATCH, lr=0.05,
                  optimizer=optimizer, shuffle=False, progress=False)
    return model


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("at", [1, 2, 7])
def test_an_interrupt_as_the_compiled_loop_returns(backend, optimizer, at, monkeypatch):
    # the signal lands just after the kernel's updates: the step counter had not caught up
    K = _backend.kernels(backend)
    real, calls = K.train_epoch, []

    def interrupted(*args):
        out = real(*args)
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(K, "train_epoch", interrupted)
    X, y = _data()
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=2, batch_size=BATCH, lr=0.05, optimizer=optimizer,
                  shuffle=False, progress=True)
    monkeypatch.undo()
    want = _after(at - 1, optimizer)  # blocks of one batch: at - 1 whole steps stand
    np.testing.assert_array_equal(model.store.theta, want.store.theta)
    if optimizer == "adam":
        assert model.store.step == want.store.step == at - 1
        if at > 1:
            np.testing.assert_array_equal(model.store.s2, want.store.s2)
        else:  # no whole step yet: fresh (zero) moments
            assert not model.store.s2.any()
    # and training goes on from there as from any model
    model.fit(X, y, epochs=1, batch_size=BATCH, lr=0.05, optimizer=optimizer, progress=False)
    assert np.isfinite(model.store.theta).all()


@pytest.mark.parametrize("at", [1, 2, 3])
def test_an_interrupt_between_the_layers_of_a_numpy_update(at, monkeypatch):
    # the NumPy reference updates array by array in Python: an interrupt there left some
    # layers updated and others not
    fastnn.set_backend("numpy")
    try:
        real, calls = reference._update_array, []

        def interrupted(*args):
            calls.append(1)
            if len(calls) == 4 * (at - 1) + 3:  # the third of this step's four arrays
                raise KeyboardInterrupt
            return real(*args)

        monkeypatch.setattr(reference, "_update_array", interrupted)
        X, y = _data()
        model = _model()
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y, epochs=1, batch_size=BATCH, lr=0.05, optimizer="adam",
                      shuffle=False, progress=True)
        monkeypatch.undo()
        want = _after(at - 1, "adam")
        np.testing.assert_array_equal(model.store.theta, want.store.theta)
        assert model.store.step == at - 1
    finally:
        fastnn.set_backend("numba")
