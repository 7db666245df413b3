"""Which build of the Cython kernels runs: the AVX2 one exactly where the CPU can run it, the
baseline elsewhere or when asked, and a clear error (never an illegal instruction) for a build
that cannot run here or a value that names none."""

import importlib.util
import os
import pathlib
import runpy
import shutil
import subprocess
import sys

import pytest

cython_cpu = pytest.importorskip("fastnn.kernels.cython_cpu")


def _build_in_child(value):
    """(returncode, stdout, stderr) of importing cython_cpu with FASTNN_CYTHON_BUILD=value."""
    env = {**os.environ, "FASTNN_CYTHON_BUILD": value}
    code = ("from fastnn.kernels import cython_cpu as c; "
            "print(c.BUILD, c.ext.__name__.rpartition('.')[2])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    return out.returncode, out.stdout.strip(), out.stderr


def test_build_choice_follows_the_cpu_and_the_override():
    rc, out, err = _build_in_child("baseline")
    assert rc == 0, err
    assert out == "baseline _cython_cpu"
    rc, out, err = _build_in_child("")
    assert rc == 0, err
    usable = cython_cpu.cpu_has_avx2_fma() and importlib_find("fastnn.kernels._cython_cpu_avx2")
    assert out == ("avx2 _cython_cpu_avx2" if usable else "baseline _cython_cpu")
    rc, out, err = _build_in_child("avx2")
    if usable:
        assert rc == 0 and out == "avx2 _cython_cpu_avx2", err
    else:  # never an illegal instruction: a clear error instead
        assert rc != 0 and "FASTNN_CYTHON_BUILD=avx2" in err
    rc, out, err = _build_in_child("sse9")
    assert rc != 0 and "FASTNN_CYTHON_BUILD='sse9'" in err


def importlib_find(name):
    return importlib.util.find_spec(name) is not None


# --- the sources: one folder, the codes generated from the one table, all of it in the sdist

ROOT = pathlib.Path(__file__).resolve().parents[2]
CYTHON_DIR = ROOT / "kernels" / "_cython"
GENERATED = CYTHON_DIR / "codes.pxi"


def _setup_module():
    """setup.py's functions, without running setup() (it runs only as __main__)."""
    return runpy.run_path(str(ROOT / "setup.py"))


def _git(*args):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def test_codes_are_generated_from_the_table():
    from fastnn.kernels import codes

    setup_py = _setup_module()
    table = setup_py["code_table"](str(ROOT / "kernels" / "codes.py"))
    want = {n: v for n, v in vars(codes).items() if n.isupper() and type(v) is int}
    assert table == want
    # the extension was built from the text setup.py generates now, and nothing else holds
    # a copy of the table: no enum of codes in the committed sources
    assert GENERATED.read_text() == setup_py["codes_pxi"](table)
    for path in CYTHON_DIR.iterdir():
        if path != GENERATED and path.suffix in (".pyx", ".pxi", ".pxd"):
            text = path.read_text()
            assert "SOFTMAX = " not in text and "OPT_ADAM = " not in text, path.name


def test_generated_codes_are_ignored_and_never_committed():
    rel = str(GENERATED.relative_to(ROOT))
    assert _git("check-ignore", "-q", rel).returncode == 0, f"{rel} is not gitignored"
    assert _git("ls-files", "--error-unmatch", rel).returncode != 0, f"{rel} is committed"


def test_the_sdist_ships_every_cython_source_and_header_but_not_the_generated_codes(
        monkeypatch):
    from setuptools.command.egg_info import FileList

    monkeypatch.chdir(ROOT)  # MANIFEST.in's patterns are relative to the project root
    files = FileList()
    files.findall()
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            files.process_template_line(line)
    shipped = {pathlib.Path(f).resolve() for f in files.files}
    sources = [p for p in CYTHON_DIR.iterdir() if p.suffix in (".pyx", ".pxi", ".pxd", ".h")]
    assert {p.name for p in sources} >= {"_cython_cpu.pyx", "_cython_cpu_avx2.pyx",
                                         "fastnn_cpu.pxd", "small_gemm.h", "fastnn_math.h"}
    for path in sources:
        if path != GENERATED:
            assert path.resolve() in shipped, f"MANIFEST.in leaves out {path.name}"
    assert GENERATED.resolve() not in shipped


def test_directives_are_set_once_in_setup_py_and_no_source_is_long():
    for path in CYTHON_DIR.iterdir():
        if path.suffix in (".pyx", ".pxi", ".pxd", ".h"):
            lines = path.read_text().splitlines()
            assert len(lines) < 500, path.name
            assert not any(line.startswith(("# cython:", "#cython:")) for line in lines), path.name
