"""Saving and loading models: ``save(model, path)`` and ``load(path)`` (also ``fastnn.load``).

Files are versioned ``.npz`` archives of plain arrays with a SHA-256 digest, never pickles
(``fastnn._format``): a truncated, edited or foreign file is refused with a ValueError instead
of loading wrong numbers.
"""

from .model import MLP

__all__ = ["load", "save"]


def save(model, path, *, optimizer_state=True, extra=None):
    """Write ``model`` to ``path`` as a versioned ``.npz`` (written whole, then renamed in place).

    Parameters
    ----------
    model : MLP
    path : str or os.PathLike
        The file to write; its name is used as given (no suffix is added).
    optimizer_state : bool
        Also store the optimiser's state (velocity or Adam moments and step count), so that
        training can resume exactly.
    extra : dict of str to array_like, optional
        Extra arrays of numbers or strings to keep with the model (class labels, scaling).
        Read them back with ``load(path, extra=True)``.
    """
    model.save(path, optimizer_state=optimizer_state, extra=extra)


def load(path, *, extra=False):
    """Read a model written by ``save`` (or ``MLP.save``).

    Parameters
    ----------
    path : str or os.PathLike
    extra : bool
        Also return the dict of extra arrays stored with the model.

    Returns
    -------
    MLP, or (MLP, dict) with ``extra=True``
        The model predicts bit for bit as the saved one did (on the same backend).

    FileNotFoundError when there is no file, ValueError for a truncated, modified or foreign
    file, or one from a newer fastnn.
    """
    return MLP.load(path, extra=extra)
