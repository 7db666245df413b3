"""The kernel contract, executed on the host backends: every function of ``fastnn.kernels.SPECS``
on numpy, numba and cython against ``reference`` (tests/contract_cases.py), and the memory
helpers. tests/cuda/test_contract.py runs the same cases on cuda in the simulator.

A backend that lacks a contract function or memory helper fails here: it is never skipped.
"""

import importlib

import numpy as np
import pytest
from contract_cases import DTYPES, all_cases, run

from fastnn.kernels import BACKENDS, CONTRACT, MEMORY, SPECS

HOST_BACKENDS = [b for b in BACKENDS if b != "cuda"]
CASES = all_cases()


def test_the_contract_is_stated_once():
    assert CONTRACT == tuple(SPECS)
    assert set(CONTRACT) >= {"forward", "backward", "output_step", "sgd_update",
                             "momentum_update", "adam_update", "update", "train_epoch",
                             "all_finite", "copy_into"}
    assert {c.func for c in CASES} == set(CONTRACT)  # every function has cases


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_every_backend_defines_the_whole_contract(backend):
    """Importing a backend module needs no GPU (numba_cuda included); every name must be there."""
    K = importlib.import_module(BACKENDS[backend])
    missing = [name for name in CONTRACT + MEMORY if not hasattr(K, name)]
    assert not missing, f"backend {backend!r} lacks {missing}"
    assert all(callable(getattr(K, name)) for name in CONTRACT + MEMORY[1:])
    assert K.ON_DEVICE is (backend == "cuda")


@pytest.fixture(params=HOST_BACKENDS, scope="module")
def K(request):
    return importlib.import_module(BACKENDS[request.param])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_contract(K, case):
    run(K, case)


@pytest.mark.parametrize("dtype", DTYPES)
def test_memory_helpers(K, dtype):
    x = np.arange(6.0).reshape(2, 3)[:, ::2]  # not contiguous
    b = K.to_backend(x, dtype)
    assert type(b) is np.ndarray and b.flags.c_contiguous and b.dtype == dtype
    np.testing.assert_array_equal(K.to_host(b), x)
    assert K.to_backend(b) is b  # already the backend's memory: no copy
    assert K.to_backend([1.0, 2.0], dtype).dtype == dtype
    z = K.zeros((3, 2), dtype)
    assert type(z) is np.ndarray and z.shape == (3, 2) and z.dtype == dtype and not z.any()
    assert type(K.to_host(z)) is np.ndarray
