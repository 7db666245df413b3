"""Saving and loading models: ``save(model, path)`` and ``load(path)`` (also ``fastnn.load``).

Files are versioned ``.npz`` archives of plain arrays with a SHA-256 digest, never pickles
(``fastnn._format``): a truncated, edited, crafted or foreign file is refused with a
``fastnn.ModelFileError`` (a ValueError) instead of loading wrong numbers, and its size is
checked against the architecture it declares before any data is read.

The digest is a checksum, not authentication: anyone who can edit a file can recompute it. To
know that a file comes from someone holding a secret key, save with ``key=`` and load with the
same ``key=``, which checks an HMAC-SHA256 signature.
"""

import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from ._format import ModelFileError
from .model import MLP

__all__ = ["ModelFileError", "load", "save"]


def save(model: MLP, path: Union[str, os.PathLike], *, optimizer_state: bool = True,
         extra: Optional[Mapping[str, Any]] = None, key: Optional[bytes] = None) -> None:
    """Write ``model`` to ``path`` as a versioned ``.npz`` (written whole, then renamed in place).

    Parameters
    ----------
    model : MLP
        The model to write.
    path : str or os.PathLike
        The file to write; its name is used as given (no suffix is added). A symbolic link is
        followed and its target replaced; the file gets the permissions the umask gives a new
        file. Temporary files (``.<name>.fastnn-tmp-*``) are removed on error.
    optimizer_state : bool
        Also store the optimiser's state (velocity or Adam moments and step count), so that
        training can resume exactly.
    extra : dict of str to array_like, optional
        Extra arrays of numbers or strings to keep with the model (class labels, scaling).
        Read them back with ``load(path, extra=True)``.
    key : bytes, optional
        Sign the file with HMAC-SHA256 under this secret key; ``load(path, key=key)`` then
        checks it. Without a key the file carries only its digest, a checksum.
    """
    model.save(path, optimizer_state=optimizer_state, extra=extra, key=key)


def load(path: Union[str, os.PathLike], *, extra: bool = False,
         key: Optional[bytes] = None) -> Union[MLP, Tuple[MLP, Dict[str, np.ndarray]]]:
    """Read a model written by ``save`` (or ``MLP.save``).

    Parameters
    ----------
    path : str or os.PathLike
        The model file (a regular file: FIFOs, devices and directories are refused).
    extra : bool
        Also return the dict of extra arrays stored with the model.
    key : bytes, optional
        Require a signature made with this key by ``save(..., key=key)``: a file without one,
        or signed with another key, is refused.

    Returns
    -------
    MLP, or (MLP, dict) with ``extra=True``
        The model predicts bit for bit as the saved one did (on the same backend).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ModelFileError
        (a ValueError) For a non-regular path, a truncated, modified, malformed or foreign
        file, one from a newer fastnn, or a missing or wrong signature when ``key`` is given.
    """
    return MLP.load(path, extra=extra, key=key)
