"""MLPRegressor: scikit-learn's regressor interface on fastnn's training loop."""

import numpy as np
from sklearn.base import RegressorMixin

from .._validation import all_finite, check_sample_weight
from ._base import _BaseMLP


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor with scikit-learn's interface, trained by fastnn.

    Minimises the squared error with an identity output layer; one output per target column.
    ``loss_`` and ``loss_curve_`` follow scikit-learn's convention (half the mean over all
    elements, plus the L2 term). Parameters are those of ``MLPClassifier``; with early stopping
    the validation score is R².
    """

    _y_numeric = True
    _y_kinds = "biuf"

    def fit(self, X, y, sample_weight=None):
        """Train from scratch (or from the current weights with ``warm_start``).

        Parameters
        ----------
        X : array_like (n_samples, n_features)
        y : array_like (n_samples,) or (n_samples, n_targets)
        sample_weight : array_like (n_samples,), optional

        Returns
        -------
        self
        """
        return self._all_or_nothing(self._fit, X, y, sample_weight, False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y).

        Returns
        -------
        self
        """
        return self._all_or_nothing(self._fit, X, y, sample_weight, True)

    def _fit(self, X, y, sample_weight, incremental):
        p = self._checked()
        fitted = hasattr(self, "model_")
        reset = not fitted or (not incremental and not p["warm_start"])
        X, y, _ = self._input(X, y, reset, p)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not reset and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} targets, but the regressor was initialised "
                             f"with {self.n_outputs_}")
        with np.errstate(over="ignore"):
            Y = np.ascontiguousarray(Y, dtype=X.dtype)
        if not all_finite(Y):
            raise ValueError(f"y has values too large for {X.dtype}")
        sw, sw_mean = check_sample_weight(sample_weight, X.shape[0], X.dtype, return_mean=True)
        if reset:
            self._init_model(p, X.shape[1], Y.shape[1], "identity", X.dtype)
        return self._train(X, Y, sw, sw_mean, p, incremental)

    def _loss_scale(self):
        return 1.0 / self.n_outputs_

    def predict(self, X):
        """Predicted values, (n_samples,) for one target."""
        A = self._forward(X)
        return A[:, 0] if self.n_outputs_ == 1 else A

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
