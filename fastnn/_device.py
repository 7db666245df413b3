"""Keeping a model on the GPU: device copies of its flat vectors, synchronised lazily.

With a backend whose kernel module has ``ON_DEVICE = True`` (cuda), an MLP trains on a
``DeviceMirror``: the parameters, gradient, optimiser state and workspace live on the device, and
the device copy is the authoritative one after a training call. The host arrays that the layers
view are refreshed only when they are read (``sync_host``), and pushed back up only if they were
exposed to the user since (who may have written into them).
"""

from types import ModuleType as _ModuleType

import numpy as np

from ._validation import all_finite, as_matrix


def on_device(K):
    """Whether the kernel module ``K`` works on device arrays."""
    if type(K) is _ModuleType:  # a dict look-up: getattr's default costs an exception (~1 µs)
        return bool(vars(K).get("ON_DEVICE", False))
    return bool(getattr(K, "ON_DEVICE", False))


class DeviceMirror:
    """Device copies of ``model``'s theta, grad, optimiser state and workspace (kernels ``K``)."""

    def __init__(self, model, K):
        self.K, self.model = K, model
        self.theta = K.to_device(model._theta)
        self.grad = K.device_zeros(model._theta.size, model.dtype)
        self.work = K.device_zeros(0, model.dtype)
        self._state = {}  # id(host state vector) -> (host vector, device copy)
        self.host_behind = False  # the device holds newer values than the host arrays
        self.host_exposed = False  # the host arrays were handed out since the last push

    def device_state(self, host):
        """The device copy of a host optimiser-state vector (uploaded once per vector)."""
        got = self._state.get(id(host))
        if got is None or got[0] is not host:
            got = self._state[id(host)] = (host, self.K.to_device(host))
        return got[1]

    def workspace(self, size):
        if self.work.size < size:
            self.work = self.K.device_zeros(size, self.model.dtype)
        return self.work

    def push(self):
        """Before device use: copy host values up if the user may have changed them."""
        if self.host_exposed:
            self.theta.copy_to_device(self.model._theta)
            for host, dev in self._state.values():
                if host.size:
                    dev.copy_to_device(host)
            self.host_exposed = False

    def trained(self):
        """After a training call: the device is ahead of the host."""
        self.host_behind = True

    def sync_host(self):
        """Copy the device values into the host arrays (and the views the layers hold)."""
        if self.host_behind:
            m = self.model
            self.theta.copy_to_host(m._theta)
            self.grad.copy_to_host(m._grad)
            for host, dev in self._state.values():
                if host.size:
                    dev.copy_to_host(host)
            self.host_behind = False
        self.host_exposed = True


def mirror(model, K):
    """The model's DeviceMirror for kernels ``K`` (made on first use), pushed up to date."""
    m = getattr(model, "_mirror", None)
    if m is None or m.K is not K:
        if m is not None:
            m.sync_host()
        m = model._mirror = DeviceMirror(model, K)
        for layer in model.layers:
            layer._owner = model
    m.push()
    return m


def sync_host(model):
    """Bring the model's host arrays up to date with its device copy, if it has one."""
    m = getattr(model, "_mirror", None)
    if m is not None:
        m.sync_host()


def as_input(K, X, dtype, n_features, name="X"):
    """``(X on the device, X was given on the device)``, checked like ``as_matrix``.

    Device input (``__cuda_array_interface__``) is wrapped without a copy; its shape, dtype and
    finiteness are checked on the device. Host input is checked on the host, then copied up once.
    """
    if not K.is_device_array(X):
        return K.to_device(as_matrix(X, dtype, n_features, name)), False
    D = K.to_device(X)
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


class HostOps:
    """The few array operations that ``fit`` needs, on host arrays."""

    @staticmethod
    def empty_like(a):
        return np.empty_like(a)

    @staticmethod
    def copyto(dst, src):
        np.copyto(dst, src)

    all_finite = staticmethod(all_finite)


class DeviceOps:
    """The same operations on device arrays (kernels ``K``); copies stay on the device."""

    def __init__(self, K):
        self.K = K

    def empty_like(self, a):
        return self.K.device_zeros(a.shape, a.dtype)

    @staticmethod
    def copyto(dst, src):
        if src.size:
            dst.copy_to_device(src)

    def all_finite(self, a):
        return self.K.all_finite(a)


def fit_arrays(model, K, X, y, checked=False):
    """Everything ``fit`` hands the kernels, on the device for a device backend, else the host.

    Returns ``(ops, X, Y, theta, grad, work_for, state_for, done)``: ``work_for(batch)`` gives the
    workspace, ``state_for(host_vector)`` the optimiser state array, and ``done()`` is called
    after training. Host data goes up once here. With ``checked``, X and y (dense targets) were
    validated by the caller and are only placed, not checked again.
    """
    if not on_device(K):
        sync_host(model)
        if not checked:
            X = model._check_X(X)
            y = model._targets(y, X.shape[0])
        return (HostOps, X, y, model._theta, model._grad, model._workspace, lambda s: s,
                lambda: None)
    m = mirror(model, K)
    if checked:  # device arrays are wrapped without a copy, host arrays go up once
        X, Y = K.to_device(X), K.to_device(y)
    else:
        X, _ = as_input(K, X, model.dtype, model.layers[0].in_features)
        y = K.to_host(y) if K.is_device_array(y) else y
        Y = K.to_device(model._targets(y, X.shape[0]))
    from .kernels.layout import workspace_size

    def work_for(batch):
        return m.workspace(workspace_size(model._shapes, batch))

    return DeviceOps(K), X, Y, m.theta, m.grad, work_for, m.device_state, m.trained
