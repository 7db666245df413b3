"""The epoch loop's built-in hooks: metrics, plateau rules, the History, callbacks, progress.

A hook has any of ``begin(model)``, ``epoch_end(epoch, logs)`` (returns a stop reason or None),
``close()`` (always, when the loop ends) and ``end(history)`` (when it ends without an error).
The loop calls them in list order, so each sees what the ones before it added to ``logs``.
"""

import numpy as np

from .kernels.codes import BCE, CROSS_ENTROPY
from .kernels.passes import forward_pass

_EVAL_ROWS = 4096  # rows per forward pass when scoring, to bound the scratch memory


class Hook:
    """Base class: every method does nothing."""

    def begin(self, model):
        pass

    def epoch_end(self, epoch, logs):
        return None

    def close(self):
        pass

    def end(self, history):
        pass


def evaluate(model, K, X, Y, sw, loss_scale=1.0):
    """Weighted mean loss and score on host arrays (X, Y): accuracy or R².

    One forward pass in row chunks; classifier accuracy compares the logits' argmax (softmax)
    or sign (sigmoid, every column must match), so no activation is needed for it.
    """
    spec, n = model.spec, X.shape[0]
    params = model.store.views(model.store.theta)
    loss = spec.loss
    rows = min(n, _EVAL_ROWS)
    outs = [np.empty((rows, W.shape[0]), dtype=spec.dtype) for W, _ in params]
    dZ = np.empty_like(outs[-1])
    wsum = float(n if sw is None else sw.sum(dtype=np.float64))
    total = right = 0.0
    sse = np.zeros(Y.shape[1])
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        m = stop - start
        Xc, Yc = X[start:stop], Y[start:stop]
        wc = None if sw is None else sw[start:stop]
        Z = forward_pass(K, Xc, params, spec.acts, [o[:m] for o in outs], logits=True)
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


class Metrics(Hook):
    """Training accuracy and validation loss/score, after each epoch, on the host.

    ``K`` is a host kernel module (the reference kernels for a device backend: the model's
    host arrays are synchronised first). ``train`` is ``(X, Y, sw)`` for training accuracy,
    ``val`` the validation data, either None.
    """

    def __init__(self, model, K, train=None, val=None, loss_scale=1.0):
        self.model, self.K, self.train, self.val, self.scale = model, K, train, val, loss_scale
        self.score_key = "val_accuracy" if model.spec.loss in (CROSS_ENTROPY, BCE) else "val_r2"

    def epoch_end(self, epoch, logs):
        if self.train is not None:
            logs["accuracy"] = evaluate(self.model, self.K, *self.train)[1]
        if self.val is not None:
            logs["val_loss"], logs[self.score_key] = evaluate(self.model, self.K, *self.val,
                                                              self.scale)
        return None


class Plateau(Hook):
    """Tolerance stopping, early stopping and the optimiser's plateau reaction ("adaptive").

    The monitored value ("loss", "val_loss", or "val_score": the validation accuracy or R²,
    higher is better) has plateaued after ``patience`` epochs without falling by ``tol``.
    Then the optimiser's schedule reacts (the adaptive one lowers the rate and training goes
    on) or training stops. With ``restore_best`` the best epoch's parameters are kept aside
    and put back at the end. The record lives in ``state`` (it carries over ``partial_fit``).
    """

    def __init__(self, model, opt, state, history, tol, patience, monitor, restore_best):
        self.model, self.opt, self.state, self.history = model, opt, state, history
        self.tol, self.patience, self.monitor = tol or 0.0, patience, monitor
        self.restore_best = restore_best

    def epoch_end(self, epoch, logs):
        state = self.state
        if self.monitor == "val_score":
            value = -logs.get("val_accuracy", logs.get("val_r2"))
        else:
            value = logs[self.monitor]
        improved = value <= state.best - self.tol  # "fallen by at least tol", as scikit-learn
        if value < state.best:
            state.best = value
            self.history.best_epoch = epoch
            if self.restore_best:
                theta = self.model.store.theta
                if state.best_theta is None:
                    state.best_theta = theta.copy()
                else:
                    np.copyto(state.best_theta, theta)
        state.no_improve = 0 if improved else state.no_improve + 1
        if state.no_improve < self.patience:
            return None
        reason = self.opt.schedule.on_plateau(self.opt)
        if reason is None:
            state.no_improve = 0
        return reason

    def end(self, history):
        if self.restore_best and self.state.best_theta is not None:
            self.model.store.theta[...] = self.state.best_theta


class Record(Hook):
    """Append each epoch's values to the History."""

    def __init__(self, history):
        self.history = history

    def epoch_end(self, epoch, logs):
        self.history.record(logs)
        return None


class Callbacks(Hook):
    """The user's ``fastnn.callbacks.Callback`` objects; any ``on_epoch_end`` returning True
    stops training ("callback")."""

    def __init__(self, callbacks):
        self.callbacks = callbacks

    def begin(self, model):
        for cb in self.callbacks:
            cb.on_train_begin(model)

    def epoch_end(self, epoch, logs):
        stop = False
        for cb in self.callbacks:
            if cb.on_epoch_end(epoch, dict(logs)):
                stop = True
        return "callback" if stop else None

    def end(self, history):
        for cb in self.callbacks:
            cb.on_train_end(history)


class Progress(Hook):
    """A tqdm progress bar over every batch of the run, with the running loss."""

    def __init__(self, total, desc="fit"):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="step", leave=True, dynamic_ncols=True)

    def update(self, n):
        self.bar.update(n)

    def epoch_end(self, epoch, logs):
        self.bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
        return None

    def close(self):
        self.bar.close()


