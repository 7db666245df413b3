"""Numba compile time versus the cached first call, and the time of ``import fastnn``.

Each measurement runs in a fresh interpreter. With a new, empty ``NUMBA_CACHE_DIR`` the first
``fit``/``predict`` compiles the kernels; a second interpreter on the same cache directory loads
the machine code instead. The script prints, per run: ``import fastnn`` time, the first ``fit``
call, the first ``predict`` call and, for comparison, a second (warm, in-process) ``fit`` call.

    python benchmarks/compile_cache.py [--repeat 3] [--dtype float32]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import fastnn
t_import = time.perf_counter() - t0
heavy = [m for m in ("numba", "scipy") if m in sys.modules]
import numpy as np
fastnn.set_backend("numba")
dtype = np.dtype(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.normal(size=(256, 64)).astype(dtype)
y = rng.integers(0, 10, 256)
m = fastnn.MLP.from_sizes([64, 128, 10], dtype=dtype, seed=0)
t0 = time.perf_counter(); m.fit(X, y, epochs=1, batch_size=32, progress=False, seed=0)
t_fit = time.perf_counter() - t0
t0 = time.perf_counter(); m.predict(X)
t_pred = time.perf_counter() - t0
t0 = time.perf_counter(); m.fit(X, y, epochs=1, batch_size=32, progress=False, seed=0)
t_warm = time.perf_counter() - t0
print(json.dumps(dict(import_s=t_import, heavy_at_import=heavy, first_fit_s=t_fit,
                      first_predict_s=t_pred, warm_fit_s=t_warm)))
"""


def run(cache, dtype):
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", CHILD, dtype], env=env, capture_output=True,
                         text=True, cwd=tempfile.gettempdir(), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="cold/cached pairs to run")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    rows = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="fastnn-numba-cache-") as cache:
            rows.append(("cold (compiles)", run(cache, args.dtype)))
            rows.append(("cached", run(cache, args.dtype)))
    print(f"{'run':<16} {'import':>8} {'1st fit':>9} {'1st predict':>12} {'warm fit':>9}")
    for name, r in rows:
        print(f"{name:<16} {r['import_s'] * 1e3:>6.0f}ms {r['first_fit_s']:>8.2f}s "
              f"{r['first_predict_s']:>11.3f}s {r['warm_fit_s'] * 1e3:>7.1f}ms"
              + (f"  (import loaded {r['heavy_at_import']})" if r["heavy_at_import"] else ""))

    def med(kind, key):
        vals = sorted(r[key] for n, r in rows if n.startswith(kind))
        return vals[len(vals) // 2]

    print(f"\nmedian first fit: cold {med('cold', 'first_fit_s'):.2f}s, "
          f"cached {med('cached', 'first_fit_s'):.2f}s; median import "
          f"{med('c', 'import_s') * 1e3:.0f}ms")


if __name__ == "__main__":
    main()
