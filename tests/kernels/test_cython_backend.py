"""Kernel-level checks of the Cython backend against the NumPy reference (kernels/reference.py).

Every activation x loss x dtype, odd shapes (N=1, in=1), each optimiser through train_epoch, with
``order`` and ``sw`` both None and arrays. Every test runs on each build of the extension this
machine can run: the baseline build, and the AVX2 build both with its register-tiled small
products and with BLAS taking every product.
"""

import itertools

import numpy as np
import pytest

from fastnn.kernels import codes as C
from fastnn.kernels import layout
from fastnn.kernels import reference as ref

cython_cpu = pytest.importorskip("fastnn.kernels.cython_cpu")


class _Build:
    """The extension build under test: attribute lookups go to the module the ``build``
    fixture selected, so the tests below call ``cy.forward`` and so on whatever the build."""

    module = cython_cpu.ext

    def __getattr__(self, name):
        return getattr(type(self).module, name)


cy = _Build()
BUILDS = ["baseline"] + (["avx2-tiles", "avx2-blas"] if cython_cpu.BUILD == "avx2" else [])


@pytest.fixture(autouse=True, params=BUILDS)
def build(request):
    """Select a build for the test (and give it fastnn's BLAS, as cython_cpu does for its own)."""
    import importlib

    from fastnn.kernels import _blas

    name = "_cython_cpu" if request.param == "baseline" else "_cython_cpu_avx2"
    ext = importlib.import_module("fastnn.kernels." + name)
    info = _blas.load()
    ext.set_blas(info["sgemm"], info["dgemm"])
    ext.set_num_threads(cython_cpu.ext.get_num_threads())
    ext.set_small_tiles(request.param == "avx2-tiles")
    _Build.module = ext
    yield request.param
    ext.set_small_tiles(True)
    _Build.module = cython_cpu.ext


def test_tiles_are_on_exactly_in_the_avx2_build(build):
    assert cy.set_small_tiles(True) == (build != "baseline")
    cy.set_small_tiles(build == "avx2-tiles")

DTYPES = [np.float32, np.float64]
HIDDEN_ACTS = [C.IDENTITY, C.SIGMOID, C.TANH, C.RELU, C.SOFTPLUS]
FORWARD_ACTS = HIDDEN_ACTS + [C.STEP, C.SOFTMAX]
LOSSES = [C.MSE, C.BCE, C.CROSS_ENTROPY]
# (n, in, out): N=1, in=1, odd sizes, and one big enough to take the threaded paths
# (300, 130, 7) is a thin product (one side <= 16) that the AVX2 build tiles despite its size
SHAPES = [(1, 1, 1), (1, 5, 3), (7, 1, 4), (13, 17, 11), (33, 9, 1), (300, 130, 7),
          (300, 130, 257)]


def tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def rng_arrays(seed, dtype, *shapes, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(scale * rng.standard_normal(s)).astype(dtype) for s in shapes]


@pytest.fixture(params=[True, False], ids=["fold", "nofold"])
def fold(request):
    """Run with plain SGD's first-layer update folded into its GEMM, and without."""
    cy.set_fold_sgd(request.param)
    yield request.param
    cy.set_fold_sgd(True)


def test_codes_match_table():
    for name, value in cy.CODES.items():
        assert getattr(C, name) == value, name
    # generated from the table by setup.py: every integer code is there, none is left out
    table = {n for n, v in vars(C).items() if n.isupper() and type(v) is int}
    assert set(cy.CODES) == table


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", FORWARD_ACTS)
@pytest.mark.parametrize("n,fin,fout", SHAPES)
def test_forward(dtype, act, n, fin, fout):
    X, W, b = rng_arrays(n * 31 + fin, dtype, (n, fin), (fout, fin), (fout,))
    out = np.full((n, fout), np.nan, dtype)
    want = np.empty_like(out)
    cy.forward(X, W, b, act, out)
    ref.forward(X, W, b, act, want)
    if act == C.STEP:  # a threshold: compare away from z == 0
        z = X.astype(np.float64) @ W.T.astype(np.float64) + b
        far = np.abs(z) > 1e-3
        np.testing.assert_array_equal(out[far], want[far])
    else:
        np.testing.assert_allclose(out, want, **tol(dtype))
    if act == C.SOFTMAX:
        np.testing.assert_allclose(out.sum(1), 1, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", HIDDEN_ACTS)
@pytest.mark.parametrize("n,fin,fout", SHAPES)
@pytest.mark.parametrize("with_prev", [True, False])
def test_backward(dtype, act, n, fin, fout, with_prev):
    X, W, b, dA = rng_arrays(n + fin * 7 + fout, dtype, (n, fin), (fout, fin), (fout,), (n, fout))
    A = ref.activate(X @ W.T + b, act).astype(dtype)
    outs = {}
    for name, mod in (("cy", cy), ("ref", ref)):
        dZ = dA.copy()
        dW = np.full((fout, fin), np.nan, dtype)
        db = np.full(fout, np.nan, dtype)
        dX = np.full((n, fin), np.nan, dtype) if with_prev else None
        mod.backward(dZ, A, X, W, act, dW, db, dX)
        outs[name] = (dZ, dW, db, dX)
    for got, want in zip(outs["cy"], outs["ref"]):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("n,k", [(1, 1), (1, 4), (5, 1), (17, 3), (200, 10), (64, 600)])
@pytest.mark.parametrize("weighted", [False, True])
def test_output_step(dtype, loss, n, k, weighted):
    rng = np.random.default_rng(n * 100 + k)
    Z = (3 * rng.standard_normal((n, k))).astype(dtype)
    if loss == C.CROSS_ENTROPY:
        Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    elif loss == C.BCE:
        Y = rng.integers(0, 2, (n, k)).astype(dtype)
    else:
        Y = rng.standard_normal((n, k)).astype(dtype)
    sw = rng.uniform(0, 2, n).astype(dtype) if weighted else None
    dZ, dZr = np.full_like(Z, np.nan), np.full_like(Z, np.nan)
    got = cy.output_step(Z, Y, loss, dZ, sw)
    want = ref.output_step(Z, Y, loss, dZr, sw)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, want, **tol(dtype))
    np.testing.assert_allclose(dZ, dZr, **tol(dtype))


@pytest.mark.parametrize("loss", LOSSES)
def test_output_step_extreme_logits_stay_finite(loss):
    Z = np.array([[1e4, -1e4, 0.0], [-3e4, 2e4, 5.0]], np.float32)
    Y = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    dZ = np.empty_like(Z)
    value = cy.output_step(Z, Y, loss, dZ, None)
    assert np.isfinite(value) and np.isfinite(dZ).all()
    dZr = np.empty_like(Z)
    np.testing.assert_allclose(value, ref.output_step(Z, Y, loss, dZr, None), rtol=1e-5)


def test_float32_tanh_is_accurate_near_zero_and_saturates():
    z = np.concatenate([np.linspace(-0.2, 0.2, 20001), [0.0625, -0.0625, 9.0, -30.0, np.inf,
                                                         -np.inf]]).astype(np.float32)
    out = np.empty((z.size, 1), np.float32)
    cy.forward(z[:, None], np.ones((1, 1), np.float32), np.zeros(1, np.float32), C.TANH, out)
    want = np.tanh(z.astype(np.float64))
    rel = np.abs(out[:, 0] - want) / np.maximum(np.abs(want), 1e-30)
    assert rel.max() < 1e-6
    z = np.array([[np.nan]], np.float32)
    cy.forward(z, np.ones((1, 1), np.float32), np.zeros(1, np.float32), C.TANH, out[:1])
    assert np.isnan(out[0, 0])


def test_cross_entropy_logit_gap_beyond_float64_range():
    top = float(np.finfo(np.float64).max) * 0.9
    Z = np.array([[top, -top]])
    dZ = np.empty_like(Z)
    assert cy.output_step(Z, np.array([[1.0, 0.0]]), C.CROSS_ENTROPY, dZ, None) == 0.0
    np.testing.assert_array_equal(dZ, [[0.0, 0.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 7, 40000])
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_updates(dtype, size, l2):
    p, g, s1, s2 = rng_arrays(size, dtype, (size,), (size,), (size,), (size,))
    s2 = np.abs(s2)
    # sgd
    a, b_ = p.copy(), p.copy()
    cy.sgd_update(a, g, 0.1, l2)
    ref.sgd_update(b_, g, dtype(0.1), dtype(l2))
    np.testing.assert_allclose(a, b_, **tol(dtype))
    # momentum and nesterov
    for nesterov in (False, True):
        a, b_, va, vb = p.copy(), p.copy(), s1.copy(), s1.copy()
        cy.momentum_update(a, g, va, 0.1, 0.9, l2, nesterov)
        ref.momentum_update(b_, g, vb, dtype(0.1), dtype(0.9), dtype(l2), nesterov)
        np.testing.assert_allclose(a, b_, **tol(dtype))
        np.testing.assert_allclose(va, vb, **tol(dtype))
    # adam at step 3
    a, b_, ma, mb, va, vb = p.copy(), p.copy(), s1.copy(), s1.copy(), s2.copy(), s2.copy()
    cy.adam_update(a, g, ma, va, 0.01, 0.9, 0.999, 1e-8, 3, l2)
    ref.adam_update(b_, g, mb, vb, 0.01, 0.9, 0.999, 1e-8, 3, dtype(l2))
    for x, y in ((a, b_), (ma, mb), (va, vb)):
        np.testing.assert_allclose(x, y, **tol(dtype))
    assert not np.array_equal(a, p)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", [C.OPT_SGD, C.OPT_MOMENTUM, C.OPT_NESTEROV, C.OPT_ADAM])
@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("sizes", [[3, 1], [5, 9, 7, 3], [300, 257, 2]])
def test_update_whole_model(dtype, opt, l2, sizes):
    """The contract's update: one call over the model, as reference's; L2 on weights only."""
    shapes = np.array([(o, i) for i, o in zip(sizes[:-1], sizes[1:])], np.int64)
    P = layout.param_size(shapes)
    theta, grad, s1, s2 = rng_arrays(opt + 11, dtype, (P,), (P,), (P,), (P,))
    s2 = np.abs(s2)
    if opt == C.OPT_SGD:
        s1 = s2 = np.empty(0, dtype)
    hyper = HYPER.copy()
    hyper[C.H_L2] = l2
    got = [a.copy() for a in (theta, s1, s2)]
    want = [a.copy() for a in (theta, s1, s2)]
    assert cy.update(got[0], grad, got[1], got[2], shapes, opt, hyper, 3) is None
    ref.update(want[0], grad, want[1], want[2], shapes, opt, hyper, 3)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, **tol(dtype))
    assert not np.array_equal(got[0], theta)
    if opt == C.OPT_SGD:  # the biases take no L2: theta - lr * grad there, to an ulp (FMA)
        rtol = 1e-6 if dtype == np.float32 else 1e-14
        for (_, b), (_, b0), (_, gb) in zip(layout.param_views(got[0], shapes),
                                            layout.param_views(theta, shapes),
                                            layout.param_views(grad, shapes)):
            np.testing.assert_allclose(b, b0 - dtype(hyper[C.H_LR]) * gb, rtol=rtol)


def test_update_is_the_epoch_loops_update():
    """train_epoch's update and the contract's update are one code: a batch through the loop
    equals its gradients through backward plus one update call, to the bit."""
    dtype = np.float64
    sizes, acts, loss = [4, 6, 3], np.array([C.TANH, C.SOFTMAX]), C.CROSS_ENTROPY
    X, Y, shapes, theta = make_problem(8, dtype, sizes, loss, 5)
    for opt in OPTS:
        for B in (1, 5):
            cy.set_fold_sgd(False)
            try:
                got = run_epoch(cy, X[:B], Y[:B], None, None, theta, shapes, acts, loss, B, opt,
                                HYPER, epochs=1)
            finally:
                cy.set_fold_sgd(True)
            grad = np.zeros_like(theta)
            work = np.zeros(layout.workspace_size(shapes, B), dtype)
            # gradients without an update: lr 0 leaves theta as it was
            hyper0 = HYPER.copy()
            hyper0[C.H_LR] = 0.0
            probe = theta.copy()
            cy.set_fold_sgd(False)
            try:
                cy.train_epoch(X[:B], Y[:B], None, None, probe, grad, shapes, acts, loss, B,
                               C.OPT_SGD, hyper0, np.empty(0, dtype), np.empty(0, dtype), 0,
                               work)
            finally:
                cy.set_fold_sgd(True)
            want = theta.copy()
            state = opt != C.OPT_SGD
            s1 = np.zeros_like(theta) if state else np.empty(0, dtype)
            s2 = np.zeros_like(theta) if state else np.empty(0, dtype)
            cy.update(want, grad, s1, s2, shapes, opt, HYPER, 1)
            np.testing.assert_array_equal(got[0], want)
            np.testing.assert_array_equal(got[1], s1)
            np.testing.assert_array_equal(got[2], s2)


def make_problem(seed, dtype, sizes, loss, N):
    rng = np.random.default_rng(seed)
    shapes = np.array([(o, i) for i, o in zip(sizes[:-1], sizes[1:])], np.int64)
    theta = np.concatenate([
        np.concatenate([(rng.standard_normal(o * i) / np.sqrt(i)), 0.1 * rng.standard_normal(o)])
        for o, i in shapes
    ]).astype(dtype)
    X = rng.standard_normal((N, sizes[0])).astype(dtype)
    k = sizes[-1]
    if loss == C.CROSS_ENTROPY:
        Y = np.eye(k, dtype=dtype)[rng.integers(0, k, N)]
    elif loss == C.BCE:
        Y = rng.integers(0, 2, (N, k)).astype(dtype)
    else:
        Y = rng.standard_normal((N, k)).astype(dtype)
    return X, Y, shapes, theta


HYPER = np.array([0.05, 1e-3, 0.9, 0.9, 0.999, 1e-8])
OPTS = [C.OPT_SGD, C.OPT_MOMENTUM, C.OPT_NESTEROV, C.OPT_ADAM]


def run_epoch(mod, X, Y, sw, order, theta, shapes, acts, loss, B, opt, hyper, t0=0, epochs=2):
    theta = theta.copy()
    grad = np.zeros_like(theta)
    state = opt != C.OPT_SGD
    s1 = np.zeros_like(theta) if state else np.empty(0, theta.dtype)
    s2 = np.zeros_like(theta) if state else np.empty(0, theta.dtype)
    work = np.zeros(layout.workspace_size(shapes, B), theta.dtype)
    results = []
    for e in range(epochs):
        results.append(mod.train_epoch(X, Y, sw, order, theta, grad, shapes, acts, loss, B, opt,
                                       hyper, s1, s2, t0 + sum(r[1] for r in results), work))
    return theta, s1, s2, results


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", OPTS)
@pytest.mark.parametrize("use_order,use_sw", [(False, False), (True, False), (False, True),
                                              (True, True)])
def test_train_epoch_matches_reference(dtype, opt, use_order, use_sw, fold):
    sizes, acts, loss = [5, 9, 7, 3], np.array([C.TANH, C.RELU, C.SOFTMAX]), C.CROSS_ENTROPY
    X, Y, shapes, theta = make_problem(1, dtype, sizes, loss, 23)
    rng = np.random.default_rng(2)
    order = rng.permutation(23).astype(np.int64) if use_order else None
    sw = rng.uniform(0.5, 1.5, 23).astype(dtype) if use_sw else None
    got = run_epoch(cy, X, Y, sw, order, theta, shapes, acts, loss, 4, opt, HYPER)
    want = run_epoch(ref, X, Y, sw, order, theta, shapes, acts, loss, 4, opt, HYPER)
    for r_got, r_want in zip(got[3], want[3]):
        assert r_got[1] == r_want[1] == 6
        np.testing.assert_allclose(r_got[0], r_want[0], **tol(dtype))
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_allclose(a, b, **tol(dtype))
    assert not np.allclose(got[0], theta)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act,loss", list(itertools.product(HIDDEN_ACTS, LOSSES)))
def test_train_epoch_every_activation_and_loss(dtype, act, loss, fold):
    sizes = [1, 6, 2] if loss != C.CROSS_ENTROPY else [3, 6, 4]
    acts = np.array([act, C.LOSS_ACTIVATION[loss]])
    X, Y, shapes, theta = make_problem(3, dtype, sizes, loss, 10)
    got = run_epoch(cy, X, Y, None, None, theta, shapes, acts, loss, 3, C.OPT_SGD, HYPER)
    want = run_epoch(ref, X, Y, None, None, theta, shapes, acts, loss, 3, C.OPT_SGD, HYPER)
    np.testing.assert_allclose(got[0], want[0], **tol(dtype))
    np.testing.assert_allclose(got[3][-1][0], want[3][-1][0], **tol(dtype))


def test_train_epoch_subset_order_and_batch_of_one():
    dtype = np.float64
    sizes, acts, loss = [4, 5, 1], np.array([C.SIGMOID, C.IDENTITY]), C.MSE
    X, Y, shapes, theta = make_problem(4, dtype, sizes, loss, 12)
    order = np.array([3, 1, 7], np.int64)  # a subset of the rows
    got = run_epoch(cy, X, Y, None, order, theta, shapes, acts, loss, 1, C.OPT_SGD, HYPER)
    # the same as training on exactly those rows, in that order
    want = run_epoch(ref, X[order], Y[order], None, None, theta, shapes, acts, loss, 1, C.OPT_SGD,
                     HYPER)
    assert got[3][0][1] == want[3][0][1] == 3
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10)


@pytest.mark.parametrize("opt", [C.OPT_SGD, C.OPT_ADAM])
def test_train_epoch_larger_network_threaded_paths(opt, fold):
    dtype = np.float32
    sizes, acts, loss = [130, 257, 70, 10], np.array([C.RELU, C.SIGMOID, C.SOFTMAX]), C.CROSS_ENTROPY
    X, Y, shapes, theta = make_problem(5, dtype, sizes, loss, 300)
    got = run_epoch(cy, X, Y, None, None, theta, shapes, acts, loss, 256, opt, HYPER)
    want = run_epoch(ref, X, Y, None, None, theta, shapes, acts, loss, 256, opt, HYPER)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", OPTS)
def test_train_epoch_stops_before_a_nonfinite_update(dtype, opt, fold):
    sizes, acts, loss = [3, 4, 2], np.array([C.TANH, C.IDENTITY]), C.MSE
    X, Y, shapes, theta = make_problem(6, dtype, sizes, loss, 9)
    Y[5, 0] = np.inf  # batch 2 of 3 (rows 4..7) diverges
    theta0 = theta.copy()
    theta1, s1, s2, results = run_epoch(cy, X, Y, None, None, theta, shapes, acts, loss, 4, opt,
                                        HYPER, epochs=1)
    assert results[0][1] == 1
    # exactly one update was applied: the same as training on the first batch only
    want = run_epoch(ref, X[:4], Y[:4], None, None, theta0, shapes, acts, loss, 4, opt, HYPER,
                     epochs=1)
    np.testing.assert_allclose(theta1, want[0], **tol(dtype))
    assert np.isfinite(theta1).all()


def test_fold_stops_when_only_the_first_layer_delta_overflows():
    """Only layer 0's dZ is not finite: with folding, no layer may be updated."""
    dtype = np.float32
    shapes = np.array([(3, 2), (1, 3)], np.int64)
    acts = np.array([C.IDENTITY, C.IDENTITY])
    # layer 1 W is huge, so dA_0 = dZ_1 @ W_1 overflows float32 while the loss stays finite
    theta = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0, 0, 0, 3e38, 3e38, 3e38, 0], dtype)
    theta[:6] = 0.0
    X = np.array([[1.0, 1.0]], dtype)
    Y = np.array([[3.0]], dtype)  # loss 4.5, dZ_1 = -3, dA_0 = -9e38 -> -inf
    for on in (True, False):
        cy.set_fold_sgd(on)
        try:
            t = theta.copy()
            res = cy.train_epoch(X, Y, None, None, t, np.zeros_like(t), shapes, acts, C.MSE, 1,
                                 C.OPT_SGD, HYPER, np.empty(0, dtype), np.empty(0, dtype), 0,
                                 np.zeros(layout.workspace_size(shapes, 1), dtype))
        finally:
            cy.set_fold_sgd(True)
        assert res[1] == 0
        np.testing.assert_array_equal(t, theta)


def test_order_int32_is_accepted():
    dtype = np.float64
    sizes, acts, loss = [4, 5, 3], np.array([C.RELU, C.SOFTMAX]), C.CROSS_ENTROPY
    X, Y, shapes, theta = make_problem(7, dtype, sizes, loss, 10)
    o64 = np.random.default_rng(0).permutation(10)
    a = run_epoch(cy, X, Y, None, o64.astype(np.int64), theta, shapes, acts, loss, 3, 0, HYPER)
    b = run_epoch(cy, X, Y, None, o64.astype(np.int32), theta, shapes, acts, loss, 3, 0, HYPER)
    np.testing.assert_array_equal(a[0], b[0])


def test_shapes_and_acts_of_any_integer_layout_are_accepted():
    dtype = np.float64
    sizes, acts, loss = [4, 5, 3], np.array([C.RELU, C.SOFTMAX], np.int64), C.CROSS_ENTROPY
    X, Y, shapes, theta = make_problem(7, dtype, sizes, loss, 10)
    shapes = np.asarray(shapes, np.int64)
    want = run_epoch(cy, X, Y, None, None, theta, shapes, acts, loss, 3, 0, HYPER)
    for sh, ac in [(shapes.astype(np.int32), acts.astype(np.int32)),
                   (np.asfortranarray(shapes), acts.astype(np.uint8)),
                   (shapes.astype(">i8"), acts.astype(">i8"))]:
        got = run_epoch(cy, X, Y, None, None, theta, sh, ac, loss, 3, 0, HYPER)
        np.testing.assert_array_equal(got[0], want[0])


def test_contract_is_complete():
    from fastnn.kernels import CONTRACT

    for name in CONTRACT:
        assert callable(getattr(cy, name)), name

