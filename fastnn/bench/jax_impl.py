"""JAX counterpart of a benchmark case: a jitted ``value_and_grad`` + SGD update step.

An epoch case runs its batches with ``lax.scan`` inside one jitted function, the way a JAX user
would write a per-sample loop. Every call ends with ``block_until_ready``.
"""

import numpy as np

from . import cases as _cases
from .base import Unavailable


def import_jax():
    """``jax`` with 64-bit arrays enabled, or Unavailable when JAX is not installed."""
    try:
        import jax
    except ImportError as exc:
        raise Unavailable(f"JAX is not installed ({exc})") from None
    jax.config.update("jax_enable_x64", True)  # float64 cases; float32 arrays stay float32
    return jax


def _loss_fn(jax, case):
    jnp = jax.numpy
    act = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh,
           "softplus": jax.nn.softplus, "identity": lambda z: z}[case.hidden]

    def loss(params, X, y):
        for W, b in params[:-1]:
            X = act(X @ W.T + b)
        W, b = params[-1]
        z = X @ W.T + b
        if case.loss == "cross_entropy":
            picked = jnp.take_along_axis(z, y[:, None], axis=1)[:, 0]
            return jnp.mean(jax.nn.logsumexp(z, axis=1) - picked)
        return jnp.mean(jnp.sum(jax.nn.softplus(z) - y * z, axis=1))

    return loss


class JaxImpl:
    """The same network, weights and SGD step in JAX (CPU)."""

    name = "jax"

    def __init__(self, case, dtype):
        jax = import_jax()
        self.jax, self.case = jax, case
        jnp = jax.numpy
        grad_fn = jax.value_and_grad(_loss_fn(jax, case))
        lr = case.lr

        def step(params, X, y):
            value, grads = grad_fn(params, X, y)
            new = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
            return new, value

        def epoch(params, Xs, ys):
            return jax.lax.scan(lambda p, xy: step(p, *xy), params, (Xs, ys))

        self.params_ = [(jnp.asarray(W), jnp.asarray(b))
                        for W, b in _cases.initial_params(case, dtype)]
        X, y = _cases.data(case, dtype)
        if case.is_epoch:
            nb = case.n_samples // case.batch
            if nb * case.batch != case.n_samples:
                raise Unavailable("the JAX epoch needs n_samples divisible by the batch size")
            X = X.reshape(nb, case.batch, -1)
            y = y.reshape(nb, case.batch, *y.shape[1:])
            self._fn = jax.jit(epoch)
        else:
            self._fn = jax.jit(step)
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)

    def run(self):
        """One jitted step (or scanned epoch), waited for; returns the (last) loss."""
        self.params_, value = self._fn(self.params_, self.X, self.y)
        value = self.jax.block_until_ready(value)
        self.jax.block_until_ready(self.params_)
        return float(np.ravel(np.asarray(value))[-1])

    def params(self):
        return [(np.asarray(W), np.asarray(b)) for W, b in self.params_]
