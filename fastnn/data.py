"""Bundled example data: scikit-learn's digits, split and scaled the same way every time."""

import numpy as np


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
        raise ImportError("the digits data comes with scikit-learn: pip install 'fastnn[digits]'"
                          ) from None
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        test[idx[:int(round(test_fraction * len(idx)))]] = True
    return X[~test], X[test], y[~test], y[test]
