"""The report of ``fastnn bench`` as a plain-text table, and as a speedup chart."""


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
