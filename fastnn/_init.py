"""Weight initialisation: He for relu/softplus layers, Glorot otherwise (uniform draws, biases zero)."""

import numpy as np

from .kernels.codes import RELU, SOFTPLUS


def init_weights(rng, out_features, in_features, act, dtype):
    """Draw a (out, in) weight matrix from ``rng`` for a layer with activation code ``act``.

    He-uniform (limit sqrt(6 / in)) suits relu and softplus; Glorot-uniform
    (limit sqrt(6 / (in + out))) suits the saturating and linear activations.
    """
    if act in (RELU, SOFTPLUS):
        limit = np.sqrt(6.0 / in_features)
    else:
        limit = np.sqrt(6.0 / (in_features + out_features))
    W = _empty((out_features, in_features), dtype)
    flat = W.reshape(-1)
    # float64 draws, in chunks cast into W: the same numbers as one draw of the whole matrix,
    # without its float64 copy (a float32 layer used to peak at three times its size)
    for lo in range(0, flat.size, _CHUNK):
        hi = min(lo + _CHUNK, flat.size)
        flat[lo:hi] = rng.uniform(-limit, limit, size=hi - lo)
    return W


_CHUNK = 1 << 16


def _empty(shape, dtype):
    """An uninitialised array, or a MemoryError that says how much the layer asked for."""
    try:
        return np.empty(shape, dtype)
    except (MemoryError, ValueError):  # ValueError: more bytes than an address can hold
        gib = shape[0] * shape[1] * np.dtype(dtype).itemsize / 2 ** 30
        raise MemoryError(f"a layer of {shape[1]} inputs and {shape[0]} outputs needs "
                          f"{gib:,.1f} GiB for its {np.dtype(dtype).name} weights") from None
