"""Shared fixtures: every CPU backend that is available here, and restoring the backend after a test."""

import numpy as np
import pytest

from helpers import CPU_BACKENDS

import fastnn


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

