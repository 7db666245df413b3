"""fastnn.kernels: the kernel contract, stated once, and the backends that implement it.

Every backend module (``reference``, ``numba_cpu``, ``cython_cpu`` and ``numba_cuda``) defines each
function of :data:`SPECS` with that name and signature. ``tests/kernels/test_contract.py`` runs
every one of them on every backend against ``reference`` (``numba_cuda`` in the CUDA simulator,
with host and device arrays), so this table is checked by running it.

Kernels trust their callers: the API layer (``fastnn``) checks shapes, dtypes, contiguity and
finiteness once, then calls the kernels on clean C-contiguous arrays of one float dtype (float32
or float64; ``shapes``, ``acts`` and ``order`` are int64, ``hyper`` float64). Kernels write into
buffers the caller provides and allocate nothing. Nothing in this package imports ``fastnn``.

Conventions (``DESIGN.md``): samples are rows; a layer has ``W`` (out, in) and ``b`` (out,);
activations, losses and optimisers arrive as the integer codes of :mod:`fastnn.kernels.codes`;
``shapes`` is (L, 2) int64 of (out, in) per layer and ``acts`` (L,) int64; :mod:`.layout` says
where each layer sits in the flat vectors ``theta``/``grad`` and in the scratch vector ``work``.

Memory
------
A host backend (``ON_DEVICE = False``) takes NumPy arrays. A device backend (``ON_DEVICE = True``,
``numba_cuda``) takes device arrays (numba's, or anything with ``__cuda_array_interface__``) and
NumPy arrays alike, wherever a spec says ``memory="any"``, in any mix: each distinct host array is
copied up once per call (the same host array passed twice, or two views of the same elements,
is one device copy), and the arguments the spec lists under ``writes`` are copied back into it
once, before the call returns; device arrays are used in place. ``shapes``, ``acts`` and
``hyper`` are small host (NumPy) arrays on every backend. Scalars and return values are host
numbers (``float``, ``bool``, ``int``). Every backend also gives the API layer the memory helpers
of :data:`MEMORY`.

Undefined behaviour
-------------------
Aliasing other than a spec's ``aliases`` (an output sharing memory with an input), arrays that
break the shapes or dtypes above, and codes outside :mod:`.codes` are undefined: a kernel may
return anything, and never checks.
"""

from dataclasses import dataclass

from ._threads import get_num_threads, set_num_threads  # noqa: F401  (fastnn re-exports them)


@dataclass(frozen=True)
class Spec:
    """One contract function: what it computes, on what, and what it may touch.

    Attributes
    ----------
    name, signature : str
        The function's name and parameters, the same in every backend.
    does : str
        What it computes.
    shapes : str
        Shapes and dtypes of the arguments.
    writes : tuple of str
        The arguments it writes (everything else is only read).
    aliases : tuple of (str, str)
        Pairs of arguments that may be the same array (besides an argument written in place).
    memory : str
        ``"any"``: a device backend takes host and device arrays alike; ``"host"``: NumPy only.
    undefined : str
        What the caller must not rely on.
    """

    name: str
    signature: str
    does: str
    shapes: str
    writes: tuple = ()
    aliases: tuple = ()
    memory: str = "any"
    undefined: str = ""


SPECS = {s.name: s for s in (
    Spec(
        "forward", "forward(X, W, b, act, out)",
        "out[:] = g(X @ W.T + b) for activation code act; softmax is applied row-wise.",
        "X (n, in), W (out, in), b (out,), out (n, out); one float dtype.",
        writes=("out",),
    ),
    Spec(
        "backward", "backward(dZ, A, A_prev, W, act, dW, db, dA_prev)",
        "On entry dZ holds dL/dA; it is overwritten with dZ * g'(A) (δ·σ', the derivative "
        "written from the output A). Then dW[:] = dZ.T @ A_prev, db[:] = dZ.sum(0) and, unless "
        "dA_prev is None, dA_prev[:] = dZ @ W.",
        "dZ, A (n, out); A_prev, dA_prev (n, in); W, dW (out, in); db (out,).",
        writes=("dZ", "dW", "db", "dA_prev"),
        aliases=(("dA_prev", "A_prev"),),
        undefined="act STEP or SOFTMAX (an output layer's dZ comes from output_step; callers "
                  "pass IDENTITY there).",
    ),
    Spec(
        "output_step", "output_step(Z, Y, loss, dZ, sw) -> float",
        "The fused output step: from the logits Z, dZ = sw * (g_out(Z) - Y) / n and the loss "
        "sum_i sw_i * l_i / n, computed with log-sum-exp / softplus forms so it never "
        "overflows; MSE is 0.5 * ||a - y||^2 per sample. Returns the loss.",
        "Z, Y, dZ (n, k); sw None or (n,). Y is dense (one-hot or soft labels for "
        "cross-entropy).",
        writes=("dZ",),
    ),
    Spec(
        "sgd_update", "sgd_update(p, g, lr, l2)",
        "p -= lr * (g + l2 * p).",
        "p, g (P,).",
        writes=("p",),
    ),
    Spec(
        "momentum_update", "momentum_update(p, g, v, lr, mu, l2, nesterov)",
        "v = mu * v - lr * g' with g' = g + l2 * p; then p += v, or with Nesterov "
        "p += mu * v - lr * g'.",
        "p, g, v (P,).",
        writes=("p", "v"),
    ),
    Spec(
        "adam_update", "adam_update(p, g, m, v, lr, beta1, beta2, eps, t, l2)",
        "Adam with bias correction at step t (1-based) on g' = g + l2 * p: "
        "m = b1 m + (1 - b1) g', v = b2 v + (1 - b2) g'^2, "
        "p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).",
        "p, g, m, v (P,).",
        writes=("p", "m", "v"),
    ),
    Spec(
        "update", "update(theta, grad, s1, s2, shapes, opt, hyper, t)",
        "One optimiser step over a whole model's flat vectors: optimiser opt "
        "(codes.OPT_*) with hyper-parameters hyper (codes.H_*), L2 hyper[H_L2] on every "
        "weight and none on the biases, Adam's bias correction at step t (1-based).",
        "theta, grad (P,) in the layout of shapes; s1, s2 (P,) optimiser state (velocity, or "
        "Adam's m and v), or empty (0,) when the optimiser keeps none; hyper (N_HYPER,) float64.",
        writes=("theta", "s1", "s2"),
    ),
    Spec(
        "train_epoch",
        "train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, batch_size, opt, hyper, "
        "s1, s2, t0, work) -> (loss_sum, n_done)",
        "Every mini-batch of one epoch: the rows order lists (gathered into work), or all "
        "rows of X in place when order is None, batch_size consecutive entries a batch (the "
        "last possibly shorter). Each batch runs forward, output_step, backward and the "
        "update of optimiser opt at step t0 + 1, t0 + 2, ... (L2 on weights only). A batch "
        "whose loss or gradient is not finite stops the loop before its update. Returns the "
        "sum over the completed batches of batch loss * rows, and how many completed.",
        "X (N, in), Y (N, k), sw None or (N,), order None or (M,) int64 row indices; theta, "
        "grad, s1, s2 as in update; work at least layout.workspace_size(shapes, batch_size).",
        writes=("theta", "grad", "s1", "s2", "work"),
        undefined="grad and work on return (with plain SGD the first layer's dW slot is never "
                  "written: its update is folded into the weight-gradient product).",
    ),
    Spec(
        "all_finite", "all_finite(x) -> bool",
        "True when no element of x is NaN or infinite (the API's divergence checks); True for "
        "an empty x.",
        "x a C-contiguous float array of any shape.",
    ),
    Spec(
        "copy_into", "copy_into(dst, src)",
        "dst[...] = src (the API's snapshots of parameters and optimiser state).",
        "dst, src C-contiguous, one dtype and shape.",
        writes=("dst",),
    ),
)}

CONTRACT = tuple(SPECS)
"""The contract functions' names, in the order of :data:`SPECS`."""

MEMORY = ("ON_DEVICE", "to_backend", "to_host", "zeros")
"""Memory helpers every backend module defines beside the contract functions:

- ``ON_DEVICE``: whether the backend's arrays live on a GPU;
- ``to_backend(x, dtype=None)``: ``x`` as an array of the backend's memory (a C-contiguous NumPy
  array for a host backend; for a device backend a device array, without a copy when ``x`` is on
  the GPU already);
- ``to_host(x)``: a NumPy array with ``x``'s values (copied down from a GPU where needed);
- ``zeros(shape, dtype)``: a zero-filled C-contiguous array of the backend's memory.
"""

BACKENDS = {
    "numpy": "fastnn.kernels.reference",
    "numba": "fastnn.kernels.numba_cpu",
    "cython": "fastnn.kernels.cython_cpu",
    "cuda": "fastnn.kernels.numba_cuda",
}
"""Backend name -> the module that implements the contract (imported lazily by ``fastnn``)."""


def blas_info():
    """The BLAS that the compiled kernels call, loaded on first use (see ``_blas.load``).

    Returns
    -------
    dict
        ``library`` ("scipy-openblas32" or "scipy"), ``filepath``, ``sgemm``/``dgemm`` (addresses
        of the Fortran-interface routines), ``coretype``, ``version``, ``coretype_forced`` and
        ``fallback_reason``.
    """
    from ._blas import load

    return load()
