"""tests/cuda: the numba.cuda backend against the NumPy reference, in the simulator or on a GPU.

Run as ``NUMBA_ENABLE_CUDASIM=1 pytest tests/cuda`` without a GPU, or ``pytest tests/cuda`` on one.
"""

import os

import numpy as np
import pytest


def _runnable():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


if not _runnable():  # neither the simulator nor a GPU: collect nothing here
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def K():
    """The cuda kernel module."""
    from fastnn.kernels import numba_cuda

    return numba_cuda


@pytest.fixture(scope="session")
def R():
    """The NumPy reference module."""
    from fastnn.kernels import reference

    return reference


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tol():
    """``tol(dtype)``: assert_allclose keyword arguments for that dtype."""

    def get(dtype):
        if np.dtype(dtype) == np.float32:
            return {"rtol": 2e-4, "atol": 2e-5}
        return {"rtol": 1e-9, "atol": 1e-11}

    return get
