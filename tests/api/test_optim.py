"""fit's optimisers, schedules, stopping rules, validation, sample weights, callbacks, divergence."""

import re

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import Callback


def _blobs(rng, n=90, d=6, k=3, noise=1.0):
    centers = rng.normal(size=(k, d)) * 2
    y = rng.integers(0, k, n)
    return centers[y] + noise * rng.normal(size=(n, d)), y


def _model(dtype=np.float64, sizes=(6, 8, 3), seed=0, **kw):
    return fastnn.MLP.from_sizes(list(sizes), dtype=dtype, seed=seed, **kw)


def _fit(model, X, y, **kw):
    kw.setdefault("progress", False)
    return model.fit(X, y, **kw)


# --- every option reaches the compiled loop the same way on every backend -----------------
OPTION_SETS = [
    dict(optimizer="momentum", l2=0.01),
    dict(optimizer="nesterov", schedule="invscaling", power_t=0.3),
    dict(optimizer="adam", lr=0.01, l2=0.02, sample_weight="random"),
    dict(optimizer=fastnn.SGD(0.05, momentum=0.5), schedule="adaptive", tol=10.0,
         n_iter_no_change=1),
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: str(o.get("optimizer")))
def test_fit_options_match_the_reference_backend(backend, rng, options):
    X, y = _blobs(rng)
    options = dict(options)
    if options.get("sample_weight") == "random":
        options["sample_weight"] = rng.uniform(0, 3, len(y))
    runs = []
    for name in (backend, "numpy"):
        fastnn.set_backend(name)
        model = _model()
        h = _fit(model, X, y, epochs=4, batch_size=16, seed=1, **options)
        runs.append((h.loss, h.lr, model.store.theta.copy()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-9)
    assert runs[0][1] == runs[1][1]
    np.testing.assert_allclose(runs[0][2], runs[1][2], rtol=1e-8, atol=1e-12)


def test_l2_shrinks_weights_and_is_counted_in_the_loss(backend, rng):
    X, y = _blobs(rng)
    plain, decayed = _model(), _model()
    _fit(plain, X, y, epochs=20, lr=0.1)
    h = _fit(decayed, X, y, epochs=20, lr=0.1, l2=0.5)
    norm = lambda m: sum(float((l.W ** 2).sum()) for l in m.layers)  # noqa: E731
    assert norm(decayed) < 0.5 * norm(plain)
    # biases are not penalised: only weights enter the L2 term of the recorded loss
    penalty = 0.25 * norm(decayed)
    assert h.loss[-1] > penalty
    np.testing.assert_array_equal(_model().layers[0].b, 0)


# --- schedules ----------------------------------------------------------------------------
def test_constant_and_invscaling_rates(rng):
    X, y = _blobs(rng, n=40)
    h = _fit(_model(), X, y, epochs=3, lr=0.2)
    assert h.lr == [0.2, 0.2, 0.2]
    h = _fit(_model(), X, y, epochs=4, lr=0.2, schedule="invscaling", power_t=0.5)
    want = [0.2 / (t * 40 + 1) ** 0.5 for t in range(4)]
    np.testing.assert_allclose(h.lr, want, rtol=1e-15)


def test_adaptive_halves_the_rate_on_a_plateau(rng):
    X, y = _blobs(rng, n=40)
    # tol so large that no epoch after the first counts as an improvement
    h = _fit(_model(), X, y, epochs=7, lr=0.08, schedule="adaptive", tol=100.0,
             n_iter_no_change=2)
    assert h.lr == [0.08, 0.08, 0.08, 0.04, 0.04, 0.02, 0.02]
    assert h.stop_reason is None


def test_adaptive_stops_when_the_rate_is_spent(rng):
    X, y = _blobs(rng, n=40)
    h = _fit(_model(), X, y, epochs=100, lr=0.08, schedule="adaptive", tol=100.0,
             n_iter_no_change=1)
    assert h.stop_reason == "lr_min"
    assert h.lr[-1] <= 1e-6 * 0.08 and h.lr[-2] > 1e-6 * 0.08
    assert h.epochs < 100


def test_adaptive_keeps_the_rate_while_the_loss_falls(rng):
    X, y = _blobs(rng, n=60, noise=0.3)
    h = _fit(_model(), X, y, epochs=8, lr=0.05, schedule="adaptive", n_iter_no_change=3)
    assert all(np.diff(h.loss) < 0)
    assert h.lr == [0.05] * 8


# --- stopping -----------------------------------------------------------------------------
def test_tol_stops_after_n_iter_no_change_epochs(rng):
    X, y = _blobs(rng, n=40)
    h = _fit(_model(), X, y, epochs=50, lr=0.05, tol=100.0, n_iter_no_change=3)
    assert h.epochs == 4 and h.stop_reason == "no_improvement"
    assert h.best_epoch == int(np.argmin(h.loss)) + 1


def test_without_tol_every_epoch_runs(rng):
    X, y = _blobs(rng, n=40)
    h = _fit(_model(), X, y, epochs=12, lr=1e-6)
    assert h.epochs == 12 and h.stop_reason is None and h.best_epoch is None


def test_early_stopping_restores_the_best_weights(backend, rng):
    X, y = _blobs(rng, n=200, noise=2.5)
    Xv, yv = _blobs(np.random.default_rng(5), n=60, noise=2.5)
    model = _model(sizes=(6, 64, 3))
    h = _fit(model, X, y, epochs=60, lr=0.3, early_stopping=True, validation_data=(Xv, yv),
             n_iter_no_change=5, seed=0)
    assert h.stop_reason == "no_improvement" and h.epochs < 60
    best = int(np.argmin(h.val_loss))
    assert h.best_epoch == best + 1 and h.epochs == h.best_epoch + 5
    # the model holds the best epoch's weights, not the last epoch's
    assert model.loss(Xv, yv) == pytest.approx(h.val_loss[best], rel=1e-9)
    assert model.loss(Xv, yv) < h.val_loss[-1]


def test_early_stopping_splits_off_a_stratified_validation_fraction(rng):
    X, y = _blobs(rng, n=100)
    seen = {}

    class Spy(Callback):
        def on_epoch_end(self, epoch, logs):
            seen.update(logs)

    h = _fit(_model(), X, y, epochs=3, lr=0.05, early_stopping=True, validation_fraction=0.2,
             callbacks=[Spy()], seed=3)
    assert len(h.val_loss) == len(h.val_accuracy) == 3
    assert {"loss", "lr", "val_loss", "val_accuracy"} <= set(seen)
    # 20 of 100 rows, about 20% of each class: accuracies are multiples of 1/20
    assert all(abs(a * 20 - round(a * 20)) < 1e-9 for a in h.val_accuracy)


def test_validation_data_is_recorded_without_stopping(backend, rng):
    X, y = _blobs(rng, n=60)
    model = _model()
    h = _fit(model, X, y, epochs=5, lr=0.1, validation_data=(X, y), metrics=("accuracy",))
    assert h.epochs == 5 and len(h.val_loss) == 5 and len(h.accuracy) == 5
    assert h.val_accuracy[-1] == pytest.approx(model.score(X, y))
    assert h.accuracy[-1] == pytest.approx(model.score(X, y))
    assert h.val_loss[-1] == pytest.approx(model.loss(X, y), rel=1e-9)


def test_regression_history_records_r2(rng):
    X = rng.normal(size=(80, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=80)
    model = fastnn.MLP.from_sizes([4, 16, 1], output="identity", dtype=np.float64, seed=0)
    h = _fit(model, X, y, epochs=30, lr=0.05, validation_data=(X, y), metrics=("accuracy",))
    assert h.accuracy == [] and len(h.val_r2) == 30
    assert h.val_r2[-1] == pytest.approx(model.score(X, y), rel=1e-9)
    assert h.val_r2[-1] > 0.9


# --- sample weights -----------------------------------------------------------------------
def test_integer_weights_equal_repeated_rows_in_full_batch_descent(backend, rng):
    X, y = _blobs(rng, n=30)
    w = rng.integers(0, 4, 30)
    w[0] = 2
    a, b = _model(), _model()
    ha = _fit(a, X, y, epochs=5, batch_size=1000, lr=0.2, shuffle=False, sample_weight=w,
              l2=0.01)
    hb = _fit(b, np.repeat(X, w, axis=0), np.repeat(y, w), epochs=5, batch_size=1000, lr=0.2,
              shuffle=False, l2=0.01)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-10)
    np.testing.assert_allclose(a.store.theta, b.store.theta, rtol=1e-9, atol=1e-12)


def test_weights_only_matter_by_ratio(rng):
    X, y = _blobs(rng, n=30)
    w = rng.uniform(0.5, 2, 30)
    a, b = _model(), _model()
    _fit(a, X, y, epochs=3, lr=0.1, sample_weight=w, seed=0)
    _fit(b, X, y, epochs=3, lr=0.1, sample_weight=7.5 * w, seed=0)
    np.testing.assert_allclose(a.store.theta, b.store.theta, rtol=1e-12)


# --- callbacks ----------------------------------------------------------------------------
def test_a_function_callback_can_stop_training(rng):
    X, y = _blobs(rng, n=40)
    calls = []

    def stop_at_three(epoch, logs):
        calls.append((epoch, sorted(logs)))
        return epoch == 3

    h = _fit(_model(), X, y, epochs=10, lr=0.05, callbacks=stop_at_three)
    assert h.epochs == 3 and h.stop_reason == "callback"
    assert calls == [(e, ["loss", "lr"]) for e in (1, 2, 3)]


def test_callback_hooks_run_in_order(rng):
    X, y = _blobs(rng, n=40)
    events = []

    class Recorder(Callback):
        def on_train_begin(self, model):
            events.append(("begin", model.n_params))

        def on_epoch_end(self, epoch, logs):
            events.append(("epoch", epoch))

        def on_train_end(self, history):
            events.append(("end", history.epochs))

    model = _model()
    _fit(model, X, y, epochs=2, callbacks=[Recorder()])
    assert events == [("begin", model.n_params), ("epoch", 1), ("epoch", 2), ("end", 2)]


# --- divergence ---------------------------------------------------------------------------
def _exploding(rng, dtype):
    X = rng.normal(size=(16, 3)) * 10
    y = rng.normal(size=16) * 100
    return X, y, fastnn.MLP.from_sizes([3, 8, 1], output="identity", dtype=dtype, seed=0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the NumPy reference overflows loudly
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_divergence_names_epoch_and_step_and_keeps_finite_parameters(backend, rng, dtype):
    X, y, model = _exploding(rng, dtype)
    with pytest.raises(FloatingPointError, match=r"epoch \d+, step \d+") as info:
        _fit(model, X, y, epochs=500, batch_size=16, lr=5.0, shuffle=False)
    assert np.isfinite(model.store.theta).all()
    epoch = int(re.search(r"epoch (\d+)", str(info.value)).group(1))
    assert re.search(r"step 1\b", str(info.value))  # one full batch per epoch
    # the parameters are those after the last finite update: epoch - 1 full epochs
    again = _exploding(np.random.default_rng(0), dtype)[2]
    if epoch > 1:
        _fit(again, X, y, epochs=epoch - 1, batch_size=16, lr=5.0, shuffle=False)
    np.testing.assert_array_equal(model.store.theta, again.store.theta)


# --- validation at the boundary -----------------------------------------------------------
BAD_OPTIONS = [
    ("schedule", dict(schedule="cosine")),
    ("power_t", dict(power_t=-1)),
    ("tol", dict(tol=-0.1)),
    ("n_iter_no_change", dict(n_iter_no_change=0)),
    ("early_stopping", dict(early_stopping="yes")),
    ("validation_fraction", dict(early_stopping=True, validation_fraction=1.0)),
    ("validation_fraction", dict(validation_fraction=0.0)),
    ("validation_data", dict(validation_data=np.zeros((3, 6)))),
    ("X_val has 5 features", dict(validation_data=(np.zeros((3, 5)), [0, 1, 2]))),
    ("rows but X has", dict(validation_data=(np.zeros((3, 6)), [0, 1]))),
    ("metric", dict(metrics=("f1",))),
    ("callback", dict(callbacks=[42])),
    ("sample_weight must have shape", dict(sample_weight=np.ones(5))),
    ("sample_weight must be >= 0", dict(sample_weight=-np.ones(40))),
    ("sums to zero", dict(sample_weight=np.zeros(40))),
    ("NaN", dict(sample_weight=np.full(40, np.nan))),
    ("shuffle", dict(shuffle=None)),
    ("seed", dict(seed="abc")),
]


@pytest.mark.parametrize("message,options", BAD_OPTIONS, ids=[b[0] for b in BAD_OPTIONS])
def test_bad_options_raise_before_anything_changes(rng, message, options):
    X, y = _blobs(rng, n=40)
    model = _model()
    before = model.store.theta.copy()
    with pytest.raises(ValueError, match=message):
        _fit(model, X, y, epochs=2, **options)
    np.testing.assert_array_equal(model.store.theta, before)
    assert model.store.opt_code is None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("lr", [1e4, 1e12, 1e30, 1e37])
@pytest.mark.parametrize("progress", [False, True])
def test_divergence_keeps_exactly_the_last_finite_update(backend, lr, progress):
    # An overflowing *update* (finite gradient, non-finite parameters) must be undone too.
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(16, 3)) * 10).astype(np.float32)
    y = rng.normal(size=16) * 100

    def fresh():
        return fastnn.MLP.from_sizes([3, 4, 1], output="identity", seed=0)

    model = fresh()
    with pytest.raises(FloatingPointError) as info:
        model.fit(X, y, epochs=50, batch_size=4, lr=lr, shuffle=False, progress=progress)
    assert np.isfinite(model.store.theta).all()
    epoch, step = map(int, re.search(r"epoch (\d+), step (\d+)", str(info.value)).groups())
    again = fresh()
    if epoch > 1:
        again.fit(X, y, epochs=epoch - 1, batch_size=4, lr=lr, shuffle=False, progress=False)
    if step > 1:
        again.fit(X[:4 * (step - 1)], y[:4 * (step - 1)], epochs=1, batch_size=4, lr=lr,
                  shuffle=False, progress=False)
    np.testing.assert_array_equal(model.store.theta, again.store.theta)
    assert np.isfinite(again.store.theta).all()
