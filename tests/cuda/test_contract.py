"""The kernel contract, executed on cuda in the simulator (or on a GPU): the cases of
tests/contract_cases.py with host (NumPy) arrays, device arrays, and a mix of both.

The spec's memory rule says a device backend takes host arrays wherever it takes device arrays:
each distinct host array is copied up once per call and, if written, back once. ``run`` reads
the written host arrays back as they are, so a stale write-back fails here. ``shapes``, ``acts``
and ``hyper`` stay host arrays (the spec's memory paragraph). The cases too big for the
simulator (``heavy``) run on the host backends only. To keep the simulator run short, the cases
of forward, backward and train_epoch take the three placements in turn (activations, dtypes,
aliasing and epoch options are spread over all three); every other case runs in all three. A
test checks that every function runs in every placement.
"""

import numpy as np
import pytest
from contract_cases import all_cases, run

from fastnn.kernels import CONTRACT

HOST_ONLY = ("shapes", "acts", "hyper")
PLACES = ("host", "device", "mixed")


CYCLED = ("forward", "backward", "train_epoch")  # the slow ones in the simulator


def _matrix():
    """(case, placement): every placement for each case, or, for the functions in ``CYCLED``,
    the three placements in turn over their cases."""
    out, turn = [], {}
    for case in all_cases():
        if case.heavy:
            continue
        if case.func in CYCLED:
            i = turn[case.func] = turn.get(case.func, -1) + 1
            out.append((case, PLACES[i % 3]))
        else:
            out.extend((case, place) for place in PLACES)
    return out


MATRIX = _matrix()


def test_every_function_runs_in_every_placement():
    got = {(case.func, place) for case, place in MATRIX}
    assert got == {(f, p) for f in CONTRACT for p in PLACES}


def _placer(K, how):
    """``place(name, array)`` for ``run``: host arrays as they are, or copied to the device."""
    count = [0]

    def place(name, a):
        if name in HOST_ONLY or how == "host":
            return a
        count[0] += 1
        if how == "mixed" and count[0] % 2 == 0:
            return a
        return K.to_backend(a)

    return place


@pytest.mark.parametrize("case, place", MATRIX, ids=lambda v: str(v))
def test_contract(K, case, place):
    run(K, case, _placer(K, place), K.to_host)


def test_memory_helpers(K):
    x = np.arange(6.0).reshape(2, 3)[:, ::2]
    d = K.to_backend(x, np.float32)
    assert K.ON_DEVICE is True and K.is_device_array(d) and d.dtype == np.float32
    np.testing.assert_array_equal(K.to_host(d), x)
    assert K.to_backend(d) is d  # on the device already: no copy
    z = K.zeros((3, 2), np.float64)
    assert K.is_device_array(z) and z.shape == (3, 2)
    h = K.to_host(z)
    assert type(h) is np.ndarray and h.dtype == np.float64 and not h.any()
