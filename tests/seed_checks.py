"""What the seed-derived tests share: the seeds' data and the comparisons (the ``backend``
fixture of conftest.py runs each test once per CPU backend).

Expected values come from ``seed_data.py``: the seeds' printed figures, and independent
re-derivations written out per component in plain Python (no fastnn code).
"""

import numpy as np
import seed_data as sd  # noqa: F401  (re-exported for the seed tests)


def _a(values, dtype=np.float64):
    return np.asarray(values, dtype=dtype)


def _close(got, expected, atol=1e-12, rtol=1e-10, err_msg=""):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), _a(expected), atol=atol,
                               rtol=rtol, err_msg=err_msg)


def _rounds_to(got, printed, decimals=4, err_msg=""):
    """``got`` rounded to ``decimals`` equals the seed's printed figure."""
    np.testing.assert_allclose(np.round(np.asarray(got, dtype=np.float64), decimals),
                               _a(printed), atol=1e-12, rtol=0, err_msg=err_msg)


def _params(model):
    return [(layer.W.copy(), layer.b.copy()) for layer in model.layers]
