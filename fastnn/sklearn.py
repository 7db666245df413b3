"""scikit-learn estimators on fastnn's kernels: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameter names and follow its semantics, so they drop into pipelines,
grid searches and cross-validation. Training runs in fastnn's compiled epoch loop. Where the
two libraries differ, the estimators say so in their docstrings (initialisation, "lbfgs").

Requires scikit-learn (``pip install 'fastnn[sklearn]'``).
"""

import math
import numbers
import threading
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _backend, _loop
from ._validation import all_finite
from .layers import Dense
from .model import MLP
from .optim import SCHEDULES, SGD, Adam
from .training import History, check_sample_weight, validation_split

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "softplus": "softplus"}
_FLOATS = (np.float64, np.float32)
_INT32_MAX = int(np.iinfo(np.int32).max)


def _real(value, name, low, high=None, low_open=False, high_open=False):
    if type(value) is float:  # the common case, without the ABC check and NumPy's isfinite
        ok = math.isfinite(value)
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise ValueError(f"{name} must be a number in {lo}{low}, {'inf' if high is None else high}"
                         f"{hi}, got {value!r}")
    return float(value)


def _integer(value, name):
    if type(value) is int and value >= 1:  # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _unique_labels(y):
    """The sorted distinct labels of 1-D ``y``, or None when they do not sort (mixed types:
    scikit-learn's LabelBinarizer then raises its own error)."""
    try:
        return np.unique(y)
    except TypeError:
        return None


def _is_multilabel(binarizer):
    return binarizer is not None and binarizer.y_type_ == "multilabel-indicator"


def _choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")
    return value


_SEEDED = threading.local()  # each thread's re-seedable RandomState (see _random_state)


def _random_state(seed):
    """``check_random_state(seed)``, cheaper for an int seed.

    A new RandomState first seeds itself from OS entropy (~0.1 ms) before the int seed
    replaces that; re-seeding a RandomState kept per thread gives the same stream without it.
    The result is only drawn from at once, never kept.
    """
    if type(seed) is not int or not 0 <= seed < 2 ** 32:
        return check_random_state(seed)
    rs = getattr(_SEEDED, "rs", None)
    if rs is None:
        rs = _SEEDED.rs = np.random.RandomState(seed)
    else:
        rs.seed(seed)
    return rs


def _sklearn_model(sizes, activation, output, dtype, rs):
    """An MLP of widths ``sizes`` that starts where scikit-learn's MLPs start, drawn from ``rs``.

    Weights and biases are uniform in ±sqrt(factor / (fan_in + fan_out)), factor 2 for a sigmoid
    ("logistic") network and 6 otherwise, drawn layer by layer in scikit-learn's order and shape.
    The estimators stand in for scikit-learn's, so they start where it starts: with fastnn's own
    He initialisation, iris at the default 200 epochs ended 2.6 points less accurate. The layers
    are made from the draws, not drawn first and overwritten (~0.1 ms a fit).
    """
    factor = 2.0 if activation == "sigmoid" else 6.0
    acts = [activation] * (len(sizes) - 2) + [output]
    layers = []
    for fan_in, fan_out, act in zip(sizes[:-1], sizes[1:], acts):
        bound = np.sqrt(factor / (fan_in + fan_out))
        W = rs.uniform(-bound, bound, (fan_in, fan_out)).T.astype(dtype, copy=False)
        b = rs.uniform(-bound, bound, fan_out).astype(dtype, copy=False)
        layers.append(Dense._of(W, b, act))
    return MLP(layers)


class _BaseMLP(BaseEstimator):
    """Shared parameters, checks and training of the two estimators."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, backend=None,
                 dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype

    # parameters -------------------------------------------------------------------------
    def _checked(self):
        """Every parameter checked (ValueError naming the bad one), as a dict."""
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, got "
                             f"{self.hidden_layer_sizes!r}") from None
        hidden = tuple(_integer(h, "every hidden layer size") for h in hidden)
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not supported: fastnn trains with the "
                             "stochastic solvers 'sgd' and 'adam'")
        bs = self.batch_size
        if not (isinstance(bs, str) and bs == "auto"):
            bs = _integer(bs, "batch_size")
        if self.backend is not None:
            _backend._check(self.backend)
        if self.dtype is None:
            dtype = None
        else:
            try:
                dtype = np.dtype(self.dtype)
            except TypeError:
                dtype = None
            if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise ValueError(f"dtype must be None, 'float32' or 'float64', got "
                                 f"{self.dtype!r}")
        return dict(
            hidden=hidden,
            activation=_ACTIVATIONS[_choice(self.activation, "activation", _ACTIVATIONS)],
            solver=_choice(self.solver, "solver", ("sgd", "adam")),
            alpha=_real(self.alpha, "alpha", 0),
            batch_size=bs,
            learning_rate=_choice(self.learning_rate, "learning_rate", SCHEDULES),
            lr=_real(self.learning_rate_init, "learning_rate_init", 0, low_open=True),
            power_t=_real(self.power_t, "power_t", 0),
            max_iter=_integer(self.max_iter, "max_iter"),
            shuffle=_flag(self.shuffle, "shuffle"),
            tol=_real(self.tol, "tol", 0),
            verbose=_flag(bool(self.verbose) if isinstance(self.verbose, numbers.Integral)
                          else self.verbose, "verbose"),
            warm_start=_flag(self.warm_start, "warm_start"),
            momentum=_real(self.momentum, "momentum", 0, 1, high_open=True),
            nesterov=_flag(self.nesterovs_momentum, "nesterovs_momentum"),
            early_stopping=_flag(self.early_stopping, "early_stopping"),
            validation_fraction=_real(self.validation_fraction, "validation_fraction", 0, 1,
                                      low_open=True, high_open=True),
            beta_1=_real(self.beta_1, "beta_1", 0, 1, high_open=True),
            beta_2=_real(self.beta_2, "beta_2", 0, 1, high_open=True),
            epsilon=_real(self.epsilon, "epsilon", 0, low_open=True),
            n_iter_no_change=_integer(self.n_iter_no_change, "n_iter_no_change"),
            dtype=dtype,
        )

    def _optimizer(self, p):
        if p["solver"] == "adam":
            return Adam(p["lr"], p["beta_1"], p["beta_2"], p["epsilon"])
        return SGD(p["lr"], p["momentum"], p["nesterov"] and p["momentum"] > 0)

    # fitted state -----------------------------------------------------------------------
    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    @property
    def coefs_(self):
        """Weight matrices per layer, (in, out) as scikit-learn lays them out (views)."""
        return [layer.W.T for layer in self.model_.layers]

    @property
    def intercepts_(self):
        """Bias vectors per layer (views)."""
        return [layer.b for layer in self.model_.layers]

    def _init_model(self, p, n_features, n_outputs, output, dtype):
        rs = _random_state(self.random_state)
        sizes = [n_features, *p["hidden"], n_outputs]
        model = _sklearn_model(sizes, p["activation"], output, dtype, rs)
        model.backend = self.backend
        self.model_ = model
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.out_activation_ = {"sigmoid": "logistic"}.get(output, output)
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if p["early_stopping"] else None
        self.best_validation_score_ = -np.inf if p["early_stopping"] else None
        self.history_ = History()
        self._rng = np.random.default_rng(int(rs.randint(_INT32_MAX)))
        self._state = None

    def _input(self, X, y, reset, p):
        """``(X, y, plain)``: validated (X, y), X C-contiguous (as the kernels read it) in the
        model's dtype (float32 input stays float32); ``plain`` when they came as they are
        (``_plain``), y then 1-D."""
        if reset:
            dtype = _FLOATS if p["dtype"] is None else (p["dtype"],)
        else:
            dtype = (self.model_.dtype,)
        if self._plain(X, y, reset, dtype):
            if reset:
                self.n_features_in_ = X.shape[1]
            return X, y, True
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=False, dtype=dtype,
                             order="C", multi_output=True, y_numeric=self._y_numeric)
        return X, y, False

    def _plain(self, X, y, reset, dtypes):
        """Whether validate_data would return (X, y) unchanged and only set n_features_in_.

        True for the common case, a finite C-contiguous 2-D ndarray X of one of ``dtypes`` and
        a 1-D ndarray y of as many labels (classifier) or finite numbers (regressor), without
        feature names now or before: its probes of the input cost ~0.2 ms a fit. Anything
        else goes through validate_data, for its conversions, errors and warnings.
        """
        if not (type(X) is np.ndarray and type(y) is np.ndarray and X.ndim == 2
                and y.ndim == 1 and X.flags.c_contiguous and X.dtype in dtypes):
            return False
        n, f = X.shape
        if not (n and f and y.shape[0] == n and y.dtype.kind in self._y_kinds):
            return False
        if hasattr(self, "feature_names_in_") or not (reset or f == self.n_features_in_):
            return False
        return (y.dtype.kind != "f" or all_finite(y)) and all_finite(X)

    def _train(self, X, Y, sw, sw_mean, p, incremental):
        """Run the epoch loop on prepared data and update the scikit-learn attributes.

        ``sw`` is rescaled to mean 1 and ``sw_mean`` is the mean of the weights as given: the
        L2 step ``alpha / (batch rows * sw_mean)`` is then scikit-learn's ``alpha / sum of the
        batch's weights`` on average (and exactly so for full batches).
        """
        model = self.model_
        n = X.shape[0]
        batch = min(200, n) if p["batch_size"] == "auto" else min(p["batch_size"], n)
        early = p["early_stopping"] and not incremental
        val = None
        if early:
            labels = self._stratify_labels(Y)
            train, held = validation_split(n, p["validation_fraction"], self._rng, labels)
            val = (X[held], Y[held], None if sw is None else sw[held])
            X, Y = X[train], Y[train]
            sw = None if sw is None else sw[train]
        opt = self._optimizer(p)
        schedule = p["learning_rate"] if p["solver"] == "sgd" else "constant"
        plan = _loop.Plan(
            epochs=1 if incremental else p["max_iter"], batch_size=batch, opt=opt,
            l2=p["alpha"] / (batch * sw_mean), shuffle=p["shuffle"], schedule=schedule,
            power_t=p["power_t"], tol=p["tol"], patience=p["n_iter_no_change"] + 1,
            monitor="val_score" if early else "loss", lr_factor=0.2, lr_min=1e-6,
            restore_best=early, train_accuracy=False, loss_scale=self._loss_scale(),
            progress=p["verbose"],
        )
        if self._state is None or not incremental:
            self._state = _loop.State(rng=self._rng, lr=opt.lr, samples_seen=self.t_)
            if not incremental:
                model.reset_optimizer()
        history = _loop.run(model, X, Y, sw, plan, self._state, History(), val)
        self.n_iter_ += history.epochs
        self.t_ = self._state.samples_seen
        self.loss_curve_.extend(history.loss)
        self.loss_ = self.loss_curve_[-1]
        if early:
            scores = history.val_accuracy or history.val_r2
            self.validation_scores_.extend(scores)
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        elif self.best_loss_ is not None:
            self.best_loss_ = min(self.best_loss_, min(history.loss))
        for key, values in history.as_dict().items():
            getattr(self.history_, key).extend(values)
        self.history_.epochs += history.epochs
        self.history_.stop_reason = history.stop_reason
        if not incremental and history.stop_reason is None and history.epochs == p["max_iter"]:
            warnings.warn(f"fastnn: {p['solver']} stopped at max_iter={p['max_iter']} before "
                          "the loss converged; raise max_iter or tol", ConvergenceWarning)
        return self

    def _stratify_labels(self, Y):
        return None

    def _loss_scale(self):
        return 1.0

    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse=False, dtype=self.model_.dtype)
        return self.model_.forward(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # dense arrays only: the kernels have no sparse path
        return tags


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
        return self._fit(X, y, sample_weight, incremental=False, classes=None)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (every label) is required on the first call.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

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
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y).

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

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
