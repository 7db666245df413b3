"""Build the Cython kernels once with boundscheck=True and wraparound=True and run the API on them.

The production build (setup.py's directives) turns bounds checks off; this test rebuilds every
``kernels/**/*.pyx`` through setup.py itself, into a temporary directory, with Cython's
``cythonize`` patched so the directives from setup.py are kept but ``boundscheck`` and
``wraparound`` are forced on. A wrong index in a kernel then raises IndexError instead of
writing out of bounds, and the API calls below (every optimiser, both dtypes, short last
batches, shuffling, one row, one feature) must all still run cleanly. The copy leaves out the
generated ``codes.pxi``, as a fresh clone would, so the build also proves that setup.py
generates it from ``kernels/codes.py``.

It is skipped only when the source tree has no .pyx file (the Cython backend lives on its own
branch until it is merged).
"""

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYX = sorted((ROOT / "kernels").rglob("*.pyx"))
GENERATED = "kernels/_cython/codes.pxi"  # written by setup.py, never committed

pytestmark = pytest.mark.skipif(
    not PYX, reason="no kernels/*.pyx in this source tree yet (the Cython backend is on branch "
                    "'cython'); nothing to build with boundscheck=True")

BUILD = textwrap.dedent("""
    import runpy, sys
    import Cython.Build

    _cythonize = Cython.Build.cythonize
    lib, temp, log_path = sys.argv[1:]

    def checked(*args, **kwargs):
        directives = dict(kwargs.pop("compiler_directives", None) or {})
        directives.update(boundscheck=True, wraparound=True, initializedcheck=True)
        kwargs["force"] = True
        with open(log_path, "a") as log:  # proof that setup.py went through this override
            log.write(repr(sorted(directives.items())) + "\\n")
        return _cythonize(*args, compiler_directives=directives, **kwargs)

    Cython.Build.cythonize = checked
    sys.argv = ["setup.py", "build_py", "--build-lib", lib, "build_ext", "--build-lib", lib,
                "--build-temp", temp]
    runpy.run_path("setup.py", run_name="__main__")
""")

WORKLOAD = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    warnings.simplefilter("error")
    import fastnn
    from fastnn.kernels import cython_cpu
    assert cython_cpu.ext.__file__.startswith(sys.argv[1]), cython_cpu.ext.__file__
    assert cython_cpu.BUILD == sys.argv[2], (cython_cpu.BUILD, sys.argv[2])
    fastnn.set_backend("cython")
    rng = np.random.default_rng(0)
    calls = 0
    for dtype in (np.float32, np.float64):
        for sizes, hidden, out in (([5, 7, 3], "relu", "softmax"), ([1, 1], "tanh", "sigmoid"),
                                   ([4, 6, 5, 2], "softplus", "identity"),
                                   ([3, 2, 4], "sigmoid", "softmax")):
            for n in (1, 2, 7, 33):
                X = rng.normal(size=(n, sizes[0]))
                k = sizes[-1]
                y = (rng.integers(0, k, n) if out == "softmax" else
                     rng.integers(0, 2, n) if out == "sigmoid" else rng.normal(size=(n, k)))
                m = fastnn.MLP.from_sizes(sizes, hidden=hidden, output=out, dtype=dtype, seed=1)
                m.forward(X); m.predict(X); m.loss(X, y); m.gradients(X, y)
                m.train_step(X, y, lr=0.01)
                for opt in ("sgd", "momentum", "nesterov", "adam"):
                    for bs in (1, 3, n, n + 5):
                        m.fit(X, y, epochs=2, batch_size=bs, lr=0.01, optimizer=opt,
                              shuffle=bs % 2 == 1, seed=0, progress=False, l2=1e-3)
                        calls += 1
                layer = fastnn.Dense(sizes[0], 3, hidden, dtype=dtype, seed=0)
                layer.backward(np.ones_like(layer.forward(X)))
                assert np.isfinite(m.store.theta).all()
    print("ok", calls)
""")


@pytest.fixture(scope="module")
def checked_build(tmp_path_factory):
    pytest.importorskip("Cython", reason="Cython is needed to rebuild the kernels")
    tmp = tmp_path_factory.mktemp("boundscheck")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.so", "*.c", "*.cpp", "__pycache__", ".hypothesis", "*.egg-info",
        ".venv*", ".asv", "benchmarks", pathlib.Path(GENERATED).name))
    assert not (src / GENERATED).exists()
    lib, temp = tmp / "lib", tmp / "temp"
    script = tmp / "build_checked.py"
    script.write_text(BUILD)
    log = tmp / "directives.log"
    out = subprocess.run([sys.executable, str(script), str(lib), str(temp), str(log)], cwd=src,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return src, lib, log


def test_the_build_used_boundscheck_and_wraparound(checked_build):
    src, lib, log = checked_build
    assert log.exists(), "setup.py did not call Cython.Build.cythonize"
    text = log.read_text()
    assert "('boundscheck', True)" in text and "('wraparound', True)" in text
    generated = [p for pyx in PYX
                 for p in (src / pyx.parent.relative_to(ROOT)).glob(pyx.stem + ".c*")]
    assert generated, "cythonize produced no C/C++ file"
    assert "CODES = {" in (src / GENERATED).read_text(), "setup.py did not generate the codes"
    assert list(lib.glob("fastnn/kernels/_cython_cpu*")), "no extension in the checked build"
    # Note: where the kernels index raw pointers (not memoryviews) Cython has nothing to check;
    # the glibc heap checks of the next test cover writes past the end of NumPy buffers there.


# glibc's debugging malloc: a write past the end of a heap buffer (NumPy data is malloc'ed)
# corrupts the next chunk's header, which free() then detects and aborts on.
_MALLOC_DEBUG = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"


@pytest.mark.parametrize("build", ["baseline", "avx2"])
def test_api_runs_on_the_bounds_checked_build(checked_build, tmp_path, build):
    _, lib, _ = checked_build
    if build == "avx2" and not list(lib.glob("fastnn/kernels/_cython_cpu_avx2*")):
        pytest.skip("no AVX2 build here (not x86-64, or the compiler lacks the flags)")
    from fastnn.kernels import cython_cpu

    if build == "avx2" and not cython_cpu.cpu_has_avx2_fma():
        pytest.skip("this CPU has no AVX2 and FMA to run the AVX2 build on")
    env = {**os.environ, "PYTHONPATH": str(lib), "FASTNN_BACKEND": "cython",
           "FASTNN_CYTHON_BUILD": build,
           "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "MALLOC_PERTURB_": "165"}
    if os.path.exists(_MALLOC_DEBUG):
        env.update(LD_PRELOAD=_MALLOC_DEBUG, MALLOC_CHECK_="3")
    out = subprocess.run([sys.executable, "-c", WORKLOAD, str(lib), build], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.split()[0] == "ok" and int(out.stdout.split()[1]) > 100
