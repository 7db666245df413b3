# train_epoch: every mini-batch of one epoch in compiled code (forward, output step, backward,
# update), on the flat vectors of fastnn.kernels.layout. Included by _cython_cpu.pyx.

from cython cimport floating
from libc.stdint cimport int32_t, int64_t

from fastnn_cpu cimport SMALL_GEMM


cdef void _gather(floating *X, floating *Y, floating *sw, int64_t *order64, int32_t *order32,
                  Py_ssize_t start, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t k, floating *Xb,
                  floating *Yb, floating *swb) noexcept nogil:
    """Copy the rows order[start:start + n] of X, Y and sw (unless NULL) into Xb, Yb, swb."""
    cdef Py_ssize_t i, j, r
    for i in range(n):
        r = order64[start + i] if order64 != NULL else order32[start + i]
        for j in range(n_in):
            Xb[i * n_in + j] = X[r * n_in + j]
        for j in range(k):
            Yb[i * k + j] = Y[r * k + j]
        if sw != NULL:
            swb[i] = sw[r]


cdef int _train_epoch(floating *X, floating *Y, floating *sw, int64_t *order64,
                      int32_t *order32, Py_ssize_t N, floating *theta, floating *grad,
                      int64_t *shapes, int64_t *acts, int L, int loss, Py_ssize_t B, int opt,
                      double *hyper, floating *s1, floating *s2, bint has_state, int64_t t0,
                      floating *work, double *loss_sum) noexcept nogil:
    """The contract's train_epoch (at most 63 layers): returns the batches done and writes the
    sum of batch loss * rows to ``loss_sum``."""
    cdef Py_ssize_t n_in = shapes[1], k = shapes[2 * (L - 1)], width = 0
    cdef Py_ssize_t l, start, n, o, fi, off
    cdef Py_ssize_t p_off[64]
    cdef Py_ssize_t a_off[64]
    cdef Py_ssize_t d_off0, d_off1
    cdef floating *Xb
    cdef floating *Yb
    cdef floating *swb
    cdef floating *prev
    cdef floating *dZ
    cdef floating *nxt
    cdef floating l2 = <floating>hyper[H_L2], lr = <floating>hyper[H_LR]
    cdef double value, total = 0.0
    cdef int done = 0, act
    cdef bint ok, fold, small
    for l in range(L):
        if shapes[2 * l] > width:
            width = shapes[2 * l]
    p_off[0] = 0
    a_off[0] = B * (n_in + k + 1)
    for l in range(L):
        p_off[l + 1] = p_off[l] + shapes[2 * l] * shapes[2 * l + 1] + shapes[2 * l]
        a_off[l + 1] = a_off[l] + B * shapes[2 * l]
    d_off0 = a_off[L]
    d_off1 = d_off0 + B * width
    if B == 1:
        small = True
        for l in range(L):
            if shapes[2 * l] * shapes[2 * l + 1] > SMALL_GEMM:
                small = False
        if small:
            return _train_samples(X, Y, sw, order64, order32, N, theta, grad, shapes, acts, L,
                                  loss, opt, hyper, s1, s2, has_state, t0, work, p_off, a_off,
                                  d_off0, d_off1, loss_sum)
    start = 0
    while start < N:
        n = B if N - start > B else N - start
        # gather the batch (rows in place when there is no order)
        if order64 == NULL and order32 == NULL:
            Xb = X + start * n_in
            Yb = Y + start * k
            swb = NULL if sw == NULL else sw + start
        else:
            Xb = work
            Yb = work + B * n_in
            swb = NULL if sw == NULL else work + B * (n_in + k)
            _gather(X, Y, sw, order64, order32, start, n, n_in, k, Xb, Yb, swb)
        # forward; the last layer keeps its logits for the fused output step
        prev = Xb
        for l in range(L):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            # this layer's dW slot of ``grad`` is free until backward: scratch for W.T
            _x_wt(prev, theta + p_off[l], work + a_off[l], <int>n, <int>fi, <int>o,
                  grad + p_off[l])
            _bias_act(work + a_off[l], theta + p_off[l] + o * fi,
                      IDENTITY if l == L - 1 else <int>acts[l], n, o)
            prev = work + a_off[l]
        dZ = work + d_off0
        value = _output_step(prev, Yb, loss, dZ, swb, n, k)
        # backward, ping-ponging the delta between the two buffers. With plain SGD the first
        # layer's update is folded into its weight-gradient GEMM (W = (1 - lr*l2) W - lr dZ.T X,
        # beta = 1, no dW), done after every other gradient and that layer's dZ are checked.
        fold = _fold_sgd and opt == OPT_SGD
        for l in range(L - 1, -1, -1):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            act = IDENTITY if l == L - 1 else <int>acts[l]
            _delta_db(dZ, work + a_off[l], act, grad + p_off[l] + o * fi, n, o)
            prev = Xb if l == 0 else work + a_off[l - 1]
            if l > 0 or not fold:
                _dzt_a(dZ, prev, grad + p_off[l], <int>n, <int>fi, <int>o, <floating>1,
                       <floating>0)
            if l > 0:
                off = d_off1 if (L - l) % 2 == 1 else d_off0
                nxt = work + off
                _dz_w(dZ, theta + p_off[l], nxt, <int>n, <int>fi, <int>o)
                dZ = nxt
        if fold:  # dZ is the first layer's delta, and db its column sums: a NaN or inf in
            # dZ leaves one in db (a sum never turns finite again), so checking db checks dZ
            o = shapes[0]
            fi = shapes[1]
            ok = value - value == 0.0 and _all_finite(grad + o * fi, p_off[L] - o * fi)
        else:
            ok = value - value == 0.0 and _all_finite(grad, p_off[L])
        if not ok:
            break
        if fold:  # the first layer's W, as the folded GEMM; _update_model does the rest
            _dzt_a(dZ, Xb, theta, <int>n, <int>shapes[1], <int>shapes[0], -lr, 1 - lr * l2)
        _update_model(opt, hyper, theta, grad, s1, s2, has_state, shapes, L,
                      <double>(t0 + done + 1), fold)
        total += value * n
        done += 1
        start += B
    loss_sum[0] = total
    return done
