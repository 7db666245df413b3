"""One ``train_step`` (forward, fused loss, backward, SGD update) on the four standard cases."""

from fastnn import _bench_cases
from fastnn._bench_impls import check_against_numpy, make
from fastnn._bench_timing import measure

from .common import DTYPES, IMPLS, STEP_CASES, build


class TrainStep:
    """Time, peak memory and speedup over NumPy of one SGD step, per implementation."""

    params = (IMPLS, DTYPES, STEP_CASES)
    param_names = ("impl", "dtype", "case")
    timeout = 600

    def setup(self, impl, dtype, case):
        self.impl = build(make, impl, dtype, case)
        check_against_numpy(self.impl, _bench_cases.get_case(case), dtype)  # raises if wrong

    def time_train_step(self, impl, dtype, case):
        self.impl.run()

    def peakmem_train_step(self, impl, dtype, case):
        self.impl.run()

    def track_speedup_over_numpy(self, impl, dtype, case):
        """NumPy's best time per step over this implementation's, both measured here."""
        if impl == "numpy":
            return 1.0
        ref = make("numpy", _bench_cases.get_case(case), dtype)
        heavy = case == _bench_cases.STANDARD[-1]
        repeat = 1 if heavy else 3
        t_ref = min(measure(ref.run, repeat=repeat, min_time=0.02, warmup=not heavy))
        t_impl = min(measure(self.impl.run, repeat=repeat, min_time=0.02, warmup=False))
        return t_ref / t_impl

    track_speedup_over_numpy.unit = "x"
