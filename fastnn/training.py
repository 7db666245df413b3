"""fit: every training option checked once, then the one epoch loop (``fastnn._loop``).

``train`` assembles the loop's body and hooks from checked values; ``fit`` and the
scikit-learn estimators both call it.
"""

import copy

import numpy as np

from . import _backend, _hooks, _loop
from ._device import as_input
from ._trainer import body_for
from ._validation import (
    as_matrix, check_bool, check_fraction, check_nonnegative_float, check_positive_int,
    check_sample_weight, check_seed, check_trainable, targets,
)
from .callbacks import as_callbacks
from .data import validation_split
from .history import History
from .kernels.codes import BCE, CROSS_ENTROPY
from .optim import check_schedule, get_optimizer, make_schedule

__all__ = ["History", "check_sample_weight", "fit", "train", "validation_split"]

_METRICS = ("accuracy",)


def _check_metrics(metrics):
    if type(metrics) is tuple and not metrics:
        return metrics
    metrics = () if metrics is None else ((metrics,) if isinstance(metrics, str) else metrics)
    try:
        metrics = tuple(metrics)
    except TypeError:
        raise ValueError(f"metrics must be a sequence of names, got {metrics!r}") from None
    for m in metrics:
        if m not in _METRICS:
            raise ValueError(f"unknown metric {m!r}; expected a subset of {list(_METRICS)}")
    return metrics


def _check_validation_data(spec, data):
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (X_val, y_val) or "
                         "(X_val, y_val, sample_weight_val)")
    Xv = as_matrix(data[0], spec.dtype, spec.n_in, name="X_val")
    Yv = targets(data[1], spec.loss, Xv.shape[0], spec.n_out, spec.dtype)
    swv = check_sample_weight(data[2], Xv.shape[0], spec.dtype) if len(data) == 3 else None
    return Xv, Yv, swv


def fit(model, X, y, *, epochs=10, batch_size=32, lr=0.01, optimizer="sgd", shuffle=True,
        seed=None, progress=True, l2=0.0, sample_weight=None, schedule="constant", power_t=0.5,
        tol=None, n_iter_no_change=10, early_stopping=False, validation_fraction=0.1,
        validation_data=None, metrics=(), callbacks=None):
    """Train ``model`` on (X, y) with mini-batch gradient descent in the backend's epoch loop.

    Parameters
    ----------
    model : MLP
    X : array_like (n, in)
        On the cuda backend, a GPU array (``__cuda_array_interface__``) is used in place.
    y : array_like
        Labels (n,) or one-hot (n, k) for cross-entropy; 0/1 for bce; values for mse.
    epochs : int
        Most passes over the data, >= 1 (fewer when a stopping rule ends training).
    batch_size : int
        Rows per step, >= 1 (capped at n). 1 is per-sample SGD, n is full-batch descent.
    lr : float
        Initial learning rate η for a named optimizer (an Optimizer instance brings its own).
    optimizer : {"sgd", "momentum", "nesterov", "adam"} or fastnn.optim.Optimizer
        The optimiser's state (velocity, moments, step) carries over to the next fit or
        train_step while its kind stays the same.
    shuffle : bool
        Visit the rows in a new random order each epoch (drawn from ``seed``).
    seed : int, optional
        Seed of the shuffling and of the validation split.
    progress : bool
        Show a tqdm progress bar with the running loss.
    l2 : float
        L2 penalty λ: adds ``λ/2 ||W||²`` to the loss (biases unpenalised).
    sample_weight : array_like (n,), optional
        Non-negative per-sample weights; rescaled to mean 1, so only their ratios matter.
    schedule : {"constant", "invscaling", "adaptive"}
        "constant" keeps the optimiser's own schedule (constant for a named one).
        "invscaling" uses ``η / (t + 1) ** power_t`` with t the number of samples seen before
        the epoch (updated once per epoch, as scikit-learn does). "adaptive" halves η whenever
        the monitored loss has not fallen by ``tol`` (0 when ``tol`` is None) for
        ``n_iter_no_change`` epochs, and stops once η has fallen to ``1e-6 * lr``.
    power_t : float
        Exponent of "invscaling", >= 0.
    tol : float, optional
        Stop when the monitored loss has not fallen by at least ``tol`` for ``n_iter_no_change``
        consecutive epochs (with "adaptive", η is halved instead). None: no tolerance stopping.
        The monitored loss is the validation loss with early stopping, else the training loss.
    n_iter_no_change : int
        Patience, in epochs, of ``tol``, "adaptive" and early stopping.
    early_stopping : bool
        Hold out data, stop when its loss stops falling (as ``tol`` says) and restore the
        weights of the epoch with the lowest validation loss.
    validation_fraction : float
        Share of (X, y) held out for early stopping when ``validation_data`` is not given,
        stratified by class for classifiers.
    validation_data : tuple, optional
        ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``: scored after every epoch
        (recorded in the History) and used by early stopping instead of a split.
    metrics : sequence of str
        ``("accuracy",)`` records the training accuracy of a classifier after each epoch (one
        more forward pass over X per epoch, so it is off by default). Validation accuracy (or
        R²) is always recorded with the validation loss.
    callbacks : sequence, optional
        Each is a ``fastnn.callbacks.Callback`` or a function ``f(epoch, logs)``; it is called
        after every epoch with the epoch (1-based) and a dict of that epoch's values, and
        returning True stops training.

    Returns
    -------
    History

    Raises
    ------
    ValueError
        For bad input, before anything changes.
    FloatingPointError
        When the loss, a gradient, the parameters or the optimiser state turn non-finite; it
        names the epoch and step, and the model keeps its last finite parameters.

    Notes
    -----
    Interrupted training is never half-applied: a KeyboardInterrupt, or an exception from a
    callback, at any point leaves the model exactly at the end of some whole step k, with its
    optimiser's step count at k, on every backend; ``fit`` can be called again from there.
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed)
    opt = get_optimizer(optimizer, lr)
    l2 = check_nonnegative_float(l2, "l2")
    shuffle = check_bool(shuffle, "shuffle")
    progress = check_bool(progress, "progress")
    schedule = check_schedule(schedule)
    power_t = check_nonnegative_float(power_t, "power_t")
    if schedule != "constant":  # fit's schedule replaces the optimiser's, on a copy
        opt = copy.copy(opt)
        opt.schedule = make_schedule(schedule, power_t)
    tol = None if tol is None else check_nonnegative_float(tol, "tol")
    patience = check_positive_int(n_iter_no_change, "n_iter_no_change")
    early_stopping = check_bool(early_stopping, "early_stopping")
    fraction = check_fraction(validation_fraction, "validation_fraction", low_open=True)
    metrics = _check_metrics(metrics)
    callbacks = as_callbacks(callbacks)
    spec = model.spec
    check_trainable(spec)
    K = _backend.kernels(model.backend)
    device = K.ON_DEVICE
    on_device = device and K.is_device_array(X)
    if device and K.is_device_array(y):
        y = K.to_host(y)  # targets are checked and one-hot encoded on the host
    if on_device and early_stopping and validation_data is None:
        X = K.to_host(X)  # the split is made on the host
        on_device = False
    if on_device:  # device input goes to the kernels as it is, checked there without a copy
        X = as_input(K, X, spec.dtype, spec.n_in)[0]
    else:
        X = as_matrix(X, spec.dtype, spec.n_in)
    Y = targets(y, spec.loss, X.shape[0], spec.n_out, spec.dtype)
    sw = check_sample_weight(sample_weight, X.shape[0], spec.dtype)
    val = None if validation_data is None else _check_validation_data(spec, validation_data)
    # a Generator costs ~10 µs to seed: made only when something draws from it
    split = early_stopping and val is None
    rng = np.random.default_rng(seed) if shuffle or split else None
    if split:
        labels = Y.argmax(axis=1) if spec.loss == CROSS_ENTROPY else None
        kept, held = validation_split(X.shape[0], fraction, rng, labels)
        val = (X[held], Y[held], None if sw is None else sw[held])
        X, Y = X[kept], Y[kept]
        sw = None if sw is None else sw[kept]
    train_accuracy = ("accuracy" in metrics and spec.loss in (CROSS_ENTROPY, BCE)
                      and not on_device)
    return train(model, K, X, Y, sw, opt.restart(), epochs=epochs, batch_size=batch_size, l2=l2,
                 rng=rng if shuffle else None, tol=tol, patience=patience,
                 monitor="val_loss" if early_stopping else "loss",
                 restore_best=early_stopping, val=val, train_accuracy=train_accuracy,
                 progress=progress, callbacks=callbacks)


def train(model, K, X, Y, sw, opt, *, epochs, batch_size, l2=0.0, rng=None, tol=None,
          patience=10, monitor="loss", restore_best=False, val=None, train_accuracy=False,
          loss_scale=1.0, progress=False, callbacks=(), state=None, history=None):
    """Run the one epoch loop on checked data: the body, hooks and orders the options ask for.

    ``X``, ``Y`` (dense targets) and ``sw`` are checked host arrays, or ``X`` a checked device
    array for a device backend ``K``; ``val`` is None or host ``(X_val, Y_val, sw_val)``;
    ``rng`` None means no shuffling; ``state`` (``_loop.State``) carries the plateau record and
    samples seen between calls. Each epoch does only the work asked for: no metrics, plateau
    record, callbacks or progress bar unless requested.
    """
    state = _loop.State() if state is None else state
    history = History() if history is None else history
    X_host = X if not (K.ON_DEVICE and K.is_device_array(X)) else None
    Y_host, sw_host = Y, sw
    bs = min(batch_size, X.shape[0])
    if K.ON_DEVICE:  # the data goes up once per call
        X, Y = K.to_backend(X), K.to_backend(Y)
        sw = None if sw is None else K.to_backend(sw)
    body = body_for(model, K, opt, X, Y, sw, bs, progress)
    hooks = []
    if val is not None or (train_accuracy and X_host is not None):
        K_eval = _backend.kernels("numpy") if K.ON_DEVICE else K
        hooks.append(_hooks.Metrics(model, K_eval,
                                    (X_host, Y_host, sw_host) if train_accuracy else None,
                                    val, loss_scale))
    if tol is not None or opt.schedule.name == "adaptive" or monitor != "loss":
        hooks.append(_hooks.Plateau(model, opt, state, history, tol, patience, monitor,
                                    restore_best))
    hooks.append(_hooks.Record(history))
    if callbacks:
        hooks.append(_hooks.Callbacks(callbacks))
    bar = _hooks.Progress(epochs * body.n_batches) if progress else None
    orders = None if rng is None else _loop.Orders(rng, X.shape[0], epochs)
    plan = _loop.Plan(epochs=epochs, l2=l2, loss_scale=loss_scale)
    return _loop.run(model, body, opt, plan, state, history, hooks, orders, bar)
