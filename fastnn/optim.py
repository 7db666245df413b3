"""Optimisers and their learning-rate schedules.

An optimiser is a small description (its kernel code and hyper-parameters) together with its
learning rate: the initial rate ``lr``, the rate in use now (``learning_rate``) and the schedule
that moves it. The update itself runs in the backend's fused kernels; the optimiser's numeric
state (velocity, Adam's moments, step count) lives with the model's parameters, in its
``ParamStore``, so that it is saved with them.
"""

import numpy as np

from ._validation import check_fraction, check_nonnegative_float, check_positive_float
from .kernels.codes import (
    H_BETA1, H_BETA2, H_EPS, H_LR, H_MOMENTUM, N_HYPER, OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV,
    OPT_SGD,
)


# Learning-rate schedules ---------------------------------------------------------------------
class Schedule:
    """How the learning rate moves during training: "constant" keeps it."""

    name = "constant"

    def epoch_rate(self, opt, samples_seen):
        """The rate for the next epoch, after ``samples_seen`` samples were trained on."""
        return opt.learning_rate

    def on_plateau(self, opt):
        """React to a plateau of the monitored loss: return a stop reason, or None to go on
        (with the rate changed)."""
        return "no_improvement"

    def __repr__(self):
        return f"{type(self).__name__}()"


class InvScaling(Schedule):
    """``lr / (samples_seen + 1) ** power_t``, updated once per epoch (as scikit-learn's MLP)."""

    name = "invscaling"

    def __init__(self, power_t=0.5):
        self.power_t = check_nonnegative_float(power_t, "power_t")

    def epoch_rate(self, opt, samples_seen):
        opt.learning_rate = opt.lr / (samples_seen + 1.0) ** self.power_t
        return opt.learning_rate

    def __repr__(self):
        return f"InvScaling(power_t={self.power_t!r})"


class Adaptive(Schedule):
    """Multiply the rate by ``factor`` on each plateau; stop once it is at most ``min_lr``.

    ``min_lr`` None means ``1e-6`` times the optimiser's initial rate.
    """

    name = "adaptive"

    def __init__(self, factor=0.5, min_lr=None):
        self.factor = check_fraction(factor, "factor", low_open=True)
        self.min_lr = None if min_lr is None else check_nonnegative_float(min_lr, "min_lr")

    def on_plateau(self, opt):
        floor = 1e-6 * opt.lr if self.min_lr is None else self.min_lr
        if opt.learning_rate <= floor:
            return "lr_min"
        opt.learning_rate *= self.factor
        return None

    def __repr__(self):
        return f"Adaptive(factor={self.factor!r}, min_lr={self.min_lr!r})"


SCHEDULES = ("constant", "invscaling", "adaptive")


def check_schedule(name):
    """Return ``name`` if it is a known learning-rate schedule, else raise ValueError."""
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {name!r}; expected one of "
                         f"{list(SCHEDULES)}")
    return name


def make_schedule(name, power_t=0.5, factor=0.5, min_lr=None):
    """The Schedule called ``name`` ("constant", "invscaling" or "adaptive")."""
    name = check_schedule(name)
    if name == "invscaling":
        return InvScaling(power_t)
    if name == "adaptive":
        return Adaptive(factor, min_lr)
    return Schedule()


def invscaling_lr(lr_init, power_t, samples_seen):
    """Deprecated: the "invscaling" rate ``lr_init / (samples_seen + 1) ** power_t``.

    Use ``InvScaling(power_t)``, the schedule that an optimiser carries.
    """
    import warnings

    warnings.warn("fastnn.optim.invscaling_lr is deprecated; use the InvScaling schedule",
                  DeprecationWarning, stacklevel=2)
    return lr_init / (samples_seen + 1.0) ** power_t


# Optimisers ----------------------------------------------------------------------------------
class Optimizer:
    """Base class: ``code`` selects the fused update kernel, ``n_state`` its state vectors.

    Attributes
    ----------
    lr : float
        The initial learning rate η.
    learning_rate : float
        The rate in use now; the schedule moves it, ``restart`` sets it back to ``lr``.
    schedule : Schedule
    """

    code = OPT_SGD
    n_state = 0

    def __init__(self, lr, schedule=None):
        self.lr = check_positive_float(lr, "lr")
        self.learning_rate = self.lr
        self.schedule = Schedule() if schedule is None else schedule

    def restart(self):
        """Start the schedule again from the initial rate (``fit`` does this)."""
        self.learning_rate = self.lr
        return self

    def hyper(self):
        """The float64 hyper-parameter vector that the kernels read (``kernels.codes.H_*``)."""
        h = np.zeros(N_HYPER)
        h[H_LR] = self.learning_rate
        self._fill(h)
        return h

    def _fill(self, h):
        pass

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if k not in ("learning_rate", "schedule"))
        if type(self.schedule) is not Schedule:
            args += f", schedule={self.schedule!r}"
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
    schedule : Schedule, optional
        How η moves during training (default: constant).
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, schedule=None):
        super().__init__(lr, schedule)
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
    schedule : Schedule, optional
        How the step size moves during training (default: constant).
    """

    code = OPT_ADAM
    n_state = 2

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, schedule=None):
        super().__init__(lr, schedule)
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

    A name makes a new optimiser with rate ``lr``; an instance keeps its own rate, and ``lr``
    must still be a valid rate (it is checked once, here or by the constructor).
    """
    if isinstance(spec, Optimizer):
        check_positive_float(lr, "lr")
        return spec
    if isinstance(spec, str) and spec in _NAMED:
        return _NAMED[spec](lr)
    raise ValueError(f"unknown optimizer {spec!r}; expected one of {sorted(_NAMED)} "
                     "or an Optimizer instance")
