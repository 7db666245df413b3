# The kernel contract's def functions (see fastnn.kernels.SPECS). Each reads the raw data
# pointers of its arrays (no buffer or memoryview acquisition, no fused def dispatch, so a call
# costs well under a microsecond) and calls the float or double version of one fused cdef
# function. all_finite and copy_into are in checks.pxi. Included by _cython_cpu.pyx.

cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t


cdef inline void *_data(object a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline bint _is_f32(object a):
    return cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_FLOAT32


cdef inline object _int64(object a):
    """``a`` as a C-contiguous native int64 array: itself when it is one already (the models'
    own are; at batch 32 a conversion costs 2% of a step), else a converted copy."""
    if (cnp.PyArray_Check(a) and cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_INT64
            and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>a)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a)):
        return a
    import numpy as np
    return np.ascontiguousarray(a, dtype=np.int64)


def forward(X, W, b, int act, out):
    """``out[:] = g(X @ W.T + b)``; see ``fastnn.kernels``."""
    cdef cnp.npy_intp *ws = cnp.PyArray_DIMS(<cnp.ndarray>W)
    cdef int n = <int>cnp.PyArray_DIM(<cnp.ndarray>X, 0), fout = <int>ws[0], fin = <int>ws[1]
    cdef void *px = _data(X)
    cdef void *pw = _data(W)
    cdef void *pb = _data(b)
    cdef void *po = _data(out)
    cdef bint f32 = _is_f32(X)
    with nogil:
        if f32:
            _forward[float](<float *>px, <float *>pw, <float *>pb, act, <float *>po, n, fin, fout)
        else:
            _forward[double](<double *>px, <double *>pw, <double *>pb, act, <double *>po, n,
                             fin, fout)


def backward(dZ, A, A_prev, W, int act, dW, db, dA_prev):
    """dZ *= g'(A); dW = dZ.T @ A_prev; db = dZ.sum(0); dA_prev = dZ @ W unless None."""
    cdef cnp.npy_intp *ws = cnp.PyArray_DIMS(<cnp.ndarray>W)
    cdef int n = <int>cnp.PyArray_DIM(<cnp.ndarray>dZ, 0), fout = <int>ws[0], fin = <int>ws[1]
    cdef void *pz = _data(dZ)
    cdef void *pa = _data(A)
    cdef void *pp = _data(A_prev)
    cdef void *pw = _data(W)
    cdef void *pdw = _data(dW)
    cdef void *pdb = _data(db)
    cdef void *pda = NULL if dA_prev is None else _data(dA_prev)
    cdef bint f32 = _is_f32(dZ)
    with nogil:
        if f32:
            _backward[float](<float *>pz, <float *>pa, <float *>pp, <float *>pw, act,
                             <float *>pdw, <float *>pdb, <float *>pda, n, fin, fout)
        else:
            _backward[double](<double *>pz, <double *>pa, <double *>pp, <double *>pw, act,
                              <double *>pdw, <double *>pdb, <double *>pda, n, fin, fout)


def output_step(Z, Y, int loss, dZ, sw):
    """Loss from the logits Z and ``dZ = sw * (g(Z) - Y) / n`` in one pass; returns the loss."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray>Z, 0), k = cnp.PyArray_DIM(<cnp.ndarray>Z, 1)
    cdef void *pz = _data(Z)
    cdef void *py = _data(Y)
    cdef void *pd = _data(dZ)
    cdef void *ps = NULL if sw is None else _data(sw)
    cdef bint f32 = _is_f32(Z)
    cdef double value
    with nogil:
        if f32:
            value = _output_step[float](<float *>pz, <float *>py, loss, <float *>pd,
                                        <float *>ps, n, k)
        else:
            value = _output_step[double](<double *>pz, <double *>py, loss, <double *>pd,
                                         <double *>ps, n, k)
    return value


cdef inline void _step(int kind, p, g, s1, s2, double lr, double mu, double step, double b1,
                       double b2, double eps, double l2):
    """One optimiser pass over the flat array p (s1, s2 are None where the optimiser has no
    such state), in p's precision: the body of sgd_update, momentum_update and adam_update."""
    cdef Py_ssize_t size = cnp.PyArray_SIZE(<cnp.ndarray>p)
    cdef void *pp = _data(p)
    cdef void *pg = _data(g)
    cdef void *p1 = NULL if s1 is None else _data(s1)
    cdef void *p2 = NULL if s2 is None else _data(s2)
    cdef bint f32 = _is_f32(p)
    with nogil:
        if f32:
            _update_all[float](kind, <float *>pp, <float *>pg, <float *>p1, <float *>p2, size,
                               <float>lr, <float>mu, <float>step, <float>b1, <float>b2,
                               <float>eps, <float>l2)
        else:
            _update_all[double](kind, <double *>pp, <double *>pg, <double *>p1, <double *>p2,
                                size, lr, mu, step, b1, b2, eps, l2)


def sgd_update(p, g, double lr, double l2):
    """``p -= lr * (g + l2 * p)``."""
    _step(OPT_SGD, p, g, None, None, lr, 0, 0, 0, 0, 0, l2)


def momentum_update(p, g, v, double lr, double mu, double l2, bint nesterov):
    """``v = mu * v - lr * (g + l2 * p)``; ``p += v`` (or the Nesterov step)."""
    _step(OPT_NESTEROV if nesterov else OPT_MOMENTUM, p, g, v, None, lr, mu, 0, 0, 0, 0, l2)


def adam_update(p, g, m, v, double lr, double beta1, double beta2, double eps, double t,
                double l2):
    """Adam with bias correction at step ``t`` (1-based) on ``g + l2 * p``."""
    _step(OPT_ADAM, p, g, m, v, 0, 0, _adam_step(lr, beta1, beta2, t), beta1, beta2, eps, l2)


def update(theta, grad, s1, s2, shapes, int opt, hyper, double t):
    """One step of optimiser ``opt`` over the whole model: L2 ``hyper[H_L2]`` on the weights
    only, Adam's bias correction at step ``t`` (1-based); see ``fastnn.kernels``."""
    shapes = _int64(shapes)
    cdef Py_ssize_t L = cnp.PyArray_DIM(<cnp.ndarray>shapes, 0)
    cdef int64_t *psh = <int64_t *>_data(shapes)
    cdef double *ph = <double *>_data(hyper)
    cdef void *pt = _data(theta)
    cdef void *pg = _data(grad)
    cdef void *p1 = _data(s1)
    cdef void *p2 = _data(s2)
    cdef bint has_state = cnp.PyArray_SIZE(<cnp.ndarray>s1) > 0, f32 = _is_f32(theta)
    with nogil:
        if f32:
            _update_model[float](opt, ph, <float *>pt, <float *>pg, <float *>p1, <float *>p2,
                                 has_state, psh, L, t, False)
        else:
            _update_model[double](opt, ph, <double *>pt, <double *>pg, <double *>p1,
                                  <double *>p2, has_state, psh, L, t, False)


def train_epoch(X, Y, sw, order, theta, grad, shapes, acts, int loss, Py_ssize_t batch_size,
                int opt, hyper, s1, s2, long long t0, work):
    """One epoch of mini-batch training in compiled code; returns ``(loss_sum, n_done)``."""
    cdef int L = <int>cnp.PyArray_DIM(<cnp.ndarray>shapes, 0)
    cdef Py_ssize_t N = cnp.PyArray_DIM(<cnp.ndarray>(X if order is None else order), 0)
    cdef void *px = _data(X)
    cdef void *py = _data(Y)
    cdef void *ps = NULL if sw is None else _data(sw)
    cdef int64_t *o64 = NULL
    cdef int32_t *o32 = NULL
    cdef void *pt = _data(theta)
    cdef void *pg = _data(grad)
    cdef void *p1 = _data(s1)
    cdef void *p2 = _data(s2)
    cdef void *pw = _data(work)
    cdef int64_t *psh
    cdef int64_t *pac
    cdef double *ph = <double *>_data(hyper)
    cdef bint has_state = cnp.PyArray_SIZE(<cnp.ndarray>s1) > 0, f32 = _is_f32(X)
    cdef double loss_sum = 0.0
    cdef int done
    if L > 63:
        raise ValueError("at most 63 layers")
    shapes = _int64(shapes)  # small int arrays of any integer dtype
    acts = _int64(acts)
    psh = <int64_t *>_data(shapes)
    pac = <int64_t *>_data(acts)
    if order is not None:
        if cnp.PyArray_ITEMSIZE(<cnp.ndarray>order) == 4:
            o32 = <int32_t *>_data(order)
        else:
            o64 = <int64_t *>_data(order)
    with nogil:
        if f32:
            done = _train_epoch[float](<float *>px, <float *>py, <float *>ps, o64, o32, N,
                                       <float *>pt, <float *>pg, psh, pac, L, loss, batch_size,
                                       opt, ph, <float *>p1, <float *>p2, has_state, t0,
                                       <float *>pw, &loss_sum)
        else:
            done = _train_epoch[double](<double *>px, <double *>py, <double *>ps, o64, o32, N,
                                        <double *>pt, <double *>pg, psh, pac, L, loss,
                                        batch_size, opt, ph, <double *>p1, <double *>p2,
                                        has_state, t0, <double *>pw, &loss_sum)
    return loss_sum, done
