"""Benchmark cases shared by ``fastnn bench`` and the asv suite: shapes, seeded data, FLOP counts.

A case is written ``BATCHxIN-H1-...-OUT``, e.g. ``128x784-256-10``: one ``train_step`` on a batch
of 128 rows through a 784-256-10 relu/softmax network. A case with ``n_samples`` set times a whole
``fit`` epoch instead (``sgd1x2-2-1`` is the seeds' per-sample SGD on a 2-2-1 sigmoid/BCE network).
"""

import functools
import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    """One benchmark shape.

    Attributes
    ----------
    name : str
        The name used on the command line and as the asv parameter value.
    batch : int
        Rows per step.
    sizes : tuple of int
        Input width, then each layer's width.
    hidden, output : str
        Activations of the hidden layers and of the output layer (softmax or sigmoid).
    n_samples : int
        0 for a single ``train_step``; otherwise rows in the epoch that ``fit`` runs.
    lr : float
        Learning rate of the SGD step.
    """

    name: str
    batch: int
    sizes: tuple
    hidden: str = "relu"
    output: str = "softmax"
    n_samples: int = 0
    lr: float = 0.01

    @property
    def loss(self):
        """``"cross_entropy"`` for a softmax output, ``"bce"`` for a sigmoid one."""
        return "cross_entropy" if self.output == "softmax" else "bce"

    @property
    def steps(self):
        """SGD steps in one timed call: 1, or the batches of an epoch."""
        return 1 if not self.n_samples else -(-self.n_samples // self.batch)

    @property
    def is_epoch(self):
        return self.n_samples > 0


def _make(name, **kw):
    m = re.fullmatch(r"(\d+)x(\d+(?:-\d+)+)", name)
    if m is None:
        raise ValueError(f"unknown benchmark case {name!r}: use a name from "
                         f"{', '.join(CASES)} or BATCHxIN-H-...-OUT such as 32x64-128-10")
    batch, sizes = int(m.group(1)), tuple(int(s) for s in m.group(2).split("-"))
    if batch < 1 or min(sizes) < 1:
        raise ValueError(f"benchmark case {name!r} needs positive sizes")
    return Case(name, batch, sizes, **kw)


# The four standard cases (float32 relu hidden, softmax + cross-entropy), then the seeds'
# per-sample SGD and a small mini-batch epoch.
STANDARD = ("32x64-128-10", "128x784-256-10", "256x784-512-512-10", "1024x1024-2048-2048-10")
SGD1 = "sgd1x2-2-1"
FIT = "fit32x64-128-10"
CASES = {name: _make(name) for name in STANDARD}
CASES[SGD1] = Case(SGD1, 1, (2, 2, 1), hidden="sigmoid", output="sigmoid", n_samples=1000,
                   lr=0.5)
CASES[FIT] = Case(FIT, 32, (64, 128, 10), n_samples=2048)
DEFAULT = STANDARD + (SGD1,)
QUICK = STANDARD[:3] + (SGD1,)


def get_case(name):
    """The Case called ``name``: a predefined one, or one parsed from ``BATCHxIN-...-OUT``."""
    return CASES[name] if name in CASES else _make(name)


def gemm_flops(case):
    """FLOPs of the matrix products in one forward + backward pass over one batch.

    Per layer with ``W`` (out, in) and batch ``B``: ``2·B·in·out`` for ``X @ W.T``, the same
    for ``dW = dZ.T @ A_prev``, and the same again for ``dA_prev = dZ @ W`` on every layer but
    the first. That is ``6·B·(weights) − 2·B·in0·out0``; element-wise work is not counted.
    """
    pairs = list(zip(case.sizes[:-1], case.sizes[1:]))
    total = sum(6 * case.batch * i * o for i, o in pairs)
    return total - 2 * case.batch * pairs[0][0] * pairs[0][1]


def _seed(case):
    return sum(case.sizes) * 1009 + case.batch


@functools.lru_cache(maxsize=16)
def data(case, dtype):
    """Seeded inputs and targets for ``case``: ``(X, y)``, cached; never modify them.

    ``y`` holds integer labels for cross-entropy and 0/1 floats (n, 1) for BCE.
    """
    dtype = np.dtype(dtype)
    n = case.n_samples or case.batch
    rng = np.random.default_rng(_seed(case))
    X = rng.standard_normal((n, case.sizes[0])).astype(dtype)
    k = case.sizes[-1]
    if case.loss == "cross_entropy":
        y = rng.integers(0, k, n)
    else:
        y = (X[:, :1] * X[:, -1:] > 0).astype(dtype)  # XOR-like labels for the 2-2-1 net
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


@functools.lru_cache(maxsize=16)
def initial_params(case, dtype):
    """Seeded initial ``[(W, b), ...]`` that every implementation copies in (read-only)."""
    import fastnn

    model = fastnn.MLP.from_sizes(case.sizes, hidden=case.hidden, output=case.output,
                                  dtype=dtype, seed=0)
    params = [(l.W.copy(), l.b.copy()) for l in model.layers]
    for W, b in params:
        W.flags.writeable = b.flags.writeable = False
    return params
