"""The Cython kernels of ``_cython_cpu.pyx``, compiled a second time for x86-64 CPUs with AVX2
and FMA (setup.py adds the compiler flags). ``fastnn.kernels.cython_cpu`` imports this build when
the CPU has both, and the baseline build otherwise: one source, two instruction sets.
"""

include "_cython_cpu.pyx"
