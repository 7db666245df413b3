"""Runs tests/cuda in a fresh pytest process under numba's CUDA simulator (no GPU needed)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]


def test_cuda_kernels_in_simulator():
    if importlib.util.find_spec("numba") is None or importlib.util.find_spec("numba.cuda") is None:
        pytest.skip("numba.cuda is not installed (pip install numba-cuda)")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "cuda"), "-q", "-p", "no:cacheprovider"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    if proc.returncode != 0:
        print(proc.stdout[-20000:])
        print(proc.stderr[-5000:])
    assert proc.returncode == 0, f"tests/cuda failed in the simulator (exit {proc.returncode})"


def test_gpu_bench_logic_in_simulator():
    """benchmarks/gpu_bench.py --simulate runs its whole logic on a tiny case."""
    if importlib.util.find_spec("numba.cuda") is None:
        pytest.skip("numba.cuda is not installed")
    script = HERE.parent / "benchmarks" / "gpu_bench.py"
    proc = subprocess.run([sys.executable, str(script), "--simulate"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5-6-3" in proc.stdout
