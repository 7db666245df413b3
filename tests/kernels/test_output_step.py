"""The fused softmax + cross-entropy output step over the whole range of float32 logit gaps.

The compiled backends take one exponential per logit in the array's precision (Cython's float32
one is a vectorised polynomial, not libm's expf), so the loss and dZ are checked against a float64
computation for gaps from 0 to far past exp's underflow, and non-finite logits must still come
out non-finite (the training loops stop on them).
"""

import numpy as np
import pytest
from helpers import CPU_BACKENDS

from fastnn import _backend
from fastnn.kernels import codes as C


def _want(Z, Y):
    Z = Z.astype(np.float64)
    m = Z.max(axis=1, keepdims=True)
    e = np.exp(Z - m)
    lse = m[:, 0] + np.log(e.sum(axis=1))
    loss = np.mean(np.sum(Y * (lse[:, None] - Z), axis=1))
    return loss, (e / e.sum(axis=1, keepdims=True) - Y) / Z.shape[0]


@pytest.mark.parametrize("name", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_over_every_logit_gap(name, dtype):
    K = _backend.kernels(name)
    rng = np.random.default_rng(3)
    gaps = np.concatenate([np.linspace(0, 1, 101), np.linspace(1, 90, 1000), [100, 200, 1e4]])
    # rows (0, -gap, noise...): every gap appears against the row's maximum
    Z = np.zeros((gaps.size, 7))
    Z[:, 1] = -gaps
    Z[:, 2:] = rng.normal(size=(gaps.size, 5)) * 3 - 1
    Z = Z.astype(dtype)
    Y = np.eye(7, dtype=dtype)[rng.integers(0, 7, gaps.size)]
    dZ = np.zeros_like(Z)
    loss = K.output_step(Z, Y, C.CROSS_ENTROPY, dZ, None)
    want_loss, want_dZ = _want(Z, Y)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert loss == pytest.approx(want_loss, rel=tol)
    # every probability p to a few ulps of itself down to the smallest normal number (below
    # it, 0 will do), plus what rounding z - max costs; the true class's p - 1 to a few ulps of 1
    n, eps, tiny = Z.shape[0], np.finfo(dtype).eps, np.finfo(dtype).tiny
    p = want_dZ * n + Y
    gap = Z.max(axis=1, keepdims=True).astype(np.float64) - Z
    err = np.abs(dZ - want_dZ) * n
    assert np.all(err <= eps * ((4 + gap) * p + 2 * Y) + 4 * tiny)


@pytest.mark.parametrize("name", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_non_finite_logits(name, dtype):
    K = _backend.kernels(name)
    inf, nan = np.inf, np.nan
    Y = np.array([[0, 0, 1]], dtype)
    for row, finite in [([nan, 1, 2], False), ([1, 2, nan], False), ([1, inf, 0], False),
                        ([-inf, -inf, -inf], False), ([-inf, 0, 1], True),
                        ([-1e30, 0, 1], True)]:
        Z = np.array([row], dtype)
        dZ = np.zeros_like(Z)
        loss = K.output_step(Z, Y, C.CROSS_ENTROPY, dZ, None)
        assert np.isfinite(loss) == finite, row
        assert np.isfinite(dZ).all() == finite, row
        if finite:
            want_loss, want_dZ = _want(np.maximum(Z, -1e30), Y)
            assert loss == pytest.approx(want_loss)
            np.testing.assert_allclose(dZ, want_dZ, atol=1e-7)
