"""ParamStore: one model's parameters, gradient and optimiser state, in flat vectors.

The one home of a model's numbers. ``theta`` holds every layer's W then b (``kernels.layout``), so
an optimiser step is one kernel call over it (``update``), save/load write it whole, and the
distributed allreduce sends ``grad`` as one buffer. Layers hold views into ``theta``. On a device
backend the store also keeps device copies (``_device.DeviceCopy``); after training there the
device copy is the newer one, and the host arrays are refreshed when they are read.
"""

import numpy as np

from ._device import DeviceCopy
from .kernels.codes import OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV, OPT_SGD
from .kernels.layout import param_size, param_views, workspace_size

_N_STATE = {OPT_SGD: 0, OPT_MOMENTUM: 1, OPT_NESTEROV: 1, OPT_ADAM: 2}  # state vectors per kind


def _synced(attr, doc):
    """A property for the host array in ``attr``, brought up to date with a device copy."""

    def get(self):
        self.sync()
        return getattr(self, attr)

    return property(get, doc=doc)


class ParamStore:
    """Flat parameter, gradient and optimiser-state vectors of one model.

    Parameters
    ----------
    shapes : ndarray of int64, shape (L, 2)
        ``(out, in)`` per layer.
    dtype : numpy.dtype
        float32 or float64.

    Attributes
    ----------
    opt_code : int or None
        The optimiser (``kernels.codes.OPT_*``) the state vectors belong to; None: no state.
    step : int
        Updates applied with that optimiser (Adam's bias-correction step).
    version : int
        Counts the times the arrays ``arrays`` hands out were replaced (an optimiser of
        another kind, a reset, a new device copy): what a kept Trainer checks.
    trainers : dict
        The trainers bound to these arrays by the last training calls (``_trainer.trainer_for``
        keeps them here, so ``train_step`` builds nothing); never pickled.
    """

    def __init__(self, shapes, dtype):
        self.shapes = shapes
        self.dtype = np.dtype(dtype)
        self._theta = np.zeros(param_size(shapes), dtype=self.dtype)
        self._grad = np.zeros_like(self._theta)
        self._none = np.zeros(0, dtype=self.dtype)
        self._s1 = self._s2 = self._none
        self._work = self._none
        self._work_per_row = workspace_size(shapes, 1)  # linear in the batch size
        self.opt_code = None
        self.step = 0
        self._device = None
        self.trainers = {}
        self.version = 0  # counts replacements of the arrays that ``arrays`` hands out
        self._weights = None  # flat views of each layer's W in theta, made on first use

    @property
    def size(self):
        """Number of parameters."""
        return self._theta.size

    # host arrays, up to date -------------------------------------------------------------
    theta = _synced("_theta", "The parameters, (P,) on the host.")
    grad = _synced("_grad", "The gradient of the last training step, (P,) on the host.")
    s1 = _synced("_s1", "First optimiser-state vector (velocity, or Adam's m), or empty.")
    s2 = _synced("_s2", "Second optimiser-state vector (Adam's v), or empty.")

    def views(self, vec):
        """Per-layer ``(W, b)`` views into ``vec``, a vector in this store's layout."""
        return param_views(vec, self.shapes)

    def weight_norm2(self):
        """``sum ||W||²`` over every layer's weights (the L2 term; biases are not in it)."""
        self.sync()
        weights = self._weights
        if weights is None:
            weights = self._weights = [W.reshape(-1) for W, _ in self.views(self._theta)]
        total = 0.0
        for w in weights:
            total += float(w.dot(w))
        return total

    # optimiser state ---------------------------------------------------------------------
    def use_optimizer(self, code, n_state):
        """Make the state vectors fit optimiser ``code`` with ``n_state`` vectors.

        The state (and step count) carries over while the optimiser kind stays the same, so
        training can continue where it stopped; another kind starts from zero.
        """
        if self.opt_code == code:
            return
        self.sync()
        self.opt_code, self.step = code, 0
        self._s1 = np.zeros_like(self._theta) if n_state >= 1 else self._none
        self._s2 = np.zeros_like(self._theta) if n_state >= 2 else self._none
        self.version += 1

    def reset_optimizer(self):
        """Forget the optimiser state (velocity, Adam moments and step count)."""
        self.sync()
        self.opt_code, self.step = None, 0
        self._s1 = self._s2 = self._none
        self.version += 1

    def set_optimizer_state(self, code, step, s1, s2):
        """Install optimiser state read from a file: copies of ``s1``/``s2`` (empty or (P,)),
        as many as optimiser ``code`` keeps (ValueError otherwise)."""
        n_state = _N_STATE.get(code)
        sizes = (np.size(s1), np.size(s2))
        want = tuple(self.size if n_state is not None and n_state > i else 0 for i in range(2))
        if n_state is None or sizes != want:
            raise ValueError(f"optimiser state of sizes {sizes} does not fit optimiser code "
                             f"{code!r} and {self.size} parameters")
        self.sync()
        self.opt_code, self.step = code, int(step)
        self._s1 = np.array(s1, dtype=self.dtype) if np.size(s1) else self._none
        self._s2 = np.array(s2, dtype=self.dtype) if np.size(s2) else self._none
        self.version += 1

    def snapshot(self):
        """A copy of the parameters and the optimiser state (what ``restore`` puts back)."""
        self.sync()
        return self._theta.copy(), self.opt_code, self.step, self._s1.copy(), self._s2.copy()

    def restore(self, snap):
        """Put back a ``snapshot``: the parameters in place (the layers' views stay valid) and
        the optimiser state as it was; a device copy is refreshed on its next use."""
        theta, code, step, s1, s2 = snap
        self.sync()  # the host arrays are now the ones a device copy re-reads
        self._theta[...] = theta
        if code is None:
            self.reset_optimizer()
        else:
            self.set_optimizer_state(code, step, s1, s2)

    # the backend's memory ----------------------------------------------------------------
    def arrays(self, K):
        """``(theta, grad, s1, s2)`` in the memory of kernel module ``K``.

        The host arrays for a host backend; for a device backend its device copies, brought up
        to date with anything written on the host since.
        """
        if not K.ON_DEVICE:
            self.sync()
            return self._theta, self._grad, self._s1, self._s2
        dev = self._device
        if dev is None or dev.K is not K:
            self.sync()
            dev = self._device = DeviceCopy(K, self._theta)
            self.version += 1
        s1, s2 = dev.states(self._s1, self._s2)
        dev.push(self._theta)
        return dev.theta, dev.grad, s1, s2

    def workspace(self, K, batch):
        """Scratch for ``train_epoch`` with batches of up to ``batch`` rows, in ``K``'s memory."""
        need = batch * self._work_per_row
        if K.ON_DEVICE:
            return self._device.workspace(need, self.dtype)
        if self._work.size < need:
            self._work = np.zeros(need, dtype=self.dtype)
        return self._work

    @property
    def device_is_newer(self):
        """Whether a device copy holds newer values than the host arrays (until read)."""
        return self._device is not None and self._device.ahead

    def trained(self):
        """Record that a device backend has just updated its copies (they are now newer)."""
        if self._device is not None:
            self._device.moved()

    def sync(self):
        """Bring the host arrays up to date with the device copies, if those are newer."""
        dev = self._device
        if dev is not None:
            dev.pull(self._theta, self._grad)

    # pickling: parameters and optimiser state only ----------------------------------------
    def __getstate__(self):
        self.sync()
        return {"shapes": self.shapes, "dtype": self.dtype, "theta": self._theta,
                "opt": (self.opt_code, self.step, self._s1, self._s2)}

    def __setstate__(self, state):
        self.__init__(state["shapes"], state["dtype"])
        self._theta[...] = state["theta"]
        code, step, s1, s2 = state["opt"]
        if code is not None:
            self.set_optimizer_state(code, step, s1, s2)
