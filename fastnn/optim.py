"""Optimisers: plain/mini-batch SGD (with momentum and Nesterov) and Adam.

An optimiser here is a small description (its kernel code and hyper-parameters); the update itself
runs in the backend's fused update kernels, inside the compiled epoch loop.
"""

import numpy as np

from .kernels.codes import (
    H_BETA1, H_BETA2, H_EPS, H_LR, H_MOMENTUM, N_HYPER, OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV,
    OPT_SGD,
)
from ._validation import check_fraction, check_positive_float


class Optimizer:
    """Base class: ``code`` selects the fused update kernel, ``n_state`` its state vectors."""

    code = OPT_SGD
    n_state = 0

    def __init__(self, lr):
        self.lr = check_positive_float(lr, "lr")

    def hyper(self, lr=None):
        """The float64 hyper-parameter vector that the kernels read (see fastnn._codes.H_*)."""
        h = np.zeros(N_HYPER)
        h[H_LR] = self.lr if lr is None else lr
        self._fill(h)
        return h

    def _fill(self, h):
        pass

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Parameters
    ----------
    lr : float
        Learning rate η > 0.
    momentum : float
        Momentum μ in [0, 1); 0 gives plain SGD.
    nesterov : bool
        Use Nesterov's look-ahead form (needs momentum > 0).
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr)
        self.momentum = check_fraction(momentum, "momentum")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    @property
    def code(self):
        if self.momentum == 0:
            return OPT_SGD
        return OPT_NESTEROV if self.nesterov else OPT_MOMENTUM

    @property
    def n_state(self):
        return 0 if self.momentum == 0 else 1

    def _fill(self, h):
        h[H_MOMENTUM] = self.momentum


class Adam(Optimizer):
    """Adam with bias correction.

    Parameters
    ----------
    lr : float
        Step size.
    beta1, beta2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float
        Added to the root of the second moment, > 0.
    """

    code = OPT_ADAM
    n_state = 2

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1 = check_fraction(beta1, "beta1")
        self.beta2 = check_fraction(beta2, "beta2")
        self.eps = check_positive_float(eps, "eps")

    def _fill(self, h):
        h[H_BETA1], h[H_BETA2], h[H_EPS] = self.beta1, self.beta2, self.eps


_NAMED = {
    "sgd": lambda lr: SGD(lr),
    "momentum": lambda lr: SGD(lr, momentum=0.9),
    "nesterov": lambda lr: SGD(lr, momentum=0.9, nesterov=True),
    "adam": lambda lr: Adam(lr),
}


def get_optimizer(spec, lr):
    """An Optimizer from a name ("sgd", "momentum", "nesterov", "adam") or an instance.

    A name takes ``lr``; an instance keeps its own.
    """
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec in _NAMED:
        return _NAMED[spec](lr)
    raise ValueError(f"unknown optimizer {spec!r}; expected one of {sorted(_NAMED)} "
                     "or an Optimizer instance")


# Learning-rate schedules ---------------------------------------------------------------------
SCHEDULES = ("constant", "invscaling", "adaptive")


def check_schedule(name):
    """Return ``name`` if it is a known learning-rate schedule, else raise ValueError."""
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {name!r}; expected one of "
                         f"{list(SCHEDULES)}")
    return name


def invscaling_lr(lr_init, power_t, samples_seen):
    """The "invscaling" rate ``lr_init / (samples_seen + 1) ** power_t``.

    fastnn updates it once per epoch, from the number of samples seen before that epoch (the first
    epoch runs at ``lr_init``); scikit-learn's MLP does the same, so the two agree exactly.
    """
    return lr_init / (samples_seen + 1.0) ** power_t
