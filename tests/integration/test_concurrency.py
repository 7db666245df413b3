"""Threads: what is safe to share between threads (see README "Guarantees").

- Inference (forward, predict, predict_proba, loss) on one model from several threads gives the
  same results as one thread: it reads the parameters and allocates its own outputs.
- Training one model while other threads use *other* models works, in every backend.
- Training calls (fit, train_step, gradients) on one model are not safe to run concurrently with
  each other or with inference on that same model; Dense.forward/backward keep a per-layer cache
  and are not safe to share either.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastnn


def _data(seed, n=257, d=12, k=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, rng.integers(0, k, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_from_many_threads_matches_one_thread(backend, dtype):
    X, _ = _data(0)
    model = fastnn.MLP.from_sizes([12, 32, 16, 4], hidden="tanh", dtype=dtype, seed=0)
    want = {"forward": model.forward(X), "predict": model.predict(X),
            "predict_proba": model.predict_proba(X)}
    slices = [slice(i, i + 37) for i in range(0, len(X), 37)]
    want_parts = [model.forward(X[s]) for s in slices]
    barrier = threading.Barrier(8)

    def work(i):
        barrier.wait()  # start together, so the calls really overlap
        out = []
        for r in range(30):
            name = ("forward", "predict", "predict_proba")[(i + r) % 3]
            out.append((name, getattr(model, name)(X)))
            s = (i + r) % len(slices)
            out.append((s, model.forward(X[slices[s]])))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for out in results:
        for key, got in out:
            expected = want[key] if isinstance(key, str) else want_parts[key]
            np.testing.assert_array_equal(got, expected)


def test_loss_from_many_threads_matches_one_thread(backend):
    X, y = _data(1)
    model = fastnn.MLP.from_sizes([12, 8, 4], seed=1)
    want = model.loss(X, y)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: model.loss(X, y), range(40)))
    assert all(g == want for g in got)


def test_training_one_model_while_another_predicts(backend):
    X, y = _data(2)
    trained = fastnn.MLP.from_sizes([12, 16, 4], seed=2)
    reference = fastnn.MLP.from_sizes([12, 16, 4], seed=2)
    observer = fastnn.MLP.from_sizes([12, 16, 4], seed=3)
    want = observer.predict_proba(X)
    stop = threading.Event()
    mismatches = []

    def watch():
        while not stop.is_set():
            if not np.array_equal(observer.predict_proba(X), want):
                mismatches.append(1)

    watchers = [threading.Thread(target=watch) for _ in range(2)]
    for t in watchers:
        t.start()
    try:
        trained.fit(X, y, epochs=5, batch_size=16, lr=0.1, seed=0, progress=False)
    finally:
        stop.set()
        for t in watchers:
            t.join()
    assert not mismatches
    # the concurrent run trained exactly as a run alone does
    reference.fit(X, y, epochs=5, batch_size=16, lr=0.1, seed=0, progress=False)
    np.testing.assert_array_equal(trained.store.theta, reference.store.theta)


def test_independent_models_train_in_parallel_threads(backend):
    X, y = _data(3)

    def train(seed):
        m = fastnn.MLP.from_sizes([12, 16, 4], seed=seed)
        m.fit(X, y, epochs=3, batch_size=8, lr=0.05, optimizer="adam", seed=seed,
              progress=False)
        for _ in range(50):
            m.train_step(X[:16], y[:16], lr=0.01)
        return m.store.theta.copy()

    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(train, range(4)))
    for seed, theta in enumerate(parallel):
        np.testing.assert_array_equal(theta, train(seed))


def test_predicting_while_the_same_model_trains_never_crashes(backend):
    # Documented as unsafe for *consistency* (a prediction may see a half-updated model), but it
    # must not crash, deadlock or corrupt the training result.
    X, y = _data(4)
    model = fastnn.MLP.from_sizes([12, 16, 4], seed=4)
    alone = fastnn.MLP.from_sizes([12, 16, 4], seed=4)
    stop = threading.Event()
    shapes = []

    def watch():
        while not stop.is_set():
            shapes.append(model.predict_proba(X[:10]).shape)

    t = threading.Thread(target=watch)
    t.start()
    try:
        model.fit(X, y, epochs=3, batch_size=16, lr=0.1, seed=0, progress=False)
    finally:
        stop.set()
        t.join()
    assert shapes and set(shapes) == {(10, 4)}
    alone.fit(X, y, epochs=3, batch_size=16, lr=0.1, seed=0, progress=False)
    np.testing.assert_array_equal(model.store.theta, alone.store.theta)  # reads never disturb training


def test_backend_selection_is_thread_safe():
    old = fastnn.get_backend()
    names = fastnn.available_backends()
    names = [n for n in names if n != "cuda"]
    errors = []

    def flip(i):
        try:
            for _ in range(200):
                fastnn.set_backend(names[i % len(names)])
                assert fastnn.get_backend() in names
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(flip, range(4)))
    finally:
        fastnn.set_backend(old)
    assert not errors
