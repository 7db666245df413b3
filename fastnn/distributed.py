"""Synchronous data-parallel training over MPI (mpi4py).

Every rank holds a shard of the data and a replica of the model. Each step, every rank computes the
gradient of its local batch with the backend's kernels, and ONE ``Allreduce`` over ONE flat buffer
(the gradient times the local row count, then the row count, the loss sum and an error flag) gives
every rank ``sum_r n_r g_r / sum_r n_r``: the exact mean gradient of the global batch, however
uneven the local batches are. Every rank then applies the same update with the backend's fused
update kernels, so the replicas stay identical. Launch with e.g.
``mpiexec -n 4 python -m mpi4py train.py`` (``-m mpi4py`` aborts the job on an uncaught error).
The buffer has the model's dtype, so a float32 step counts rows exactly up to 2**24.
"""

import math
import os
import time
import zlib

import numpy as np

from . import _backend, _device
from .kernels.codes import H_BETA1, H_BETA2, H_EPS, H_L2, H_LR, H_MOMENTUM, OPT_ADAM, OPT_NESTEROV, OPT_SGD
from .kernels.passes import batch_gradients
from ._validation import (
    all_finite, check_nonnegative_float, check_positive_float, check_positive_int,
)
from .kernels.layout import param_offsets, param_views, work_views
from .optim import get_optimizer
from .training import History

CHECKPOINT_TAG = "distributed_checkpoint"  # extra array in the model file, holding the version
CHECKPOINT_VERSION = 1
_MSG = 400  # bytes of each rank's error message that reach the other ranks


def _world(comm):
    if comm is not None:
        return comm
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("fastnn.distributed needs mpi4py and an MPI library: "
                          "pip install 'fastnn[mpi]' (see the README)") from None
    return MPI.COMM_WORLD


def _rank_errors(comm, exc):
    """Collective: ``[(rank, message)]`` for every rank whose ``exc`` is not None."""
    mine = np.zeros(_MSG + 1, np.uint8)
    if exc is not None:
        text = f"{type(exc).__name__}: {exc}".encode()[:_MSG]
        mine[0] = 1
        mine[1:1 + len(text)] = np.frombuffer(text, np.uint8)
    every = np.empty((comm.Get_size(), _MSG + 1), np.uint8)
    comm.Allgather(mine, every)
    return [(r, bytes(row[1:]).rstrip(b"\0").decode(errors="replace"))
            for r, row in enumerate(every) if row[0]]


def _agree(comm, exc, kind, what):
    """Collective: raise ``kind`` on every rank if any rank's ``exc`` is set, naming the ranks."""
    bad = _rank_errors(comm, exc)
    if bad:
        detail = "; ".join(f"rank {r}: {m}" for r, m in bad)
        raise kind(f"{what} ({detail})") from exc


def _same_everywhere(comm, values, names):
    """Collective: ValueError on every rank naming the settings that differ between ranks."""
    from mpi4py import MPI

    v = np.array(values, np.float64)
    both = np.concatenate([v, -v])
    comm.Allreduce(MPI.IN_PLACE, both, op=MPI.MAX)
    differ = [n for n, hi, lo in zip(names, both[:v.size], both[v.size:]) if hi != -lo]
    if differ:
        raise ValueError("distributed fit: the ranks disagree on " + ", ".join(differ)
                         + "; every rank must build the same model and pass the same settings")


def _apply(K, opt, hyper, p, g, s1, s2, t, l2):
    """One optimiser step on the 1-D views ``p``/``g`` (l2 is 0 for biases)."""
    lr = float(hyper[H_LR])
    if opt == OPT_SGD:
        K.sgd_update(p, g, lr, l2)
    elif opt == OPT_ADAM:
        K.adam_update(p, g, s1, s2, lr, float(hyper[H_BETA1]), float(hyper[H_BETA2]),
                      float(hyper[H_EPS]), t, l2)
    else:
        K.momentum_update(p, g, s1, lr, float(hyper[H_MOMENTUM]), l2, opt == OPT_NESTEROV)


def _update(K, model, opt, hyper, g, s1, s2, t, l2):
    """Update the flat ``theta`` from the flat mean gradient ``g``: weights with l2, biases without."""
    theta = model._theta
    for off, (o, i) in zip(param_offsets(model._shapes), model._shapes):
        for lo, hi, pen in ((off, off + o * i, l2), (off + o * i, off + o * i + o, 0.0)):
            _apply(K, opt, hyper, theta[lo:hi], g[lo:hi], s1[lo:hi] if s1.size else s1,
                   s2[lo:hi] if s2.size else s2, t, pen)


def _local_step(K, model, X, Y, rows, send, gviews, work, batch):
    """Fill ``send`` with this rank's ``[n * grad, n, n * loss, 0]`` for the rows ``rows``.

    ``work`` is the model's workspace for batches of up to ``batch`` rows.
    """
    P = model._theta.size
    n = rows.stop - rows.start if isinstance(rows, slice) else rows.size
    if n == 0:
        send[:] = 0
        return
    Xb, Yb, _, As, D0, D1 = work_views(work, model._shapes, batch, n)
    if isinstance(rows, slice):
        Xb, Yb = X[rows], Y[rows]
    else:
        np.take(X, rows, axis=0, out=Xb)
        np.take(Y, rows, axis=0, out=Yb)
    value = batch_gradients(K, Xb, Yb, None, model._params(), gviews, model._acts, model._loss,
                            As, D0, D1)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite sums are caught after
        send[:P] *= n
        send[P:] = (n, value * n, 0)


def fit(model, X, y, *, comm=None, epochs=10, batch_size=32, lr=0.01, optimizer="sgd",
        shuffle=True, seed=None, progress=True, l2=0.0, checkpoint=None, resume=False):
    """Train ``model`` data-parallel: this rank's shard is (X, y). Call it on every rank.

    Parameters
    ----------
    model : MLP
        The replica on this rank. Rank 0's parameters and optimiser state are broadcast first,
        so the replicas start identical.
    X, y : array_like
        This rank's shard (at least one row; shards may differ in size).
    comm : mpi4py.MPI.Intracomm, optional
        Default ``MPI.COMM_WORLD``.
    epochs : int
        Total passes over the data; with ``resume`` the run continues up to this count.
    batch_size : int
        Rows per step **per rank**: a step's global batch is up to ``batch_size * comm.size``
        rows. An epoch has ``max_r ceil(n_r / batch_size)`` steps; a rank whose shard is used up
        contributes no rows to the remaining steps, and every step is weighted by its true rows.
    lr, optimizer, l2
        As in ``fastnn.training.fit``; L2 applies to weights only.
    shuffle : bool
        Rank r visits its rows in the order ``np.random.default_rng([seed, r, epoch])``
        ``.permutation(n_r)`` in epoch ``epoch`` (0-based), else in order.
    seed : int >= 0, optional
        Rank 0's value is used everywhere (drawn at random when None).
    progress : bool
        A tqdm bar on rank 0.
    checkpoint : path, optional
        Rank 0 writes the model with its optimiser state (``MLP.save``'s versioned ``.npz``,
        no pickles) plus the epoch, seed and losses here after every epoch.
    resume : bool
        Continue from ``checkpoint`` when that file exists (else start afresh).

    Returns
    -------
    History
        ``loss`` is the mean loss over all ranks' rows per epoch plus the L2 term at the epoch's
        end (as in ``fastnn.training.fit``), ``lr`` the rate; ``comm_seconds`` the time spent in
        the allreduce per epoch, and ``seconds`` each epoch's wall time.

    Raises
    ------
    ValueError
        On every rank when any rank's input or settings are bad, naming the ranks.
    FloatingPointError
        On every rank when the loss or gradient turns non-finite on any rank, naming the epoch,
        step and ranks; the model keeps its last finite parameters.
    RuntimeError
        On every rank when a step raised on some rank.
    """
    comm = _world(comm)
    X, Y, opt, hyper, epochs, batch_size, l2 = _checked(
        comm, model, X, y, epochs, batch_size, lr, optimizer, l2, shuffle, seed, checkpoint,
        resume)
    s1, s2 = model._optimizer_state(opt)
    history = History()
    start, seed = _start(comm, model, opt, s1, s2, seed, checkpoint if resume else None, history)

    from mpi4py import MPI

    n = X.shape[0]
    counts = np.array([n, math.ceil(n / batch_size), 0], np.int64)
    comm.Allreduce(MPI.IN_PLACE, counts[:1], op=MPI.SUM)
    comm.Allreduce(MPI.IN_PLACE, counts[1:2], op=MPI.MAX)
    n_total, n_steps = int(counts[0]), int(counts[1])
    run = _Run(comm, _backend.kernels(), model, X, Y, opt.code, hyper, s1, s2, batch_size)
    history.comm_seconds, history.seconds = [], []
    bar = None
    if progress and comm.Get_rank() == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=(epochs - start) * n_steps, desc=f"fit x{comm.Get_size()}", unit="step")
    try:
        for epoch in range(start, epochs):
            t_epoch = time.perf_counter()
            order = None
            if shuffle:
                order = np.random.default_rng([seed, comm.Get_rank(), epoch]).permutation(n)
            loss_sum, t_comm = run.epoch(epoch, order, n_steps, bar)
            history.loss.append(loss_sum / n_total + _penalty(model, l2))
            history.lr.append(opt.lr)
            history.epochs += 1
            history.comm_seconds.append(t_comm)
            history.seconds.append(time.perf_counter() - t_epoch)
            if bar is not None:
                bar.set_postfix(loss=f"{history.loss[-1]:.4g}", refresh=False)
            if checkpoint is not None:
                err = None
                if comm.Get_rank() == 0:
                    try:
                        save_checkpoint(checkpoint, model, epoch + 1, seed, history.loss)
                    except Exception as exc:  # noqa: BLE001
                        err = exc
                _agree(comm, err, RuntimeError, f"could not write the checkpoint {checkpoint!r}")
    finally:
        if bar is not None:
            bar.close()
    return history


def _penalty(model, l2):
    """The L2 term ``l2/2 * sum ||W||^2`` that ``History.loss`` includes, as in ``fit``."""
    return 0.5 * l2 * sum(float(np.dot(w, w)) for w in (l._W.reshape(-1) for l in model.layers))


def _checked(comm, model, X, y, epochs, batch_size, lr, optimizer, l2, shuffle, seed,
             checkpoint, resume):
    """Collective: validate every rank's input and check that the settings agree everywhere."""
    err = None
    try:
        if _backend.get_backend() == "cuda":
            raise ValueError("distributed fit runs on the CPU backends, not cuda")
        epochs = check_positive_int(epochs, "epochs")
        batch_size = check_positive_int(batch_size, "batch_size")
        opt = get_optimizer(optimizer, check_positive_float(lr, "lr"))
        l2 = check_nonnegative_float(l2, "l2")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
        if resume and checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path")
        model._check_trainable()
        X = model._check_X(X)
        Y = model._targets(y, X.shape[0])
    except Exception as exc:  # noqa: BLE001 - every rank must learn of it, then raise
        err = exc
    _agree(comm, err, ValueError, "distributed fit: invalid input on some rank")
    _device.sync_host(model)  # a model trained on the GPU before: its host arrays take over
    hyper = opt.hyper()
    hyper[H_L2] = l2
    _same_everywhere(
        comm,
        [model._theta.size, model._theta.itemsize, model._loss,
         zlib.crc32(model._shapes.tobytes() + model._acts.tobytes()),
         zlib.crc32(_backend.get_backend().encode()), opt.code, epochs, batch_size, shuffle,
         checkpoint is not None, bool(resume), *hyper],
        ["parameter count", "dtype", "loss", "architecture", "backend", "optimizer", "epochs",
         "batch_size", "shuffle", "checkpoint", "resume", "lr", "l2", "momentum", "beta1",
         "beta2", "eps"] + [f"hyper[{i}]" for i in range(6, hyper.size)],
    )
    return X, Y, opt, hyper, epochs, batch_size, l2


def _start(comm, model, opt, s1, s2, seed, resume_from, history):
    """Collective: rank 0's parameters, state, step count and seed everywhere (or a checkpoint's).

    Returns the first epoch to run and the shuffling seed.
    """
    for a in (model._theta, s1, s2):
        if a.size:
            comm.Bcast(a, root=0)
    head = np.array([model._opt_t, 0, -1 if seed is None else seed], np.int64)
    if comm.Get_rank() == 0 and seed is None:
        head[2] = np.random.SeedSequence().entropy % (2 ** 62)
    if resume_from is not None:
        _resume(comm, model, resume_from, opt, s1, s2, head, history)
    comm.Bcast(head, root=0)
    model._opt_t = int(head[0])
    return int(head[1]), int(head[2])


class _Run:
    """The buffers and kernels of one distributed fit; ``epoch`` runs the steps of one epoch."""

    def __init__(self, comm, K, model, X, Y, opt, hyper, s1, s2, batch):
        self.comm, self.K, self.model, self.X, self.Y = comm, K, model, X, Y
        self.opt, self.hyper, self.s1, self.s2, self.batch = opt, hyper, s1, s2, batch
        P = model._theta.size
        self.send = np.zeros(P + 3, model.dtype)  # [n * grad, n, n * loss, error flag]
        self.recv = np.empty_like(self.send)
        self.gviews = param_views(self.send[:P], model._shapes)
        self.cap = min(batch, X.shape[0])  # rows per step never exceed the shard
        self.work = model._workspace(self.cap)
        self.saved = [np.empty_like(a) for a in (model._theta, s1, s2)]

    def epoch(self, epoch, order, n_steps, bar):
        """Every step of one epoch; returns (sum of the global batches' loss * rows, seconds in
        the allreduce)."""
        from mpi4py import MPI

        m, send, recv, P = self.model, self.send, self.recv, self.model._theta.size
        live = (m._theta, self.s1, self.s2)
        n, chunk = self.X.shape[0], max(1, n_steps // 20)  # snapshots for an overflowing update
        loss_sum = t_comm = 0.0
        for step in range(n_steps):
            if step % chunk == 0:
                snap_step, snap_t = step, m._opt_t
                for keep, a in zip(self.saved, live):
                    np.copyto(keep, a)
            lo, hi = min(step * self.batch, n), min((step + 1) * self.batch, n)
            rows = slice(lo, hi) if order is None else order[lo:hi]
            failed = None
            try:
                _local_step(self.K, m, self.X, self.Y, rows, send, self.gviews, self.work,
                            self.cap)
            except Exception as exc:  # noqa: BLE001 - tell the other ranks, then raise
                failed = exc
                send[:] = 0
                send[P + 2] = 1
            t0 = time.perf_counter()
            self.comm.Allreduce(send, recv, op=MPI.SUM)
            t_comm += time.perf_counter() - t0
            where = f"epoch {epoch + 1}, step {step + 1}"
            if recv[P + 2] != 0:
                _agree(self.comm, failed, RuntimeError, f"distributed fit stopped at {where}")
            if not all_finite(recv):
                _diverged(self.comm, send, where, "the loss or a gradient is not finite",
                          "the model keeps its last finite parameters")
            g = recv[:P]
            g /= recv[P]
            m._opt_t += 1
            _update(self.K, m, self.opt, self.hyper, g, self.s1, self.s2, m._opt_t,
                    float(self.hyper[H_L2]))
            if not all_finite(m._theta):
                for keep, a in zip(self.saved, live):
                    np.copyto(a, keep)
                m._opt_t = snap_t
                _diverged(self.comm, None, where, "an update overflowed",
                          f"the model was restored to its parameters before step "
                          f"{snap_step + 1} of epoch {epoch + 1}")
            loss_sum += float(recv[P + 1])
            if bar is not None:
                bar.update(1)
        return loss_sum, t_comm


def _diverged(comm, send, where, what, kept):
    """Collective: raise FloatingPointError on every rank, naming the ranks whose part was bad."""
    local = np.array([send is not None and not all_finite(send)], np.uint8)
    every = np.empty(comm.Get_size(), np.uint8)
    comm.Allgather(local, every)
    ranks = np.flatnonzero(every).tolist()
    on = f" (non-finite on rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))})" \
        if ranks else ""
    raise FloatingPointError(f"training diverged at {where}: {what}{on}; all ranks stopped and "
                             f"{kept} (try a smaller learning rate)")


# checkpoints ------------------------------------------------------------------------------
def save_checkpoint(path, model, epoch, seed, losses):
    """Write a resumable checkpoint: ``MLP.save`` (versioned ``.npz`` with the optimiser state)
    plus the epoch, shuffling seed and per-epoch losses as extra arrays."""
    model.save(path, optimizer_state=True, extra={
        CHECKPOINT_TAG: np.array(CHECKPOINT_VERSION), "epoch": np.array(epoch),
        "seed": np.array(seed), "loss": np.array(losses, np.float64)})


def load_checkpoint(path):
    """Read a checkpoint written by ``save_checkpoint``: ``(model, extra)`` (no pickles)."""
    from .io import load

    model, extra = load(path, extra=True)
    if CHECKPOINT_TAG not in extra or any(k not in extra for k in ("epoch", "seed", "loss")):
        raise ValueError(f"{os.fspath(path)!r} is a fastnn model file but not a distributed "
                         "checkpoint (no epoch/seed/loss)")
    if int(extra[CHECKPOINT_TAG]) > CHECKPOINT_VERSION:
        raise ValueError(f"{os.fspath(path)!r} is a newer distributed checkpoint "
                         f"(version {int(extra[CHECKPOINT_TAG])}); upgrade fastnn")
    return model, extra


def _resume(comm, model, path, opt, s1, s2, head, history):
    """Collective: load rank 0's checkpoint (if any) into every replica and into rank 0's head."""
    found = np.zeros(1, np.int64)
    err, ck = None, None
    if comm.Get_rank() == 0 and os.path.exists(path):
        try:
            ck, extra = load_checkpoint(path)
            if ck.sizes != model.sizes or not np.array_equal(ck._acts, model._acts) \
                    or np.dtype(ck.dtype) != np.dtype(model.dtype):
                raise ValueError("it was written for a different architecture or dtype")
            if ck._opt_code != opt.code:
                raise ValueError(f"it was written with optimizer code {ck._opt_code}, "
                                 f"not {opt.code}")
            found[0] = 1 + extra["loss"].size
        except Exception as exc:  # noqa: BLE001
            err = exc
    _agree(comm, err, ValueError, f"cannot resume from {path!r}")
    comm.Bcast(found, root=0)
    if not found[0]:
        return
    losses = np.empty(int(found[0]) - 1, np.float64)
    if ck is not None:
        np.copyto(model._theta, ck._theta)
        np.copyto(s1, ck._s1)
        np.copyto(s2, ck._s2)
        head[:] = (ck._opt_t, int(extra["epoch"]), int(extra["seed"]))
        losses[:] = extra["loss"]
    for a in (model._theta, s1, s2, losses):
        if a.size:
            comm.Bcast(a, root=0)
    history.loss.extend(losses.tolist())
    history.lr.extend([opt.lr] * losses.size)
    history.epochs = losses.size
