"""One ``train_step`` (forward, fused loss, backward, SGD update) on the four standard cases."""

from fastnn.bench import cases as _cases
from fastnn.bench.impls import check_against_numpy, make
from fastnn.bench.timing import measure

from .common import DTYPES, HEAVY, IMPLS, STEP_CASES, build


class TrainStep:
    """Time of one SGD step, per implementation, on all four standard cases."""

    params = (IMPLS, DTYPES, STEP_CASES)
    param_names = ("impl", "dtype", "case")
    timeout = 600

    def setup(self, impl, dtype, case):
        self.impl = build(make, impl, dtype, case, check_against_numpy)

    def time_train_step(self, impl, dtype, case):
        self.impl.run()


class TrainStepMemorySpeedup:
    """Peak memory and speedup over NumPy of one SGD step (the heavy case left out, for time)."""

    params = (IMPLS, DTYPES, [c for c in STEP_CASES if c != HEAVY])
    param_names = ("impl", "dtype", "case")
    setup = TrainStep.setup

    def peakmem_train_step(self, impl, dtype, case):
        self.impl.run()

    def track_speedup_over_numpy(self, impl, dtype, case):
        """NumPy's best time per step over this implementation's, both measured here."""
        if impl == "numpy":
            return 1.0
        ref = make("numpy", _cases.get_case(case), dtype)
        t_ref = min(measure(ref.run, repeat=3, min_time=0.02))
        t_impl = min(measure(self.impl.run, repeat=3, min_time=0.02, warmup=False))
        return t_ref / t_impl

    track_speedup_over_numpy.unit = "x"
