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


@pytest.fixture(autouse=True, scope="session")
def _outside_the_source_tree(tmp_path_factory):
    """Run every test, and the interpreters tests start, from a scratch folder.

    From the repository root, ``python -m fastnn`` would import the source folder ``fastnn/``
    (which lacks the ``fastnn.kernels`` that setup.py maps from ``kernels/``) instead of the
    installed package.
    """
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(old)


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
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fastnn-ci"))
