"""Shared pytest setup.

tests/cuda runs in its own process with the CUDA simulator (tests/test_cuda_simulator.py), because
NUMBA_ENABLE_CUDASIM must be set before numba is imported. The main run collects it directly only
when the simulator is on or a real GPU is present.
"""

import importlib.util
import os


def _cuda_runnable():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    if importlib.util.find_spec("numba") is None:
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # a broken driver install counts as no GPU
        return False


collect_ignore = [] if _cuda_runnable() else ["cuda"]
