"""scikit-learn estimators on fastnn's kernels: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameter names and follow its semantics, so they drop into pipelines,
grid searches and cross-validation. Training runs in fastnn's compiled epoch loop. Where the
two libraries differ, the estimators say so in their docstrings ("lbfgs" is not supported).

Requires scikit-learn (``pip install "fastnn-mlp[sklearn]"``); without it, importing this
module raises an ImportError that says so.
"""

from .._version import install_hint

try:
    import sklearn  # noqa: F401
except ModuleNotFoundError as exc:
    if exc.name != "sklearn":  # scikit-learn is there but broken: its own error says more
        raise
    raise ImportError("fastnn.sklearn needs scikit-learn: " + install_hint("sklearn")) from None

from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
