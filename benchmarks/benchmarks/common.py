"""Parameter grids and the skip rule shared by the benchmark classes.

Implementations are "numpy" (fastnn's NumPy reference backend, the baseline), each other fastnn
backend available here, then "torch" and "jax"; one that cannot run here is skipped in ``setup``
by raising NotImplementedError (asv's skip idiom). PyTorch and JAX are imported once here, when
asv imports the suite, so its forked benchmark processes do not pay for the import each time.
"""

import importlib.util

from fastnn import _bench_cases
from fastnn._bench_impls import Unavailable, fastnn_names

for _name in ("torch", "jax"):
    if importlib.util.find_spec(_name) is not None:
        try:
            importlib.import_module(_name)  # JAX is imported but not started before the fork
        except Exception:  # a broken optional install: its benchmarks are skipped
            pass

IMPLS = fastnn_names() + ["torch", "jax"]
DTYPES = ["float32", "float64"]
STEP_CASES = list(_bench_cases.STANDARD)
HEAVY = _bench_cases.STANDARD[-1]


def build(make, impl, dtype, case):
    """``make(impl, case, dtype)``, turning "cannot run here" into asv's skip."""
    if case == HEAVY and dtype != "float32":
        raise NotImplementedError("the heavy case runs in float32 only, to keep the suite short")
    try:
        return make(impl, _bench_cases.get_case(case), dtype)
    except Unavailable as exc:
        raise NotImplementedError(str(exc)) from None
