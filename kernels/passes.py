"""Layer-by-layer forward and backward passes over any backend's kernels (outside the epoch loop).

Used by inference, ``MLP.loss`` and ``MLP.gradients``, and by the NumPy reference's epoch loop.
"""

from .codes import IDENTITY


def forward_pass(K, X, params, acts, outs, logits):
    """Run every layer; ``outs[l]`` receives layer l's output. Returns the last output.

    With ``logits`` true the last layer writes Z (no activation), for the fused output step.
    """
    prev = X
    last = len(params) - 1
    for l, ((W, b), act) in enumerate(zip(params, acts)):
        K.forward(prev, W, b, IDENTITY if (logits and l == last) else act, outs[l])
        prev = outs[l]
    return prev


def batch_gradients(K, Xb, Yb, swb, params, grads, acts, loss, As, D0, D1):
    """Forward, fused output step and backward for one batch with kernels ``K``.

    ``As`` are the per-layer output buffers (n rows), ``D0``/``D1`` flat delta buffers.
    Fills ``grads`` (per-layer (dW, db)) and returns the batch loss.
    """
    n = Xb.shape[0]
    forward_pass(K, Xb, params, acts, As, logits=True)
    L = len(params)
    k = As[-1].shape[1]
    dZ = D0[:n * k].reshape(n, k)
    value = K.output_step(As[-1], Yb, loss, dZ, swb)
    bufs = (D0, D1)
    for l in range(L - 1, -1, -1):
        W = params[l][0]
        dW, db = grads[l]
        if l > 0:
            w = W.shape[1]
            nxt = bufs[(L - l) % 2][:n * w].reshape(n, w)
            backward_act = IDENTITY if l == L - 1 else acts[l]
            K.backward(dZ, As[l], As[l - 1], W, backward_act, dW, db, nxt)
            dZ = nxt
        else:
            K.backward(dZ, As[0], Xb, W, IDENTITY if L == 1 else acts[0], dW, db, None)
    return value
