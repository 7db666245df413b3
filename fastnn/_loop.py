"""The epoch loop shared by ``fit`` and the scikit-learn estimators.

It runs the backend's compiled ``train_epoch`` in chunks of whole batches (so the progress bar
moves and a divergence is caught with a snapshot to fall back on), and around each epoch does the
Python-side work: the learning-rate schedule, metrics on the training and validation data,
plateau detection (tolerance stopping, "adaptive" step decay, early stopping with the best weights
kept) and user callbacks. Inputs arrive validated; nothing here checks them again.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import _device
from .kernels.codes import BCE, CROSS_ENTROPY, H_L2, H_LR
from .kernels.passes import forward_pass
from .optim import invscaling_lr

_EVAL_ROWS = 4096  # rows per forward pass when scoring, to bound the scratch memory


@dataclass
class Plan:
    """What one training call does (all values already validated)."""

    epochs: int
    batch_size: int
    opt: object
    l2: float = 0.0
    shuffle: bool = True
    schedule: str = "constant"
    power_t: float = 0.5
    tol: float = None          # None: no plateau detection (unless adaptive or early stopping)
    patience: int = 10         # epochs without improvement that make a plateau
    monitor: str = "loss"      # "loss", "val_loss" or "val_score" (higher is better)
    lr_factor: float = 0.5     # "adaptive": η is multiplied by this on a plateau...
    lr_min: float = 0.0        # ...unless η <= lr_min already, which stops training
    restore_best: bool = False
    train_accuracy: bool = True
    loss_scale: float = 1.0    # reported loss = scale * data loss + L2 term
    progress: bool = False


@dataclass
class State:
    """What carries over between calls (``partial_fit``): RNG, step size, plateau record."""

    rng: np.random.Generator
    lr: float
    samples_seen: int = 0
    best: float = math.inf
    no_improve: int = 0
    best_theta: np.ndarray = None


def _plateau_enabled(plan):
    return plan.tol is not None or plan.schedule == "adaptive" or plan.monitor != "loss"


def evaluate(model, K, X, Y, sw, loss_scale=1.0):
    """Weighted mean loss and score on (X, Y): accuracy for classifiers, R² for regression.

    One forward pass in row chunks; classifier accuracy compares the logits' argmax (softmax)
    or sign (sigmoid, every column must match), so no activation is needed for it.
    """
    n = X.shape[0]
    params = model._params()
    loss = model._loss
    rows = min(n, _EVAL_ROWS)
    outs = [np.empty((rows, W.shape[0]), dtype=model.dtype) for W, _ in params]
    dZ = np.empty_like(outs[-1])
    wsum = float(n if sw is None else sw.sum(dtype=np.float64))
    total = right = 0.0
    sse = np.zeros(Y.shape[1])
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        m = stop - start
        Xc, Yc = X[start:stop], Y[start:stop]
        wc = None if sw is None else sw[start:stop]
        bufs = [o[:m] for o in outs]
        Z = forward_pass(K, Xc, params, model._acts, bufs, logits=True)
        total += K.output_step(Z, Yc, loss, dZ[:m], wc) * m
        if loss == CROSS_ENTROPY:
            hit = Z.argmax(axis=1) == Yc.argmax(axis=1)
        elif loss == BCE:
            hit = np.all((Z >= 0) == (Yc >= 0.5), axis=1)
        else:
            err = (Yc.astype(np.float64) - Z) ** 2
            sse += err.sum(axis=0) if wc is None else wc @ err
            continue
        right += hit.sum() if wc is None else float(wc @ hit)
    mean_loss = loss_scale * total / wsum
    if loss in (CROSS_ENTROPY, BCE):
        return mean_loss, right / wsum
    Yd = Y.astype(np.float64)
    w = np.ones(n) if sw is None else sw.astype(np.float64)
    mu = w @ Yd / wsum
    sst = w @ (Yd - mu) ** 2
    r2 = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.where(sse == 0, 1.0, 0.0))
    return mean_loss, float(r2.mean())


def _bar(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="fit", unit="step", leave=True, dynamic_ncols=True)


def _train(K, model, X, Y, sw, order, lo, hi, bs, opt_code, hyper, arrays, t0):
    """The compiled loop over the batches of rows ``lo:hi`` of the epoch (of ``order``)."""
    theta, grad, s1, s2, work = arrays
    if order is None:
        if lo > 0 or hi < X.shape[0]:
            X, Y, sw = X[lo:hi], Y[lo:hi], None if sw is None else sw[lo:hi]
    else:
        order = order[lo:hi]
    return K.train_epoch(X, Y, sw, order, theta, grad, model._shapes, model._acts, model._loss,
                         bs, opt_code, hyper, s1, s2, t0, work)


class _Orders:
    """The epochs' row orders, drawn from ``rng`` up to ``BLOCK`` epochs at a time.

    ``rng.permuted`` over the rows of a block draws exactly what as many calls of
    ``rng.permutation(n)`` would, in one call (~1.2 µs an epoch of 112 rows instead of ~3 µs).
    ``settle`` then leaves ``rng`` where those calls would have: after the orders taken, not
    the block drawn. Only for loops that run no user code between epochs (it might draw from
    ``rng`` too).
    """

    BLOCK = 16

    def __init__(self, rng, n, epochs):
        self.rng, self.left = rng, epochs
        rows = max(1, min(epochs, self.BLOCK, (1 << 16) // n))  # and at most 64 Ki elements
        self.ordered = np.arange(n)
        self.block = np.empty((rows, n), dtype=np.int64)
        self.taken = self.drawn = 0
        self.start = None  # the state of ``rng`` before the block was drawn

    def take(self):
        """The next epoch's order."""
        if self.taken == self.drawn:
            self._draw(min(self.left, len(self.block)))
            self.left -= self.drawn
        order = self.block[self.taken]
        self.taken += 1
        return order

    def _draw(self, count):
        # a block of one is always used up: no state to keep for settle
        self.start = self.rng.bit_generator.state if count > 1 else None
        block = self.block[:count]
        block[...] = self.ordered
        self.rng.permuted(block, axis=1, out=block)
        self.taken, self.drawn = 0, count

    def settle(self):
        """Rewind ``rng`` to just after the orders taken."""
        if self.taken < self.drawn:
            taken = self.taken
            self.rng.bit_generator.state = self.start
            self._draw(taken)


def _epoch_trainer(model, K, ops, X, Y, sw, bs, chunk, opt_code, hyper, arrays):
    """``train(order, epoch, bar)``: every batch of one epoch, in chunks of ``chunk`` rows;
    returns the summed batch loss (times rows).

    What stays the same between epochs is bound here once: an epoch in one chunk then costs the
    compiled call and the snapshot around it. Before each chunk the parameters and optimiser
    state are copied aside; the compiled loop stops before any update whose loss or gradient is
    not finite, and an update that itself overflows is caught after the chunk. Either way
    ``_diverged`` falls back on the copy and raises.
    """
    theta, grad, s1, s2, work = arrays
    kernel, shapes, acts, loss = K.train_epoch, model._shapes, model._acts, model._loss
    finite, copyto = ops.all_finite, ops.copyto
    if ops is _device.HostOps:
        from .model import _step_helpers

        fast = _step_helpers(K)  # the compiled memcpy and check: ~1.5 µs less an epoch
        if fast is not None:
            finite, copyto = fast.all_finite, fast.copy_into
    # copies to fall back on (empty optimiser state needs none)
    saved = [(ops.empty_like(a), a) for a in (theta, s1, s2) if a.size]
    n = X.shape[0]
    bounds = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    chunks = [(start, stop, -(-(stop - start) // bs)) for start, stop in bounds]  # and steps
    whole = len(chunks) == 1

    def train(order, epoch, bar):
        total = 0.0
        for start, stop, steps in chunks:
            for keep, arr in saved:
                copyto(keep, arr)
            t0 = model._opt_t
            if whole:
                loss_sum, done = kernel(X, Y, sw, order, theta, grad, shapes, acts, loss, bs,
                                        opt_code, hyper, s1, s2, t0, work)
            else:
                loss_sum, done = _train(K, model, X, Y, sw, order, start, stop, bs, opt_code,
                                        hyper, arrays, t0)
            if done != steps or not finite(theta):
                _diverged(K, model, X, Y, sw, order, start, done, bs, opt_code, hyper, arrays,
                          t0, saved, copyto, finite, epoch)
            model._opt_t = t0 + done
            total += loss_sum
            if bar is not None:
                bar.update(done)
        return total

    return train


def _diverged(K, model, X, Y, sw, order, start, done, bs, opt_code, hyper, arrays, t0, saved,
              copyto, finite, epoch):
    """Recover from a chunk (from row ``start``) that ran ``done`` updates and diverged.

    Replays the chunk from the copies in ``saved`` (``(copy, live array)`` pairs) up to the last
    update that left the parameters finite (the replay is deterministic), then raises
    FloatingPointError naming the failing step.
    """
    theta = arrays[0]
    failed = done + 1  # the batch whose loss or gradient was not finite
    while done > 0 and not finite(theta):
        failed = done  # this update overflowed the parameters
        done -= 1
        for keep, arr in saved:
            copyto(arr, keep)
        if done:
            _train(K, model, X, Y, sw, order, start, start + done * bs, bs, opt_code, hyper,
                   arrays, t0)
    if not finite(theta):
        for keep, arr in saved:
            copyto(arr, keep)
    model._opt_t = t0 + done
    raise FloatingPointError(
        f"training diverged at epoch {epoch}, step {start // bs + failed}: the loss or a "
        "gradient is not finite; the model keeps its last finite parameters (try a "
        "smaller learning rate)"
    )


def _plateau(plan, state, logs, model, history, epoch):
    """Update the plateau record after an epoch; returns a stop reason or None.

    Only called when ``_plateau_enabled(plan)``.
    """
    if plan.monitor == "val_score":
        value = -logs.get("val_accuracy", logs.get("val_r2"))
    else:
        value = logs[plan.monitor]
    tol = plan.tol or 0.0
    improved = value <= state.best - tol  # "fallen by at least tol", as scikit-learn counts
    if value < state.best:
        state.best = value
        history.best_epoch = epoch
        if plan.restore_best:
            if state.best_theta is None:
                state.best_theta = model._theta.copy()
            else:
                np.copyto(state.best_theta, model._theta)
    state.no_improve = 0 if improved else state.no_improve + 1
    if state.no_improve < plan.patience:
        return None
    if plan.schedule == "adaptive" and state.lr > plan.lr_min:
        state.lr *= plan.lr_factor
        state.no_improve = 0
        return None
    if plan.schedule == "adaptive":
        return "lr_min"
    return "no_improvement"


def run(model, X, Y, sw, plan, state, history, val=None, callbacks=(), K=None):
    """Train ``model`` for up to ``plan.epochs`` epochs; records into ``history`` and returns it.

    ``X``, ``Y`` (dense targets) and ``sw`` (None or weights) are validated host arrays, or
    device arrays given by the user for a device backend. ``val`` is None or
    ``(X_val, Y_val, sw_val)`` on the host. ``callbacks`` are objects with any of
    ``on_train_begin(model)``, ``on_epoch_end(epoch, logs)`` (return True to stop) and
    ``on_train_end(history)``. ``K`` is the model's kernel module when the caller has it.
    Each epoch does only the work the plan asks for (no metrics, callbacks, plateau record or
    progress bar unless requested), so a short call costs little besides the compiled loop.
    """
    if K is None:
        K = model._kernels()
    device = _device.on_device(K)
    X_host = None if device and K.is_device_array(X) else X
    # host arrays, or device copies for a device backend (data goes up once per call)
    ops, X, Y, theta, grad, work_for, state_for, trained = _device.fit_arrays(
        model, K, X, Y, checked=True)
    if sw is not None and device:
        sw = K.to_device(sw)
    n = X.shape[0]
    bs = min(plan.batch_size, n)
    n_batches = -(-n // bs)
    opt = plan.opt
    hyper = opt.hyper()
    l2 = hyper[H_L2] = plan.l2
    s1, s2 = model._optimizer_state(opt)
    s1, s2 = state_for(s1), state_for(s2)
    arrays = (theta, grad, s1, s2, work_for(bs))
    # With a progress bar the compiled loop runs ~1/20 epoch at a time so the bar moves;
    # without one, whole epochs (fewest calls from Python).
    chunk = max(1, n_batches // 20) * bs if plan.progress else n
    train = _epoch_trainer(model, K, ops, X, Y, sw, bs, chunk, opt.code, hyper, arrays)
    weights = [layer._W.reshape(-1) for layer in model.layers] if l2 else ()
    half_l2 = 0.5 * l2
    classifier = model._loss in (CROSS_ENTROPY, BCE)
    score_key = "val_accuracy" if classifier else "val_r2"
    # metrics run on the host: with a device backend, on the reference kernels after a sync
    K_eval = K
    if device:
        from .kernels import reference as K_eval
    train_accuracy = plan.train_accuracy and classifier and X_host is not None
    Y_host = Y if not device else None
    plateau = _plateau_enabled(plan)
    invscaling = plan.schedule == "invscaling"
    shuffle = plan.shuffle
    sync = device and (l2 or val is not None or train_accuracy or plan.restore_best)
    scale = plan.loss_scale

    def train_epoch(epoch, order, bar):
        """Train one epoch in ``order`` (None: as stored); returns its learning rate and mean
        loss (L2 term included)."""
        lr = invscaling_lr(opt.lr, plan.power_t, state.samples_seen) if invscaling else state.lr
        hyper[H_LR] = lr
        total = train(order, epoch, bar)
        state.samples_seen += n
        if sync:
            trained()
            _device.sync_host(model)
        penalty = 0.0
        for w in weights:  # the L2 term l2/2 * sum ||W||², over flat weight views
            penalty += float(w.dot(w))
        return lr, float(scale * total / n + half_l2 * penalty)

    if not (device or callbacks or train_accuracy or val is not None or plan.progress
            or plan.restore_best):
        # the training loss is all there is to record (and watch): the lean loop
        losses, lrs = history.loss, history.lr
        orders = _Orders(state.rng, n, plan.epochs) if shuffle else None
        try:
            for epoch in range(history.epochs + 1, history.epochs + plan.epochs + 1):
                lr, loss = train_epoch(epoch, None if orders is None else orders.take(), None)
                reason = (_plateau(plan, state, {"loss": loss}, model, history, epoch)
                          if plateau else None)
                losses.append(loss)
                lrs.append(lr)
                history.epochs = epoch
                if reason is not None:
                    history.stop_reason = reason
                    break
        finally:
            if orders is not None:
                orders.settle()
        return history
    for cb in callbacks:
        getattr(cb, "on_train_begin", _noop)(model)
    bar = _bar(plan.epochs * n_batches, plan.progress)
    try:
        for _ in range(plan.epochs):
            epoch = history.epochs + 1
            lr, loss = train_epoch(epoch, state.rng.permutation(n) if shuffle else None, bar)
            logs = {"loss": loss, "lr": lr}
            if train_accuracy:
                if Y_host is None:
                    Y_host = K.to_host(Y)
                sw_host = None if sw is None or not device else K.to_host(sw)
                logs["accuracy"] = evaluate(model, K_eval, X_host, Y_host,
                                            sw if not device else sw_host)[1]
            if val is not None:
                logs["val_loss"], logs[score_key] = evaluate(model, K_eval, *val, scale)
            reason = _plateau(plan, state, logs, model, history, epoch) if plateau else None
            history._record(logs)
            for cb in callbacks:
                hook = getattr(cb, "on_epoch_end", None)
                if hook is not None and hook(epoch, dict(logs)):
                    reason = reason or "callback"
            if bar is not None:
                bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
            if reason is not None:
                history.stop_reason = reason
                break
    finally:
        trained()
        if bar is not None:
            bar.close()
    if plan.restore_best and state.best_theta is not None:
        _device.sync_host(model)
        np.copyto(model._theta, state.best_theta)
        if device:
            ops.copyto(theta, model._theta)
    for cb in callbacks:
        getattr(cb, "on_train_end", _noop)(history)
    return history


def _noop(*args):
    return None
