"""``fastnn bench``: time one training step per implementation, in one run, against NumPy.

For each case it builds the NumPy baseline (fastnn's "numpy" backend), every other fastnn
backend, and PyTorch and JAX where they are installed, all from the same initial weights and data.
Each implementation takes one step and its weight update is checked against the baseline's; only
then is it timed (warm-up, calibrated samples, best and median). GFLOP/s counts the matrix
products of forward + backward (``fastnn._bench_cases.gemm_flops``: ``6·batch·weights`` less the
first layer's unneeded input gradient). The best measured float32 GEMM rate is the ceiling.

Run ``python -m fastnn.bench --help`` (or ``fastnn bench`` where the CLI wires it in).
"""

import argparse
import datetime
import json
import sys

import numpy as np

from . import _bench_cases, _bench_impls, _bench_machine, _bench_timing

IMPLS = ("torch", "jax")


def register(subparsers):
    """Add the ``bench`` subcommand to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser("bench", help="time a training step: NumPy vs fastnn vs PyTorch/JAX",
                              description=__doc__.split("\n\n")[0])
    _arguments(p)
    return p


def _arguments(p):
    p.add_argument("--cases", default=None,
                   help="comma-separated cases: " + ", ".join(_bench_cases.CASES)
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
    return _bench_impls.fastnn_names() + list(IMPLS)


def _bench_case(case, dtype, names, repeat, min_time):
    """Rows for one case: check every implementation against NumPy, then time it."""
    start = _bench_cases.initial_params(case, dtype)
    ref = _bench_impls.make("numpy", case, dtype)
    ref.run()
    want = ref.params()
    rows = []
    for name in names:
        row = {"case": case.name, "impl": name, "batch": case.batch, "sizes": list(case.sizes),
               "steps_per_call": case.steps}
        try:
            impl = ref if name == "numpy" else _bench_impls.make(name, case, dtype)
            if impl is not ref:
                impl.run()
            row["max_rel_error"] = _bench_impls.mismatch(impl.params(), want, start)
            if not row["max_rel_error"] <= _bench_impls.tolerance(dtype):
                raise AssertionError(f"disagrees with NumPy (relative error "
                                     f"{row['max_rel_error']:.3g}); not timed")
            samples = _bench_timing.measure(impl.run, repeat=repeat, min_time=min_time)
        except _bench_impls.Unavailable as exc:
            row["skipped"] = str(exc)
            rows.append(row)
            continue
        except (AssertionError, RuntimeError, ValueError, FloatingPointError) as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            continue
        stats = _bench_timing.summary(samples)
        row["seconds_per_step"] = stats["best"] / case.steps
        row["median_seconds_per_step"] = stats["median"] / case.steps
        row["samples"] = stats["samples"]
        row["gflops"] = _bench_cases.gemm_flops(case) / row["seconds_per_step"] / 1e9
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
        Case names (see ``fastnn._bench_cases``).
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
              "dtype": dtype.name, "repeat": repeat, "machine": _bench_machine.machine_info(),
              "flops_formula": "6*batch*sum(in*out) - 2*batch*in0*out0 (GEMMs of forward+backward)",
              "gemm": [], "results": []}
    if gemm:
        sizes = (1024,) if quick else (1024, 2048)
        report["gemm"] = _bench_machine.gemm_rates(sizes, repeat=repeat)
    for name in cases:
        case = _bench_cases.get_case(name)
        report["results"] += _bench_case(case, dtype, names, repeat, min_time)
    return report


def _fmt_time(s):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def format_table(report):
    """The report as a plain-text table."""
    m = report["machine"]
    blas = ", ".join(f"{b['library']} ({b['coretype']})" for b in m["blas"]) or "unknown"
    lines = [f"fastnn bench, {report['date']}, {report['dtype']}, best of {report['repeat']}",
             f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['threads']} threads; BLAS: {blas}"]
    ceiling = max((g["gflops"] for g in report["gemm"]), default=None)
    for g in report["gemm"]:
        lines.append(f"GEMM ceiling: float32 {g['n']}x{g['n']} via {g['via']}: "
                     f"{g['gflops']:.1f} GFLOP/s")
    head = f"{'case':<24} {'impl':<7} {'time/step':>10} {'median':>10} {'GFLOP/s':>8} " \
           f"{'vs numpy':>9}"
    if ceiling:
        head += f" {'of GEMM':>8}"
    lines += ["", head, "-" * len(head)]
    for r in report["results"]:
        start = f"{r['case']:<24} {r['impl']:<7}"
        if "seconds_per_step" not in r:
            lines.append(f"{start} {r.get('skipped') or r.get('error')}")
            continue
        line = (f"{start} {_fmt_time(r['seconds_per_step']):>10} "
                f"{_fmt_time(r['median_seconds_per_step']):>10} {r['gflops']:>8.2f} "
                f"{r.get('speedup_vs_numpy', float('nan')):>8.2f}x")
        if ceiling:
            line += f" {100 * r['gflops'] / ceiling:>7.1f}%"
        lines.append(line)
    lines.append("")
    lines.append("time/step: best sample; sgd1 and fit cases time a whole epoch, divided per step.")
    return "\n".join(lines)


def plot(report, path):
    """Save a bar chart of each implementation's speedup over NumPy per case to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install matplotlib") from None
    rows = [r for r in report["results"] if "speedup_vs_numpy" in r]
    cases = list(dict.fromkeys(r["case"] for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cases)), 4))
    width = 0.8 / max(1, len(impls))
    for j, impl in enumerate(impls):
        xs, ys = [], []
        for i, case in enumerate(cases):
            for r in rows:
                if r["case"] == case and r["impl"] == impl:
                    xs.append(i + j * width)
                    ys.append(r["speedup_vs_numpy"])
        ax.bar(xs, ys, width, label=impl)
    ax.set_xticks([i + width * (len(impls) - 1) / 2 for i in range(len(cases))], cases,
                  rotation=15, fontsize=8)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("speedup over NumPy (time per step)")
    ax.set_title(f"fastnn bench, {report['dtype']}, {report['date'][:10]}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
            cases = list(_bench_cases.QUICK if args.quick else _bench_cases.DEFAULT)
        for name in cases:
            _bench_cases.get_case(name)  # unknown names fail before any timing
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


if __name__ == "__main__":
    sys.exit(main())
