"""Timing helpers for ``fastnn bench``: warm-up, calibrated samples, best and median."""

import statistics
import time


def measure(fn, repeat=5, min_time=0.05, max_calls=10_000, warmup=True):
    """Time ``fn()`` and return per-call seconds, one entry per sample.

    ``fn`` is called once to warm up (compile, allocate), then enough calls per sample to last
    about ``min_time`` seconds are timed, ``repeat`` times over.

    Parameters
    ----------
    fn : callable
        Takes no arguments; its result is ignored.
    repeat : int
        Number of samples.
    min_time : float
        Target duration of one sample, in seconds.
    max_calls : int
        Upper bound on calls per sample.
    warmup : bool
        Make the first (warm-up) call untimed; pass False if ``fn`` ran already.

    Returns
    -------
    list of float
        Seconds per call for each sample.
    """
    if warmup:
        fn()  # compile, allocate, fill caches
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-9)
    calls = max(1, min(max_calls, int(min_time / once)))
    samples = [once] if calls == 1 else []  # a slow call's calibration run counts as a sample
    while len(samples) < max(1, repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return samples


def summary(samples):
    """``{"best": min, "median": median, "samples": n}`` of per-call seconds."""
    return {"best": min(samples), "median": statistics.median(samples), "samples": len(samples)}
