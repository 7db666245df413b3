"""The fused forward and backward kernels of one relu layer (each case's last hidden layer)."""

from fastnn.bench.layer import check_layer, make_layer

from .common import DTYPES, IMPLS, STEP_CASES, build


class LayerKernels:
    """``relu(X @ W.T + b)`` forward; ``dZ``, ``dW``, ``db``, ``dX`` backward."""

    params = (IMPLS, DTYPES, STEP_CASES)
    param_names = ("impl", "dtype", "case")
    timeout = 300

    def setup(self, impl, dtype, case):
        self.layer = build(make_layer, impl, dtype, case, check_layer)

    def time_forward(self, impl, dtype, case):
        self.layer.forward()

    def time_backward(self, impl, dtype, case):
        self.layer.backward()
