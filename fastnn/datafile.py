"""Reading data files for the ``fastnn`` command: ``.npz`` with X (and y), or ``.csv``.

A CSV file holds one sample per row, features first and, when present, the label last; a first
row that is not numeric is taken as a header. Labels may be integers, numbers or strings.
"""

import csv
import os
import zipfile

import numpy as np


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None


_EXACT = 2.0 ** 53  # the largest float64 below which every integer is exact


def _labels(column):
    """Labels as int64 when every one is an integer that a float64 holds exactly (|v| <= 2**53),
    float64 when numeric (1e20 stays 1e20, never an int64 that wrapped), else strings."""
    values = [_number(v) for v in column]
    if any(v is None for v in values):
        return np.array([v.strip() for v in column])
    arr = np.array(values)
    if (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
            and np.all(np.abs(arr) <= _EXACT)):
        return arr.astype(np.int64)
    return arr


def read_csv(path, n_features=None):
    """(X, y) from a CSV file; y is None when the file has exactly ``n_features`` columns.

    Without ``n_features`` the last column is the label.
    """
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: the file has no data rows")
    if all(_number(c) is None for c in rows[0][:-1] or rows[0]):
        rows = rows[1:]  # header
        if not rows:
            raise ValueError(f"{path}: the file has a header but no data rows")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"{path}: row {i + 1} has {len(r)} columns, the first has {width}")
    has_label = n_features is None or width == n_features + 1
    if n_features is not None and width not in (n_features, n_features + 1):
        raise ValueError(f"{path}: rows have {width} columns, but the model takes "
                         f"{n_features} features (plus an optional label)")
    n_x = width - 1 if has_label else width
    if n_x < 1:
        raise ValueError(f"{path}: a labelled CSV needs at least one feature column and the "
                         "label in the last column")
    X = np.empty((len(rows), n_x))
    for i, r in enumerate(rows):
        for j in range(n_x):
            v = _number(r[j])
            if v is None:
                raise ValueError(f"{path}: row {i + 1}, column {j + 1}: {r[j]!r} is not a "
                                 "number")
            X[i, j] = v
    y = _labels([r[-1] for r in rows]) if has_label else None
    return X, y


def read_npz(path):
    """(X, y) from an ``.npz`` holding arrays ``X`` and, optionally, ``y`` (never unpickled)."""
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle, and say so
        raise ValueError(f"{path}: not a .npz data file (not a zip archive of arrays): save X "
                         "and y with np.savez")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array; save X and y with np.savez")
            if "X" not in data.files:
                raise ValueError(f"it has no array named 'X' (it has {sorted(data.files)})")
            X = data["X"]
            y = data["y"] if "y" in data.files else None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        if "pickle" in str(exc):  # numpy's advice to allow pickles is not ours to give
            raise ValueError(f"{path}: an array holds Python objects (pickled data), which "
                             "fastnn never loads: save plain numbers or strings") from None
        raise ValueError(f"{path}: not a readable .npz data file: {exc}") from None
    return X, y


def read_data(path, n_features=None):
    """(X, y) from a ``.npz`` or ``.csv`` file (y may be None); errors name the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such data file: {path!r}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        return read_npz(path)
    if ext == ".csv":
        try:
            return read_csv(path, n_features)
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a text CSV file") from None
    raise ValueError(f"{path}: unknown data format {ext or '(no suffix)'!r}; use .npz (arrays "
                     "X and y) or .csv (label in the last column)")
