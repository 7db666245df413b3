"""The package version, in one place (``fastnn.__version__`` and ``fastnn info`` read it)."""

__version__ = "0.1.0"
