"""Kernel launches with their arguments marshalled once, then replayed.

A numba.cuda launch ``kernel[grid, block](*args)`` costs tens of microseconds of Python per call:
the launch configuration is rebuilt (with its occupancy warning), every argument is typed, and
every array argument is unpacked field by field into the driver's parameter list. For a small
MLP that host work, not the GPU, sets the time of a training step. ``Launch`` does it once: the
first call launches the ordinary way (compiling the kernel), then keeps the compiled kernel, its
launch configuration and the marshalled parameter list, and later calls hand that list straight
to the launcher that numba-cuda itself uses. Arguments that change between calls are patched in
place: ``set`` (a new array or scalar), ``set_rows`` (the same rows of a new start in a base
array: only the data pointer moves).

The replay reads numba-cuda internals (``_Kernel._prepare_args``, the codelibrary's cufunc and
the ``cuda.core`` launcher, as in numba-cuda 0.30). When any of them is missing, or in the CUDA
simulator, ``Launch`` quietly keeps launching the ordinary way: same results, more overhead.
"""

import numpy as np

from ._jit import cuda_simulated

_SCALARS = (int, float, bool, np.generic)  # scalars keep their argument's type in a replay


def _replayer():
    """``(launch, LaunchConfig)`` as numba-cuda's dispatcher uses them, or None."""
    if cuda_simulated():
        return None
    try:
        from numba.cuda import dispatcher as D

        fn, cfg = D.launch, D.LaunchConfig
        D._Kernel._prepare_args  # noqa: B018 -- checked to exist
    except (ImportError, AttributeError):
        return None
    return fn, cfg


_REPLAY = []


def replayer():
    if not _REPLAY:
        _REPLAY.append(_replayer())
    return _REPLAY[0]


class Launch:
    """``kern[grid, block](*args)``, replayable. ``args`` is copied; patch it with ``set``."""

    __slots__ = ("kern", "grid", "block", "args", "_bound", "_kernel", "_slots", "_params",
                 "_run", "_rows")

    def __init__(self, kern, grid, block, args):
        self.kern, self.grid, self.block = kern, grid, block
        self.args = list(args)
        self._bound = None  # None: not tried yet; False: ordinary launches only
        self._rows = {}  # arg index -> (base, start, n) for set_rows

    def __call__(self):
        if self._bound:
            self._run()
            return
        self.kern[self.grid, self.block](*self.args)
        if self._bound is None:
            self._bound = self._bind()

    def _bind(self):
        rep = replayer()
        if rep is None:
            return False
        fn, config_cls = rep
        try:
            kern = self.kern
            kernel = kern.compile(tuple(kern.typeof_pyval(a) for a in self.args))
            cfg = kern[self.grid, self.block]
            config = config_cls(grid=cfg.griddim, block=cfg.blockdim, shmem_size=0)
            stream = cfg.stream
            params, slots = [], []
            for t, v in zip(kernel.argument_types, self.args):
                s = len(params)
                kernel._prepare_args(t, v, 0, [], params)
                slots.append((s, len(params)))
            handle = kernel._codelibrary.get_cufunc().kernel
        except Exception:  # an internal that moved: keep the ordinary launch
            return False
        self._kernel, self._slots, self._params = kernel, slots, params

        def run():
            fn(stream, config, handle, *params)

        self._run = run
        return True

    def set(self, i, value):
        """Replace argument ``i`` (an array or a scalar of the same type)."""
        if self.args[i] is value:
            return
        self.args[i] = value
        self._rows.pop(i % len(self.args), None)
        if self._bound:
            ty = self._kernel.argument_types[i]
            if not isinstance(value, _SCALARS) and self.kern.typeof_pyval(value) != ty:
                self._bound = None  # another array type: launch (compile) afresh, then rebind
                return
            s, e = self._slots[i]
            new = []
            self._kernel._prepare_args(ty, value, 0, [], new)
            self._params[s:e] = new

    def set_rows(self, i, base, start, n):
        """Make argument ``i`` the rows ``base[start:start + n]`` (``base`` C-contiguous)."""
        got = self._rows.get(i)
        if got is not None and got[0] is base and got[2] == n and self._bound:
            if got[1] != start:
                s, _ = self._slots[i]
                # an array argument's parameters: meminfo, parent, size, itemsize, data, ...
                self._params[s + 4] += (start - got[1]) * base.strides[0]
                self._rows[i] = (base, start, n)
            return
        self.set(i, base[start:start + n])
        self._rows[i] = (base, start, n)
