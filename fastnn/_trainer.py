"""How batches are trained: the bodies that the one epoch loop (``_loop``) runs.

``Trainer`` binds a model's store to a backend and an optimiser kind, and runs the backend's
compiled ``train_epoch`` over a block of batches from a snapshot: when a batch's loss or gradient
is not finite (the kernel stops before its update) or an update overflows the parameters or the
optimiser state, it puts back the snapshot, replays the block up to the last finite update (the
replay is deterministic) and raises ``Diverged``. ``MLP.train_step`` is one block of one batch.

The epoch bodies the loop calls:

- ``CompiledEpoch``: the compiled loop over the epoch, in blocks so that a progress bar moves;
- ``ReducedEpoch``: step by step, each batch's gradient summed over processes by a ``reducer``
  (distributed training), then one ``update`` over the whole model.

``body_for`` is the one place that decides which body runs.
"""

import functools
import math
import time

import numpy as np

from .kernels.codes import H_LR, N_HYPER
from .kernels.layout import work_views
from .kernels.passes import batch_gradients
from ._validation import snapshot_helpers


class Diverged(Exception):
    """A block stopped at its ``step``-th batch (1-based): the loss or gradient was not finite,
    or, with ``overflow``, that batch's update overflowed the parameters."""

    def __init__(self, step, overflow):
        super().__init__(step, overflow)
        self.step, self.overflow = step, overflow


class Trainer:
    """A model's store bound to kernel module ``K`` and optimiser kind ``code``.

    Building one gives the store its optimiser state for ``code`` (kept while the kind stays),
    unless ``stateless``: plain SGD's ``train_step`` needs no state, and leaves the store's
    optimiser state and step count as they are (they belong to the last stateful optimiser).
    """

    def __init__(self, model, K, code, n_state, stateless=False):
        store, spec = model.store, model.spec
        if not stateless:
            store.use_optimizer(code, n_state)
        self.K, self.store, self.code, self.stateless = K, store, code, stateless
        arrays = store.arrays(K)
        if stateless:
            none = K.zeros(0, spec.dtype)
            arrays = (arrays[0], arrays[1], none, none)
        self.arrays = arrays
        self.version, self.device = store.version, K.ON_DEVICE
        self.theta, self.grad, self.s1, self.s2 = arrays
        self.shapes, self.acts, self.loss = spec.shapes, spec.acts, spec.loss
        self.hyper = np.zeros(N_HYPER)
        self._rate = None  # the rate set_sgd_rate last wrote (None: the hyper vector was set)
        self.kernel = K.train_epoch
        self.copy, self.finite = snapshot_helpers(K)
        # what must stay finite after an update: the parameters and the optimiser state (a
        # huge L2 term can overflow Adam's second moment while the parameters look fine)
        self.kept = [a for a in (self.theta, self.s1, self.s2) if a.size]
        # state_finite(): whether they all hold no NaN or infinity; with the parameters alone
        # (plain SGD), the compiled scan itself, with no Python frame around it
        self.state_finite = (functools.partial(self.finite, self.theta) if len(self.kept) == 1
                             else self._all_finite)
        self.saved = None  # copies to fall back on, made on first use (``release`` drops them)

    # the hyper-parameters the kernels read: this trainer's, set through these three
    def set_hyper(self, hyper):
        """Use the float64 hyper-parameter vector ``hyper`` (``kernels.codes.H_*``)."""
        self.hyper[:] = hyper
        self._rate = None

    def set_rate(self, lr):
        """Change only the learning rate (the schedule's rate for the next epoch)."""
        self.hyper[H_LR] = lr
        self._rate = None

    def set_sgd_rate(self, lr):
        """Plain SGD at rate ``lr``, no L2 (``train_step``): written only when it changes."""
        if self._rate != lr:
            self.hyper[:] = 0.0
            self.hyper[H_LR] = self._rate = lr

    def run(self, X, Y, sw, order, bs, work, steps):
        """Train the ``steps`` batches of ``X`` (or of ``order``); returns ``(loss_sum, steps)``.

        Raises Diverged, with the model as it was after the last finite update. Any other
        exception on the way (a KeyboardInterrupt as the compiled loop returns, one inside the
        NumPy reference's loop) puts the snapshot back: the block never happened, and the
        model is exactly at the end of the step before it, its step counter included.
        """
        store = self.store
        if self.device:
            store.arrays(self.K)  # host edits since the device last trained go up first
        self.snapshot()
        t0 = 0 if self.stateless else store.step
        try:
            loss_sum, done = self.kernel(X, Y, sw, order, self.theta, self.grad, self.shapes,
                                         self.acts, self.loss, bs, self.code, self.hyper,
                                         self.s1, self.s2, t0, work)
            if done < steps or not self.state_finite():
                self._recover(X, Y, sw, order, bs, work, t0, done)
        except Diverged:
            raise
        except BaseException:
            self.restore()
            if self.device:
                store.trained()
            raise
        if not self.stateless:
            store.step = t0 + done
        if self.device:
            store.trained()
        return loss_sum, done

    def _recover(self, X, Y, sw, order, bs, work, t0, done):
        """Replay the block up to its last update that left the parameters and optimiser state
        finite; raise."""
        failed, overflow = done + 1, False  # the batch whose loss or gradient was not finite
        while done > 0 and not self.state_finite():
            failed, overflow = done, True  # this update overflowed the parameters
            done -= 1
            self.restore()
            if done:  # the first ``done`` batches again
                rows = done * bs
                data = ((X[:rows], Y[:rows], None if sw is None else sw[:rows], None)
                        if order is None else (X, Y, sw, order[:rows]))
                self.kernel(*data, self.theta, self.grad, self.shapes, self.acts, self.loss, bs,
                            self.code, self.hyper, self.s1, self.s2, t0, work)
        if done == 0 and not self.state_finite():
            self.restore()
        if not self.stateless:
            self.store.step = t0 + done
        if self.device:
            self.store.trained()
        raise Diverged(failed, overflow)

    def _all_finite(self):
        """Whether the parameters and the optimiser state hold no NaN or infinity."""
        finite = self.finite
        for a in self.kept:
            if not finite(a):
                return False
        return True

    def snapshot(self):
        """Copy the parameters and optimiser state aside (what ``restore`` puts back)."""
        saved = self.saved
        if saved is None:
            saved = self.saved = [(self.K.zeros(a.shape, a.dtype), a) for a in self.kept]
        copy = self.copy
        for keep, arr in saved:
            copy(keep, arr)

    def restore(self):
        """Put back the last snapshot."""
        for keep, arr in self.saved:
            self.copy(arr, keep)

    def release(self):
        """Drop the snapshot copies (a finished ``fit`` keeps no second copy of the model)."""
        self.saved = None


def trainer_for(model, K, code, n_state, stateless=False):
    """The model's Trainer for ``K`` and optimiser ``code``: the last one of its kind (kept in
    the store's ``trainers``) while it still serves the store (same kernels, optimiser kind and
    arrays), so ``train_step`` and repeated ``fit`` calls build nothing."""
    store = model.store
    got = store.trainers.get(stateless)
    if (got is None or got.K is not K or got.code != code or got.version != store.version
            or not (stateless or store.opt_code == code)):
        got = store.trainers[stateless] = Trainer(model, K, code, n_state, stateless)
    return got


class CompiledEpoch:
    """One epoch of ``X`` through the compiled loop, in blocks of ``chunk`` rows.

    ``X``, ``Y``, ``sw`` are validated arrays in the backend's memory.
    """

    def __init__(self, trainer, X, Y, sw, bs, chunk):
        self.trainer, self.X, self.Y, self.sw, self.bs = trainer, X, Y, sw, bs
        self.rows = n = X.shape[0]
        self.work = trainer.store.workspace(trainer.K, bs)
        self.blocks = [(lo, min(lo + chunk, n), -(-(min(lo + chunk, n) - lo) // bs))
                       for lo in range(0, n, chunk)]
        self.n_batches = -(-n // bs)

    def epoch(self, order, epoch, bar):
        """Train the epoch's batches in ``order`` (None: as stored); returns the loss sum."""
        run, X, Y, sw, bs, work = self.trainer.run, self.X, self.Y, self.sw, self.bs, self.work
        if len(self.blocks) == 1:
            try:
                loss_sum, done = run(X, Y, sw, order, bs, work, self.n_batches)
            except Diverged as exc:
                raise _diverged(epoch, exc) from None
            if bar is not None:
                bar.update(done)
            return loss_sum
        total = 0.0
        for lo, hi, steps in self.blocks:
            try:
                if order is None:
                    loss_sum, done = run(X[lo:hi], Y[lo:hi], None if sw is None else sw[lo:hi],
                                         None, bs, work, steps)
                else:
                    loss_sum, done = run(X, Y, sw, order[lo:hi], bs, work, steps)
            except Diverged as exc:
                raise _diverged(epoch, exc, lo // bs + exc.step) from None
            total += loss_sum
            if bar is not None:
                bar.update(done)
        return total


def _diverged(epoch, exc, step=None):
    """The FloatingPointError for ``Diverged`` ``exc`` (``step``: its step in the epoch)."""
    what = ("its update overflowed the parameters or the optimiser state" if exc.overflow
            else "the loss or a gradient is not finite")
    return FloatingPointError(
        f"training diverged at epoch {epoch}, step {exc.step if step is None else step}: "
        f"{what}; the model keeps its last finite parameters (try a smaller learning rate"
        f"{' or L2 penalty' if exc.overflow else ''})")


class ReducedEpoch:
    """One epoch step by step: local gradients, summed over processes, one update.

    ``reducer`` sums ``[rows * grad, rows, rows * loss, error flag]`` over the processes
    (``allreduce(send, recv)``) and turns a failure on any of them into the same exception
    everywhere (``failed(exc, where)``, ``diverged(local_bad, where, what, kept)``). Every
    process applies the same update, so the replicas stay identical. ``n_batches`` is the
    largest number of local batches over the processes; a process whose rows are used up
    contributes none, and every step is weighted by its true rows.
    """

    def __init__(self, trainer, X, Y, bs, n_batches, rows, reducer):
        self.trainer, self.X, self.Y, self.reducer = trainer, X, Y, reducer
        self.n_batches, self.rows = n_batches, rows
        self.cap = min(bs, X.shape[0])  # rows per step never exceed the local data
        self.bs = bs
        store = trainer.store
        P = store.size
        self.send = np.zeros(P + 3, store.dtype)  # [n * grad, n, n * loss, error flag]
        self.recv = np.empty_like(self.send)
        self.gviews = store.views(self.send[:P])
        self.params = store.views(trainer.theta)
        self.work = store.workspace(trainer.K, self.cap)
        self.comm_seconds = 0.0

    def epoch(self, order, epoch, bar):
        t, r = self.trainer, self.reducer
        send, recv, P = self.send, self.recv, self.send.size - 3
        n, chunk = self.X.shape[0], max(1, self.n_batches // 20)  # snapshots for an overflow
        loss_sum = 0.0
        self.comm_seconds = 0.0
        for step in range(self.n_batches):
            if step % chunk == 0:
                snap_step, snap_t = step, t.store.step
                t.snapshot()
            lo, hi = min(step * self.bs, n), min((step + 1) * self.bs, n)
            failed = None
            try:
                self._local(slice(lo, hi) if order is None else order[lo:hi])
            except Exception as exc:  # noqa: BLE001 - tell the other processes, then raise
                failed = exc
                send[:] = 0
                send[P + 2] = 1
            start = time.perf_counter()
            r.allreduce(send, recv)
            self.comm_seconds += time.perf_counter() - start
            where = f"epoch {epoch}, step {step + 1}"
            if recv[P + 2] != 0:
                r.failed(failed, f"distributed fit stopped at {where}")
            if not t.finite(recv):
                r.diverged(not t.finite(send), where, "the loss or a gradient is not finite",
                           "the model keeps its last finite parameters")
            g = recv[:P]
            g /= recv[P]
            t.store.step += 1
            t.K.update(t.theta, g, t.s1, t.s2, t.shapes, t.code, t.hyper, t.store.step)
            if not t.state_finite():
                t.restore()
                t.store.step = snap_t
                r.diverged(False, where, "an update overflowed",
                           f"the model was restored to its parameters before step "
                           f"{snap_step + 1} of epoch {epoch}")
            loss_sum += float(recv[P + 1])
            if bar is not None:
                bar.update(1)
        return loss_sum

    def _local(self, rows):
        """Fill ``send`` with this process's ``[n * grad, n, n * loss, 0]`` for ``rows``."""
        t, send, P = self.trainer, self.send, self.send.size - 3
        n = rows.stop - rows.start if isinstance(rows, slice) else rows.size
        if n == 0:
            send[:] = 0
            return
        Xb, Yb, _, As, D0, D1 = work_views(self.work, t.shapes, self.cap, n)
        if isinstance(rows, slice):
            Xb, Yb = self.X[rows], self.Y[rows]
        else:
            np.take(self.X, rows, axis=0, out=Xb)
            np.take(self.Y, rows, axis=0, out=Yb)
        value = batch_gradients(t.K, Xb, Yb, None, self.params, self.gviews, t.acts, t.loss, As, D0,
                                D1)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite sums are caught after
            send[:P] *= n
            send[P:] = (n, value * n, 0)


def blocks_of(n_batches, bs, n, progress):
    """Rows per compiled call: about 1/20 of an epoch with a progress bar (so the bar moves),
    else the whole epoch (fewest calls from Python)."""
    return max(1, n_batches // 20) * bs if progress else n


def body_for(model, K, opt, X, Y, sw, bs, progress, reducer=None, n_batches=None, rows=None):
    """The one decision of how an epoch's batches run: step by step with a ``reducer``
    (distributed training), else the backend's compiled loop."""
    trainer = trainer_for(model, K, opt.code, opt.n_state)
    if reducer is not None:
        return ReducedEpoch(trainer, X, Y, bs, n_batches, rows, reducer)
    n = X.shape[0]
    return CompiledEpoch(trainer, X, Y, sw, bs, blocks_of(math.ceil(n / bs), bs, n, progress))
