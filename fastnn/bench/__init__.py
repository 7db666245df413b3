"""``fastnn bench``: time one training step per implementation, in one run, against NumPy.

For each case it builds the NumPy baseline (fastnn's "numpy" backend), every other fastnn
backend, and PyTorch and JAX where they are installed, all from the same initial weights and data.
Each implementation takes one step and its weight update is checked against the baseline's; only
then is it timed (warm-up, calibrated samples, best and median). GFLOP/s counts the matrix
products of forward + backward (``fastnn.bench.cases.gemm_flops``: ``6·batch·weights`` less the
first layer's unneeded input gradient). The best measured float32 GEMM rate is the ceiling.

Run ``python -m fastnn.bench --help`` (or ``fastnn bench`` where the CLI wires it in).

The modules, each with one job, import one way (no cycles): ``cases`` (shapes, seeded data, FLOP
counts) and ``timing``; ``base`` (what the implementations share); ``torch_impl`` and
``jax_impl``; ``impls`` (whole training steps) and ``layer`` (one layer's kernels, for asv);
``machine`` (CPU, BLAS, GEMM ceiling); ``report`` (table and chart); this module (the command).
They reach fastnn only through its public API and the kernel contract (``fastnn.kernels``).
"""

import argparse
import datetime
import json
import sys

import numpy as np

from . import cases as _cases
from . import impls as _impls
from . import machine as _machine
from . import timing as _timing
from .report import format_table, plot

__all__ = ["format_table", "main", "measure_all", "plot", "register", "run"]

IMPLS = ("torch", "jax")


def register(subparsers):
    """Add the ``bench`` subcommand to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser("bench", help="time a training step: NumPy vs fastnn vs PyTorch/JAX",
                              description=__doc__.split("\n\n")[0])
    _arguments(p)
    return p


def _arguments(p):
    p.add_argument("--cases", default=None,
                   help="comma-separated cases: " + ", ".join(_cases.CASES)
                   + " or BATCHxIN-H-...-OUT (default: the four standard cases and sgd1x2-2-1)")
    p.add_argument("--impls", default=None,
                   help="comma-separated implementations (default: numpy, every fastnn backend, "
                   "torch and jax where installed)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeat", type=int, default=7, help="timed samples per implementation")
    p.add_argument("--quick", action="store_true",
                   help="fewer and shorter samples, and skip the 1024x1024-2048-2048-10 case")
    p.add_argument("--no-gemm", action="store_true", help="skip measuring the GEMM ceiling")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="save a speedup chart (needs matplotlib)")


def _impl_names(text):
    if text:
        names = [s.strip() for s in text.split(",") if s.strip()]
        known = ("numpy", "numba", "cython", "cuda") + IMPLS
        for name in names:
            if name not in known:
                raise ValueError(f"unknown implementation {name!r}; choose from "
                                 + ", ".join(known))
        return names
    return _impls.fastnn_names() + list(IMPLS)


def _bench_case(case, dtype, names, repeat, min_time):
    """Rows for one case: check every implementation against NumPy, then time it."""
    start = _cases.initial_params(case, dtype)
    ref = _impls.make("numpy", case, dtype)
    ref.run()
    want = ref.params()
    rows = []
    for name in names:
        row = {"case": case.name, "impl": name, "batch": case.batch, "sizes": list(case.sizes),
               "steps_per_call": case.steps}
        try:
            impl = ref if name == "numpy" else _impls.make(name, case, dtype)
            if impl is not ref:
                impl.run()
            row["max_rel_error"] = _impls.mismatch(impl.params(), want, start)
            if not row["max_rel_error"] <= _impls.tolerance(dtype):
                raise AssertionError(f"disagrees with NumPy (relative error "
                                     f"{row['max_rel_error']:.3g}); not timed")
            samples = _timing.measure(impl.run, repeat=repeat, min_time=min_time)
        except _impls.Unavailable as exc:
            row["skipped"] = str(exc)
            rows.append(row)
            continue
        except (AssertionError, RuntimeError, ValueError, FloatingPointError) as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            continue
        stats = _timing.summary(samples)
        row["seconds_per_step"] = stats["best"] / case.steps
        row["median_seconds_per_step"] = stats["median"] / case.steps
        row["samples"] = stats["samples"]
        row["gflops"] = _cases.gemm_flops(case) / row["seconds_per_step"] / 1e9
        rows.append(row)
    base = next((r for r in rows if r["impl"] == "numpy" and "seconds_per_step" in r), None)
    for r in rows:
        if base is not None and "seconds_per_step" in r:
            r["speedup_vs_numpy"] = base["seconds_per_step"] / r["seconds_per_step"]
    return rows


def measure_all(cases, dtype="float32", impls=None, repeat=7, quick=False, gemm=True):
    """Run the benchmark and return the report as a dict (what ``--json`` prints).

    Parameters
    ----------
    cases : list of str
        Case names (see :mod:`fastnn.bench.cases`).
    dtype : {"float32", "float64"}
    impls : list of str, optional
        Implementations; default numpy, each fastnn backend, torch, jax.
    repeat : int
        Timed samples per implementation (best and median are reported).
    quick : bool
        Shorter samples and at most 3 of them; a 1024² GEMM only.
    gemm : bool
        Measure the float32 GEMM ceiling.
    """
    dtype = np.dtype(dtype)
    names = impls or _impl_names(None)
    if "numpy" not in names:
        names = ["numpy"] + list(names)
    repeat = min(repeat, 3) if quick else repeat
    min_time = 0.02 if quick else 0.1
    report = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "dtype": dtype.name, "repeat": repeat, "machine": _machine.machine_info(),
              "flops_formula": "6*batch*sum(in*out) - 2*batch*in0*out0 (GEMMs of forward+backward)",
              "gemm": [], "results": []}
    if gemm:
        sizes = (1024,) if quick else (1024, 2048)
        report["gemm"] = _machine.gemm_rates(sizes, repeat=repeat)
    for name in cases:
        case = _cases.get_case(name)
        report["results"] += _bench_case(case, dtype, names, repeat, min_time)
    return report


def run(args):
    """Run ``fastnn bench`` for parsed ``args``; returns the exit status."""
    try:
        if args.repeat < 1:
            raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
        if args.plot:
            import importlib.util

            if importlib.util.find_spec("matplotlib") is None:
                raise ImportError("--plot needs matplotlib: pip install matplotlib")
        if args.cases:
            cases = [s.strip() for s in args.cases.split(",") if s.strip()]
        else:
            cases = list(_cases.QUICK if args.quick else _cases.DEFAULT)
        for name in cases:
            _cases.get_case(name)  # unknown names fail before any timing
        report = measure_all(cases, args.dtype, _impl_names(args.impls), args.repeat,
                             args.quick, not args.no_gemm)
        if args.plot:
            plot(report, args.plot)
    except (ValueError, ImportError, OSError) as exc:
        print(f"fastnn bench: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


def main(argv=None):
    """``python -m fastnn.bench``: parse ``argv`` and run; returns the exit status."""
    p = argparse.ArgumentParser(prog="fastnn bench", description=__doc__.split("\n\n")[0])
    _arguments(p)
    return run(p.parse_args(argv))
