"""Where each layer's parameters and scratch buffers sit in the flat vectors that kernels share.

The flat parameter vector ``theta`` holds, per layer, ``W`` (out*in, row-major) then ``b`` (out).
The scratch vector ``work`` for a batch capacity ``B`` holds, in order: the gathered batch
``Xb`` (B*in0), its targets ``Yb`` (B*k), its weights ``swb`` (B), each layer's output
``A_l`` (B*out_l; the last layer holds the logits Z), and two flat delta buffers of
B*max(out_l) each, from which a contiguous (n, w) matrix is cut with ``rows(D, n, w)``.
Compiled loops recompute these offsets with the same arithmetic.
"""

import numpy as np


def param_size(shapes):
    """Number of parameters in the flat vector for ``shapes`` ((L, 2) of (out, in))."""
    return int(sum(o * i + o for o, i in shapes))


def param_offsets(shapes):
    """Offset of each layer's W in ``theta``; its b follows at ``offset + out * in``."""
    offs, pos = [], 0
    for o, i in shapes:
        offs.append(pos)
        pos += o * i + o
    return offs


def workspace_size(shapes, batch):
    """Elements of scratch that ``train_epoch`` needs for batches of at most ``batch`` rows."""
    shapes = np.asarray(shapes)
    width = int(shapes[:, 0].max())
    n_in, n_out = int(shapes[0, 1]), int(shapes[-1, 0])
    return int(batch * (n_in + n_out + 1 + int(shapes[:, 0].sum()) + 2 * width))


def param_views(theta, shapes):
    """Per-layer ``(W, b)`` views into the flat vector ``theta``."""
    views = []
    for off, (o, i) in zip(param_offsets(shapes), shapes):
        o, i = int(o), int(i)
        views.append((theta[off:off + o * i].reshape(o, i), theta[off + o * i:off + o * i + o]))
    return views


def work_views(work, shapes, batch, n):
    """Views of ``work`` for a batch of ``n <= batch`` rows: (Xb, Yb, swb, [A_l], D0, D1).

    D0 and D1 are flat; cut matrices from them with ``rows``.
    """
    shapes = np.asarray(shapes)
    width = int(shapes[:, 0].max())
    n_in, n_out = int(shapes[0, 1]), int(shapes[-1, 0])
    pos = 0

    def take(w):
        nonlocal pos
        v = work[pos:pos + n * w].reshape(n, w)
        pos += batch * w
        return v

    Xb, Yb = take(n_in), take(n_out)
    swb = take(1).reshape(n)
    As = [take(int(o)) for o in shapes[:, 0]]
    D0 = work[pos:pos + batch * width]
    D1 = work[pos + batch * width:pos + 2 * batch * width]
    return Xb, Yb, swb, As, D0, D1


def rows(D, n, w):
    """A C-contiguous (n, w) matrix at the start of the flat buffer ``D``."""
    return D[:n * w].reshape(n, w)
