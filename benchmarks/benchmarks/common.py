"""Parameter grids and the skip rule shared by the benchmark classes.

Implementations are "numpy" (fastnn's NumPy reference backend, the baseline), each other fastnn
backend available here, then "torch" and "jax"; one that cannot run here is skipped in ``setup``
by raising NotImplementedError (asv's skip idiom). PyTorch and JAX are imported once here, when
asv imports the suite, so its forked benchmark processes do not pay for the import each time.
"""

import importlib.util

from fastnn.bench import cases as _cases
from fastnn.bench.base import Unavailable
from fastnn.bench.impls import fastnn_names

for _name in ("torch", "jax"):
    if importlib.util.find_spec(_name) is not None:
        try:
            importlib.import_module(_name)  # JAX is imported but not started before the fork
        except Exception:  # a broken optional install: its benchmarks are skipped
            pass

IMPLS = fastnn_names() + ["torch", "jax"]
DTYPES = ["float32", "float64"]
STEP_CASES = list(_cases.STANDARD)
HEAVY = _cases.STANDARD[-1]


def build(make, impl, dtype, case, check):
    """``make(impl, case, dtype)``, checked against NumPy by ``check(obj, case, dtype)``.

    "Cannot run here" becomes asv's skip (NotImplementedError); a wrong answer raises
    AssertionError, so no benchmark times it.
    """
    if case == HEAVY and dtype != "float32":
        raise NotImplementedError("the heavy case runs in float32 only, to keep the suite short")
    case = _cases.get_case(case)
    try:
        obj = make(impl, case, dtype)
    except Unavailable as exc:
        raise NotImplementedError(str(exc)) from None
    check(obj, case, dtype)
    return obj
