"""MLPClassifier: scikit-learn's classifier interface on fastnn's training loop."""

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from .._validation import check_sample_weight
from ._base import _BaseMLP, _is_multilabel, _unique_labels


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier with scikit-learn's interface, trained by fastnn.

    Minimises cross-entropy: softmax outputs for several classes, one sigmoid output for two,
    one sigmoid per label for multi-label indicator targets. Parameters carry scikit-learn's
    names and meanings.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int
        Width of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity", "softplus"}
        Hidden-layer activation.
    solver : {"adam", "sgd"}
        "lbfgs" is not supported (fastnn's solvers are stochastic).
    alpha : float
        L2 strength; per batch the penalty is ``alpha / (2 * batch_rows) * ||W||²``, as in
        scikit-learn (biases unpenalised).
    batch_size : int or "auto"
        "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}
        Schedule of the "sgd" solver. "invscaling": ``lr / (t + 1) ** power_t`` with t the
        samples seen, updated each epoch. "adaptive": η is divided by 5 each time the loss
        (or validation score with early stopping) fails to improve by ``tol`` for
        ``n_iter_no_change`` consecutive epochs; training stops once η is at most 1e-6.
    learning_rate_init, power_t, max_iter, shuffle, tol, momentum, nesterovs_momentum,
    beta_1, beta_2, epsilon, n_iter_no_change, warm_start
        As in ``sklearn.neural_network.MLPClassifier``.
    random_state : int, RandomState or None
        Seeds the initial weights, the shuffling and the validation split.
    verbose : bool
        Show a progress bar.
    early_stopping : bool
        Hold out ``validation_fraction`` of the data (stratified), stop when the validation
        accuracy stops improving, and keep the best weights. ``partial_fit`` ignores it, as in
        scikit-learn: it trains on all the data it is given.
    validation_fraction : float
    backend : str or None
        fastnn backend for this estimator ("numpy", "numba", "cython", "cuda"); None follows
        ``fastnn.get_backend()``.
    dtype : None, "float32" or "float64"
        None keeps float32 input in float32 and computes everything else in float64.

    Attributes
    ----------
    classes_, n_features_in_, n_outputs_, n_layers_, out_activation_, loss_, best_loss_,
    loss_curve_, validation_scores_, best_validation_score_, t_, n_iter_, coefs_, intercepts_
        As in scikit-learn (coefs_ and intercepts_ are views into the model's parameters).
    model_ : fastnn.MLP
        The trained network (save it with ``model_.save(path)``).
    history_ : fastnn.History
        Per-epoch record over every fit and partial_fit since initialisation.

    Notes
    -----
    Weights start from fastnn's initialisation (He-uniform for relu, Glorot-uniform otherwise,
    zero biases), not scikit-learn's, so the two libraries' runs differ in detail.
    """

    _y_numeric = False
    _y_kinds = "biuU"  # label dtypes that need no conversion (see _plain)

    def fit(self, X, y, sample_weight=None):
        """Train from scratch (or from the current weights with ``warm_start``).

        Parameters
        ----------
        X : array_like (n_samples, n_features)
        y : array_like (n_samples,) labels, or (n_samples, n_labels) indicator matrix
        sample_weight : array_like (n_samples,), optional

        Returns
        -------
        self
        """
        return self._all_or_nothing(self._fit, X, y, sample_weight, False, None)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (every label) is required on the first call.

        Returns
        -------
        self
        """
        return self._all_or_nothing(self._fit, X, y, sample_weight, True, classes)

    def _fit(self, X, y, sample_weight, incremental, classes):
        p = self._checked()
        fitted = hasattr(self, "model_")
        reset = not fitted or (not incremental and not p["warm_start"])
        if incremental and not fitted and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y, plain = self._input(X, y, reset, p)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # scikit-learn's label helpers each classify y again (~0.2 ms a time): classify once,
        # and leave to check_classification_targets only what it would complain about
        if plain:  # 1-D labels of a bool, int or str dtype: type_of_target counts them
            labels = np.unique(y)
            y_type = "multiclass" if labels.size > 2 else "binary"
        else:
            y_type = type_of_target(y, input_name="y")
            labels = _unique_labels(y) if y_type in ("binary", "multiclass") else None
        if labels is None or (y_type == "multiclass" and len(y) > 20
                              and labels.size > round(0.5 * len(y))):
            check_classification_targets(y)  # its error, or its warning
        if classes is not None and fitted and not reset and not np.array_equal(
                np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} differs from the classes_ of the first "
                             f"partial_fit call, {self.classes_!r}")
        if reset:
            if classes is None and labels is not None:
                binarizer, all_labels, multilabel = None, labels, False
            else:  # label-indicator targets, or the classes partial_fit was given
                binarizer = LabelBinarizer()
                binarizer.fit(y if classes is None else classes)
                if classes is not None and y_type == "multilabel-indicator":
                    binarizer.fit(y)
                all_labels = binarizer.classes_
                multilabel = binarizer.y_type_ == "multilabel-indicator"
            k = len(all_labels)
            output = "sigmoid" if (multilabel or k <= 2) else "softmax"
            n_out = k if (multilabel or k > 2) else 1
        else:
            binarizer, all_labels = self._label_binarizer, self.classes_
            multilabel = _is_multilabel(binarizer)
        if y_type == "multilabel-indicator":
            if not multilabel or y.shape[1] != len(all_labels):
                raise ValueError("y is a label-indicator matrix that does not match the labels "
                                 "seen when the classifier was initialised")
        elif not (reset and labels is all_labels):
            unseen = np.setdiff1d(np.unique(y) if labels is None else labels, all_labels)
            if unseen.size:
                raise ValueError(f"y contains labels not in classes_: {unseen.tolist()}")
        sw, sw_mean = check_sample_weight(sample_weight, X.shape[0], X.dtype, return_mean=True)
        if reset:
            self._init_model(p, X.shape[1], n_out, output, X.dtype)
            self._label_binarizer = binarizer  # None for plain labels: classes_ says it all
            self.classes_ = all_labels
        if self.out_activation_ == "softmax":  # one-hot rows from class indices
            Y = np.zeros((len(y), len(self.classes_)), dtype=X.dtype)
            Y[np.arange(len(y)), np.searchsorted(self.classes_, y)] = 1
        elif multilabel:
            Y = np.ascontiguousarray(binarizer.transform(y), dtype=X.dtype)
        elif len(self.classes_) == 2:  # one sigmoid output: 1 for the second class
            Y = (y == self.classes_[1]).astype(X.dtype).reshape(-1, 1)
        else:  # a single class: all targets 0, as LabelBinarizer gives
            Y = np.zeros((len(y), 1), dtype=X.dtype)
        return self._train(X, Y, sw, sw_mean, p, incremental)

    def _stratify_labels(self, Y):
        if self.out_activation_ == "softmax":
            return Y.argmax(axis=1)
        if Y.shape[1] == 1:
            return Y[:, 0]
        return None

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        A = self._forward(X)
        if self.out_activation_ == "logistic" and self.n_outputs_ == 1:
            if len(self.classes_) == 1:
                return np.ones_like(A)
            return np.hstack([1 - A, A])
        return A

    def predict_log_proba(self, X):
        """Logarithm of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted labels (an indicator matrix for multi-label targets)."""
        A = self._forward(X)
        if len(self.classes_) == 1:
            return np.full(A.shape[0], self.classes_[0])
        if self.out_activation_ == "softmax":
            return self.classes_[A.argmax(axis=1)]
        if _is_multilabel(self._label_binarizer):
            return self._label_binarizer.inverse_transform(A, threshold=0.5)
        return self.classes_[(A[:, 0] > 0.5).astype(np.intp)]  # LabelBinarizer's rule

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
