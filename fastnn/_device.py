"""Device copies of a model's vectors, and inputs that arrive on the device.

With a backend whose kernel module has ``ON_DEVICE = True`` (cuda), a ``ParamStore`` trains on a
``DeviceCopy``: parameters, gradient, optimiser state and workspace live on the device, and after
a training call the device copy is the newer one. The host arrays are refreshed only when they are
read (``pull``), and pushed back up only if they were handed out since (the user may have written
into them). Everything goes through the kernel module's memory helpers (``kernels.MEMORY``).
"""

import numpy as np

from ._validation import as_matrix


class DeviceCopy:
    """Device copies of one store's vectors on kernel module ``K``."""

    def __init__(self, K, theta):
        self.K = K
        self.theta = K.to_backend(theta)
        self.grad = K.zeros(theta.size, theta.dtype)
        self.work = K.zeros(0, theta.dtype)
        self._state = {}  # id(host state vector) -> (host vector, device copy)
        self.ahead = False  # the device holds newer values than the host arrays
        self.exposed = False  # the host arrays were handed out since the last push

    def state(self, host):
        """The device copy of a host optimiser-state vector (uploaded once per vector)."""
        got = self._state.get(id(host))
        if got is None or got[0] is not host:
            got = self._state[id(host)] = (host, self.K.to_backend(host))
        return got[1]

    def workspace(self, size, dtype):
        if self.work.size < size:
            self.work = self.K.zeros(size, dtype)
        return self.work

    def push(self, theta):
        """Before device use: copy host values up if the user may have changed them."""
        if self.exposed:
            K = self.K
            K.copy_into(self.theta, K.to_backend(theta))
            for host, dev in self._state.values():
                if host.size:
                    K.copy_into(dev, K.to_backend(host))
            self.exposed = False

    def pull(self, theta, grad, states):
        """Copy newer device values into the host arrays; the host arrays are then exposed."""
        if self.ahead:
            to_host = self.K.to_host
            theta[...] = to_host(self.theta)
            grad[...] = to_host(self.grad)
            for host in states:
                got = self._state.get(id(host))
                if host.size and got is not None and got[0] is host:
                    host[...] = to_host(got[1])
            self.ahead = False
        self.exposed = True


def as_input(K, X, dtype, n_features, name="X"):
    """``(X in K's memory, X was given on the device)``, checked like ``as_matrix``.

    Device input (``__cuda_array_interface__``) is wrapped without a copy and checked on the
    device (shape, dtype, contiguity, finiteness); anything else is checked on the host, then
    placed in ``K``'s memory once.
    """
    if not (K.ON_DEVICE and K.is_device_array(X)):
        return K.to_backend(as_matrix(X, dtype, n_features, name)), False
    D = K.to_backend(X)
    if len(D.shape) != 2 or D.shape[0] == 0 or D.shape[1] != n_features:
        raise ValueError(f"{name} on the device must be 2-D (n, {n_features}), got {D.shape}")
    if np.dtype(D.dtype) != dtype:
        raise ValueError(f"{name} on the device has dtype {D.dtype}; the model uses {dtype} "
                         "(device arrays are never converted implicitly)")
    if not D.is_c_contiguous():
        raise ValueError(f"{name} on the device must be C-contiguous")
    if not K.all_finite(D.reshape(D.size)):
        raise ValueError(f"{name} contains NaN or infinity")
    return D, True
