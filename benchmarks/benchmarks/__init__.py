"""asv benchmarks for fastnn: every kernel and training step against the NumPy baseline."""
