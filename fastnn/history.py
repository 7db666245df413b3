"""History: the per-epoch record that ``fit`` returns."""


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

    def record(self, logs):
        """Append one epoch's values (a dict of the KEYS) and count the epoch."""
        for key, value in logs.items():
            getattr(self, key).append(float(value))
        self.epochs += 1

    def mark(self):
        """A token for ``rewind``: how far the record goes now."""
        return tuple(len(getattr(self, k)) for k in self.KEYS), (
            self.epochs, self.best_epoch, self.stop_reason)

    def rewind(self, mark):
        """Forget what was recorded since ``mark`` (a failed call's epochs)."""
        lengths, (self.epochs, self.best_epoch, self.stop_reason) = mark
        for key, n in zip(self.KEYS, lengths):
            del getattr(self, key)[n:]

    def as_dict(self):
        """The non-empty per-epoch lists, by name."""
        return {k: list(getattr(self, k)) for k in self.KEYS if getattr(self, k)}

    def __repr__(self):
        last = f"{self.loss[-1]:.6g}" if self.loss else "n/a"
        return f"History(epochs={self.epochs}, loss={last})"
