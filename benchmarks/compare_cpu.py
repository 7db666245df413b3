"""One MLP training step on the CPU: fastnn's cython and numba backends against numpy and JAX.

float32, relu hidden layers, softmax + cross-entropy, plain SGD, one ``MLP.train_step`` per
sample. Contenders are timed in interleaved rounds (so machine noise hits them alike) and the
median per-step time of the rounds is reported, with ratios and GFLOP/s. The machine's best GEMM
rate (1024^3 sgemm through NumPy and through fastnn's BLAS) is measured in the same run.

Usage::

    python benchmarks/compare_cpu.py [--rounds 7] [--no-jax] [--cases 0,1,2,3] [--threads N]
                                     [--cpu-time] [--profile] [--json out.json]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import fastnn  # noqa: E402
from fastnn import kernels  # noqa: E402

CASES = [
    # batch, sizes, (target vs numpy, target vs jax)
    (32, [64, 128, 10], (5.0, 3.0)),
    (128, [784, 256, 10], (2.0, 1.0)),
    (256, [784, 512, 512, 10], (2.5, 1.0)),
    (1024, [1024, 2048, 2048, 10], (1.8, 0.95)),
]
BACKENDS = ["numpy", "numba", "cython"]


def step_flops(batch, sizes):
    """Multiply-add flops of forward + backward: 3 GEMMs per layer, no dX for the first layer."""
    mm = [i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return 2 * batch * (3 * sum(mm) - mm[0])


CLOCK = time.perf_counter


def time_calls(fn, target_s=0.05):
    """Seconds per call of ``fn`` by ``CLOCK``, over enough calls to last about ``target_s``."""
    fn()
    t = CLOCK()
    fn()
    one = max(CLOCK() - t, 1e-7)
    reps = max(1, min(2000, int(target_s / one)))
    t = CLOCK()
    for _ in range(reps):
        fn()
    return (CLOCK() - t) / reps


def fastnn_step(backend, batch, sizes, X, y):
    fastnn.set_backend(backend)
    model = fastnn.MLP.from_sizes(sizes, seed=0)
    for _ in range(3):
        model.train_step(X, y, 0.01)

    def step():
        fastnn.set_backend(backend)
        model.train_step(X, y, 0.01)

    return step


def jax_step(batch, sizes, X, y):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    params = [(jnp.asarray(rng.standard_normal((o, i)).astype(np.float32) / np.sqrt(i)),
               jnp.zeros(o, jnp.float32)) for i, o in zip(sizes[:-1], sizes[1:])]

    def loss_fn(params, X, y):
        a = X
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W.T + b)
        W, b = params[-1]
        logits = a @ W.T + b
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    @jax.jit
    def step(params, X, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
        return [(W - 0.01 * gW, b - 0.01 * gb) for (W, b), (gW, gb) in zip(params, grads)], loss

    Xj, yj = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
    state = [params]

    def run():
        p, loss = step(state[0], Xj, yj)
        loss.block_until_ready()
        state[0] = p

    for _ in range(3):
        run()
    return run


def gemm_rates(rounds):
    """Best 1024^3 float32 GEMM rate (GFLOP/s) through NumPy and through fastnn's BLAS."""
    from fastnn.kernels import cython_cpu

    n = 1024
    rng = np.random.default_rng(1)
    A = rng.standard_normal((n, n)).astype(np.float32)
    B = rng.standard_normal((n, n)).astype(np.float32)
    C = np.empty((n, n), np.float32)
    zero = np.zeros(n, np.float32)
    fns = {"numpy": lambda: np.dot(A, B, out=C),
           "fastnn": lambda: cython_cpu.forward(A, B, zero, 0, C)}
    best = {k: 0.0 for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            best[k] = max(best[k], 2 * n ** 3 / time_calls(f, 0.2) / 1e9)
    return best


def profile_train_step(batch, sizes, backend="cython", reps=2000):
    """Microseconds of ``MLP.train_step`` and of the kernel-contract calls beneath it.

    The kernel rows call the backend's module (``fastnn.kernels.BACKENDS``) directly, on flat
    buffers laid out by ``fastnn.kernels.layout`` from the model's initial weights: the gap
    between the whole step and ``train_epoch`` over the one batch is what the API layer costs
    per step. Best of 5 loops of ``reps`` calls each.
    """
    import importlib

    from fastnn.kernels import codes, layout

    fastnn.set_backend(backend)
    model = fastnn.MLP.from_sizes(sizes, seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    K = importlib.import_module(kernels.BACKENDS[backend])
    shapes = np.array([(o, i) for i, o in zip(sizes[:-1], sizes[1:])], np.int64)
    acts = np.array([codes.RELU] * (len(sizes) - 2) + [codes.SOFTMAX], np.int64)
    theta = np.zeros(layout.param_size(shapes), np.float32)
    for (W, b), layer in zip(layout.param_views(theta, shapes), model.layers):
        W[...], b[...] = layer.W, layer.b
    grad, keep = np.zeros_like(theta), np.zeros_like(theta)
    Y = np.eye(sizes[-1], dtype=np.float32)[y]
    hyper = np.zeros(codes.N_HYPER)
    hyper[codes.H_LR] = 0.01
    no_state = np.zeros(0, np.float32)
    work = np.zeros(layout.workspace_size(shapes, batch), np.float32)

    def best(f):
        f()
        out = 1e9
        for _ in range(5):
            t = CLOCK()
            for _ in range(reps):
                f()
            out = min(out, (CLOCK() - t) / reps)
        return out * 1e6

    parts = {
        "train_step (whole)": lambda: model.train_step(X, y, 0.01),
        "  kernel train_epoch (one batch)": lambda: K.train_epoch(
            X, Y, None, None, theta, grad, shapes, acts, codes.CROSS_ENTROPY, batch,
            codes.OPT_SGD, hyper, no_state, no_state, 0, work),
    }
    # the contract's divergence check and snapshot, where this backend defines them already
    if hasattr(K, "all_finite"):
        parts["  kernel all_finite (parameters)"] = lambda: K.all_finite(theta)
    if hasattr(K, "copy_into"):
        parts["  kernel copy_into (parameters)"] = lambda: K.copy_into(keep, theta)
    parts["  fastnn.get_backend()"] = fastnn.get_backend
    print(f"\ntrain_step profile, {backend}, batch {batch} {'-'.join(map(str, sizes))}:")
    for name, f in parts.items():
        print(f"  {name:<34}{best(f):8.2f} us")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--no-jax", action="store_true")
    p.add_argument("--cases", default="0,1,2,3")
    p.add_argument("--json", default=None)
    p.add_argument("--only", default="numpy,numba,cython,jax",
                   help="contenders to time, comma-separated")
    p.add_argument("--jax-json", default=None,
                   help="take JAX's times from an earlier --only jax run's --json (JAX's spinning "
                        "threads slow the OpenBLAS contenders when they share a process)")
    p.add_argument("--threads", type=int, default=None, help="fastnn.set_num_threads(n) first")
    p.add_argument("--cpu-time", action="store_true",
                   help="time by process CPU time, everything on one thread (noisy machines)")
    p.add_argument("--profile", action="store_true",
                   help="also time the parts of train_step on the smallest case")
    args = p.parse_args(argv)
    args.only = set(args.only.split(","))
    if args.cpu_time:
        # CPU seconds of the whole process: on a shared machine, time spent descheduled does not
        # count; meaningful with one thread everywhere (JAX is made single-threaded too)
        global CLOCK
        CLOCK = time.process_time
        args.threads = 1
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_cpu_multi_thread_eigen=false"
                                   + " intra_op_parallelism_threads=1")
    if args.threads:
        fastnn.set_num_threads(args.threads)

    fastnn.show_config()
    print()
    use_jax = not args.no_jax
    if use_jax:
        try:
            import jax

            print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
        except ImportError:
            use_jax = False
            print("jax not installed: skipping it")
    gemm = gemm_rates(max(3, args.rounds // 2))
    best_gemm = max(gemm.values())
    print(f"clock: {CLOCK.__name__}, fastnn threads: {fastnn.get_num_threads()}")
    print("best 1024^3 sgemm: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in gemm.items()))
    results = {"gemm_gflops": gemm, "threads": fastnn.get_num_threads(),
               "blas": {k: kernels.blas_info().get(k) for k in ("library", "coretype")}, "cases": []}
    for ci in [int(c) for c in args.cases.split(",")]:
        batch, sizes, (t_np, t_jax) = CASES[ci]
        rng = np.random.default_rng(0)
        X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], batch)
        steps = {b: fastnn_step(b, batch, sizes, X, y) for b in BACKENDS if b in args.only}
        if use_jax and "jax" in args.only:
            steps["jax"] = jax_step(batch, sizes, X, y)
        times = {k: [] for k in steps}
        target = 0.05 if batch * sizes[0] < 1e6 else 0.3
        for _ in range(args.rounds):
            for k, f in steps.items():
                times[k].append(time_calls(f, target))
        med = {k: float(np.median(v)) for k, v in times.items()}
        flops = step_flops(batch, sizes)
        label = f"batch {batch} {'-'.join(map(str, sizes))}"
        print(f"\n{label}  ({flops / 1e9:.3f} GFLOP per step; median of {args.rounds} rounds)")
        for k in steps:
            print(f"  {k:<7} {med[k] * 1e6:11.1f} us  (best {min(times[k]) * 1e6:9.1f})"
                  f"  {flops / med[k] / 1e9:7.1f} GFLOP/s")
        case = {"batch": batch, "sizes": sizes, "median_s": med,
                "best_s": {k: min(v) for k, v in times.items()}}
        if args.jax_json:
            with open(args.jax_json) as f:
                other = {(c["batch"], tuple(c["sizes"])): c for c in json.load(f)["cases"]}
            med["jax"] = other[(batch, tuple(sizes))]["median_s"]["jax"]
            use_jax = True
        for b in ("cython", "numba"):
            if b not in med or "numpy" not in med:
                continue
            r_np = med["numpy"] / med[b]
            line = f"  {b}: {r_np:.2f}x numpy (target {t_np}x)"
            case[f"{b}_vs_numpy"] = r_np
            if use_jax:
                r_jax = med["jax"] / med[b]
                case[f"{b}_vs_jax"] = r_jax
                line += f", {r_jax:.2f}x jax (target {t_jax}x)"
            if batch >= 1024:
                frac = flops / med[b] / 1e9 / best_gemm
                case[f"{b}_frac_best_gemm"] = frac
                line += f", {100 * frac:.0f}% of the best GEMM rate (target 90%)"
            print(line)
        results["cases"].append(case)
    if args.profile:
        for backend in ("cython", "numba"):
            if backend in fastnn.available_backends():
                profile_train_step(*CASES[0][:2], backend=backend)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
