"""Data-parallel scaling of ``fastnn.distributed.fit``: measured here, and modelled for clusters.

Run ``python benchmarks/mpi_scaling.py`` (needs mpi4py and mpiexec: ``pip install ".[mpi]"``).
It launches itself under ``mpiexec -n 1`` and ``-n 2`` (one BLAS thread per rank) and once more on
one rank with two threads, for the standard cases (float32, relu hidden layers, softmax output),
and prints per case: step time, throughput, time in the allreduce (inside the training step, which
includes waiting for the slower rank, and alone after a barrier), then a model of ring-allreduce
cost against compute for many machines. Batch sizes are per rank (weak scaling).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# (per-rank batch, layer widths, steps per epoch): steps keep each run to a few seconds
CASES = [(32, [64, 128, 10], 300), (128, [784, 256, 10], 60), (256, [784, 512, 512, 10], 20),
         (1024, [1024, 2048, 2048, 10], 3)]
LINKS = {"10 Gb/s": (10e9 / 8, 20e-6), "100 Gb/s": (100e9 / 8, 5e-6)}  # bytes/s, latency (s)


def flops_per_row(sizes):
    """Multiply-adds x 2 for forward (1 GEMM) and backward (dW, and dA_prev past layer 0)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return 2 * sum(i * o for i, o in pairs) * 3 - 2 * sizes[0] * sizes[1]


def worker(args):
    """One rank: train each case for 3 epochs, report the fastest of the last two, then time the
    allreduce alone (median after a barrier)."""
    from mpi4py import MPI

    import fastnn
    from fastnn import distributed

    comm = MPI.COMM_WORLD
    rows = []
    for batch, sizes, steps in CASES:
        rng = np.random.default_rng(comm.rank)
        n = batch * steps
        X = rng.normal(size=(n, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], n)
        model = fastnn.MLP.from_sizes(sizes, hidden="relu", output="softmax", seed=0)
        h = distributed.fit(model, X, y, comm=comm, epochs=3, batch_size=batch, lr=0.01,
                            optimizer="sgd", seed=0, progress=False)
        best = 1 + int(np.argmin(h.seconds[1:]))  # the quietest epoch after the first
        buf = np.zeros(model.n_params + 3, np.float32)
        out = np.empty_like(buf)
        times = []
        for _ in range(max(5, min(50, 2 * steps))):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(buf, out, op=MPI.SUM)
            times.append(time.perf_counter() - t0)
        rows.append(dict(batch=batch, sizes=sizes, steps=steps, params=model.n_params,
                         step_s=h.seconds[best] / steps, comm_s=h.comm_seconds[best] / steps,
                         allreduce_alone_s=float(np.median(times)), backend=fastnn.get_backend()))
    if comm.rank == 0:
        Path(args.out).write_text(json.dumps(rows))


def launch(ranks, threads, out):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    here = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(here) if here.exists() else "mpiexec"
    subprocess.run([mpiexec, "-n", str(ranks), sys.executable, __file__, "--worker", "--out",
                    out], env=env, check=True, timeout=600)
    return json.loads(Path(out).read_text())


def ring_allreduce_s(nbytes, p, bandwidth, latency):
    """Ring allreduce: 2(p-1)/p * bytes / bandwidth + 2(p-1) * latency."""
    return 2 * (p - 1) / p * nbytes / bandwidth + 2 * (p - 1) * latency


def report(runs, gflops=None):
    one, two, one2 = runs["1 rank x 1 thread"], runs["2 ranks x 1 thread"], runs["1 rank x 2 threads"]
    print(f"backend: {one[0]['backend']}, float32, per-rank batch; times per step (ms); "
          f"{runs.get('cores')} cores, load average {runs.get('load', float('nan')):.1f} at the "
          "end of the measurements")
    print("| case | params | 1 rank ms | 1 rank GFLOP/s | 1 rank x2 thr samples/s | 2 ranks ms "
          "| 2 ranks samples/s | speed-up | allreduce in step ms (%) | allreduce alone ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rates = []
    for a, b, c in zip(one, two, one2):
        rate = flops_per_row(a["sizes"]) * a["batch"] / a["step_s"] / 1e9
        rates.append(rate)
        s1 = a["batch"] / a["step_s"]
        s2 = 2 * b["batch"] / b["step_s"]
        name = f"b{a['batch']} {'-'.join(map(str, a['sizes']))}"
        print(f"| {name} | {a['params']:,} | {a['step_s'] * 1e3:.3g} | {rate:.3g} "
              f"| {c['batch'] / c['step_s']:,.0f} | {b['step_s'] * 1e3:.3g} | {s2:,.0f} "
              f"| {s2 / s1:.2f} | {b['comm_s'] * 1e3:.3g} ({100 * b['comm_s'] / b['step_s']:.0f}%) "
              f"| {b['allreduce_alone_s'] * 1e3:.3g} |")
    # the compute rate the model assumes: the largest case on one core, unless given
    R = (gflops or rates[-1]) * 1e9
    where = "given" if gflops else "measured: largest case, one rank, one core"
    print(f"\nModel: compute per step per rank = (6*b*W - 2*b*in*h1) / R with R = {R / 1e9:.0f} "
          f"GFLOP/s ({where}), W = sum of in*out; ring allreduce of 4*(P+3) bytes "
          f"(latency {', '.join(f'{k}: {v[1] * 1e6:.0f} us' for k, v in LINKS.items())}); "
          "comm < 10% of compute needs b >= 10 * T_comm * R / flops_per_row")
    print("| case | link | p | allreduce ms | compute ms at the case's b | comm/compute "
          "| per-rank b for comm < 10% |")
    print("|---|---|---|---|---|---|---|")
    for a in one:
        f = flops_per_row(a["sizes"])
        for link, (bw, lat) in LINKS.items():
            for p in (2, 16, 256):
                tc = ring_allreduce_s(4 * (a["params"] + 3), p, bw, lat)
                comp = f * a["batch"] / R
                need = 10 * tc * R / f
                print(f"| b{a['batch']} {'-'.join(map(str, a['sizes']))} | {link} | {p} "
                      f"| {tc * 1e3:.3g} | {comp * 1e3:.3g} | {tc / comp:.2f} | {need:,.0f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help="worker: where rank 0 writes its JSON")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument("--gflops", type=float, help="compute rate per rank for the model "
                    "(default: the rate measured on the largest case)")
    ap.add_argument("--report", help="only print the report of a --json file written before")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.report:
        return report(json.loads(Path(args.report).read_text()), args.gflops)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, ranks, threads in (("1 rank x 1 thread", 1, 1), ("2 ranks x 1 thread", 2, 1),
                                      ("1 rank x 2 threads", 1, 2)):
            print(f"running {label} ...", file=sys.stderr, flush=True)
            runs[label] = launch(ranks, threads, os.path.join(tmp, "out.json"))
    runs["cores"] = os.cpu_count()
    runs["load"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    report(runs, args.gflops)


if __name__ == "__main__":
    main()
