"""Installs: a read-only install imports and trains quietly, Numba's cache honours
NUMBA_CACHE_DIR, a second process reuses the cached machine code, and ``import fastnn`` stays
light (no numba, no scipy).

The installed package (``fastnn`` and its ``fastnn.kernels``, compiled extensions included) is
copied into a temporary directory, made read-only with ``chmod -R a-w``, and used from a fresh
interpreter with ``-W error``, so any warning fails the run. Root ignores permission bits, so when
the tests run as root the child process drops CAP_DAC_OVERRIDE (and friends) with ``setpriv``.
"""

import os
import pathlib
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

import fastnn
import fastnn.kernels

CHILD = textwrap.dedent("""
    import json, os, sys
    import fastnn
    light = not any(m in sys.modules for m in ("numba", "scipy"))
    import numpy as np
    info = {"file": fastnn.__file__, "light_import": light, "backends": {}}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    for name in fastnn.available_backends():
        if name == "cuda":
            continue
        fastnn.set_backend(name)
        m = fastnn.MLP.from_sizes([4, 8, 2], seed=0)
        h = m.fit(X, y, epochs=20, batch_size=8, lr=0.3, seed=0, progress=False)
        entry = {"loss": h.loss[-1], "acc": m.score(X, y)}
        if name == "numba":
            from fastnn.kernels import numba_cpu as K
            entry["cache_hits"] = sum(sum(f.stats.cache_hits.values())
                                      for f in (K.train_epoch, K.forward))
            entry["cache_misses"] = sum(sum(f.stats.cache_misses.values())
                                        for f in (K.train_epoch, K.forward))
        info["backends"][name] = entry
    print(json.dumps(info))
""")


def _copy_installed_package(dest):
    """Copy the fastnn package as Python imports it (installed or editable) into dest/fastnn."""
    pkg = pathlib.Path(fastnn.__file__).parent
    kernels = pathlib.Path(fastnn.kernels.__file__).parent
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.c", "*.cpp", "*.pyx", "*.pxd",
                                    "*.html")
    shutil.copytree(pkg, dest / "fastnn", ignore=ignore)
    if kernels != pkg / "kernels":  # editable/dev layout: kernels/ maps to fastnn.kernels
        shutil.rmtree(dest / "fastnn" / "kernels", ignore_errors=True)
        shutil.copytree(kernels, dest / "fastnn" / "kernels", ignore=ignore)


def _chmod_read_only(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            os.chmod(p, os.stat(p).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    os.chmod(root, os.stat(root).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(root):
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, os.stat(dirpath).st_mode | stat.S_IWUSR)


def _unprivileged():
    """A command prefix under which permission bits apply (empty unless we are root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permission bits cannot make a directory "
                    "read-only for this process")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@pytest.fixture
def read_only_install(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _copy_installed_package(site)
    _chmod_read_only(site)
    probe = subprocess.run(_unprivileged() + [sys.executable, "-c",
                           f"open({str(site / 'fastnn' / 'probe')!r}, 'w')"],
                           capture_output=True, text=True)
    assert probe.returncode != 0, "the copied package is still writable"
    yield site
    _make_writable(site)


def _run(site, cwd, **env):
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    full = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "FASTNN_"))}
    full.update(PYTHONPATH=str(site), HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
                PYTHONDONTWRITEBYTECODE="1", **env)
    out = subprocess.run(_unprivileged() + [sys.executable, "-W", "error", "-c", CHILD],
                         cwd=cwd, env=full, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stderr.strip() == "", f"the child printed to stderr:\n{out.stderr[-4000:]}"
    import json

    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["file"].startswith(str(site)), info["file"]
    assert info["light_import"], "import fastnn imported numba or scipy"
    for name, entry in info["backends"].items():
        assert entry["acc"] > 0.85, (name, entry)
    return info


def test_read_only_install_with_nowhere_to_cache_runs_quietly(read_only_install, tmp_path):
    # HOME (Numba's user-wide cache) is read-only too: caching must switch off silently.
    home = tmp_path / "home"
    home.mkdir()
    _chmod_read_only(home)
    try:
        info = _run(read_only_install, tmp_path)
    finally:
        _make_writable(home)
    assert not list(read_only_install.rglob("*.nbi")), "Numba wrote into the read-only install"
    if "numba" in info["backends"]:
        assert info["backends"]["numba"]["cache_hits"] == 0


def test_numba_cache_dir_is_honoured_and_reused(read_only_install, tmp_path):
    if "numba" not in fastnn.available_backends():
        pytest.skip("numba is not installed")
    cache = tmp_path / "numba-cache"
    first = _run(read_only_install, tmp_path, NUMBA_CACHE_DIR=str(cache))
    index = list(cache.rglob("*.nbi"))
    data = list(cache.rglob("*.nbc"))
    assert index and data, "no Numba cache files under NUMBA_CACHE_DIR"
    assert not list(read_only_install.rglob("*.nbi"))
    assert first["backends"]["numba"]["cache_misses"] > 0
    second = _run(read_only_install, tmp_path, NUMBA_CACHE_DIR=str(cache))
    assert second["backends"]["numba"]["cache_hits"] > 0
    assert second["backends"]["numba"]["cache_misses"] == 0
    assert second["backends"]["numba"]["loss"] == first["backends"]["numba"]["loss"]


def test_import_is_light_and_compiles_nothing(tmp_path):
    code = ("import sys, fastnn; heavy = [m for m in ('numba', 'scipy', 'sklearn', 'tqdm', "
            "'Cython', 'fastnn.kernels.numba_cpu') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_import_from_the_repository_root_names_the_problem():
    """Started in the repository root, Python finds the source folder fastnn/ first; without an
    editable install that folder has no fastnn.kernels, and the error must say so (not a bare
    ModuleNotFoundError from deep inside the package)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", "import fastnn.kernels, fastnn"], cwd=root,
                         env=env, capture_output=True, text=True, timeout=120)
    if out.returncode == 0:  # an editable install maps kernels/ to fastnn.kernels here too
        return
    assert "fastnn was imported from its source folder" in out.stderr, out.stderr[-2000:]
