"""PyTorch counterpart of a benchmark case: ``nn.Linear`` stack, fused loss, ``optim.SGD`` step."""

import numpy as np

from . import cases as _cases
from .base import Unavailable, threads

_ACTS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
         "identity": "Identity"}


def import_torch():
    """``torch``, or Unavailable when PyTorch is not installed."""
    try:
        import torch
    except ImportError as exc:
        raise Unavailable(f"PyTorch is not installed ({exc})") from None
    return torch


class TorchImpl:
    """The same network, weights and SGD step in PyTorch, on the CPU with fastnn's thread count."""

    name = "torch"

    def __init__(self, case, dtype):
        torch = import_torch()
        torch.set_num_threads(threads())
        self.torch, self.case = torch, case
        tdtype = {np.float32: torch.float32, np.float64: torch.float64}[np.dtype(dtype).type]
        mods = []
        self.linears = []
        for i, (W, b) in enumerate(_cases.initial_params(case, dtype)):
            lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=tdtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.copy()))
                lin.bias.copy_(torch.from_numpy(b.copy()))
            self.linears.append(lin)
            mods.append(lin)
            if i < len(case.sizes) - 2:
                mods.append(getattr(torch.nn, _ACTS[case.hidden])())
        self.net = torch.nn.Sequential(*mods)
        X, y = _cases.data(case, dtype)
        self.X = torch.from_numpy(X.copy())
        if case.loss == "cross_entropy":
            self.loss_fn = torch.nn.CrossEntropyLoss()
            self.y = torch.from_numpy(np.array(y, dtype=np.int64))
        else:
            self.loss_fn = torch.nn.BCEWithLogitsLoss()
            self.y = torch.from_numpy(y.copy())
        self.opt = torch.optim.SGD(self.net.parameters(), lr=case.lr)

    def _step(self, X, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.net(X), y)
        loss.backward()
        self.opt.step()
        return loss

    def run(self):
        """One SGD step (or an epoch of them, in order); returns the last loss."""
        c = self.case
        if not c.is_epoch:
            return float(self._step(self.X, self.y).detach())
        for s in range(0, c.n_samples, c.batch):
            loss = self._step(self.X[s:s + c.batch], self.y[s:s + c.batch])
        return float(loss.detach())

    def params(self):
        return [(l.weight.detach().numpy().copy(), l.bias.detach().numpy().copy())
                for l in self.linears]
