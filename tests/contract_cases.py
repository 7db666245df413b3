"""The kernel contract as cases: every contract function of ``fastnn.kernels.SPECS`` on small
inputs, and one runner that checks a backend against ``reference`` by the spec.

Shared by tests/kernels/test_contract.py (numpy, numba, cython, in-process) and
tests/cuda/test_contract.py (cuda in the simulator, with host, device and mixed arrays).
``run`` checks what the spec says: the arguments in ``writes`` hold the reference's values
(except the ``undefined`` ones), every other array argument is left untouched, and the return
value matches.
"""

from dataclasses import dataclass, field

import numpy as np

from fastnn.kernels import SPECS
from fastnn.kernels import codes as C
from fastnn.kernels import reference as R
from fastnn.kernels.layout import param_size, workspace_size

DTYPES = (np.float32, np.float64)
ACTS = sorted(C.ACTIVATIONS.values())
TRAINABLE = [a for a in ACTS if a not in (C.STEP, C.SOFTMAX)]  # backward's act codes
LOSSES = sorted(C.LOSSES.values())
OPTS = {"sgd": C.OPT_SGD, "momentum": C.OPT_MOMENTUM, "nesterov": C.OPT_NESTEROV,
        "adam": C.OPT_ADAM}


@dataclass
class Case:
    """One call of contract function ``func``: ``args`` by parameter name, in signature order.

    ``alias`` pairs of names are passed as one array (the spec's ``aliases``); ``undefined``
    names are written arguments whose values the spec leaves undefined; ``heavy`` cases are big
    enough to take the CPU's BLAS paths (too slow for the CUDA simulator); ``slack`` scales the
    dtype tolerance (many steps).
    """

    func: str
    id: str
    args: dict
    alias: tuple = ()
    undefined: tuple = ()
    heavy: bool = False
    slack: float = 1.0
    dtype: type = field(default=np.float64)

    def __str__(self):
        return f"{self.func}-{self.id}"


def params(func):
    """The parameter names of contract function ``func``, from its spec's signature."""
    sig = SPECS[func].signature
    return tuple(p.strip() for p in sig[sig.index("(") + 1:sig.index(")")].split(","))


def tol(dtype, slack=1.0):
    if np.dtype(dtype) == np.float32:
        return dict(rtol=2e-4 * slack, atol=2e-5 * slack)
    return dict(rtol=1e-9 * slack, atol=1e-11 * slack)


def _name(dtype):
    return np.dtype(dtype).name


def targets(rng, loss, n, k, dtype):
    """Dense (n, k) targets of the form loss code ``loss`` takes (one-hot for cross-entropy)."""
    if loss == C.CROSS_ENTROPY:
        return np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    if loss == C.BCE:
        return rng.integers(0, 2, (n, k)).astype(dtype)
    return rng.normal(size=(n, k)).astype(dtype)


def _shapes(act):
    """(n, in, out) of the layer cases: one sample, a small odd layer, one that spans several
    of the CUDA simulator's 8 x 8 GEMM tiles (relu and softmax), and one big enough for the
    CPU backends' BLAS path."""
    extra = ((11, 9, 10),) if act in (C.RELU, C.SOFTMAX) else ()
    return ((1, 1, 1), (6, 3, 5)) + extra + ((40, 30, 20),)


def _layer_cases(rng):
    out = []
    for dtype in DTYPES:
        for act in ACTS:
            for n, fi, fo in _shapes(act):
                X = rng.normal(size=(n, fi)).astype(dtype)
                W = (rng.normal(size=(fo, fi)) / np.sqrt(fi)).astype(dtype)
                b = rng.normal(size=fo).astype(dtype)
                args = dict(X=X, W=W, b=b, act=act, out=np.full((n, fo), np.nan, dtype))
                out.append(Case("forward", f"{C.ACTIVATION_NAMES[act]}-{n}x{fi}x{fo}-"
                                f"{_name(dtype)}", args, heavy=n * fi * fo > 1 << 14,
                                dtype=dtype))
        for act in TRAINABLE:
            for n, fi, fo in _shapes(act):
                for prev in ("fresh", "aliased", "none"):
                    if n == 1 and prev != "fresh":
                        continue
                    A_prev = rng.normal(size=(n, fi)).astype(dtype)
                    W = (rng.normal(size=(fo, fi)) / np.sqrt(fi)).astype(dtype)
                    A = np.empty((n, fo), dtype)
                    R.forward(A_prev, W, rng.normal(size=fo).astype(dtype), act, A)
                    args = dict(dZ=rng.normal(size=(n, fo)).astype(dtype), A=A, A_prev=A_prev,
                                W=W, act=act, dW=np.full((fo, fi), np.nan, dtype),
                                db=np.full(fo, np.nan, dtype),
                                dA_prev=None if prev == "none" else np.full((n, fi), np.nan, dtype))
                    out.append(Case("backward", f"{C.ACTIVATION_NAMES[act]}-{n}x{fi}x{fo}-{prev}-"
                                    f"{_name(dtype)}", args,
                                    alias=(("dA_prev", "A_prev"),) if prev == "aliased" else (),
                                    heavy=n * fi * fo > 1 << 14, dtype=dtype))
    return out


def _output_cases(rng):
    out = []
    for dtype in DTYPES:
        for loss in LOSSES:
            for n, k in ((1, 1), (5, 3)):
                for weighted in (False, True):
                    args = dict(Z=(3 * rng.normal(size=(n, k))).astype(dtype),
                                Y=targets(rng, loss, n, k, dtype), loss=loss,
                                dZ=np.full((n, k), np.nan, dtype),
                                sw=rng.uniform(0.1, 2, n).astype(dtype) if weighted else None)
                    out.append(Case("output_step", f"{C.LOSS_NAMES[loss]}-{n}x{k}-"
                                    f"{'sw' if weighted else 'nosw'}-{_name(dtype)}", args,
                                    dtype=dtype))
    return out


def _update_cases(rng):
    out = []
    shapes = np.array([[4, 3], [2, 4]], np.int64)
    P = param_size(shapes)
    for dtype in DTYPES:
        def vec(size, scale=1.0):
            return (scale * rng.normal(size=size)).astype(dtype)

        for l2 in (0.0, 0.1):
            tag = f"l2={l2}-{_name(dtype)}"
            out.append(Case("sgd_update", tag, dict(p=vec(23), g=vec(23), lr=0.1, l2=l2),
                            dtype=dtype))
            for nest in (False, True):
                out.append(Case("momentum_update", f"{'nesterov' if nest else 'momentum'}-{tag}",
                                dict(p=vec(23), g=vec(23), v=vec(23, 0.1), lr=0.1, mu=0.9, l2=l2,
                                     nesterov=nest), dtype=dtype))
            out.append(Case("adam_update", tag,
                            dict(p=vec(23), g=vec(23), m=vec(23, 0.1), v=np.abs(vec(23, 0.1)),
                                 lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, t=3, l2=l2),
                            dtype=dtype))
            for name, opt in OPTS.items():  # a whole model: L2 on its weights, not its biases
                n1 = 0 if opt == C.OPT_SGD else P
                n2 = P if opt == C.OPT_ADAM else 0
                out.append(Case("update", f"{name}-{tag}",
                                dict(theta=vec(P), grad=vec(P), s1=vec(n1, 0.1),
                                     s2=np.abs(vec(n2, 0.1)), shapes=shapes, opt=opt,
                                     hyper=_hyper(0.05, l2), t=4), dtype=dtype))
    return out


def _hyper(lr, l2, mu=0.9):
    h = np.zeros(C.N_HYPER)
    h[C.H_LR], h[C.H_L2], h[C.H_MOMENTUM] = lr, l2, mu
    h[C.H_BETA1], h[C.H_BETA2], h[C.H_EPS] = 0.9, 0.999, 1e-8
    return h


EPOCHS = [
    ("sgd-ce", (3, 4, 3), C.TANH, C.CROSS_ENTROPY, C.OPT_SGD, 0.01, 3, 2, False, False, 0, None),
    ("momentum-bce", (3, 4, 2), C.SIGMOID, C.BCE, C.OPT_MOMENTUM, 0.01, 3, 2, False, False, 0,
     None),
    ("nesterov-mse", (3, 4, 2), C.SOFTPLUS, C.MSE, C.OPT_NESTEROV, 0.01, 3, 2, False, False, 0,
     None),
    ("adam-ce-t0", (3, 4, 3), C.RELU, C.CROSS_ENTROPY, C.OPT_ADAM, 0.01, 3, 2, False, False, 3,
     None),
    ("order-sw", (3, 4, 2), C.IDENTITY, C.BCE, C.OPT_ADAM, 0.0, 6, 3, True, True, 0, None),
    ("batch1-sgd-order-sw", (2, 2, 1), C.SIGMOID, C.BCE, C.OPT_SGD, 0.0, 3, 1, True, True, 0,
     None),
    ("batch1-momentum-l2", (2, 3, 2), C.TANH, C.CROSS_ENTROPY, C.OPT_MOMENTUM, 0.01, 2, 1, False,
     False, 0, None),
    ("nonfinite", (2, 3, 1), C.RELU, C.MSE, C.OPT_ADAM, 0.0, 5, 2, False, False, 0, 2),
    ("nonfinite-batch1", (2, 2, 1), C.SIGMOID, C.BCE, C.OPT_SGD, 0.0, 3, 1, False, False, 0, 1),
]
"""train_epoch cases: (id, layer widths, hidden act, loss, optimiser, L2, rows, batch size,
order (a permutation of all rows but one), sample weights, t0, row made inf). Most end on a
partial batch; "nonfinite" stops at its second batch of three, before its update."""


def _epoch_cases(rng):
    out = []
    for dtype in DTYPES:
        for (tag, sizes, hidden, loss, opt, l2, N, B, ordered, weighted, t0,
             bad) in EPOCHS:
            shapes = np.array([(o, i) for i, o in zip(sizes[:-1], sizes[1:])], np.int64)
            acts = np.array([hidden, C.LOSS_ACTIVATION[loss]], np.int64)
            P = param_size(shapes)
            X = rng.normal(size=(N, sizes[0])).astype(dtype)
            if bad is not None:
                X[bad, 0] = np.inf  # the batch holding this row stops the loop
            order = rng.permutation(N)[:N - 1].astype(np.int64) if ordered else None
            n1 = 0 if opt == C.OPT_SGD else P
            n2 = P if opt == C.OPT_ADAM else 0
            args = dict(
                X=X, Y=targets(rng, loss, N, sizes[-1], dtype),
                sw=rng.uniform(0.5, 1.5, N).astype(dtype) if weighted else None, order=order,
                theta=(0.5 * rng.normal(size=P)).astype(dtype), grad=np.zeros(P, dtype),
                shapes=shapes, acts=acts, loss=loss, batch_size=B, opt=opt,
                hyper=_hyper(0.01 if opt == C.OPT_ADAM else 0.1, l2),
                s1=(0.1 * rng.normal(size=n1)).astype(dtype),
                s2=np.abs(0.1 * rng.normal(size=n2)).astype(dtype), t0=t0,
                work=np.full(workspace_size(shapes, B), np.nan, dtype))
            out.append(Case("train_epoch", f"{tag}-{_name(dtype)}", args,
                            undefined=("grad", "work"), slack=10.0, dtype=dtype))
    return out


def _flat_cases(rng):
    out = []
    for dtype in DTYPES:
        for shape in ((7,), (2, 3), (0,)):
            for bad in (None, np.nan, np.inf, -np.inf):
                if bad is not None and not shape[0]:
                    continue
                x = rng.normal(size=shape).astype(dtype)
                if bad is not None:
                    x.reshape(-1)[x.size // 2] = bad
                out.append(Case("all_finite", f"{shape}-{bad}-{_name(dtype)}", dict(x=x),
                                dtype=dtype))
            out.append(Case("copy_into", f"{shape}-{_name(dtype)}",
                            dict(dst=np.full(shape, np.nan, dtype),
                                 src=rng.normal(size=shape).astype(dtype)), dtype=dtype))
    return out


def all_cases():
    """Every case, in a fixed order (seeded)."""
    rng = np.random.default_rng(20240614)
    return (_layer_cases(rng) + _output_cases(rng) + _update_cases(rng) + _epoch_cases(rng)
            + _flat_cases(rng))


def _fresh(case):
    """Copies of the case's arrays, with aliased names bound to one array."""
    args = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.args.items()}
    for a, b in case.alias:
        args[a] = args[b]
    return args


def _same(got, want, case, what):
    if isinstance(want, tuple):  # train_epoch's (loss_sum, n_done)
        assert isinstance(got, tuple) and len(got) == 2, f"{case}: returned {got!r}"
        assert int(got[1]) == want[1], f"{case}: n_done {got[1]} != {want[1]}"
        np.testing.assert_allclose(got[0], want[0], err_msg=f"{case}: {what}",
                                   **tol(case.dtype, case.slack))
    elif isinstance(want, bool):
        assert isinstance(got, (bool, np.bool_)) and bool(got) == want, f"{case}: {got!r}"
    elif want is not None:
        assert isinstance(got, float), f"{case}: returned {type(got).__name__}, not float"
        np.testing.assert_allclose(got, want, err_msg=f"{case}: {what}", **tol(case.dtype))


def run(K, case, place=None, to_host=np.asarray):
    """Run ``case`` on backend ``K`` and on ``reference``; assert the spec holds.

    ``place(name, array)`` puts an argument in the backend's memory (default: as it is); each
    array is placed once, so aliased names stay one array. ``to_host`` reads a placed array back.
    """
    spec = SPECS[case.func]
    names = params(case.func)
    want_args = _fresh(case)
    want = getattr(R, case.func)(*[want_args[n] for n in names])
    mine = _fresh(case)
    placed, by_id = {}, {}
    for n in names:
        v = mine[n]
        if isinstance(v, np.ndarray) and place is not None:
            if id(v) not in by_id:
                by_id[id(v)] = place(n, v)
            v = by_id[id(v)]
        placed[n] = v
    got = getattr(K, case.func)(*[placed[n] for n in names])
    _same(got, want, case, "return value")
    written = set(spec.writes) | {a for pair in case.alias for a in pair}
    for n in names:
        if not isinstance(case.args[n], np.ndarray):
            continue
        value = to_host(placed[n])
        if n in written and n not in case.undefined:
            np.testing.assert_allclose(value, want_args[n], err_msg=f"{case}: {n}",
                                       **tol(case.dtype, case.slack))
        elif n not in written:
            np.testing.assert_array_equal(value, case.args[n], err_msg=f"{case}: {n} was "
                                          "written, but the spec says it is only read")
        assert value.dtype == case.args[n].dtype, f"{case}: {n} changed dtype"
