"""Build script: maps kernels/ to the subpackage fastnn.kernels and builds the Cython kernels.

Project metadata lives in pyproject.toml; this file holds what needs code: the package mapping and
the compiled extensions.
"""

from setuptools import setup

setup(
    packages=["fastnn", "fastnn.kernels"],
    package_dir={"fastnn": "fastnn", "fastnn.kernels": "kernels"},
)
