"""fastnn.sklearn: scikit-learn's estimator checks, and what its API promises beyond them."""

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# Every check passes; none is marked as an expected failure. The only ones skipped are those
# that need pandas when it is not installed, and check_array_api_input (SCIPY_ARRAY_API unset).
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _clf(**kw):
    kw.setdefault("random_state", 0)
    kw.setdefault("max_iter", 300)
    return MLPClassifier(hidden_layer_sizes=(16,), **kw)


def test_classifier_learns_iris_with_both_solvers(iris):
    X, y = iris
    for solver, lr in (("adam", 0.01), ("sgd", 0.1)):
        clf = _clf(solver=solver, learning_rate_init=lr).fit(X, y)
        assert clf.score(X, y) > 0.95
        assert clf.n_iter_ == len(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
        assert clf.t_ == clf.n_iter_ * len(y)
        assert [c.shape for c in clf.coefs_] == [(4, 16), (16, 3)]
        assert clf.out_activation_ == "softmax" and clf.n_layers_ == 3


def test_string_labels_and_their_order(iris):
    X, y = iris
    names = np.array(["virginica", "setosa", "versicolor"])[y]
    clf = _clf(learning_rate_init=0.01).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    pred = clf.predict(X)
    assert pred.dtype.kind == "U" and np.mean(pred == names) > 0.95
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], pred)


def test_binary_and_single_class(iris):
    X, y = iris
    labels = np.where(y == 0, "a", "b")
    clf = _clf(learning_rate_init=0.01).fit(X, labels)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 2)
    np.testing.assert_allclose(proba.sum(1), 1)
    assert np.mean(clf.predict(X) == labels) == 1.0
    one = _clf(max_iter=5).fit(X, np.full(150, 7))
    assert list(one.predict(X[:3])) == [7, 7, 7]
    np.testing.assert_array_equal(one.predict_proba(X[:3]), 1)


def test_label_encoding_matches_label_binarizer(iris):
    """Plain labels skip LabelBinarizer (classified once); predictions follow its rule."""
    from sklearn.preprocessing import LabelBinarizer

    X, y = iris
    for labels in (np.where(y == 1, "yes", "no"), np.where(y == 2, 5, -3), y):
        clf = _clf(max_iter=20).fit(X, labels)
        lb = LabelBinarizer().fit(labels)
        np.testing.assert_array_equal(clf.classes_, lb.classes_)
        A = clf.model_.forward(X)
        if clf.out_activation_ == "logistic":
            np.testing.assert_array_equal(clf.predict(X), lb.inverse_transform(A, 0.5))
        else:
            np.testing.assert_array_equal(clf.predict(X), lb.classes_[A.argmax(1)])
    with pytest.raises(ValueError, match="Unknown label type"):
        _clf().fit(X, y + 0.5)
    with pytest.warns(UserWarning, match="unique classes"):
        _clf(max_iter=2).fit(X[:40], np.arange(40) % 30)
    with pytest.raises(ValueError, match="not in classes_"):
        _clf(max_iter=2).partial_fit(X, y % 2, classes=[0, 1]).partial_fit(X, y)


def test_multilabel_indicator_targets():
    X, Y = make_multilabel_classification(n_samples=120, n_features=8, n_classes=4,
                                          random_state=0)
    clf = _clf(learning_rate_init=0.01, max_iter=400).fit(X / X.max(), Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    pred = clf.predict(X / X.max())
    assert pred.shape == Y.shape and set(np.unique(pred)) <= {0, 1}
    assert clf.predict_proba(X / X.max()).shape == (120, 4)
    assert np.mean(pred == Y) > 0.8


def test_multi_output_regression(rng):
    X = rng.normal(size=(200, 5))
    Y = np.stack([X[:, 0] - X[:, 1], 0.5 * X[:, 2] ** 2], axis=1)
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=300,
                       random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (200, 2) and reg.n_outputs_ == 2
    assert reg.score(X, Y) > 0.9
    single = clone(reg).fit(X, Y[:, 0])
    assert single.predict(X).shape == (200,)


def test_regressor_loss_uses_scikit_learns_convention(rng):
    X = rng.normal(size=(50, 3))
    Y = rng.normal(size=(50, 2))
    reg = MLPRegressor(hidden_layer_sizes=(4,), alpha=0.0, solver="sgd", batch_size=50,
                       learning_rate_init=1e-12, max_iter=1, shuffle=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, Y)
    want = 0.5 * np.mean((reg.predict(X) - Y) ** 2)  # half the mean over all elements
    assert reg.loss_ == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_float32_is_preserved_and_dtype_forces(Est, iris):
    X, y = iris
    est = Est(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out32 = getattr(est.fit(X.astype(np.float32), y), "predict_proba", est.predict)(X)
        assert est.model_.dtype == np.float32 and out32.dtype == np.float32
        out64 = getattr(est.fit(X, y), "predict_proba", est.predict)(X)
        assert est.model_.dtype == np.float64 and out64.dtype == np.float64
        est.set_params(dtype="float32").fit(X.astype(np.int64), y)
        assert est.model_.dtype == np.float32


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_fortran_ordered_input_trains_as_c_ordered(Est, iris):
    X, y = iris
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        c_order = Est(**kw).fit(np.ascontiguousarray(X), y)
        f_order = Est(**kw).fit(np.asfortranarray(X), y)
    assert f_order.loss_curve_ == c_order.loss_curve_


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_plain_arrays_and_lists_train_alike(Est, iris):
    """ndarrays that need no conversion skip validate_data; lists go through it."""
    X, y = iris
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = Est(**kw).fit(X, y)
        listed = Est(**kw).fit(X.tolist(), y.tolist())
        assert plain.loss_curve_ == listed.loss_curve_ and plain.n_features_in_ == 4
        with pytest.raises(ValueError, match="Input X contains NaN"):
            Est(**kw).fit(np.where(X > 2, np.nan, X), y)
        with pytest.raises(ValueError, match="X has 3 features"):
            plain.partial_fit(X[:, :3], y)


def test_partial_fit_continues_and_needs_classes_first(iris):
    X, y = iris
    clf = _clf(learning_rate_init=0.01)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    assert clf.n_iter_ == 1 and clf.t_ == 50
    for _ in range(100):  # batch_size "auto" is 200: one step per call
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 101 and clf.t_ == 50 + 100 * 150
    assert clf.loss_curve_[-1] < clf.loss_curve_[1]
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.partial_fit(X, y + 1)


def test_partial_fit_with_early_stopping_trains_on_everything_given(iris):
    X, y = iris
    clf = _clf(early_stopping=True, learning_rate_init=0.01)
    for _ in range(60):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 60 and clf.t_ == 60 * 150
    assert clf.validation_scores_ == []  # as in scikit-learn: no hold-out in partial_fit
    assert clf.score(X, y) > 0.85
    reg = MLPRegressor(early_stopping=True, random_state=0)
    reg.partial_fit(X, X[:, 0])
    reg.partial_fit(X, X[:, 0])
    assert reg.n_iter_ == 2


def test_early_stopping_keeps_the_best_validation_score(iris):
    X, y = iris
    clf = _clf(early_stopping=True, validation_fraction=0.2, n_iter_no_change=5,
               learning_rate_init=0.05, max_iter=500).fit(X, y)
    assert clf.n_iter_ < 500
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    # stopping came n_iter_no_change + 1 epochs after the last improvement by tol
    assert clf.history_.stop_reason == "no_improvement"


def test_adaptive_divides_the_rate_by_five(iris):
    X, y = iris
    clf = _clf(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1, tol=10.0,
               n_iter_no_change=1, max_iter=9).fit(X, y)
    assert clf.history_.lr[:7] == pytest.approx([0.1, 0.1, 0.1, 0.02, 0.02, 0.004, 0.004])


def test_invscaling_follows_samples_seen(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = _clf(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5,
                   power_t=0.25, max_iter=3).fit(X, y)
    want = [0.5 / (t * 150 + 1) ** 0.25 for t in range(3)]
    np.testing.assert_allclose(clf.history_.lr, want)
    adam = _clf(learning_rate="invscaling", max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam.fit(X, y)
    assert adam.history_.lr == [0.001] * 3  # schedules apply to "sgd" only, as in sklearn


def test_sample_weight_zero_equals_dropping_rows(iris):
    X, y = iris
    w = np.ones(150)
    w[::3] = 0
    kw = dict(shuffle=False, max_iter=20, learning_rate_init=0.01, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = _clf(**kw).fit(X, y, sample_weight=w)
        b = _clf(**kw).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-9, atol=1e-12)


def test_convergence_warning_when_max_iter_is_reached(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        _clf(max_iter=2).fit(X, y)


def test_pickle_round_trip(iris):
    X, y = iris
    clf = _clf(learning_rate_init=0.01, max_iter=50).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    again.partial_fit(X, y)  # optimiser state and RNG survive too
    assert again.n_iter_ == clf.n_iter_ + 1


def test_backend_parameter_does_not_touch_the_global_choice(iris):
    X, y = iris
    before = fastnn.get_backend()
    ref = _clf(backend="numpy", learning_rate_init=0.01, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X, y)
        default = clone(ref).set_params(backend=None).fit(X, y)
    assert fastnn.get_backend() == before and ref.model_.backend == "numpy"
    np.testing.assert_allclose(ref.predict_proba(X), default.predict_proba(X), rtol=1e-7,
                               atol=1e-10)


@pytest.mark.parametrize("params,message", [
    (dict(solver="lbfgs"), "lbfgs"),
    (dict(backend="tpu"), "unknown backend"),
    (dict(dtype="int8"), "dtype"),
    (dict(activation="gelu"), "activation"),
    (dict(hidden_layer_sizes=(10, 0)), "hidden layer"),
    (dict(learning_rate="cosine"), "learning_rate"),
    (dict(batch_size=0), "batch_size"),
    (dict(momentum=1.5), "momentum"),
    (dict(validation_fraction=1.0), "validation_fraction"),
])
def test_bad_parameters_raise_in_fit(iris, params, message):
    X, y = iris
    clf = MLPClassifier(**params)  # never in __init__
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_works_in_pipelines_and_cross_validation():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), _clf(learning_rate_init=0.01))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.9


@pytest.mark.parametrize("activation, factor", [("relu", 6.0), ("tanh", 6.0), ("logistic", 2.0)])
def test_initial_weights_are_drawn_as_scikit_learn_draws_them(iris, activation, factor):
    """Uniform in ±sqrt(factor / (fan_in + fan_out)), biases too, in scikit-learn's draw order."""
    X, y = iris
    clf = MLPClassifier((5, 4), activation=activation, max_iter=1, learning_rate_init=1e-12,
                        random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    rs = np.random.RandomState(3)
    for W, b, (fan_in, fan_out) in zip(clf.coefs_, clf.intercepts_,
                                       [(4, 5), (5, 4), (4, 3)]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        np.testing.assert_allclose(W, rs.uniform(-bound, bound, (fan_in, fan_out)), atol=1e-9)
        np.testing.assert_allclose(b, rs.uniform(-bound, bound, fan_out), atol=1e-9)


def test_fits_in_threads_match_sequential_fits(iris):
    """Int seeds re-seed a RandomState per thread: concurrent fits draw their own streams."""
    from concurrent.futures import ThreadPoolExecutor

    X, y = iris

    def fit(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return _clf(max_iter=3, random_state=seed).fit(X, y).loss_curve_

    seeds = list(range(16))
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(fit, seeds)) == [fit(seed) for seed in seeds]


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_training_follows_scikit_learns_mlp(iris, solver):
    """Same random_state, no shuffling: scikit-learn's MLP and fastnn's give the same loss curve."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, y = iris
    kw = dict(hidden_layer_sizes=(16,), solver=solver, learning_rate_init=0.01, max_iter=40,
              random_state=1, shuffle=False, tol=0.0, batch_size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = MLPClassifier(**kw).fit(X, y), SkMLP(**kw).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)
