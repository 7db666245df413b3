"""Tiled shared-memory GEMM for numba.cuda with the layer work fused into its epilogue.

Three forms cover an MLP layer (A, B as stored, C = op(A) @ op(B) of shape (M, N)):

- ``"nt"`` forward, ``C = X @ W.T``; epilogue ``g(C + b)`` (bias and activation);
- ``"tn"`` weight gradient, ``C = dZ.T @ A_prev``; the blocks of the first tile column also sum
  the dZ tiles they load, which gives ``db = dZ.sum(0)`` with no extra pass; any non-finite value
  written raises the state's "bad" flag;
- ``"nn"`` input gradient, ``C = dZ @ W``; epilogue ``C * g'(A_prev)`` (the next δ·σ'), so the
  layer below starts from a finished delta.

Kernels are built per (form, dtype, tile) on first use.
"""

import functools
import math

from numba import cuda

from .._codes import IDENTITY
from ._cuda_math import S_BAD, S_STOPPED, device_math, numba_float
from ._jit import GEMM_TILES, SIM_GEMM_TILES, cuda_jit, cuda_simulated

PAD = 1  # shared-memory row padding against bank conflicts on the transposing tile loads


@functools.lru_cache(maxsize=None)
def gemm_kernel(form, dtype, tile):
    """The kernel ``(Am, Bm, C, M, N, K, vec, aux, act, state)`` for ``form`` in nt/tn/nn.

    ``vec`` is the bias (nt) or db (tn); ``aux`` the layer input whose derivative scales the
    result (nn, unless ``act`` is IDENTITY). Unused arguments take any array of the dtype.
    """
    F = numba_float(dtype)
    _, _, act_fn, deriv_fn = device_math(dtype)
    BM, BN, BK, TM, TN = tile
    TX, TY = BN // TN, BM // TM
    NT = TX * TY
    A_KMAJOR = form == "tn"  # A stored (K, M)
    B_NMAJOR = form == "nt"  # B stored (N, K)
    FWD, DW, DA = form == "nt", form == "tn", form == "nn"
    A_SHAPE, B_SHAPE = (BK, BM + PAD), (BK, BN + PAD)  # constants for the shared arrays

    @cuda_jit
    def kernel(Am, Bm, C, M, N, K, vec, aux, act, state):
        if state[S_STOPPED] != 0:
            return
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TX + tx
        bm = cuda.blockIdx.y * BM
        bn = cuda.blockIdx.x * BN
        As = cuda.shared.array(A_SHAPE, F)
        Bs = cuda.shared.array(B_SHAPE, F)
        acc = cuda.local.array((TM, TN), F)
        ar = cuda.local.array(TM, F)
        bc = cuda.local.array(TN, F)
        for r in range(TM):
            for c in range(TN):
                acc[r, c] = F(0)
        sums_db = DW and cuda.blockIdx.x == 0 and tid < BM
        dbs = F(0)
        for k0 in range(0, K, BK):
            # load op(A)[bm:bm+BM, k0:k0+BK] and op(B)[k0:k0+BK, bn:bn+BN], reading memory in order
            for e in range(tid, BM * BK, NT):
                if A_KMAJOR:
                    kk = e // BM
                    i = e - kk * BM
                    ok = bm + i < M and k0 + kk < K
                    As[kk, i] = Am[k0 + kk, bm + i] if ok else F(0)
                else:
                    i = e // BK
                    kk = e - i * BK
                    ok = bm + i < M and k0 + kk < K
                    As[kk, i] = Am[bm + i, k0 + kk] if ok else F(0)
            for e in range(tid, BN * BK, NT):
                if B_NMAJOR:
                    j = e // BK
                    kk = e - j * BK
                    ok = bn + j < N and k0 + kk < K
                    Bs[kk, j] = Bm[bn + j, k0 + kk] if ok else F(0)
                else:
                    kk = e // BN
                    j = e - kk * BN
                    ok = bn + j < N and k0 + kk < K
                    Bs[kk, j] = Bm[k0 + kk, bn + j] if ok else F(0)
            cuda.syncthreads()
            if sums_db:
                for kk in range(BK):
                    dbs += As[kk, tid]
            for kk in range(BK):
                for r in range(TM):
                    ar[r] = As[kk, ty + r * TY]
                for c in range(TN):
                    bc[c] = Bs[kk, tx + c * TX]
                for r in range(TM):
                    for c in range(TN):
                        acc[r, c] += ar[r] * bc[c]
            cuda.syncthreads()
        bad = False
        for r in range(TM):
            i = bm + ty + r * TY
            if i < M:
                for c in range(TN):
                    j = bn + tx + c * TX
                    if j < N:
                        v = acc[r, c]
                        if FWD:
                            v += vec[j]
                        elif DA:
                            if act != IDENTITY:
                                v *= deriv_fn(aux[i, j], act)
                        elif not math.isfinite(v):
                            bad = True
                        C[i, j] = v
        if FWD and act != IDENTITY:
            # a second pass over this thread's own outputs keeps the loop above small enough to
            # unroll, so acc stays in registers (the activation code is long)
            for r in range(TM):
                i = bm + ty + r * TY
                for c in range(TN):
                    j = bn + tx + c * TX
                    if i < M and j < N:
                        C[i, j] = act_fn(C[i, j], act)
        if sums_db and bm + tid < M:
            vec[bm + tid] = dbs
            if not math.isfinite(dbs):
                bad = True
        if bad:
            state[S_BAD] = 1.0

    return kernel


def pick_tile(M, N):
    """The tile for an (M, N) product: big tiles once there are enough of them to fill the GPU."""
    tiles = SIM_GEMM_TILES if cuda_simulated() else GEMM_TILES
    BM, BN = tiles["big"][:2]
    big = -(-M // BM) * -(-N // BN) >= 64
    return tiles["big" if big else "small"]


def launch(form, dtype, Am, Bm, C, M, N, K, vec, aux, act, state, tile=None):
    """Launch the ``form`` GEMM for a product of shape (M, N) over K."""
    tile = pick_tile(M, N) if tile is None else tile
    BM, BN, _, TM, TN = tile
    grid = (-(-N // BN), -(-M // BM))
    gemm_kernel(form, dtype, tile)[grid, (BN // TN, BM // TM)](
        Am, Bm, C, M, N, K, vec, aux, act, state
    )
