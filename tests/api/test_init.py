"""Weight initialisation: the same draws as ever, at the layer's own size, and a clear error
for a layer too wide to hold."""

import tracemalloc

import numpy as np
import pytest

import fastnn
from fastnn._init import init_weights
from fastnn.kernels.codes import RELU, TANH
from helpers import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (700, 300), (256, 257)])
def test_draws_are_one_uniform_draw_of_the_matrix(dtype, shape):
    # drawn in chunks, the numbers are those of one float64 draw cast to the dtype: seeded
    # models (and the README's accuracy) are what they were
    for act, limit in ((RELU, np.sqrt(6 / shape[1])), (TANH, np.sqrt(6 / sum(shape)))):
        W = init_weights(np.random.default_rng(7), *shape, act, dtype)
        want = np.random.default_rng(7).uniform(-limit, limit, size=shape).astype(dtype)
        assert W.dtype == dtype and W.flags.c_contiguous
        np.testing.assert_array_equal(W, want)


def test_a_float32_draw_needs_no_float64_copy():
    tracemalloc.start()
    try:
        W = init_weights(np.random.default_rng(0), 1500, 1000, RELU, np.float32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.2 * W.nbytes  # it was 3x: a float64 matrix, then its float32 copy


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_absurd_width_fails_at_once_naming_the_size(dtype):
    wanted = r"10000000 inputs and 10000000 outputs needs [\d,.]+ GiB"
    with pytest.raises(MemoryError, match=wanted):
        fastnn.Dense(10 ** 7, 10 ** 7, dtype=dtype)
    with pytest.raises(MemoryError, match="GiB"):
        init_weights(np.random.default_rng(0), 10 ** 12, 10 ** 12, RELU, dtype)
