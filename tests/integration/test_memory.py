"""Memory: the resident set stays flat over 10,000 training steps in every CPU backend.

A training step allocates nothing that survives it (the model owns its buffers), so after a
warm-up (compilation, first buffers) RSS must not grow with the number of steps. The bound is
generous (20 MB) because RSS on a shared machine is noisy; a leak of even 2 KB per step would
exceed it. RSS is read from /proc/self/statm (Linux).
"""

import gc
import os

import numpy as np
import pytest

import fastnn

STATM = "/proc/self/statm"
pytestmark = pytest.mark.skipif(not os.path.exists(STATM),
                                reason="RSS is read from /proc/self/statm (Linux only)")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
STEPS = 10_000
BOUND_MB = 20


def rss_mb():
    with open(STATM) as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def test_rss_is_flat_over_10000_train_steps(backend):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 8)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    model = fastnn.MLP.from_sizes([8, 16, 3], seed=0)
    for _ in range(500):  # warm-up: compile, allocate the workspace
        model.train_step(X, y, lr=0.01)
    gc.collect()
    before = rss_mb()
    for _ in range(STEPS):
        model.train_step(X, y, lr=0.01)
    gc.collect()
    growth = rss_mb() - before
    assert np.isfinite(model.store.theta).all()
    assert growth < BOUND_MB, f"RSS grew {growth:.1f} MB over {STEPS} train_step calls"


def test_rss_is_flat_over_repeated_fit_and_predict(backend):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 8))
    y = rng.integers(0, 3, 64)
    model = fastnn.MLP.from_sizes([8, 16, 3], seed=0)
    for _ in range(20):
        model.fit(X, y, epochs=1, batch_size=8, optimizer="adam", progress=False, seed=0)
        model.predict_proba(X)
    gc.collect()
    before = rss_mb()
    for _ in range(1000):  # 8,000 steps in 1,000 fit calls, plus 1,000 predictions
        model.fit(X, y, epochs=1, batch_size=8, optimizer="adam", progress=False, seed=0)
        model.predict_proba(X)
    gc.collect()
    growth = rss_mb() - before
    assert growth < BOUND_MB, f"RSS grew {growth:.1f} MB over 1000 fit + predict calls"
