"""Shared fixtures: every CPU backend that is available here, and restoring the backend after a test.

tests/cuda runs in its own process under the CUDA simulator (tests/test_cuda_simulator.py), since
NUMBA_ENABLE_CUDASIM must be set before numba is imported; the main run collects it directly only
when the simulator is on or a real GPU is present.
"""

import os

import numpy as np
import pytest

from helpers import CPU_BACKENDS

import fastnn


def _cuda_runnable():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # no numba, or a broken driver: no GPU
        return False


collect_ignore = [] if _cuda_runnable() else ["cuda"]


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    """Run the test once per available CPU backend, with that backend selected."""
    old = fastnn.get_backend()
    fastnn.set_backend(request.param)
    yield request.param
    fastnn.set_backend(old)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
