"""Data helpers: the bundled digits example, and the one stratified split that every split uses."""

import numpy as np

from ._version import install_hint


def validation_split(n, fraction, rng, labels=None):
    """Indices ``(train, held_out)`` holding out about ``fraction`` of ``n`` rows.

    With ``labels``, each class is split in proportion (every class with at least two rows
    keeps one for training and gives one to the held-out part where the fraction allows).
    ``fit``'s early stopping, the scikit-learn estimators, the ``fastnn train`` command and
    :func:`load_digits_split` all split with it.

    Parameters
    ----------
    n : int
        Number of rows, at least 2.
    fraction : float
        Share of the rows to hold out, in (0, 1).
    rng : numpy.random.Generator
        Draws the split.
    labels : array_like (n,), optional
        Class of each row, to stratify by.

    Returns
    -------
    train, held_out : ndarray of int
        Sorted row indices.
    """
    if n < 2:
        raise ValueError("a validation split needs at least 2 samples")
    held = np.zeros(n, bool)
    if labels is not None and np.unique(labels).size < n:
        for label in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == label))
            take = min(len(idx) - 1, int(round(fraction * len(idx))))
            held[idx[:take]] = True
    if not held.any():  # unstratified, or classes too small to stratify
        held[rng.permutation(n)[:max(1, min(n - 1, int(round(fraction * n))))]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def load_digits_split(test_fraction=0.25, seed=0):
    """The 8x8 digits (1797 samples, 10 classes) scaled to [0, 1], as a stratified train/test split.

    Parameters
    ----------
    test_fraction : float
        Share of each class held out for testing.
    seed : int
        Seed of the split.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits data comes with scikit-learn: "
                          + install_hint("digits")) from None
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    train, test = validation_split(len(y), test_fraction, np.random.default_rng(seed), y)
    return X[train], X[test], y[train], y[test]
