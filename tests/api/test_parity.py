"""API-level parity: through the public API only (``fastnn.Dense``, ``fastnn.MLP``,
``fastnn.set_backend``), every CPU backend gives the "numpy" backend's numbers to dtype
tolerance: Dense.forward/backward, MLP.gradients, loss, predict, train_step and fit (sgd,
momentum and adam, shuffled and not). tests/cuda/test_parity.py does the same for "cuda".
"""

import numpy as np
import pytest
from helpers import COMPILED_BACKENDS, api_numbers, assert_same_numbers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
def test_backend_gives_numpys_numbers(backend, dtype):
    assert_same_numbers(api_numbers(backend, dtype), api_numbers("numpy", dtype), dtype)
