"""The model file format: versioned ``.npz`` files of plain arrays, never pickles.

A file holds plain arrays only: a format tag and version, the architecture (layer widths and
activation names), the dtype, the flat parameter vector, optionally the optimiser state, optional
user arrays under ``extra/``, and a SHA-256 digest of all of it, so a truncated, edited or
foreign file is refused with a ValueError instead of loading wrong numbers. Files are read with
``np.load(..., allow_pickle=False)``. ``write`` and ``read`` deal in those arrays only;
``MLP.save`` and ``MLP.load`` (and ``fastnn.io``) turn them into models.
"""

import hashlib
import os
import tempfile
import zipfile

import numpy as np

from .kernels.codes import (
    ACTIVATIONS, LOSS_ACTIVATION, LOSSES, OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV, OPT_SGD,
)
from .kernels.layout import param_size
from .kernels.layout import param_views as param_views_of

FORMAT = "fastnn-mlp"
VERSION = 1
_REQUIRED = ("format", "version", "sizes", "activations", "loss", "dtype", "theta", "digest")
_OPT_KEYS = ("opt_code", "opt_t", "opt_s1", "opt_s2")


def _digest(arrays):
    """SHA-256 over every array but the digest, in name order (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == "digest":
            continue
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _plain(name, value):
    a = np.asarray(value)
    if a.dtype.kind not in "biufU":
        raise ValueError(f"extra[{name!r}] must be an array of numbers or strings, got dtype "
                         f"{a.dtype}")
    return a


def write(path, *, sizes, activations, loss, theta, opt=None, extra=None):
    """Write a model's arrays to ``path`` as a versioned ``.npz`` (written whole, then renamed).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its name is used as given (no suffix is added).
    sizes : list of int
        Input width, then each layer's width.
    activations : list of str
        Each layer's activation name.
    loss : str or None
        The loss name (None for an inference-only model).
    theta : ndarray
        The flat parameter vector (float32 or float64).
    opt : tuple, optional
        ``(code, step, s1, s2)``: the optimiser state, so that training can resume exactly.
    extra : dict of str to array_like, optional
        Extra arrays of numbers or strings to keep with the model.
    """
    arrays = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION, np.int64),
        "sizes": np.array(sizes, np.int64),
        "activations": np.array(activations),
        "loss": np.array("" if loss is None else loss),
        "dtype": np.array(theta.dtype.name),
        "theta": theta,
    }
    if opt is not None:
        code, step, s1, s2 = opt
        arrays.update(opt_code=np.array(code, np.int64), opt_t=np.array(step, np.int64),
                      opt_s1=s1, opt_s2=s2)
    for name, value in (extra or {}).items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"extra names must be non-empty strings without '/', got {name!r}")
        arrays["extra/" + name] = _plain(name, value)
    arrays["digest"] = np.array(_digest(arrays))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a fastnn model file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a fastnn model file: it is not an .npz archive "
                         "(truncated, or another kind of file)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it is a single .npy array, not an .npz archive")
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        if "pickle" in str(exc):
            raise ValueError(f"{path!r} is not a fastnn model file: it holds pickled Python "
                             "objects, which fastnn never loads") from None
        raise ValueError(f"{path!r} is not a readable fastnn model file: {exc}") from None


def _bad(path, why):
    return ValueError(f"{path!r} is not a valid fastnn model file: {why}")


def _scalar(arrays, name, kind, path):
    a = arrays[name]
    if a.shape != () or a.dtype.kind not in kind:
        raise _bad(path, f"field {name!r} has the wrong type")
    return a[()]


def read(path):
    """Read and check a file written by ``write``.

    Returns
    -------
    dict
        ``sizes`` (list of int), ``activations`` (list of str), ``loss`` (str or None),
        ``dtype``, ``theta`` (ndarray), ``opt`` (``(code, step, s1, s2)`` or None) and
        ``extra`` (dict of arrays).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is truncated, modified, from another program or from a newer fastnn.
    """
    path = os.fspath(path)
    arrays = _read(path)
    if "format" not in arrays or arrays["format"].dtype.kind != "U" or \
            str(arrays["format"]) != FORMAT:
        raise _bad(path, f"it has no {FORMAT!r} format tag (written by another program?)")
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise _bad(path, f"missing fields {missing}")
    version = int(_scalar(arrays, "version", "iu", path))
    if version > VERSION:
        raise _bad(path, f"format version {version} is newer than this fastnn reads "
                         f"({VERSION}); upgrade fastnn")
    if str(_scalar(arrays, "digest", "U", path)) != _digest(arrays):
        raise _bad(path, "its contents do not match the stored digest (the file was modified "
                         "or damaged)")
    sizes, acts = arrays["sizes"], arrays["activations"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or sizes.size < 2 or sizes.min() < 1:
        raise _bad(path, "bad layer sizes")
    if acts.dtype.kind != "U" or acts.shape != (sizes.size - 1,):
        raise _bad(path, "bad activation list")
    unknown = [a for a in acts.tolist() if a not in ACTIVATIONS]
    if unknown:
        raise _bad(path, f"unknown activations {unknown}")
    dtype = str(_scalar(arrays, "dtype", "U", path))
    if dtype not in ("float32", "float64"):
        raise _bad(path, f"unsupported dtype {dtype!r}")
    loss = str(_scalar(arrays, "loss", "U", path)) or None
    if loss is not None and (loss not in LOSSES or
                             LOSS_ACTIVATION[LOSSES[loss]] != ACTIVATIONS[acts[-1]]):
        raise _bad(path, f"loss {loss!r} does not fit the output activation {acts[-1]!r}")
    shapes = np.stack([sizes[1:], sizes[:-1]], axis=1)
    theta = arrays["theta"]
    if theta.dtype != np.dtype(dtype) or theta.shape != (param_size(shapes),):
        raise _bad(path, "the parameter vector does not fit the architecture")
    if not np.isfinite(theta).all():
        raise _bad(path, "the parameters contain NaN or infinity")

    opt = None
    if all(k in arrays for k in _OPT_KEYS):
        s1, s2 = arrays["opt_s1"], arrays["opt_s2"]
        for s in (s1, s2):
            if s.dtype != theta.dtype or s.shape not in ((0,), theta.shape):
                raise _bad(path, "the optimiser state does not fit the parameters")
        code = int(_scalar(arrays, "opt_code", "iu", path))
        if code not in (OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM):
            raise _bad(path, f"unknown optimiser code {code}")
        opt = (code, int(_scalar(arrays, "opt_t", "iu", path)), s1, s2)
    return {"sizes": [int(v) for v in sizes], "activations": acts.tolist(), "loss": loss,
            "dtype": dtype, "theta": theta, "opt": opt,
            "extra": {k[len("extra/"):]: v for k, v in arrays.items()
                      if k.startswith("extra/")}}


def param_views(fields):
    """Per-layer ``(W, b)`` views into the ``theta`` of ``read``'s result."""
    sizes = fields["sizes"]
    return param_views_of(fields["theta"], list(zip(sizes[1:], sizes[:-1])))
