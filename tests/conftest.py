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



# Hypothesis profiles (test_properties.py, test_fuzz.py). "fastnn-ci" is the default: few,
# derandomized examples and no deadline (first calls compile), so CI on 2 cores stays quick and
# reproducible. HYPOTHESIS_PROFILE=fastnn-thorough runs many random examples.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the test extra installs hypothesis; other tests run without it
    pass
else:
    _relaxed = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile("fastnn-ci", max_examples=25, deadline=None, derandomize=True,
                              suppress_health_check=_relaxed, print_blob=True)
    settings.register_profile("fastnn-thorough", max_examples=400, deadline=None,
                              suppress_health_check=_relaxed, print_blob=True)
    import os as _os

    settings.load_profile(_os.environ.get("HYPOTHESIS_PROFILE", "fastnn-ci"))
