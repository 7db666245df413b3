"""The implementations that benchmarks compare, behind one small interface.

Each implementation is built for a case and a dtype from the same seeded initial weights and
data (:mod:`fastnn.bench.cases`), and offers ``run()`` (one ``train_step``, or one ``fit`` epoch for an
epoch case) and ``params()`` (the current weights as NumPy arrays, to check against the baseline).
"numpy" is fastnn's NumPy reference backend; the other fastnn backends, PyTorch and JAX follow.
"""

import numpy as np

from . import cases as _cases
from .base import Unavailable, build
from .jax_impl import JaxImpl
from .torch_impl import TorchImpl

__all__ = ["FastnnImpl", "Unavailable", "check_against_numpy", "fastnn_names", "make",
           "mismatch", "tolerance"]


class FastnnImpl:
    """A fastnn backend through the public API: ``MLP.train_step`` or ``MLP.fit``."""

    def __init__(self, backend, case, dtype):
        import fastnn

        if backend not in fastnn.available_backends():
            raise Unavailable(f"fastnn backend {backend!r} is not available here")
        self.name, self.case, self.backend = backend, case, backend
        self._fastnn = fastnn
        self.X, self.y = _cases.data(case, dtype)
        self.model = fastnn.MLP.from_sizes(case.sizes, hidden=case.hidden, output=case.output,
                                           dtype=dtype)
        for layer, (W, b) in zip(self.model.layers, _cases.initial_params(case, dtype)):
            layer.W, layer.b = W, b

    def run(self):
        """One train_step (or one fit epoch); returns the mean loss."""
        self._fastnn.set_backend(self.backend)
        c = self.case
        if c.is_epoch:
            h = self.model.fit(self.X, self.y, epochs=1, batch_size=c.batch, lr=c.lr,
                               shuffle=False, progress=False)
            return h.loss[-1]
        return self.model.train_step(self.X, self.y, c.lr)

    def params(self):
        return [(l.W.copy(), l.b.copy()) for l in self.model.layers]


def fastnn_names():
    """Available fastnn backends, the "numpy" baseline first, cuda only where it runs."""
    import fastnn

    names = fastnn.available_backends()
    return ["numpy"] + [n for n in names if n != "numpy"]


_OTHERS = {"torch": TorchImpl, "jax": JaxImpl}


def make(name, case, dtype):
    """Build implementation ``name`` ("numpy", a fastnn backend, "torch" or "jax").

    Raises
    ------
    Unavailable
        If it cannot run here.
    """
    return build(name, case, dtype, FastnnImpl, _OTHERS)


def tolerance(dtype):
    """Relative tolerance on a step's weight change against the baseline.

    float32 is loose: in the 1024x1024-2048-2048-10 case PyTorch's first-layer update differs
    from NumPy's by 2e-3 (summation order, and relu masks flipping on near-zero pre-activations),
    while in float64 it agrees to 1e-13. A wrong gradient is off by order 1.
    """
    return 1e-2 if np.dtype(dtype) == np.float32 else 1e-8


def mismatch(got, want, start):
    """Largest error in the weight changes ``got - start`` against ``want - start``.

    ``got``, ``want`` and ``start`` are ``[(W, b), ...]`` lists. Per array, the Frobenius norm
    of the difference of the changes is divided by ``||want - start|| + 2·eps·||want||``: the
    second term is what rounding the updated weights to the dtype can cost (a small update next
    to large weights is only known to about that). A wrong gradient still shows as an error of
    order 1, a float32 summation order as one of about 1e-5.
    """
    worst = 0.0
    for pg, pw, p0 in zip(got, want, start):
        for g, r, s in zip(pg, pw, p0):
            eps = np.finfo(r.dtype).eps
            r64, s64 = r.astype(np.float64), s.astype(np.float64)
            d_ref, d_got = r64 - s64, g.astype(np.float64) - s64
            scale = max(np.linalg.norm(d_ref) + 2 * eps * np.linalg.norm(r64), 1e-300)
            worst = max(worst, float(np.linalg.norm(d_got - d_ref) / scale))
    return worst


def check_against_numpy(impl, case, dtype):
    """Run ``impl`` once from the initial weights and compare with the NumPy baseline.

    Returns the relative mismatch; raises AssertionError if it exceeds :func:`tolerance`, so no
    benchmark times a wrong answer. ``impl`` must not have run yet.
    """
    start = _cases.initial_params(case, dtype)
    ref = make("numpy", case, dtype)
    ref.run()
    impl.run()
    err = mismatch(impl.params(), ref.params(), start)
    if not err <= tolerance(dtype):
        raise AssertionError(f"{impl.name} disagrees with the NumPy baseline on {case.name} "
                             f"({np.dtype(dtype).name}): relative error {err:.3g} in the "
                             f"weight update > {tolerance(dtype):.0e}")
    return err
