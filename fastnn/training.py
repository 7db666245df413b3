"""fit: validation of every training option, then the shared epoch loop (``fastnn._loop``).

The History it returns records, per epoch, the training loss and accuracy, the validation loss
and accuracy (or R²), and the learning rate used.
"""


import numpy as np

from . import _device, _loop
from .kernels.codes import BCE, CROSS_ENTROPY
from ._validation import (
    as_matrix, check_fraction, check_nonnegative_float, check_positive_float, check_positive_int,
    check_seed,
)
from .callbacks import as_callbacks
from .optim import check_schedule, get_optimizer

_METRICS = ("accuracy",)


class History:
    """Per-epoch record of a training run.

    Attributes
    ----------
    loss : list of float
        Mean training loss over each epoch's batches (running, as the batches were seen), plus
        the L2 term ``λ/2 ||W||²`` at the epoch's end.
    accuracy : list of float
        Training accuracy after each epoch (classifiers, when ``"accuracy"`` is in ``metrics``).
    val_loss, val_accuracy, val_r2 : list of float
        The same on the validation data, when there is some (R² for regression models).
    lr : list of float
        The learning rate each epoch ran at.
    epochs : int
        Epochs completed.
    best_epoch : int or None
        The epoch (1-based) with the best monitored value, when one was monitored.
    stop_reason : str or None
        Why training ended before ``epochs``: "no_improvement", "lr_min" or "callback".
    """

    KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "val_r2", "lr")

    def __init__(self):
        self.loss, self.accuracy, self.val_loss = [], [], []
        self.val_accuracy, self.val_r2, self.lr = [], [], []
        self.epochs = 0
        self.best_epoch = None
        self.stop_reason = None

    def _record(self, logs):
        for key, value in logs.items():
            getattr(self, key).append(float(value))
        self.epochs += 1

    def as_dict(self):
        """The non-empty per-epoch lists, by name."""
        return {k: list(getattr(self, k)) for k in self.KEYS if getattr(self, k)}

    def __repr__(self):
        last = f"{self.loss[-1]:.6g}" if self.loss else "n/a"
        return f"History(epochs={self.epochs}, loss={last})"


def check_sample_weight(sample_weight, n, dtype, return_mean=False):
    """Per-sample weights as a finite, non-negative (n,) array of ``dtype`` rescaled to mean 1.

    Only the ratios between weights matter: rescaling keeps the step size independent of their
    scale. ValueError if any is negative or non-finite, or all are zero. With ``return_mean``,
    also returns the weights' mean before rescaling (1.0 for None).
    """
    if sample_weight is None:
        return (None, 1.0) if return_mean else None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if (w < 0).any():
        raise ValueError("sample_weight must be >= 0")
    total = w.sum()
    if total <= 0:
        raise ValueError("sample_weight sums to zero: there is nothing to learn from")
    out = np.ascontiguousarray(w * (n / total), dtype=dtype)
    return (out, total / n) if return_mean else out


def validation_split(n, fraction, rng, labels=None):
    """Indices ``(train, val)`` holding out about ``fraction`` of ``n`` rows for validation.

    With ``labels``, each class is split in proportion (every class with at least two rows
    keeps one for training and gives one to validation where the fraction allows).
    """
    if n < 2:
        raise ValueError("a validation split needs at least 2 samples")
    val = np.zeros(n, bool)
    if labels is not None and np.unique(labels).size < n:
        for label in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == label))
            take = min(len(idx) - 1, int(round(fraction * len(idx))))
            val[idx[:take]] = True
    if not val.any():  # unstratified, or classes too small to stratify
        val[rng.permutation(n)[:max(1, min(n - 1, int(round(fraction * n))))]] = True
    return np.flatnonzero(~val), np.flatnonzero(val)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


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


def _check_validation_data(model, data):
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (X_val, y_val) or "
                         "(X_val, y_val, sample_weight_val)")
    Xv = as_matrix(data[0], model.dtype, model.layers[0].in_features, name="X_val")
    Yv = model._targets(data[1], Xv.shape[0])
    swv = check_sample_weight(data[2], Xv.shape[0], model.dtype) if len(data) == 3 else None
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
    y : array_like
        Labels (n,) or one-hot (n, k) for cross-entropy; 0/1 for bce; values for mse.
    epochs : int
        Most passes over the data, >= 1 (fewer when a stopping rule ends training).
    batch_size : int
        Rows per step, >= 1 (capped at n). 1 is per-sample SGD, n is full-batch descent.
    lr : float
        Initial learning rate η for a named optimizer (an Optimizer instance brings its own).
    optimizer : {"sgd", "momentum", "nesterov", "adam"} or fastnn.optim.Optimizer
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
        "constant" keeps η. "invscaling" uses ``η / (t + 1) ** power_t`` with t the number of
        samples seen before the epoch (updated once per epoch, as scikit-learn does).
        "adaptive" halves η whenever the monitored loss has not fallen by ``tol`` (0 when
        ``tol`` is None) for ``n_iter_no_change`` epochs, and stops once η has fallen to
        ``1e-6 * lr``.
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
        Extra per-epoch metrics on the training data: ``("accuracy",)`` records the training
        accuracy of a classifier after each epoch (one more forward pass over X per epoch, so it
        is off by default). Validation accuracy (or R²) is always recorded with the validation
        loss.
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
        When the loss or a gradient turns non-finite; it names the epoch and step, and the model
        keeps its last finite parameters.
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed)
    opt = get_optimizer(optimizer, check_positive_float(lr, "lr"))
    l2 = check_nonnegative_float(l2, "l2")
    shuffle = _check_bool(shuffle, "shuffle")
    progress = _check_bool(progress, "progress")
    schedule = check_schedule(schedule)
    power_t = check_nonnegative_float(power_t, "power_t")
    tol = None if tol is None else check_nonnegative_float(tol, "tol")
    patience = check_positive_int(n_iter_no_change, "n_iter_no_change")
    early_stopping = _check_bool(early_stopping, "early_stopping")
    fraction = check_fraction(validation_fraction, "validation_fraction", low_open=True)
    metrics = _check_metrics(metrics)
    callbacks = as_callbacks(callbacks)
    model._check_trainable()
    K = model._kernels()
    device = _device.on_device(K)
    on_device = device and K.is_device_array(X)
    if device and K.is_device_array(y):
        y = K.to_host(y)  # targets are checked and one-hot encoded on the host
    if on_device and early_stopping and validation_data is None:
        X = K.to_host(X)  # the split is made on the host
        on_device = False
    if on_device:  # device input goes to the kernels as it is, checked there without a copy
        _device.as_input(K, X, model.dtype, model.layers[0].in_features)
    else:
        X = model._check_X(X)
    Y = model._targets(y, X.shape[0])
    sw = check_sample_weight(sample_weight, X.shape[0], model.dtype)
    val = None if validation_data is None else _check_validation_data(model, validation_data)

    # a Generator costs ~10 µs to seed: made only when something draws from it
    split = early_stopping and val is None
    rng = np.random.default_rng(seed) if shuffle or split else None
    if split:
        labels = Y.argmax(axis=1) if model._loss == CROSS_ENTROPY else None
        train, held = validation_split(X.shape[0], fraction, rng, labels)
        val = (X[held], Y[held], None if sw is None else sw[held])
        X, Y = X[train], Y[train]
        sw = None if sw is None else sw[train]
    plan = _loop.Plan(
        epochs=epochs, batch_size=batch_size, opt=opt, l2=l2, shuffle=shuffle,
        schedule=schedule, power_t=power_t, tol=tol, patience=patience,
        monitor="val_loss" if early_stopping else "loss", lr_factor=0.5, lr_min=1e-6 * opt.lr,
        restore_best=early_stopping,
        train_accuracy="accuracy" in metrics and model._loss in (CROSS_ENTROPY, BCE),
        progress=progress,
    )
    state = _loop.State(rng=rng, lr=opt.lr)
    return _loop.run(model, X, Y, sw, plan, state, History(), val, callbacks, K)

