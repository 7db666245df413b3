"""The shape of the code, checked: layers point one way, imports form no circle, files stay small.

The import graph is read from the sources with ``ast`` (imports inside functions count too), with
``kernels/`` named as installed, ``fastnn.kernels``. ARCHITECTURE.md draws the layers.
"""

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (("fastnn", ROOT / "fastnn"), ("fastnn.kernels", ROOT / "kernels"))
MAX_LINES = 500


def _modules():
    """Installed module name -> (source path, is a package)."""
    mods = {}
    for pkg, folder in PACKAGES:
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            mods[".".join([pkg] + parts)] = (path, is_pkg)
    return mods


def _imports(name, path, is_pkg, known):
    """The modules of ``known`` that module ``name`` imports (anywhere in its source)."""
    base = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                mod = pkg + ("." + node.module if node.module else "")
            else:
                mod = node.module
            subs = [f"{mod}.{a.name}" for a in node.names]
            # ``from . import x`` imports module x; ``from m import f`` imports m
            targets = subs if all(t in known for t in subs) else [mod] + subs
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def _graph():
    mods = _modules()
    return {name: _imports(name, path, is_pkg, mods) for name, (path, is_pkg) in mods.items()}


def _cycles(graph):
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, groups, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_the_import_graph_has_no_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_kernels_import_nothing_from_fastnn():
    upward = sorted((a, b) for a, bs in _graph().items() if a.startswith("fastnn.kernels")
                    for b in bs if not b.startswith("fastnn.kernels"))
    assert upward == []


def test_bench_and_asv_use_only_public_names():
    """fastnn.bench and the asv suite reach the library through its public API and the kernel
    contract: no ``fastnn._x`` and no ``fastnn.kernels._x``."""
    bad = []
    for path in [*(ROOT / "fastnn" / "bench").glob("*.py"),
                 *(ROOT / "benchmarks" / "benchmarks").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:  # relative: inside fastnn/bench (the package fastnn.bench)
                    pkg = "fastnn.bench".rsplit(".", node.level - 1)[0] if node.level > 1 \
                        else "fastnn.bench"
                    mod = f"{pkg}.{mod}" if mod else pkg
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                parts = n.split(".")
                if parts[0] == "fastnn" and any(p.startswith("_") for p in parts[1:]):
                    bad.append(f"{path.relative_to(ROOT)}: {n}")
    assert bad == []


def _tracked_sources():
    try:
        out = subprocess.run(["git", "ls-files", "*.py", "*.pyx", "*.pxi", "*.pxd", "*.h", "*.c"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("git ls-files failed: run the tests from a git checkout of fastnn")
    return [ROOT / p for p in out.split()]


def test_no_source_file_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in _tracked_sources()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_package_under_fastnn_is_installed():
    """setup.py finds the subpackages: the installed fastnn has every one of the source's."""
    import importlib.util

    for init in sorted((ROOT / "fastnn").rglob("__init__.py")):
        name = ".".join(("fastnn",) + init.parent.relative_to(ROOT / "fastnn").parts)
        assert importlib.util.find_spec(name) is not None, f"{name} is not installed"
