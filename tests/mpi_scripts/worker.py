"""Run under mpiexec by tests/test_distributed.py: ``worker.py SCENARIO OUTDIR``.

Each rank writes ``OUTDIR/rank{r}.json`` (outcomes) and ``OUTDIR/rank{r}.npz`` (parameters).
The shard builders are imported by the test too, so both sides see the same data.
"""

import json
import os
import sys

import numpy as np

# (optimizer, loss's output activation, output width): every optimiser, and every loss once
CASES = [("sgd", "softmax", 3), ("momentum", "identity", 2), ("nesterov", "sigmoid", 1),
         ("adam", "softmax", 3)]
SIZES = [5, 7]
EPOCHS, BATCH, LR, L2, SEED = 2, 4, 0.1, 0.01, 3


def shard(rank, output, k, dtype=np.float64):
    """Rank ``rank``'s shard: uneven sizes (13 + 3 * rank rows), so last batches differ."""
    rng = np.random.default_rng([17, rank, k])
    n = 13 + 3 * rank
    X = rng.normal(size=(n, SIZES[0])).astype(dtype)
    if output == "softmax":
        y = rng.integers(0, k, n)
    elif output == "sigmoid":
        y = rng.integers(0, 2, n).astype(dtype)
    else:
        y = rng.normal(size=(n, k)).astype(dtype)
    return X, y


def model(output, k, dtype=np.float64, seed=0):
    import fastnn

    return fastnn.MLP.from_sizes(SIZES + [k], hidden="tanh", output=output, dtype=dtype,
                                 seed=seed)


def _outcome(fn):
    try:
        fn()
        return {"error": None}
    except Exception as exc:  # noqa: BLE001 - recorded for the test to check
        return {"error": type(exc).__name__, "message": str(exc)}


def equivalence(comm, out, arrays):
    import fastnn
    from fastnn import distributed

    backends = [b for b in fastnn.available_backends() if b != "cuda"]
    for backend in backends:
        fastnn.set_backend(backend)
        for opt, output, k in CASES:
            m = model(output, k, seed=comm.rank)  # different inits: rank 0's must win
            X, y = shard(comm.rank, output, k)
            h = distributed.fit(m, X, y, comm=comm, epochs=EPOCHS, batch_size=BATCH, lr=LR,
                                optimizer=opt, seed=SEED, progress=False, l2=L2)
            arrays[f"{backend}-{opt}"] = m.store.theta.copy()
            arrays[f"{backend}-{opt}-loss"] = np.array(h.loss)
    out["backends"] = backends


def faults(comm, out, arrays):
    import fastnn
    from fastnn import distributed

    r = comm.rank
    X, y = shard(r, "softmax", 3)

    def fit(m, X, y, **kw):
        args = dict(comm=comm, epochs=3, batch_size=4, lr=0.1, seed=0, progress=False)
        args.update(kw)
        return distributed.fit(m, X, y, **args)

    bad = X.copy()
    if r == 1:
        bad[2, 1] = np.nan
    out["nan_data"] = _outcome(lambda: fit(model("softmax", 3), bad, y))

    m = model("identity", 2, dtype=np.float32)
    yr = np.random.default_rng(r).normal(size=(X.shape[0], 2)) * 100
    out["diverge"] = _outcome(lambda: fit(m, X, yr, lr=1e5, optimizer="sgd"))
    out["diverge"]["finite"] = bool(np.isfinite(m.store.theta).all())
    out["diverge"]["opt_t"] = m.store.step
    arrays["diverge"] = m.store.theta.copy()

    # finite data whose logits overflow on rank 1 only, after one step (float32, no hidden layer)
    m = fastnn.MLP.from_sizes([SIZES[0], 3], output="softmax", dtype=np.float32, seed=0)
    big = X.astype(np.float32) * (np.float32(1e36) if r == 1 else np.float32(1))
    out["overflow"] = _outcome(lambda: fit(m, big, y))
    out["overflow"]["finite"] = bool(np.isfinite(m.store.theta).all())

    out["mismatch"] = _outcome(lambda: fit(model("softmax", 3), X, y, epochs=2 + (r == 1)))

    from fastnn import _trainer  # the step-by-step body computes each rank's gradient

    real = _trainer.batch_gradients
    calls = [0]

    def flaky(*a):
        calls[0] += 1
        if r == comm.size - 1 and calls[0] == 5:
            raise MemoryError("simulated failure")
        return real(*a)

    _trainer.batch_gradients = flaky
    try:
        out["raises"] = _outcome(lambda: fit(model("softmax", 3), X, y))
    finally:
        _trainer.batch_gradients = real
    out["bad_checkpoint"] = _outcome(lambda: fit(model("softmax", 3), X, y, epochs=1,
                                                 checkpoint="/nonexistent-dir/run.npz"))
    # a healthy run afterwards still works (no rank left behind in a collective)
    out["after"] = _outcome(lambda: fit(model("softmax", 3), X, y, epochs=1))


def resume(comm, out, arrays):
    import fastnn
    from fastnn import distributed

    X, y = shard(comm.rank, "softmax", 3)
    path = os.path.join(os.environ["CKPT_DIR"], "run.npz")
    kw = dict(comm=comm, batch_size=4, lr=0.01, optimizer="adam", seed=5, progress=False)
    whole = model("softmax", 3)
    h1 = distributed.fit(whole, X, y, epochs=4, **kw)
    part = model("softmax", 3)
    distributed.fit(part, X, y, epochs=2, checkpoint=path, **kw)
    again = model("softmax", 3, seed=99)  # a fresh process would start from other numbers
    h2 = distributed.fit(again, X, y, epochs=4, checkpoint=path, resume=True, **kw)
    arrays["whole"], arrays["resumed"] = whole.store.theta.copy(), again.store.theta.copy()
    other = fastnn.MLP.from_sizes([SIZES[0], 8, 3], seed=0, dtype=np.float64)
    out["wrong_model"] = _outcome(lambda: distributed.fit(other, X, y, epochs=4, checkpoint=path,
                                                          resume=True, **kw))
    out["loss_whole"], out["loss_resumed"] = h1.loss, h2.loss
    out["opt_t"] = [whole.store.step, again.store.step]


def main():
    from mpi4py import MPI

    scenario, outdir = sys.argv[1], sys.argv[2]
    comm = MPI.COMM_WORLD
    out, arrays = {"size": comm.size}, {}
    {"equivalence": equivalence, "faults": faults, "resume": resume}[scenario](comm, out, arrays)
    with open(os.path.join(outdir, f"rank{comm.rank}.json"), "w") as f:
        json.dump(out, f)
    np.savez(os.path.join(outdir, f"rank{comm.rank}.npz"), **arrays)


if __name__ == "__main__":
    main()
