"""The package version and distribution name, in one place (``fastnn.__version__``,
``fastnn --version``, ``fastnn info`` and the install hints read them).

The distribution is ``fastnn-mlp`` on PyPI (``fastnn`` there is an unrelated project); the import
name and the command are ``fastnn``. ``tests/integration/test_packaging.py`` checks that both
agree with pyproject.toml.
"""

__version__ = "0.1.0"

DISTRIBUTION = "fastnn-mlp"


def install_hint(extra):
    """The pip command that installs fastnn with one of its extras, e.g. ``sklearn``."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'
