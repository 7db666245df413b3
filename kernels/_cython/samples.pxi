# train_samples: the epoch at batch size 1 on small layers, as plain loops on flat offsets.
# Included by _cython_cpu.pyx.

from cython cimport floating
from libc.math cimport exp, fabs
from libc.stdint cimport int32_t, int64_t


cdef int _train_samples(floating *X, floating *Y, floating *sw, int64_t *order64,
                        int32_t *order32, Py_ssize_t N, floating *theta, floating *grad,
                        int64_t *shapes, int64_t *acts, int L, int loss, int opt, double *hyper,
                        floating *s1, floating *s2, bint has_state, int64_t t0, floating *work,
                        Py_ssize_t *p_off, Py_ssize_t *a_off, Py_ssize_t d_off0,
                        Py_ssize_t d_off1, double *loss_sum) noexcept nogil:
    """``_train_epoch`` for batch size 1 on small layers: plain loops on flat offsets, no BLAS
    and no calls per layer, the features read in place and plain SGD as one pass over theta.
    A step of a 2-2-1 sigmoid/BCE network costs ~100 ns here, ~165 ns through the batch path."""
    cdef Py_ssize_t n_in = shapes[1], k = shapes[2 * (L - 1)]
    cdef Py_ssize_t i, l, j, p, p4, r, o, fi, cur, nxt
    cdef floating *x
    cdef floating *y
    cdef floating *inp
    cdef floating *a
    cdef floating *wr
    cdef floating *dz
    cdef floating *dn
    cdef floating *gr
    cdef floating sacc, s0, s1_, s2_, s3, dzj, g, chk
    cdef double value, wt, zj, yj, e, q, total = 0.0
    # BCE's log1p(e) terms, evaluated 64 at a time (always finite, so the check needs none of
    # them): one at a time, their long dependent chain held up every step (~15 ns)
    cdef double ebuf[64]
    cdef double wbuf[64]
    cdef int ne = 0, ne_new = 0
    cdef bint defer = loss == BCE and k <= 32
    cdef int done = 0, act
    for i in range(N):
        r = i if order64 == NULL and order32 == NULL else (
            order64[i] if order64 != NULL else order32[i])
        x = X + r * n_in
        y = Y + r * k
        wt = 1.0 if sw == NULL else sw[r]
        # forward: the pre-activations, then g; the output layer keeps its logits
        inp = x
        for l in range(L):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            a = work + a_off[l]
            p4 = fi & ~3
            for j in range(o):
                wr = theta + p_off[l] + j * fi
                s0 = s1_ = s2_ = s3 = 0
                for p in range(0, p4, 4):
                    s0 = s0 + wr[p] * inp[p]
                    s1_ = s1_ + wr[p + 1] * inp[p + 1]
                    s2_ = s2_ + wr[p + 2] * inp[p + 2]
                    s3 = s3 + wr[p + 3] * inp[p + 3]
                for p in range(p4, fi):
                    s0 = s0 + wr[p] * inp[p]
                a[j] = theta[p_off[l] + o * fi + j] + ((s0 + s1_) + (s2_ + s3))
            if l < L - 1:
                act = <int>acts[l]
                for j in range(o):
                    a[j] = _act1(a[j], act)
            inp = a
        # fused output step (in double, as _row_output) into the output layer's delta buffer
        dz = work + d_off0
        value = 0.0
        if loss == BCE:
            if defer and ne + k > 64:
                total += _sum_log1p(ebuf, wbuf, ne)
                ne = 0
            ne_new = ne
            for j in range(k):
                zj = inp[j]
                yj = y[j]
                e = exp(-fabs(zj))
                q = 1.0 / (1.0 + e)
                if defer:
                    ebuf[ne_new] = e
                    wbuf[ne_new] = wt
                    ne_new += 1
                    value += _pick(zj > 0, zj, 0.0) - yj * zj
                else:
                    value += _pick(zj > 0, zj, 0.0) + _log1p_unit(e) - yj * zj
                dz[j] = <floating>((_pick(zj >= 0, q, e * q) - yj) * wt)

        elif loss == CROSS_ENTROPY:
            value = _row_output(inp, y, loss, dz, wt, k)
        else:
            for j in range(k):
                zj = <double>inp[j] - y[j]
                value += 0.5 * zj * zj
                dz[j] = <floating>(zj * wt)
        value *= wt
        # backward: db = dz, dW = dz x in, then the previous layer's delta, summed in a register;
        # chk stays 0 unless a gradient entry is inf or NaN
        chk = 0
        cur = d_off0
        nxt = d_off1
        for l in range(L - 1, -1, -1):
            o = shapes[2 * l]
            fi = shapes[2 * l + 1]
            dz = work + cur
            inp = x if l == 0 else work + a_off[l - 1]
            gr = grad + p_off[l]
            for j in range(o):
                dzj = dz[j]
                gr[o * fi + j] = dzj
                chk = chk + dzj * 0
                for p in range(fi):
                    g = dzj * inp[p]
                    gr[j * fi + p] = g
                    chk = chk + g * 0
            if l > 0:
                act = <int>acts[l - 1]
                dn = work + nxt
                wr = theta + p_off[l]
                for p in range(fi):
                    sacc = 0
                    for j in range(o):
                        sacc = sacc + dz[j] * wr[j * fi + p]
                    dn[p] = _delta1(sacc, inp[p], act)
                cur, nxt = nxt, cur
        if not (value - value == 0.0 and chk == 0):
            break
        _update_model(opt, hyper, theta, grad, s1, s2, has_state, shapes, L,
                      <double>(t0 + done + 1), False)
        total += value
        ne = ne_new
        done += 1
    if defer:
        total += _sum_log1p(ebuf, wbuf, ne)
    loss_sum[0] = total
    return done
