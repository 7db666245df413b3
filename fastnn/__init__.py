"""fastnn: fast multilayer perceptrons from Python, on fused Numba and Cython kernels.

>>> import fastnn
>>> model = fastnn.MLP.from_sizes([64, 128, 10], seed=0)
>>> history = model.fit(X, y, epochs=20, lr=0.05)          # doctest: +SKIP
"""

import importlib.util as _util

if _util.find_spec(__name__ + ".kernels") is None:
    # The repository's fastnn/ folder was imported (Python started in the repository root) in
    # place of the installed package: kernels/ becomes fastnn.kernels only when installed.
    raise ImportError(
        "fastnn was imported from its source folder, which lacks the installed fastnn.kernels: "
        "run Python outside the repository root, or install with 'pip install -e .'"
    )

from ._version import __version__  # noqa: F401
from ._backend import available_backends, get_backend, set_backend
from ._config import show_config
from .kernels import get_num_threads, set_num_threads
from .layers import Dense
from .model import MLP
from .optim import SGD, Adam
from .callbacks import Callback
from .io import load
from ._format import ModelFileError
from .history import History


__all__ = [
    "Adam",
    "Callback",
    "Dense",
    "History",
    "MLP",
    "ModelFileError",
    "SGD",
    "available_backends",
    "get_backend",
    "get_num_threads",
    "load",
    "set_backend",
    "set_num_threads",
    "show_config",
]
