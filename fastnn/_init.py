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
    return rng.uniform(-limit, limit, size=(out_features, in_features)).astype(dtype)
