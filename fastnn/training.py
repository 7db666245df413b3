"""fit: the training loop around the backend's compiled epoch loop, and the History it returns."""

import math

import numpy as np

from . import _backend, _device
from ._codes import H_L2
from ._validation import (
    check_nonnegative_float, check_positive_float, check_positive_int,
)
from .optim import get_optimizer


class History:
    """Per-epoch training record: ``loss`` (mean training loss), plus any other metric lists."""

    def __init__(self):
        self.loss = []
        self.epochs = 0

    def __repr__(self):
        last = f"{self.loss[-1]:.6g}" if self.loss else "n/a"
        return f"History(epochs={self.epochs}, loss={last})"


def _progress_bar(total, enabled, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=True, dynamic_ncols=True)


def fit(model, X, y, *, epochs=10, batch_size=32, lr=0.01, optimizer="sgd", shuffle=True,
        seed=None, progress=True, l2=0.0):
    """Train ``model`` on (X, y) with mini-batch gradient descent in the backend's epoch loop.

    Parameters
    ----------
    model : MLP
    X : array_like (n, in)
    y : array_like
        Labels (n,) or one-hot (n, k) for cross-entropy; 0/1 for bce; values for mse.
    epochs : int
        Passes over the data, >= 1.
    batch_size : int
        Rows per step, >= 1 (capped at n). 1 is per-sample SGD, n is full-batch descent.
    lr : float
        Learning rate for a named optimizer.
    optimizer : {"sgd", "momentum", "nesterov", "adam"} or fastnn.optim.Optimizer
    shuffle : bool
        Visit the rows in a new random order each epoch (drawn from ``seed``).
    seed : int, optional
        Seed of the shuffling.
    progress : bool
        Show a tqdm progress bar with the running loss.
    l2 : float
        L2 penalty λ: adds ``λ/2 ||W||²`` to the loss (biases unpenalised).

    Returns
    -------
    History

    Raises
    ------
    ValueError
        For bad input, before anything changes.
    FloatingPointError
        When the loss or a gradient turns non-finite; it names the epoch and step, and the model
        keeps its last finite parameters.
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    opt = get_optimizer(optimizer, check_positive_float(lr, "lr"))
    l2 = check_nonnegative_float(l2, "l2")
    model._check_trainable()
    K = _backend.kernels()
    # host arrays, or device copies for a device backend (data goes up once per fit)
    ops, X, Y, theta, grad, work_for, state_for, trained = _device.fit_arrays(model, K, X, y)
    n = X.shape[0]
    batch_size = min(batch_size, n)
    n_batches = math.ceil(n / batch_size)
    hyper = opt.hyper()
    hyper[H_L2] = l2
    s1, s2 = (state_for(s) for s in model._optimizer_state(opt))
    work = work_for(batch_size)
    rng = np.random.default_rng(seed)
    history = History()
    # Progress and the divergence snapshot work in chunks of whole batches, so the compiled
    # loop runs long stretches and the bar still moves within an epoch.
    chunk = max(1, n_batches // 20) * batch_size
    saved = [ops.empty_like(a) for a in (theta, s1, s2)]
    bar = _progress_bar(epochs * n_batches, progress, "fit")
    try:
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffle else None
            total = 0.0
            for start in range(0, n, chunk):
                stop = min(start + chunk, n)
                for keep, live in zip(saved, (theta, s1, s2)):
                    ops.copyto(keep, live)
                t0 = model._opt_t
                if order is None:
                    part = K.train_epoch(X[start:stop], Y[start:stop], None, None, theta,
                                         grad, model._shapes, model._acts, model._loss,
                                         batch_size, opt.code, hyper, s1, s2, t0, work)
                else:
                    part = K.train_epoch(X, Y, None, order[start:stop], theta,
                                         grad, model._shapes, model._acts, model._loss,
                                         batch_size, opt.code, hyper, s1, s2, t0, work)
                loss_sum, done = part
                want = math.ceil((stop - start) / batch_size)
                if done < want or not ops.all_finite(theta):
                    if done < want:  # the loop stopped before the bad update
                        step = start // batch_size + done + 1
                    else:  # an update overflowed: go back to the chunk's start
                        for keep, live in zip(saved, (theta, s1, s2)):
                            ops.copyto(live, keep)
                        step, done = start // batch_size + 1, 0
                    model._opt_t = t0 + done
                    raise FloatingPointError(
                        f"training diverged at epoch {epoch + 1}, step {step}: the loss or a "
                        "gradient is not finite; the model keeps its last finite parameters "
                        "(try a smaller learning rate)"
                    )
                model._opt_t = t0 + done
                total += loss_sum
                if bar is not None:
                    bar.update(done)
            mean = total / n
            history.loss.append(mean)
            history.epochs += 1
            if bar is not None:
                bar.set_postfix(loss=f"{mean:.4g}", refresh=False)
    finally:
        trained()
        if bar is not None:
            bar.close()
    return history

