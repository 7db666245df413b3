"""numba.cuda backend: the kernel contract of ``fastnn.kernels`` on the GPU.

The twin of ``numba_cpu``: the same functions, on numba device arrays or anything with
``__cuda_array_interface__`` (CuPy, PyTorch), and on NumPy arrays alike: each contract function
follows its spec's memory rule (``_cuda_memory.follow_spec``: a host array is copied up once per
call and, if written, back once). Matrix products are a tiled shared-memory GEMM with the layer
work fused into its epilogue (``_cuda_gemm``); the output step, δ·σ', gather and optimiser step
are single kernels (``_cuda_rows``). A training step is ``2L + 2`` launches (one more when
batches are gathered through ``order``), and ``train_epoch`` keeps the loss, the batch count and
the divergence flags on the device (``_cuda_epoch``), reading them back once.

Helpers for the model layer keep parameters, optimiser state and buffers on the GPU: the
contract's ``ON_DEVICE``, ``to_backend``, ``to_host`` and ``zeros``, and the older names
``to_device``, ``device_zeros``, ``is_device_array``, ``synchronize``, ``new_state`` and
``train_epoch_device``. Nothing compiles at import: each kernel is built for its dtype on its
first launch.
"""

import numpy as np

# numba-cuda 0.30.x (seen with 0.30.4) overloads ``np.row_stack`` when it compiles its first
# kernel, and NumPy 2.5 removed that alias (deprecated since 2.0): the first launch would fail with
# "module 'numpy' has no attribute 'row_stack'". Restore the alias (it always meant vstack) before
# numba.cuda is imported. Only this module (the cuda backend) does it; CPU paths never import it.
if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack

from numba import cuda  # noqa: E402

from .codes import (  # noqa: E402
    H_BETA1, H_BETA2, H_EPS, H_L2, H_LR, H_MOMENTUM, IDENTITY, N_HYPER, OPT_ADAM, OPT_MOMENTUM,
    OPT_NESTEROV, OPT_SGD, SOFTMAX,
)
from . import _cuda_gemm, _cuda_rows  # noqa: E402
from ._cuda_epoch import hyper_scalars, new_state, train_epoch_device  # noqa: E402,F401
from ._cuda_launch import Launch  # noqa: E402
from ._cuda_math import S_DONE, S_LOSS_SUM, STATE_SIZE  # noqa: E402
from ._cuda_memory import (  # noqa: E402,F401
    device_zeros, dtype_of, flat, follow_spec, idle_state, is_device_array, layer_bounds,
    no_bounds, to_device, to_host,
)

ON_DEVICE = True
"""Arrays handed to this backend's kernels live on the GPU (see ``to_backend``)."""


def to_backend(x, dtype=None):
    """The contract's ``to_backend``: a device array for ``x`` (see ``to_device``)."""
    return to_device(x, dtype)


def zeros(shape, dtype):
    """The contract's ``zeros``: a zero-filled C-contiguous device array."""
    return device_zeros(shape, dtype)


def synchronize():
    """Wait until every queued kernel has finished (for timing)."""
    cuda.synchronize()


def _launch_update(opt, p, g, s1, s2, scalars, l2, bounds, L):
    """The fused update kernel over the flat ``p`` (outside an epoch: nothing tracked)."""
    dt = dtype_of(p)
    lr, mu, b1, b2, eps, step = scalars
    kern = _cuda_rows.update_kernel(dt)
    kern[_cuda_rows.blocks(p.size), _cuda_rows.threads()](
        opt, p, g, s1, s2, lr, dt.type(l2), mu, b1, b2, eps, step, bounds, L, 0.0, False,
        idle_state())


def _scalars(p, lr=0.0, mu=0.0, beta1=0.0, beta2=0.0, eps=0.0, t=0):
    """The update kernel's typed scalars for ``p``'s dtype (Adam's step when ``t`` > 0)."""
    hyper = np.zeros(N_HYPER)
    hyper[[H_LR, H_MOMENTUM, H_BETA1, H_BETA2, H_EPS]] = lr, mu, beta1, beta2, eps
    return hyper_scalars(hyper, t, dtype_of(p))


# --- the kernel contract ---------------------------------------------------------------------


@follow_spec
def forward(X, W, b, act, out):
    n, fi = X.shape
    o = W.shape[0]
    dt = dtype_of(out)
    state = idle_state()
    last = IDENTITY if act == SOFTMAX else act
    _cuda_gemm.launch("x_wt", dt, X, W, out, n, o, fi, b, b, last, state)
    if act == SOFTMAX:
        _cuda_rows.softmax_kernel(dt)[_cuda_rows.blocks(n), _cuda_rows.threads()](out, state)


@follow_spec
def backward(dZ, A, A_prev, W, act, dW, db, dA_prev):
    state = idle_state()
    n, o = dZ.shape
    fi = W.shape[1]
    dt = dtype_of(dZ)
    if act != IDENTITY:
        _cuda_rows.delta_kernel(dt)[_cuda_rows.blocks(n * o), _cuda_rows.threads()](
            dZ, A, act, state
        )
    _cuda_gemm.launch("dzt_a", dt, dZ, A_prev, dW, o, fi, n, db, dW, IDENTITY, state)
    if dA_prev is not None:
        _cuda_gemm.launch("dz_w", dt, dZ, W, dA_prev, n, fi, o, db, dA_prev, IDENTITY, state)


@follow_spec
def output_step(Z, Y, loss, dZ, sw):
    state = new_state()
    dt = dtype_of(Z)
    nt = _cuda_rows.threads()
    has_sw = sw is not None
    _cuda_rows.output_kernel(dt, nt)[1, nt](Z, Y, sw if has_sw else Z[0], has_sw, loss, dZ, state)
    return float(state.copy_to_host()[0])


@follow_spec
def sgd_update(p, g, lr, l2):
    _launch_update(OPT_SGD, p, g, p, p, _scalars(p, lr), l2, no_bounds(), 0)


@follow_spec
def momentum_update(p, g, v, lr, mu, l2, nesterov):
    opt = OPT_NESTEROV if nesterov else OPT_MOMENTUM
    _launch_update(opt, p, g, v, v, _scalars(p, lr, mu), l2, no_bounds(), 0)


@follow_spec
def adam_update(p, g, m, v, lr, beta1, beta2, eps, t, l2):
    _launch_update(OPT_ADAM, p, g, m, v, _scalars(p, lr, 0.0, beta1, beta2, eps, t), l2,
                   no_bounds(), 0)


@follow_spec
def update(theta, grad, s1, s2, shapes, opt, hyper, t):
    s1 = s1 if s1.size else theta
    s2 = s2 if s2.size else theta
    _launch_update(int(opt), theta, grad, s1, s2, hyper_scalars(hyper, t, dtype_of(theta)),
                   float(hyper[H_L2]), layer_bounds(shapes), len(shapes))


@follow_spec
def train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, batch_size, opt, hyper, s1, s2,
                t0, work):
    got = _epoch_state.get("epoch")
    if got is None:  # one state vector, zeroed by a replayed launch, and its host copy
        state = new_state()
        fill = _cuda_rows.flat_kernels()[0]
        got = _epoch_state["epoch"] = (state, Launch(fill, 1, _cuda_rows.threads(), (state, 0.0)),
                                       np.zeros(STATE_SIZE))
    state, reset, h = got
    reset()
    train_epoch_device(X, Y, sw, order, theta, grad, shapes, acts, loss, batch_size, opt, hyper,
                       s1, s2, t0, work, state)
    state.copy_to_host(h)
    return float(h[S_LOSS_SUM]), int(h[S_DONE])


_epoch_state = {}


@follow_spec
def all_finite(x):
    x = flat(x)
    flag = cuda.to_device(np.zeros(1, np.int32))
    if x.size:
        nonfinite = _cuda_rows.flat_kernels()[1]
        nonfinite[_cuda_rows.blocks(x.size), _cuda_rows.threads()](x, flag)
    return not bool(flag.copy_to_host()[0])


@follow_spec
def copy_into(dst, src):
    flat(dst).copy_to_device(flat(src))
