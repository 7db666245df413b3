"""The distribution: its PyPI name, its license, its changelog and its version, as pyproject.toml,
LICENSE, CHANGELOG.md and the package itself state them (and agree)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn
from fastnn import _version
from fastnn.cli import main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
# the first setuptools that reads a license expression (PEP 639) and license-files; the package
# index offers no 77.0.0
SETUPTOOLS_MIN = (77, 0, 1)


def _minimum(requirements, name):
    """The version tuple after ``name>=`` in a list of requirement strings."""
    for req in requirements:
        found = re.fullmatch(rf"{name}\s*>=\s*([\d.]+)", req.strip(), re.IGNORECASE)
        if found:
            return tuple(int(part) for part in found.group(1).split("."))
    raise AssertionError(f"no {name}>= requirement in {requirements}")


def test_the_distribution_name_is_ours_and_the_package_says_it():
    # "fastnn" on PyPI is an unrelated project
    assert PROJECT["name"] == "fastnn-mlp" == _version.DISTRIBUTION
    assert PROJECT["scripts"] == {"fastnn": "fastnn.cli:main"}


def test_the_license_is_an_spdx_expression_with_its_file():
    assert PROJECT["license"] == "BSD-3-Clause"
    assert PROJECT["license-files"] == ["LICENSE"]
    # setuptools rejects a License classifier beside a license expression
    assert not [c for c in PROJECT.get("classifiers", []) if c.startswith("License ::")]


def test_setuptools_is_new_enough_for_the_license_expression():
    assert _minimum(PYPROJECT["build-system"]["requires"], "setuptools") >= SETUPTOOLS_MIN
    # the test extra's boundscheck rebuild runs setup.py, which reads this pyproject.toml
    assert _minimum(PROJECT["optional-dependencies"]["test"], "setuptools") >= SETUPTOOLS_MIN


def test_license_file_is_bsd_3_clause():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, the fastnn developers" in text
    assert "Neither the name of the copyright holder nor the names of its" in text
    assert re.findall(r"^(\d)\. ", text, re.MULTILINE) == ["1", "2", "3"]


def test_changelog_has_unreleased_first_and_the_current_release():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.*)$", text, re.MULTILINE)
    assert headings[0] == "[Unreleased]"
    for heading in headings[1:]:
        assert re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), heading
    version = fastnn.__version__
    if not re.search(r"(dev|a|b|rc)\d*$", version):
        assert any(h.startswith(f"[{version}] - ") for h in headings), version


def test_the_version_has_one_source():
    assert PROJECT["dynamic"] == ["version"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "fastnn._version.__version__"
    assert fastnn.__version__ == _version.__version__


def test_the_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"fastnn {fastnn.__version__}\n"


MISSING_SKLEARN = """
import sys
sys.modules["sklearn"] = None  # as if scikit-learn were not installed
try:
    import fastnn.sklearn
except ImportError as exc:
    print(exc)
else:
    print("imported")
"""


def test_fastnn_sklearn_without_scikit_learn_says_how_to_install_it():
    res = subprocess.run([sys.executable, "-c", MISSING_SKLEARN], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ('fastnn.sklearn needs scikit-learn: '
                                  'pip install "fastnn-mlp[sklearn]"')
    # the extra the message names exists and brings scikit-learn
    extra = PROJECT["optional-dependencies"]["sklearn"]
    assert any(req.startswith("scikit-learn") for req in extra)
