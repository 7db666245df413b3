"""scikit-learn estimators on fastnn's kernels: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameter names and follow its semantics, so they drop into pipelines,
grid searches and cross-validation. Training runs in fastnn's compiled epoch loop. Where the
two libraries differ, the estimators say so in their docstrings ("lbfgs" is not supported).

Requires scikit-learn (``pip install 'fastnn[sklearn]'``).
"""

from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
