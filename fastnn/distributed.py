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

from . import _backend, _hooks, _loop
from ._trainer import body_for
from ._version import install_hint
from ._validation import (
    as_matrix, check_nonnegative_float, check_positive_int, check_trainable, targets,
)
from .history import History
from .kernels.codes import H_L2
from .model import MLP
from .optim import get_optimizer

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
                          + install_hint("mpi") + " (see the README)") from None
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


class _MpiReducer:
    """The gradient reduction of the epoch loop's step-by-step body, over ``comm``."""

    def __init__(self, comm):
        self.comm = comm

    def allreduce(self, send, recv):
        from mpi4py import MPI

        self.comm.Allreduce(send, recv, op=MPI.SUM)

    def failed(self, exc, what):
        _agree(self.comm, exc, RuntimeError, what)

    def diverged(self, local_bad, where, what, kept):
        """Collective: FloatingPointError on every rank, naming the ranks whose part was bad."""
        local = np.array([local_bad], np.uint8)
        every = np.empty(self.comm.Get_size(), np.uint8)
        self.comm.Allgather(local, every)
        ranks = np.flatnonzero(every).tolist()
        on = f" (non-finite on rank{'s' if len(ranks) > 1 else ''} " \
             f"{', '.join(map(str, ranks))})" if ranks else ""
        raise FloatingPointError(f"training diverged at {where}: {what}{on}; all ranks stopped "
                                 f"and {kept} (try a smaller learning rate)")


class _Timing(_hooks.Hook):
    """``history.seconds`` (each epoch's wall time, checkpoint aside) and
    ``history.comm_seconds`` (its time in the allreduce)."""

    def __init__(self, history, body):
        self.history, self.body = history, body
        history.seconds, history.comm_seconds = [], []
        self.start = None

    def epoch_start(self, epoch):
        self.start = time.perf_counter()

    def epoch_end(self, epoch, logs):
        self.history.seconds.append(time.perf_counter() - self.start)
        self.history.comm_seconds.append(self.body.comm_seconds)
        return None


class _Checkpoint(_hooks.Hook):
    """Rank 0 writes a checkpoint after every epoch; every rank learns if that failed."""

    def __init__(self, comm, path, model, seed, history):
        self.comm, self.path, self.model, self.seed, self.history = \
            comm, path, model, seed, history

    def epoch_end(self, epoch, logs):
        err = None
        if self.comm.Get_rank() == 0:
            try:
                save_checkpoint(self.path, self.model, epoch, self.seed, self.history.loss)
            except Exception as exc:  # noqa: BLE001
                err = exc
        _agree(self.comm, err, RuntimeError, f"could not write the checkpoint {self.path!r}")
        return None


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
    X, Y, opt, epochs, batch_size, l2 = _checked(
        comm, model, X, y, epochs, batch_size, lr, optimizer, l2, shuffle, seed, checkpoint,
        resume)
    K = _backend.kernels(model.backend)
    model.store.use_optimizer(opt.code, opt.n_state)
    history = History()
    start, seed = _start(comm, model, seed, checkpoint if resume else None, opt, history)

    from mpi4py import MPI

    n = X.shape[0]
    counts = np.array([n, math.ceil(n / batch_size), 0], np.int64)
    comm.Allreduce(MPI.IN_PLACE, counts[:1], op=MPI.SUM)
    comm.Allreduce(MPI.IN_PLACE, counts[1:2], op=MPI.MAX)
    n_total, n_steps = int(counts[0]), int(counts[1])
    body = body_for(model, K, opt.restart(), X, Y, None, batch_size, False,
                    reducer=_MpiReducer(comm), n_batches=n_steps, rows=n_total)
    hooks = [_hooks.Record(history), _Timing(history, body)]
    if checkpoint is not None:
        hooks.append(_Checkpoint(comm, checkpoint, model, seed, history))
    bar = None
    if progress and comm.Get_rank() == 0:
        bar = _hooks.Progress((epochs - start) * n_steps, desc=f"fit x{comm.Get_size()}")
    orders = _loop.Orders.seeded(seed, comm.Get_rank(), n) if shuffle else None
    return _loop.run(model, body, opt, _loop.Plan(epochs=epochs - start, l2=l2),
                     _loop.State(), history, hooks, orders, bar)


def _checked(comm, model, X, y, epochs, batch_size, lr, optimizer, l2, shuffle, seed,
             checkpoint, resume):
    """Collective: validate every rank's input and check that the settings agree everywhere."""
    err = None
    spec = model.spec
    backend = model.backend or _backend.get_backend()
    try:
        if backend == "cuda":
            raise ValueError("distributed fit runs on the CPU backends, not cuda")
        epochs = check_positive_int(epochs, "epochs")
        batch_size = check_positive_int(batch_size, "batch_size")
        opt = get_optimizer(optimizer, lr)
        l2 = check_nonnegative_float(l2, "l2")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
        if resume and checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path")
        check_trainable(spec)
        X = as_matrix(X, spec.dtype, spec.n_in)
        Y = targets(y, spec.loss, X.shape[0], spec.n_out, spec.dtype)
    except Exception as exc:  # noqa: BLE001 - every rank must learn of it, then raise
        err = exc
    _agree(comm, err, ValueError, "distributed fit: invalid input on some rank")
    model.store.sync()  # a model trained on the GPU before: its host arrays take over
    hyper = opt.hyper()
    hyper[H_L2] = l2
    _same_everywhere(
        comm,
        [model.store.size, spec.dtype.itemsize, spec.loss,
         zlib.crc32(spec.shapes.tobytes() + spec.acts.tobytes()),
         zlib.crc32(backend.encode()), opt.code, epochs, batch_size, shuffle,
         checkpoint is not None, bool(resume), *hyper],
        ["parameter count", "dtype", "loss", "architecture", "backend", "optimizer", "epochs",
         "batch_size", "shuffle", "checkpoint", "resume", "lr", "l2", "momentum", "beta1",
         "beta2", "eps"] + [f"hyper[{i}]" for i in range(6, hyper.size)],
    )
    return X, Y, opt, epochs, batch_size, l2


def _start(comm, model, seed, resume_from, opt, history):
    """Collective: rank 0's parameters, state, step count and seed everywhere (or a checkpoint's).

    Returns the first epoch to run and the shuffling seed.
    """
    store = model.store
    for a in (store.theta, store.s1, store.s2):
        if a.size:
            comm.Bcast(a, root=0)
    head = np.array([store.step, 0, -1 if seed is None else seed], np.int64)
    if comm.Get_rank() == 0 and seed is None:
        head[2] = np.random.SeedSequence().entropy % (2 ** 62)
    if resume_from is not None:
        _resume(comm, model, resume_from, opt, head, history)
    comm.Bcast(head, root=0)
    store.step = int(head[0])
    return int(head[1]), int(head[2])


# checkpoints ------------------------------------------------------------------------------
def save_checkpoint(path, model, epoch, seed, losses):
    """Write a resumable checkpoint: ``MLP.save`` (versioned ``.npz`` with the optimiser state)
    plus the epoch, shuffling seed and per-epoch losses as extra arrays."""
    model.save(path, optimizer_state=True, extra={
        CHECKPOINT_TAG: np.array(CHECKPOINT_VERSION), "epoch": np.array(epoch),
        "seed": np.array(seed), "loss": np.array(losses, np.float64)})


def load_checkpoint(path):
    """Read a checkpoint written by ``save_checkpoint``: ``(model, extra)`` (no pickles)."""
    model, extra = MLP.load(path, extra=True)
    if CHECKPOINT_TAG not in extra or any(k not in extra for k in ("epoch", "seed", "loss")):
        raise ValueError(f"{os.fspath(path)!r} is a fastnn model file but not a distributed "
                         "checkpoint (no epoch/seed/loss)")
    if int(extra[CHECKPOINT_TAG]) > CHECKPOINT_VERSION:
        raise ValueError(f"{os.fspath(path)!r} is a newer distributed checkpoint "
                         f"(version {int(extra[CHECKPOINT_TAG])}); upgrade fastnn")
    return model, extra


def _resume(comm, model, path, opt, head, history):
    """Collective: load rank 0's checkpoint (if any) into every replica and into rank 0's head."""
    found = np.zeros(1, np.int64)
    err, ck = None, None
    if comm.Get_rank() == 0 and os.path.exists(path):
        try:
            ck, extra = load_checkpoint(path)
            if ck.sizes != model.sizes or not np.array_equal(ck.spec.acts, model.spec.acts) \
                    or ck.dtype != model.dtype:
                raise ValueError("it was written for a different architecture or dtype")
            if ck.store.opt_code != opt.code:
                raise ValueError(f"it was written with optimizer code {ck.store.opt_code}, "
                                 f"not {opt.code}")
            found[0] = 1 + extra["loss"].size
        except Exception as exc:  # noqa: BLE001
            err = exc
    _agree(comm, err, ValueError, f"cannot resume from {path!r}")
    comm.Bcast(found, root=0)
    if not found[0]:
        return
    store = model.store
    losses = np.empty(int(found[0]) - 1, np.float64)
    if ck is not None:
        for mine, theirs in ((store.theta, ck.store.theta), (store.s1, ck.store.s1),
                             (store.s2, ck.store.s2)):
            np.copyto(mine, theirs)
        head[:] = (ck.store.step, int(extra["epoch"]), int(extra["seed"]))
        losses[:] = extra["loss"]
    for a in (store.theta, store.s1, store.s2, losses):
        if a.size:
            comm.Bcast(a, root=0)
    history.loss.extend(losses.tolist())
    history.lr.extend([opt.lr] * losses.size)
    history.epochs = losses.size
