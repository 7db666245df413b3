"""Compile every cuda kernel to PTX for sm_90 without a GPU; count f64 ops and local memory.

Needs numba-cuda and NVVM (``pip install "numba-cuda[cu12]"``); no GPU or driver. A float32 GEMM
should show 2 f64 ops (the state flag) and no ld/st.local (its accumulators stay in registers).
Writes the PTX to /tmp/ptx for ``ptxas -v``.
"""
import os
import re

import numpy as np
from numba import cuda, types
import types as _pytypes
import numba.cuda.dispatcher as _d
_d.get_current_device = lambda: _pytypes.SimpleNamespace(compute_capability=(9, 0))  # no GPU: pretend an sm_90 is current (numba asks for it)
from fastnn.kernels import _cuda_gemm, _cuda_rows
from fastnn.kernels._jit import GEMM_TILES

def arr(dt, nd):
    return types.Array(dt, nd, "C")
i64, b1 = types.int64, types.boolean
S = arr(types.float64, 1)
for npdt, F in ((np.dtype(np.float32), types.float32), (np.dtype(np.float64), types.float64)):
    M2, V = arr(F, 2), arr(F, 1)
    jobs = []
    for form in _cuda_gemm.FORMS:
        for name, tile in GEMM_TILES.items():
            k = _cuda_gemm.gemm_kernel(form, npdt, tile)
            jobs.append((f"gemm_{form}_{name}", k, (M2, M2, M2, i64, i64, i64, V, M2, i64, S)))
    jobs.append(("delta", _cuda_rows.delta_kernel(npdt), (M2, M2, i64, S)))
    jobs.append(("softmax", _cuda_rows.softmax_kernel(npdt), (M2, S)))
    jobs.append(("output", _cuda_rows.output_kernel(npdt, 256), (M2, M2, V, b1, i64, M2, S)))
    jobs.append(("gather", _cuda_rows.gather_kernel(npdt), (M2, M2, V, b1, arr(i64, 1), i64, i64, M2, M2, V, S)))
    jobs.append(("update", _cuda_rows.update_kernel(npdt), (i64, V, V, V, V, F, F, F, F, F, F, F, arr(i64, 1), i64, types.float64, b1, S)))
    jobs.append(("fill", _cuda_rows.flat_kernels()[0], (V, F)))
    os.makedirs("/tmp/ptx", exist_ok=True)
    for name, k, sig in jobs:
        ptx, _ = cuda.compile_ptx(k.py_func, sig, cc=(9, 0))
        f64 = len(re.findall(r"^\s*[a-z.]+\.f64\s", ptx, re.M))
        local = len(re.findall(r"(ld|st)\.local", ptx))
        print(f"{npdt.name:8s} {name:16s} ptx_lines={ptx.count(chr(10)):5d} f64_ops={f64:4d} local_mem={local}")
        open(f"/tmp/ptx/{npdt.name}_{name}.ptx", "w").write(ptx)
