"""One layer's fused forward and backward kernels, per implementation, for the asv suite.

The layer is a case's last hidden layer (the widest product in every standard case): ``W``
(out, in) with out = ``sizes[-2]``, in = ``sizes[-3]``, relu, batch ``case.batch``. Forward is
``A = relu(X @ W.T + b)``; backward is ``dZ = dA ⊙ 1[A > 0]``, ``dW = dZ.T @ X``, ``db = dZ.sum(0)``,
``dX = dZ @ W``. The relu mask is idempotent, so the in-place backward can be repeated.
"""

import functools
import importlib

import numpy as np

from fastnn.kernels import BACKENDS
from fastnn.kernels.codes import RELU

from .base import Unavailable, build, threads
from .jax_impl import import_jax
from .torch_impl import import_torch


@functools.lru_cache(maxsize=8)
def layer_data(case, dtype):
    """Seeded read-only ``(X, W, b, dA)`` for the case's last hidden layer."""
    if len(case.sizes) < 3 or case.hidden != "relu":
        raise ValueError(f"case {case.name} has no relu hidden layer")
    n_in, n_out = case.sizes[-3], case.sizes[-2]
    rng = np.random.default_rng(n_in * 7 + n_out)
    arrays = (rng.standard_normal((case.batch, n_in)),
              rng.standard_normal((n_out, n_in)) / np.sqrt(n_in),
              rng.standard_normal(n_out) * 0.1,
              rng.standard_normal((case.batch, n_out)))
    out = tuple(a.astype(dtype) for a in arrays)
    for a in out:
        a.flags.writeable = False
    return out


class FastnnLayer:
    """A fastnn backend's contract ``forward`` and ``backward`` on caller-owned buffers.

    The backend module comes from ``fastnn.kernels.BACKENDS`` (the kernel contract), once
    ``fastnn.available_backends()`` says it runs here.
    """

    def __init__(self, name, case, dtype):
        import fastnn

        if name not in fastnn.available_backends():
            raise Unavailable(f"fastnn backend {name!r} is not available here")
        self.K = importlib.import_module(BACKENDS[name])
        X, W, b, dA = layer_data(case, dtype)
        self.X, self.W, self.b = X.copy(), W.copy(), b.copy()
        self.A = np.empty((X.shape[0], W.shape[0]), dtype)
        self.dZ = dA.copy()
        self.dW, self.db, self.dX = np.empty_like(W), np.empty_like(b), np.empty_like(X)

    def forward(self):
        self.K.forward(self.X, self.W, self.b, RELU, self.A)

    def backward(self):
        self.K.backward(self.dZ, self.A, self.X, self.W, RELU, self.dW, self.db, self.dX)

    def results(self):
        return [self.A, self.dW, self.db, self.dX]


class TorchLayer:
    """The same layer with ``torch.addmm`` and ``out=`` buffers."""

    def __init__(self, case, dtype):
        torch = import_torch()
        torch.set_num_threads(threads())
        self.torch = torch
        X, W, b, dA = (torch.from_numpy(a.copy()) for a in layer_data(case, dtype))
        self.X, self.W, self.b, self.dA = X, W, b, dA
        self.A = torch.empty(X.shape[0], W.shape[0], dtype=X.dtype)
        self.dZ = torch.empty_like(self.A)
        self.dW, self.db, self.dX = (torch.empty_like(t) for t in (W, b, X))

    def forward(self):
        self.torch.addmm(self.b, self.X, self.W.t(), out=self.A)
        self.A.relu_()

    def backward(self):
        t = self.torch
        t.mul(self.dA, self.A > 0, out=self.dZ)
        t.mm(self.dZ.t(), self.X, out=self.dW)
        t.sum(self.dZ, 0, out=self.db)
        t.mm(self.dZ, self.W, out=self.dX)

    def results(self):
        return [t.numpy() for t in (self.A, self.dW, self.db, self.dX)]


class JaxLayer:
    """The same layer as two jitted functions, waited for with ``block_until_ready``."""

    def __init__(self, case, dtype):
        jax = import_jax()
        jnp = jax.numpy
        self.jax = jax
        self.X, self.W, self.b, self.dA = (jnp.asarray(a) for a in layer_data(case, dtype))

        def fwd(X, W, b):
            return jax.nn.relu(X @ W.T + b)

        def bwd(dA, A, X, W):
            dZ = jnp.where(A > 0, dA, 0)
            return dZ.T @ X, dZ.sum(0), dZ @ W

        self._fwd, self._bwd = jax.jit(fwd), jax.jit(bwd)
        self.A = self._fwd(self.X, self.W, self.b)
        self.grads = None

    def forward(self):
        self.A = self.jax.block_until_ready(self._fwd(self.X, self.W, self.b))

    def backward(self):
        self.grads = self.jax.block_until_ready(self._bwd(self.dA, self.A, self.X, self.W))

    def results(self):
        return [np.asarray(a) for a in (self.A, *self.grads)]


_OTHERS = {"torch": TorchLayer, "jax": JaxLayer}


def make_layer(name, case, dtype):
    """Layer kernels of implementation ``name``; raises Unavailable if it cannot run here."""
    return build(name, case, dtype, FastnnLayer, _OTHERS)


def check_layer(layer, case, dtype):
    """Run forward then backward and compare every output with the NumPy baseline.

    Raises AssertionError on a mismatch, so no benchmark times a wrong answer.
    """
    ref = make_layer("numpy", case, dtype)
    for obj in (ref, layer):
        obj.forward()
        obj.backward()
    rtol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    for what, got, want in zip(("A", "dW", "db", "dX"), layer.results(), ref.results()):
        err = np.linalg.norm(np.asarray(got, np.float64) - want) / max(np.linalg.norm(want), 1e-30)
        if not err <= rtol:
            raise AssertionError(f"{case.name} ({np.dtype(dtype).name}) layer kernels: {what} "
                                 f"differs from NumPy by {err:.3g} (relative) > {rtol:.0e}")
