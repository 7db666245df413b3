"""fastnn.kernels: the kernel contract, documented once.

Every backend module (``reference``, ``numba_cpu``, the Cython ``cython_cpu`` and ``numba_cuda``)
implements the functions below with these names and signatures. Kernels trust their callers: the API
layer (``fastnn``) checks shapes, dtypes, contiguity and finiteness once, then calls the kernels on
clean, C-contiguous arrays of one float dtype (float32 or float64). Kernels write into buffers the
caller provides and allocate nothing.

Conventions (``../shared/DESIGN.md``): samples are rows; a layer has ``W`` of shape (out, in) and ``b``
of shape (out,); activation and loss arguments are the integer codes of ``fastnn._codes``.

Layer kernels
-------------
forward(X, W, b, act, out)
    ``out[:] = g(X @ W.T + b)``. X (n, in), out (n, out). ``act`` may be any activation code,
    softmax included (applied row-wise).
backward(dZ, A, A_prev, W, act, dW, db, dA_prev)
    On entry ``dZ`` holds dL/dA; it is overwritten in place with ``dZ * g'(A)`` (δ·σ', the
    derivative written from the output A). Then ``dW[:] = dZ.T @ A_prev``, ``db[:] = dZ.sum(0)``
    and, unless ``dA_prev`` is None, ``dA_prev[:] = dZ @ W``. ``act`` is never step or softmax
    here: an output layer's dZ comes from ``output_step``, and the caller passes IDENTITY.
output_step(Z, Y, loss, dZ, sw)
    The fused output step. ``Z`` holds the output layer's logits (n, k); ``Y`` the dense targets
    (n, k) (one-hot or soft labels for cross-entropy). Writes ``dZ = sw * (A - Y) / n`` where
    ``A = g_out(Z)`` and returns the loss ``sum_i sw_i * l_i / n`` as a float, computed from the
    logits with log-sum-exp / softplus forms so it never overflows. ``sw`` is None or per-sample
    weights (n,). MSE is ``0.5 * ||a - y||^2`` per sample.

Parameter updates (in place, on 1-D views of the flat parameter vector)
--------------------------------------------------------------------------
sgd_update(p, g, lr, l2)
    ``p -= lr * (g + l2 * p)``.
momentum_update(p, g, v, lr, mu, l2, nesterov)
    ``v = mu * v - lr * (g + l2 * p)``; then ``p += v`` or, with Nesterov, ``p += mu * v - lr * g'``.
adam_update(p, g, m, v, lr, beta1, beta2, eps, t, l2)
    Adam with bias correction at step ``t`` (1-based), on ``g' = g + l2 * p``.

Whole-epoch loop
----------------
train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, batch_size, opt, hyper, s1, s2, t0, work)
    Runs every mini-batch of one epoch over the rows ``order`` lists (gathered into scratch), or
    over all rows of X in place when ``order`` is None; batches are ``batch_size`` consecutive
    entries, the last one possibly shorter. Each batch runs forward, fused output step, backward, and the update of ``opt``
    (``fastnn._codes.OPT_*``) with ``hyper`` (float64, indexed by ``fastnn._codes.H_*``). L2 applies to
    weights, never to biases. ``theta``/``grad`` are the flat parameter and gradient vectors,
    ``s1``/``s2`` the flat optimiser state (velocity, or Adam's m and v), ``t0`` the number of
    updates done before this epoch, ``work`` a scratch vector of at least
    ``layout.workspace_size(shapes, batch_size)`` elements.
    Returns ``(loss_sum, n_done)``: the sum over the completed batches of ``batch_loss * rows``,
    and how many batches completed. A batch whose loss or gradient is not finite stops the loop
    *before* its update, so ``n_done`` smaller than the number of batches means divergence.

Device backends
---------------
A backend whose module sets ``ON_DEVICE = True`` (``numba_cuda``) runs the same contract on GPU
arrays: every array argument is a numba device array or anything with ``__cuda_array_interface__``
(CuPy, PyTorch), except ``shapes``, ``acts`` and ``hyper``, which stay small host arrays.
Scalars (``lr``, ``l2``, ...) and the return values (``output_step``'s loss, ``train_epoch``'s
``(loss_sum, n_done)``) are host numbers; that read-back is the one synchronisation per call.
Such a module also provides, for the model layer:

- ``to_device(x, dtype=None)``: a device array for ``x`` (zero-copy when already on the GPU);
- ``to_host(x)``: a NumPy array (copied down from the GPU when needed);
- ``device_zeros(shape, dtype)``; ``is_device_array(x)``; ``all_finite(x)``; ``synchronize()``;
- ``train_epoch_device(..., state)`` with ``new_state()``: ``train_epoch`` that leaves loss_sum
  and n_done in a device vector (``state[1]``, ``state[2]``) instead of reading them back.

Shapes are described by an int64 array ``shapes`` of shape (L, 2) holding (out, in) per layer, and
``acts`` (L,) int64 activation codes; ``layout`` gives the offsets of each layer in ``theta`` and in
``work``.
"""

CONTRACT = (
    "forward",
    "backward",
    "output_step",
    "sgd_update",
    "momentum_update",
    "adam_update",
    "train_epoch",
)
