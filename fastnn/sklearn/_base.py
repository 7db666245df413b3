"""What the two estimators share: parameters and their checks, the initial model, training.

Training runs in fastnn's one epoch loop (``fastnn.training.train``); the learning rate and its
schedule live in the estimator's optimiser (``_optimizer``), which carries over ``partial_fit``.
"""

import copy
import math
import numbers
import threading
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import _backend, _loop, training
from .._validation import all_finite, check_bool, check_positive_int
from ..data import validation_split
from ..history import History
from ..layers import Dense
from ..model import MLP
from ..optim import SCHEDULES, SGD, Adam, make_schedule

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
        layers.append(Dense.from_weights(W, b, act))
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
        hidden = tuple(check_positive_int(h, "every hidden layer size") for h in hidden)
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not supported: fastnn trains with the "
                             "stochastic solvers 'sgd' and 'adam'")
        bs = self.batch_size
        if not (isinstance(bs, str) and bs == "auto"):
            bs = check_positive_int(bs, "batch_size")
        if self.backend is not None:
            _backend.check_backend(self.backend)
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
            max_iter=check_positive_int(self.max_iter, "max_iter"),
            shuffle=check_bool(self.shuffle, "shuffle"),
            tol=_real(self.tol, "tol", 0),
            verbose=check_bool(bool(self.verbose) if isinstance(self.verbose, numbers.Integral)
                          else self.verbose, "verbose"),
            warm_start=check_bool(self.warm_start, "warm_start"),
            momentum=_real(self.momentum, "momentum", 0, 1, high_open=True),
            nesterov=check_bool(self.nesterovs_momentum, "nesterovs_momentum"),
            early_stopping=check_bool(self.early_stopping, "early_stopping"),
            validation_fraction=_real(self.validation_fraction, "validation_fraction", 0, 1,
                                      low_open=True, high_open=True),
            beta_1=_real(self.beta_1, "beta_1", 0, 1, high_open=True),
            beta_2=_real(self.beta_2, "beta_2", 0, 1, high_open=True),
            epsilon=_real(self.epsilon, "epsilon", 0, low_open=True),
            n_iter_no_change=check_positive_int(self.n_iter_no_change, "n_iter_no_change"),
            dtype=dtype,
        )

    def _make_optimizer(self, p):
        """The optimiser the parameters describe, with scikit-learn's schedules: "invscaling",
        and "adaptive" dividing the rate by 5 down to 1e-6 (the "sgd" solver only)."""
        if p["solver"] == "adam":
            return Adam(p["lr"], p["beta_1"], p["beta_2"], p["epsilon"])
        schedule = make_schedule(p["learning_rate"], p["power_t"], factor=0.2, min_lr=1e-6)
        return SGD(p["lr"], p["momentum"], p["nesterov"] and p["momentum"] > 0, schedule)

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
        self._optimizer = None

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
        opt = self._make_optimizer(p)
        if self._state is None or not incremental:
            self._state = _loop.State(samples_seen=self.t_)
            if not incremental:
                model.reset_optimizer()
        else:  # partial_fit goes on at the rate the last call left
            prev = getattr(self, "_optimizer", None)  # None when pickled by fastnn 0.1.0
            opt.learning_rate = prev.learning_rate if prev is not None else self._state.lr
        self._optimizer = opt
        history = training.train(
            model, _backend.kernels(model.backend), X, Y, sw, opt,
            epochs=1 if incremental else p["max_iter"], batch_size=batch,
            l2=p["alpha"] / (batch * sw_mean), rng=self._rng if p["shuffle"] else None,
            tol=p["tol"], patience=p["n_iter_no_change"] + 1,
            monitor="val_score" if early else "loss", restore_best=early, val=val,
            loss_scale=self._loss_scale(), progress=p["verbose"], state=self._state)
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

    def _all_or_nothing(self, fit, *args):
        """``fit(*args)``; if it raises (bad input, divergence, an interrupt), the estimator is
        put back exactly as it was: its attributes, the model's parameters and optimiser state
        (``ParamStore.snapshot``), the random stream and the records training extends. Each
        costs O(1) or a copy of the parameters, never of the records."""
        saved = self.__dict__.copy()
        model, rng, state, history = (saved.get(k) for k in ("model_", "_rng", "_state",
                                                             "history_"))
        params = None if model is None else model.store.snapshot()
        stream = None if rng is None else rng.bit_generator.state
        lists = [(v, len(v)) for v in (saved.get("loss_curve_"), saved.get("validation_scores_"))
                 if v is not None]
        mark = None if history is None else history.mark()
        if state is not None:
            saved["_state"] = copy.copy(state)
            if state.best_theta is not None:
                saved["_state"].best_theta = state.best_theta.copy()
        try:
            return fit(*args)
        except BaseException:
            if params is not None:
                model.store.restore(params)
            if stream is not None:
                rng.bit_generator.state = stream
            for values, n in lists:
                del values[n:]
            if mark is not None:
                history.rewind(mark)
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

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


