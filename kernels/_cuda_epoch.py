"""The device-side epoch of the numba.cuda backend: every launch of a training step, built once
per (buffers, layout, batch size) and replayed (``_cuda_launch``), so a step costs its launches,
not their argument marshalling. The loss, the batch count and the divergence flags stay in a
device state vector (``_cuda_math.S_*``) that the caller reads back once.
"""

import numpy as np

from .codes import H_BETA1, H_BETA2, H_EPS, H_L2, H_LR, H_MOMENTUM, IDENTITY
from . import _cuda_gemm, _cuda_rows
from ._cuda_launch import Launch
from ._cuda_math import STATE_SIZE
from ._cuda_memory import (
    dtype_of, idle_state, is_device_array, layer_bounds, no_bounds, to_device, to_host,
)
from .layout import param_views, rows, work_views


def hyper_scalars(hyper, t, dtype):
    """Typed scalars (lr, mu, b1, b2, eps, step) from the float64 hyper vector at update t."""
    f = dtype.type
    lr, b1, b2 = float(hyper[H_LR]), float(hyper[H_BETA1]), float(hyper[H_BETA2])
    step = lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t) if t > 0 else 0.0
    return f(lr), f(hyper[H_MOMENTUM]), f(b1), f(b2), f(hyper[H_EPS]), f(step)


def new_state():
    """A zeroed float64 device state vector for ``train_epoch_device``.

    Returns
    -------
    DeviceNDArray
        ``STATE_SIZE`` float64 values; ``state[1]`` is loss_sum and ``state[2]`` n_done.
    """
    return to_device(np.zeros(STATE_SIZE))


def train_epoch_device(X, Y, sw, order, theta, grad, shapes, acts, loss, batch_size, opt, hyper,
                       s1, s2, t0, work, state):
    """``train_epoch`` that leaves its results on the device and never waits for the GPU.

    Same arguments as ``train_epoch``, plus ``state`` from ``new_state()``: it adds the epoch's
    loss sum to ``state[1]`` and its completed batches to ``state[2]``; once a batch is not
    finite, that batch and every later launch on this ``state`` do nothing. ``shapes``, ``acts``
    and ``hyper`` are small host arrays; ``X``, ``Y``, ``sw`` and ``order`` may be host arrays
    (copied up once per call) but should live on the device. ``t0`` must count the updates done
    before this call (read ``state`` back after a divergence to know it).

    The launches of a step are built once per (buffers, layout, batch size) and replayed
    (``_cuda_launch``): a step costs its launches, not their argument marshalling.
    """
    if type(shapes) is not np.ndarray or shapes.dtype != np.int64:
        shapes = np.asarray(to_host(shapes), dtype=np.int64)
    acts = tuple(int(a) for a in to_host(acts))
    hyper = to_host(hyper)
    X, Y = to_device(X), to_device(Y)
    sw = None if sw is None else to_device(sw)
    if order is not None:
        order = to_device(order if is_device_array(order) else np.asarray(order, np.int64))
    N = X.shape[0] if order is None else order.shape[0]
    B = int(batch_size)
    s1 = s1 if s1.size else theta
    s2 = s2 if s2.size else theta
    plan = _epoch_plan(theta, grad, s1, s2, work, shapes, acts, int(loss), B, int(opt),
                       sw is not None, order is not None)
    data = (X, Y, sw, order)
    dt = plan.dt
    l2 = hyper[H_L2]
    for bi, start in enumerate(range(0, N, B)):
        n = min(B, N - start)
        lr, mu, b1, b2, eps, step = hyper_scalars(hyper, t0 + bi + 1, dt)
        plan.step(n).run(data, state, start, (lr, dt.type(l2), mu, b1, b2, eps, step))


_PLANS = {}
_MAX_PLANS = 8


def _epoch_plan(theta, grad, s1, s2, work, shapes, acts, loss, B, opt, has_sw, has_order):
    """The cached ``_EpochPlan`` for these buffers and this layout (a few kept, newest last)."""
    key = (id(theta), id(grad), id(s1), id(s2), id(work), shapes.tobytes(), shapes.shape, acts,
           loss, B, opt, has_sw, has_order)
    plan = _PLANS.get(key)
    if plan is None or not plan.owns(theta, grad, s1, s2, work):
        plan = _EpochPlan(theta, grad, s1, s2, work, shapes, acts, loss, B, opt, has_sw,
                          has_order)
        _PLANS.pop(key, None)
        while len(_PLANS) >= _MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return plan


class _EpochPlan:
    """A model's buffers and layout, with one ``_Step`` per batch size (built on first use)."""

    def __init__(self, theta, grad, s1, s2, work, shapes, acts, loss, B, opt, has_sw, has_order):
        self.arrays = (theta, grad, s1, s2, work)
        self.dt = dtype_of(theta)
        self.shapes, self.acts, self.loss, self.B, self.opt = shapes, acts, loss, B, opt
        self.has_sw, self.has_order = has_sw, has_order
        self.tv, self.gv = param_views(theta, shapes), param_views(grad, shapes)
        self.bounds = layer_bounds(shapes)
        self.steps = {}

    def owns(self, *arrays):
        return all(a is b for a, b in zip(arrays, self.arrays))

    def step(self, n):
        got = self.steps.get(n)
        if got is None:
            got = self.steps[n] = _Step(self, n)
        return got


# where the per-call data goes: (launch, argument index, which of (X, Y, sw, order))
_X, _Y, _SW, _ORDER = range(4)


class _Step:
    """Every launch of one training step on ``n`` rows, built once and replayed.

    Without ``order`` the batch rows are read in place from X, Y and sw (``set_rows`` moves the
    data pointer per batch); with it, a gather launch copies them into the workspace first.
    """

    def __init__(self, plan, n):
        p = plan
        theta, grad, s1, s2, work = p.arrays
        dt, shapes, acts, L = p.dt, p.shapes, p.acts, len(p.shapes)
        self.n = n
        nt = _cuda_rows.threads()
        Xb, Yb, swb, As, D0, D1 = work_views(work, shapes, p.B, n)
        state = idle_state()
        self.rows, self.full = [], []  # (launch, arg, which)
        launches = []
        if p.has_order:
            width = Xb.shape[1] + Yb.shape[1] + 1
            g = Launch(_cuda_rows.gather_kernel(dt), _cuda_rows.blocks(n * width), nt,
                       (Xb, Xb, swb, p.has_sw, no_bounds(), 0, n, Xb, Yb, swb, state))
            self.full += [(g, 0, _X), (g, 1, _Y), (g, 4, _ORDER)]
            if p.has_sw:
                self.full.append((g, 2, _SW))
            launches.append(g)
            self.gather = g
        else:
            self.gather = None
        sw_arg = swb if p.has_sw else None
        prev = Xb
        for l in range(L):
            (W, b), o = p.tv[l], int(shapes[l, 0])
            act = IDENTITY if l == L - 1 else acts[l]
            f = _cuda_gemm.plan("x_wt", dt, prev, W, As[l], n, o, prev.shape[1], b, b, act, state)
            if l == 0 and not p.has_order:
                self.rows.append((f, 0, _X))
            launches.append(f)
            prev = As[l]
        dZ = rows(D0, n, int(shapes[-1, 0]))
        out = Launch(_cuda_rows.output_kernel(dt, nt), 1, nt,
                     (As[-1], Yb, sw_arg if p.has_sw else As[-1][0], p.has_sw, p.loss, dZ, state))
        if not p.has_order:
            self.rows.append((out, 1, _Y))
            if p.has_sw:
                self.rows.append((out, 2, _SW))
        launches.append(out)
        for l in range(L - 1, -1, -1):
            (W, _), (dW, db) = p.tv[l], p.gv[l]
            o, fi = int(shapes[l, 0]), int(shapes[l, 1])
            A_prev = As[l - 1] if l > 0 else Xb
            g = _cuda_gemm.plan("dzt_a", dt, dZ, A_prev, dW, o, fi, n, db, dW, IDENTITY, state)
            if l == 0 and not p.has_order:
                self.rows.append((g, 1, _X))
            launches.append(g)
            if l > 0:
                nxt = rows(D1 if (L - l) % 2 == 1 else D0, n, fi)
                launches.append(_cuda_gemm.plan("dz_w", dt, dZ, W, nxt, n, fi, o, db, A_prev,
                                                acts[l - 1], state))
                dZ = nxt
        f = dt.type
        self.update = Launch(
            _cuda_rows.update_kernel(dt), _cuda_rows.blocks(theta.size), nt,
            (p.opt, theta, grad, s1, s2, f(0), f(0), f(0), f(0), f(0), f(0), f(0), p.bounds, L,
             float(n), True, state))
        launches.append(self.update)
        self.launches = launches

    def run(self, data, state, start, scalars):
        """One step on rows ``start:start + n`` (of X or of ``order``) of ``data``."""
        n = self.n
        for launch, i, which in self.rows:
            launch.set_rows(i, data[which], start, n)
        for launch, i, which in self.full:
            launch.set(i, data[which])
        if self.gather is not None:
            self.gather.set(5, start)
        upd = self.update
        for i, v in enumerate(scalars):
            upd.set(5 + i, v)
        for launch in self.launches:
            launch.set(-1, state)
            launch()
