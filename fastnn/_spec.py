"""ModelSpec: what the kernels must know about a model, in the integer codes they take."""

from dataclasses import dataclass

import numpy as np

from .kernels.codes import ACTIVATION_NAMES, NO_GRADIENT


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A model's kernel-facing description, fixed when the model is built.

    Attributes
    ----------
    shapes : ndarray of int64, shape (L, 2)
        ``(out, in)`` per layer: the layout of the flat parameter vector (``kernels.layout``).
    acts : ndarray of int64, shape (L,)
        Activation code per layer (``kernels.codes``).
    loss : int or None
        Loss code, or None for a model whose output has no paired loss (inference only).
    dtype : numpy.dtype
        float32 or float64.
    """

    shapes: np.ndarray
    acts: np.ndarray
    loss: object
    dtype: np.dtype

    @classmethod
    def of(cls, dims, acts, loss, dtype):
        """A spec from ``(out, in)`` pairs, activation codes, a loss code and a dtype."""
        shapes = np.array(dims, np.int64).reshape(-1, 2)
        shapes.flags.writeable = False
        codes = np.array(acts, np.int64)
        codes.flags.writeable = False
        return cls(shapes, codes, loss, np.dtype(dtype))

    @property
    def n_in(self):
        """Input width."""
        return int(self.shapes[0, 1])

    @property
    def n_out(self):
        """Output width."""
        return int(self.shapes[-1, 0])

    @property
    def sizes(self):
        """Input width followed by each layer's width."""
        return [self.n_in] + [int(o) for o in self.shapes[:, 0]]

    def untrainable_reason(self):
        """None when the model can be trained, else the sentence that says why not."""
        for i, act in enumerate(self.acts):
            if int(act) in NO_GRADIENT:
                return (f"cannot train through layer {i}: 'step' has no useful gradient (use it "
                        "for inference only)")
        if self.loss is None:
            name = ACTIVATION_NAMES[int(self.acts[-1])]
            return (f"the output activation {name!r} has no paired loss; train with identity "
                    "(mse), sigmoid (bce) or softmax (cross_entropy) outputs")
        return None
