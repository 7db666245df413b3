"""What every benchmarked implementation shares: the "cannot run here" signal, the thread count,
and the one way an implementation is picked by name.

The modules of ``fastnn.bench`` import one way: ``base`` and ``cases`` first, then the
implementations (``torch_impl``, ``jax_impl``, ``impls``, ``layer``), then ``machine`` and the
command (``__init__``). Nothing here imports a private fastnn module.
"""

import numpy as np

from . import cases as _cases


class Unavailable(Exception):
    """The implementation cannot run here (not installed, or no such backend)."""


def threads():
    """The thread count every implementation is given: fastnn's (``fastnn.get_num_threads``)."""
    import fastnn

    return fastnn.get_num_threads()


def build(name, case, dtype, fastnn_class, others):
    """Build implementation ``name`` for ``case`` and ``dtype``.

    Parameters
    ----------
    name : str
        "numpy", another fastnn backend, or a key of ``others`` ("torch", "jax").
    case : Case or str
        The case, or its name (see :func:`fastnn.bench.cases.get_case`).
    dtype : dtype-like
    fastnn_class : type
        Called as ``fastnn_class(name, case, dtype)`` for a fastnn backend.
    others : dict
        Name -> class called as ``cls(case, dtype)``.

    Raises
    ------
    Unavailable
        If it cannot run here.
    """
    if isinstance(case, str):
        case = _cases.get_case(case)
    dtype = np.dtype(dtype)
    if name in others:
        return others[name](case, dtype)
    return fastnn_class(name, case, dtype)
