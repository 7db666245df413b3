"""fastnn bench and the asv suite: they run, print what they promise and refuse wrong answers.

No timing is asserted: only that times are positive and the report has its keys.
"""

import argparse
import ctypes
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastnn import bench
from fastnn.bench import cases as C
from fastnn.bench import impls as I
from fastnn.bench.layer import FastnnLayer, check_layer, make_layer
from fastnn.bench.machine import gemm_rates, sgemm_from_address
from fastnn.bench.timing import measure

TINY = "8x8-16-3"
ROOT = Path(__file__).resolve().parents[2]


def _run_json(capsys, *extra):
    rc = bench.main(["--cases", TINY, "--quick", "--no-gemm", "--repeat", "1", "--json", *extra])
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def test_bench_json_has_every_implementation(capsys):
    report = _run_json(capsys, "--impls", "numpy,numba,torch,jax")
    assert {"date", "dtype", "machine", "gemm", "results", "flops_formula"} <= set(report)
    assert report["machine"]["threads"] >= 1 and report["dtype"] == "float32"
    rows = {r["impl"]: r for r in report["results"]}
    assert list(rows) == ["numpy", "numba", "torch", "jax"]
    assert rows["numpy"]["speedup_vs_numpy"] == 1.0
    for name, row in rows.items():
        assert "error" not in row, row
        if "skipped" in row:
            assert name in ("torch", "jax", "numba")
            continue
        assert row["seconds_per_step"] > 0 and row["gflops"] > 0
        assert row["max_rel_error"] <= I.tolerance(np.float32)
        assert row["median_seconds_per_step"] >= row["seconds_per_step"]


def test_bench_table_and_gemm_ceiling(capsys):
    rc = bench.main(["--cases", f"{TINY},sgd1x2-2-1", "--quick", "--repeat", "1",
                     "--impls", "numpy"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "time/step" in out and "GEMM ceiling" in out and "sgd1x2-2-1" in out
    assert out.count("numpy") >= 2


def test_bench_float64(capsys):
    report = _run_json(capsys, "--dtype", "float64", "--impls", "numpy,numba")
    assert report["dtype"] == "float64"
    assert all("error" not in r for r in report["results"])


@pytest.mark.parametrize("args, message", [
    (["--cases", "nonsense"], "unknown benchmark case"),
    (["--impls", "numpy,tensorflow"], "unknown implementation"),
    (["--repeat", "0"], "--repeat"),
])
def test_bench_bad_arguments(capsys, args, message):
    assert bench.main(["--no-gemm", *args]) == 2
    assert message in capsys.readouterr().err


def test_plot_without_matplotlib(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc = bench.main(["--cases", TINY, "--quick", "--no-gemm", "--plot", str(tmp_path / "x.png")])
    assert rc == 2 and "needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_plot_writes_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedup.png"
    rc = bench.main(["--cases", TINY, "--quick", "--no-gemm", "--repeat", "1",
                     "--impls", "numpy,numba", "--plot", str(path)])
    assert rc == 0 and path.read_bytes()[:4] == b"\x89PNG"


def test_register_adds_bench_subcommand():
    parser = argparse.ArgumentParser(prog="fastnn")
    sub = parser.add_subparsers(dest="command")
    bench.register(sub)
    args = parser.parse_args(["bench", "--cases", TINY, "--json", "--quick"])
    assert args.command == "bench" and args.json and args.quick and args.cases == TINY


def test_python_m_fastnn_bench_help():
    out = subprocess.run([sys.executable, "-m", "fastnn.bench", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--json" in out and "--plot" in out and "--cases" in out


# --- cases, checks and helpers -----------------------------------------------------------
def test_cases_and_flop_formula():
    case = C.get_case("32x64-128-10")
    assert case.batch == 32 and case.sizes == (64, 128, 10) and case.steps == 1
    assert C.gemm_flops(case) == 6 * 32 * (64 * 128 + 128 * 10) - 2 * 32 * 64 * 128
    sgd = C.get_case(C.SGD1)
    assert sgd.batch == 1 and sgd.sizes == (2, 2, 1) and sgd.loss == "bce"
    assert sgd.steps == sgd.n_samples
    for bad in ("32x", "0x4-3", "abc"):
        with pytest.raises(ValueError):
            C.get_case(bad)
    X, y = C.data(case, np.dtype(np.float32))
    assert X.dtype == np.float32 and not X.flags.writeable and y.max() < 10


class _WrongStep(I.FastnnImpl):
    """A fastnn implementation that takes twice the step: what the check must refuse."""

    def run(self):
        self._fastnn.set_backend(self.backend)
        return self.model.train_step(self.X, self.y, 2 * self.case.lr)


def test_check_refuses_a_wrong_step():
    case = C.get_case(TINY)
    with pytest.raises(AssertionError, match="disagrees"):
        I.check_against_numpy(_WrongStep("numpy", case, np.float32), case, np.float32)
    assert I.check_against_numpy(I.make("numpy", case, "float32"), case, "float32") == 0


def test_check_layer_refuses_a_wrong_backward():
    case = C.get_case("32x64-128-10")

    class Broken(FastnnLayer):
        def backward(self):
            self.dW[...] = 0
            self.db[...] = 0
            self.dX[...] = 0

    check_layer(make_layer("numpy", case, "float64"), case, "float64")
    with pytest.raises(AssertionError, match="dW"):
        check_layer(Broken("numpy", case, np.float64), case, np.float64)


def test_unavailable_backend():
    with pytest.raises(I.Unavailable):
        I.make("cuda" if "cuda" not in I.fastnn_names() else "nonexistent", TINY, "float32")


def test_measure_samples():
    calls = []
    samples = measure(lambda: calls.append(1), repeat=3, min_time=0.001)
    assert len(samples) == 3 and all(s > 0 for s in samples) and len(calls) >= 5


def test_sgemm_through_an_address():
    from scipy.linalg import cython_blas

    cap = cython_blas.__pyx_capi__["sgemm"]
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    ptr = ctypes.pythonapi.PyCapsule_GetPointer
    ptr.restype, ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    gemm = sgemm_from_address(ptr(cap, name(cap)))
    rng = np.random.default_rng(0)
    A, B = (rng.standard_normal((33, 33), dtype=np.float32) for _ in range(2))
    C_ = np.empty_like(A)
    gemm(A, B, C_)
    np.testing.assert_allclose(C_, A @ B, rtol=1e-5, atol=1e-5)
    rows = gemm_rates(sizes=(64,), repeat=1)
    assert rows[0]["via"] == "numpy" and rows[0]["gflops"] > 0


# --- the asv suite, imported directly -----------------------------------------------------
@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield {m: importlib.import_module(f"benchmarks.{m}")
               for m in ("common", "bench_step", "bench_layer", "bench_epoch")}
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _setup_or_skip(obj, *params):
    try:
        obj.setup(*params)
    except NotImplementedError:
        return False
    return True


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_asv_setups_validate_on_the_smallest_case(suite, dtype):
    small = C.STANDARD[0]
    common = suite["common"]
    assert common.IMPLS[0] == "numpy" and common.IMPLS[-2:] == ["torch", "jax"]
    ran = []
    for impl in common.IMPLS:
        step = suite["bench_step"].TrainStep()
        if _setup_or_skip(step, impl, dtype, small):
            step.time_train_step(impl, dtype, small)
            ran.append(impl)
        layer = suite["bench_layer"].LayerKernels()
        if _setup_or_skip(layer, impl, dtype, small):
            layer.time_forward(impl, dtype, small)
            layer.time_backward(impl, dtype, small)
        for cls in (suite["bench_epoch"].PerSampleSGD, suite["bench_epoch"].FitEpoch):
            _setup_or_skip(cls(), impl, dtype)
    assert "numpy" in ran and "numba" in ran


def test_asv_track_and_skip_rules(suite):
    extra = suite["bench_step"].TrainStepMemorySpeedup()
    assert C.STANDARD[-1] not in extra.params[2]
    extra.setup("numba", "float32", C.STANDARD[0])
    assert extra.track_speedup_over_numpy("numba", "float32", C.STANDARD[0]) > 0
    assert extra.track_speedup_over_numpy.unit == "x"
    with pytest.raises(NotImplementedError):
        suite["bench_step"].TrainStep().setup("numpy", "float64", C.STANDARD[-1])
    with pytest.raises(NotImplementedError):
        suite["bench_step"].TrainStep().setup("cuda-missing", "float32", C.STANDARD[0])


def test_asv_conf_is_valid():
    text = (ROOT / "benchmarks" / "asv.conf.json").read_text()
    conf = json.loads("\n".join(l for l in text.splitlines() if not l.strip().startswith("//")))
    assert conf["benchmark_dir"] == "benchmarks" and conf["repo"] == ".."
    assert (ROOT / "benchmarks" / conf["benchmark_dir"] / "__init__.py").exists()
