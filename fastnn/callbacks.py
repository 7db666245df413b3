"""Per-epoch hooks for user code in ``fit``: logging, custom stopping rules, checkpoints."""


class Callback:
    """Base class of fit's callbacks; override any of the three hooks.

    ``on_epoch_end`` returning True stops training after that epoch (the History then says
    ``stop_reason == "callback"``).
    """

    def on_train_begin(self, model):
        """Called once before the first epoch, with the model being trained."""

    def on_epoch_end(self, epoch, logs):
        """Called after each epoch (1-based) with its values: loss, lr, and when recorded
        accuracy, val_loss, val_accuracy or val_r2. Return True to stop."""
        return False

    def on_train_end(self, history):
        """Called once when training ends normally, with the History."""


class _Function(Callback):
    def __init__(self, func):
        self.func = func

    def on_epoch_end(self, epoch, logs):
        return self.func(epoch, logs)


def as_callbacks(callbacks):
    """A list of Callback objects from None, one callback, or a sequence of them.

    Plain functions ``f(epoch, logs)`` are wrapped; anything else raises ValueError.
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    try:
        items = list(callbacks)
    except TypeError:
        raise ValueError(f"callbacks must be a Callback, a function or a sequence of them, got "
                         f"{callbacks!r}") from None
    out = []
    for cb in items:
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(_Function(cb))
        else:
            raise ValueError(f"a callback must be a fastnn.callbacks.Callback or a function "
                             f"f(epoch, logs), got {cb!r}")
    return out
