"""cuda train_epoch against the reference epoch: every optimiser, loss and dtype, and divergence."""

import numpy as np
import pytest
from contract_cases import targets

from fastnn.kernels import codes as C
from fastnn.kernels.layout import param_size, workspace_size

DTYPES = [np.float32, np.float64]
OPTS = [C.OPT_SGD, C.OPT_MOMENTUM, C.OPT_NESTEROV, C.OPT_ADAM]
LOSSES = sorted(C.LOSSES.values())
HIDDEN = [C.RELU, C.SIGMOID, C.TANH, C.SOFTPLUS, C.IDENTITY]


def _problem(rng, dtype, sizes, loss, N, weighted):
    shapes = np.array([(o, i) for i, o in zip(sizes[:-1], sizes[1:])], np.int64)
    X = rng.standard_normal((N, sizes[0])).astype(dtype)
    Y = targets(rng, loss, N, sizes[-1], dtype)
    sw = rng.uniform(0.5, 1.5, N).astype(dtype) if weighted else None
    theta = (0.5 * rng.standard_normal(param_size(shapes))).astype(dtype)
    return X, Y, sw, shapes, theta


def _hyper(opt):
    h = np.zeros(C.N_HYPER)
    h[C.H_LR] = 0.01 if opt == C.OPT_ADAM else 0.1
    h[C.H_L2], h[C.H_MOMENTUM] = 0.01, 0.9
    h[C.H_BETA1], h[C.H_BETA2], h[C.H_EPS] = 0.9, 0.999, 1e-8
    return h


def _run_both(K, R, X, Y, sw, order, shapes, acts, loss, B, opt, hyper, theta, t0=0):
    dtype = theta.dtype
    P = theta.size
    ns = 0 if opt == C.OPT_SGD else P
    s2n = P if opt == C.OPT_ADAM else 0
    ws = workspace_size(shapes, B)
    ref = dict(theta=theta.copy(), grad=np.zeros(P, dtype), s1=np.zeros(ns, dtype),
               s2=np.zeros(s2n, dtype))
    want = R.train_epoch(X, Y, sw, order, ref["theta"], ref["grad"], shapes, acts, loss, B, opt,
                         hyper, ref["s1"], ref["s2"], t0, np.zeros(ws, dtype))
    dev = {k: K.to_device(v) for k, v in ref.items()}
    dev["theta"] = K.to_device(theta)
    dev["grad"] = K.device_zeros(P, dtype)
    dev["s1"], dev["s2"] = K.device_zeros(ns, dtype), K.device_zeros(s2n, dtype)
    got = K.train_epoch(K.to_device(X), K.to_device(Y), None if sw is None else K.to_device(sw),
                        order, dev["theta"], dev["grad"], shapes, acts, loss, B, opt, hyper,
                        dev["s1"], dev["s2"], t0, K.device_zeros(ws, dtype))
    return want, got, ref, {k: K.to_host(v) for k, v in dev.items()}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("opt", OPTS)
def test_train_epoch_matches_reference(K, R, tol, dtype, loss, opt):
    case = 4 * loss + opt
    rng = np.random.default_rng(case)
    hidden = HIDDEN[case % len(HIDDEN)]
    shuffled, weighted = case % 2 == 0, case % 3 == 0
    X, Y, sw, shapes, theta = _problem(rng, dtype, [4, 5, 3], loss, 7, weighted)
    acts = np.array([hidden, C.LOSS_ACTIVATION[loss]], np.int64)
    order = rng.permutation(7).astype(np.int64) if shuffled else None
    want, got, ref, dev = _run_both(K, R, X, Y, sw, order, shapes, acts, loss, 3, opt,
                                    _hyper(opt), theta, t0=2)
    assert got[1] == want[1] == 3
    assert isinstance(got[0], float) and isinstance(got[1], int)
    np.testing.assert_allclose(got[0], want[0], **tol(dtype))
    for name in ("theta", "grad", "s1", "s2"):
        assert dev[name].dtype == dtype
        np.testing.assert_allclose(dev[name], ref[name], err_msg=name, **tol(dtype))


def test_train_epoch_over_a_subset_of_rows(K, R, tol):
    """``order`` may list fewer rows than X has (fit passes chunks of its permutation)."""
    rng = np.random.default_rng(11)
    X, Y, sw, shapes, theta = _problem(rng, np.float64, [3, 4, 2], C.BCE, 9, True)
    acts = np.array([C.RELU, C.SIGMOID], np.int64)
    order = np.array([8, 2, 5, 0, 7], np.int64)
    want, got, ref, dev = _run_both(K, R, X, Y, sw, order, shapes, acts, C.BCE, 2, C.OPT_SGD,
                                    _hyper(C.OPT_SGD), theta)
    assert got[1] == want[1] == 3
    np.testing.assert_allclose(got[0], want[0], **tol(np.float64))
    np.testing.assert_allclose(dev["theta"], ref["theta"], **tol(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_epoch_deep_and_batch_of_one(K, R, tol, dtype):
    rng = np.random.default_rng(7)
    X, Y, sw, shapes, theta = _problem(rng, dtype, [3, 6, 5, 2], C.CROSS_ENTROPY, 3, False)
    acts = np.array([C.TANH, C.RELU, C.SOFTMAX], np.int64)
    want, got, ref, dev = _run_both(K, R, X, Y, sw, None, shapes, acts, C.CROSS_ENTROPY, 1,
                                    C.OPT_MOMENTUM, _hyper(C.OPT_MOMENTUM), theta)
    assert got[1] == want[1] == 3
    np.testing.assert_allclose(got[0], want[0], **tol(dtype))
    np.testing.assert_allclose(dev["theta"], ref["theta"], **tol(dtype))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
def test_train_epoch_stops_before_a_non_finite_update(K, R, dtype):
    """A batch whose loss is not finite is not applied, and nothing after it runs."""
    rng = np.random.default_rng(3)
    X, Y, sw, shapes, theta = _problem(rng, dtype, [2, 3, 1], C.MSE, 8, False)
    X[4, 0] = np.inf  # third batch of 2
    acts = np.array([C.RELU, C.IDENTITY], np.int64)
    want, got, ref, dev = _run_both(K, R, X, Y, sw, None, shapes, acts, C.MSE, 2, C.OPT_ADAM,
                                    _hyper(C.OPT_ADAM), theta)
    assert want[1] == got[1] == 2
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    np.testing.assert_allclose(dev["theta"], ref["theta"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dev["s1"], ref["s1"], rtol=1e-5, atol=1e-6)


def test_train_epoch_device_variant(K, R, tol):
    """train_epoch_device accumulates into a device state across calls without reading back."""
    rng = np.random.default_rng(5)
    dtype = np.float32
    X, Y, sw, shapes, theta = _problem(rng, dtype, [3, 4, 2], C.BCE, 6, False)
    acts = np.array([C.SIGMOID, C.SIGMOID], np.int64)
    hyper = _hyper(C.OPT_SGD)
    P, ws = theta.size, workspace_size(shapes, 4)
    ref_theta = theta.copy()
    loss_ref, done_ref = 0.0, 0
    for epoch in range(2):
        s, d = R.train_epoch(X, Y, None, None, ref_theta, np.zeros(P, dtype), shapes, acts, C.BCE,
                             4, C.OPT_SGD, hyper, np.zeros(0, dtype), np.zeros(0, dtype),
                             2 * epoch, np.zeros(ws, dtype))
        loss_ref, done_ref = loss_ref + s, done_ref + d
    th, grad, empty, work = (K.to_device(theta), K.device_zeros(P, dtype),
                             K.device_zeros(0, dtype), K.device_zeros(ws, dtype))
    state = K.new_state()
    for epoch in range(2):
        K.train_epoch_device(X, Y, None, None, th, grad, shapes, acts, C.BCE, 4, C.OPT_SGD, hyper,
                             empty, empty, 2 * epoch, work, state)
    h = K.to_host(state)
    assert h[2] == done_ref == 4
    np.testing.assert_allclose(h[1], loss_ref, **tol(dtype))
    np.testing.assert_allclose(K.to_host(th), ref_theta, **tol(dtype))
