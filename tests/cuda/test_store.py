"""The parameter store's device copy: host edits between epochs reach the device, and after a
divergence the device and the host hold the same last finite parameters."""

import numpy as np
import pytest

from fastnn.model import MLP


def test_a_callback_edit_reaches_the_device(rng):
    X = rng.normal(size=(40, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)

    def runs(backend):
        box = {}

        def zero(epoch, logs):
            if epoch == 2:
                box["m"].layers[0].W = np.zeros_like(box["m"].layers[0].W)

        m = MLP.from_sizes([6, 8, 2], seed=0)
        m.backend = backend
        box["m"] = m
        h = m.fit(X, y, epochs=4, lr=0.5, progress=False, seed=0, callbacks=zero)
        return h.loss, m.layers[0].W.copy()

    (loss, W), (ref_loss, ref_W) = runs("cuda"), runs("numpy")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-4)
    np.testing.assert_allclose(W, ref_W, rtol=1e-4, atol=1e-5)


def test_after_a_divergence_device_and_host_keep_the_last_finite_parameters(rng):
    """A fit that reads the host between epochs (validation data) and diverges later: the next
    device use must not push the host's older copy over the device's last finite values."""
    X = rng.normal(size=(20, 3))
    y = rng.normal(size=(20, 1))
    big = {}

    def blow_up(epoch, logs):  # finite but huge weights: the next epoch overflows
        if epoch == 2:
            big["W"] = np.full_like(big["m"].layers[1].W, 1e200)
            big["m"].layers[1].W = big["W"]

    m = MLP.from_sizes([3, 4, 1], output="identity", seed=0, dtype=np.float64)
    m.backend = "cuda"
    big["m"] = m
    with pytest.raises(FloatingPointError, match="epoch 3"):
        m.fit(X, y, epochs=5, lr=0.1, batch_size=10, shuffle=False, progress=False,
              validation_data=(X[:5], y[:5]), callbacks=blow_up)
    pred = m.predict(X[:4])  # device use first, before any host read
    W = [layer.W.copy() for layer in m.layers]
    np.testing.assert_array_equal(W[1], big["W"])  # the last finite parameters
    host = MLP.from_sizes([3, 4, 1], output="identity", seed=0, dtype=np.float64)
    host.backend = "numpy"
    for layer, src in zip(host.layers, m.layers):
        layer.W, layer.b = src.W, src.b
    np.testing.assert_allclose(pred, host.predict(X[:4]), rtol=1e-12)
