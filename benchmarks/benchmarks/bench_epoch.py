"""Whole epochs: per-sample SGD on the seeds' 2-2-1 network, and mini-batch fit on a small net."""

from fastnn.bench import cases as _cases
from fastnn.bench.impls import check_against_numpy, make
from fastnn.bench.timing import measure

from .common import DTYPES, IMPLS, build


class _Epoch:
    case = None
    params = (IMPLS, DTYPES)
    param_names = ("impl", "dtype")

    def setup(self, impl, dtype):
        self.impl = build(make, impl, dtype, self.case, check_against_numpy)

    def track_speedup_over_numpy(self, impl, dtype):
        """NumPy's best epoch time over this implementation's, both measured here."""
        if impl == "numpy":
            return 1.0
        ref = make("numpy", _cases.get_case(self.case), dtype)
        t_ref = min(measure(ref.run, repeat=3, min_time=0.05))
        return t_ref / min(measure(self.impl.run, repeat=3, min_time=0.05, warmup=False))

    track_speedup_over_numpy.unit = "x"


class PerSampleSGD(_Epoch):
    """One epoch of batch-size-1 SGD over 1000 samples (2-2-1 sigmoid/BCE, lr 0.5)."""

    case = _cases.SGD1

    def time_sgd_epoch(self, impl, dtype):
        self.impl.run()


class FitEpoch(_Epoch):
    """One ``fit`` epoch, batch 32, over 2048 samples of a 64-128-10 relu/softmax network."""

    case = _cases.FIT

    def time_fit_epoch(self, impl, dtype):
        self.impl.run()
