"""Tiled shared-memory GEMM for numba.cuda with the layer work fused into its epilogue.

Three forms cover an MLP layer (A, B as stored, C = op(A) @ op(B) of shape (M, N)), named for
their product as in every backend:

- ``"x_wt"`` forward, ``C = X @ W.T``; epilogue ``g(C + b)`` (bias and activation);
- ``"dzt_a"`` weight gradient, ``C = dZ.T @ A_prev``; the blocks of the first tile column also
  sum the dZ tiles they load, which gives ``db = dZ.sum(0)`` with no extra pass; any non-finite
  value written raises the state's "bad" flag;
- ``"dz_w"`` input gradient, ``C = dZ @ W``; epilogue ``C * g'(A_prev)`` (the next δ·σ'), so the
  layer below starts from a finished delta.

How a block works: its threads fetch the next K-slice of both tiles into registers (no bounds
checks when the tile is wholly inside), multiply the slice already in shared memory, then store the
fetched one into the other shared stage: two stages, one barrier per slice. The shared tiles are
flat, k-major, rows padded by ``PAD``; a thread's register tile is two runs of rows (and of
columns) half a tile apart, so its shared reads are contiguous and conflict-free.

Kernels are built per (form, dtype, tile) on first use.
"""

import functools
import math

from numba import cuda

from .codes import IDENTITY
from ._cuda_launch import Launch
from ._cuda_math import S_BAD, S_STOPPED, device_math, numba_float
from ._jit import GEMM_TILES, SIM_GEMM_TILES, cuda_jit, cuda_simulated

PAD = 4  # shared-memory row padding: the transposing stores of 8 k-values x 4 rows hit 32 banks
FORMS = ("x_wt", "dzt_a", "dz_w")


def _tile_io(F, NT, BK, T, L, KMAJOR):
    """Device functions ``(fetch, stash)`` that move one (BK, T) tile of op(X) through registers.

    Each of the NT threads holds L elements. ``fetch(Xm, buf, t0, k0, lim, K, tid, full)`` reads
    them from X stored K-major (K, T) along T, or T-major (T, K) along K with L in a row; outside
    ``t < lim`` and ``k < K`` it gives zeros (``full`` says the whole tile is inside: no checks).
    ``stash(S, s, buf, tid)`` writes them to stage ``s`` of the flat shared tile ``S`` ([s, k, t],
    rows padded to ``T + PAD``).
    """
    RUN = BK // L  # T-major: threads per row of the tile

    @cuda_jit(device=True)
    def fetch(Xm, buf, t0, k0, lim, K, tid, full):
        if KMAJOR:
            for q in range(L):
                e = tid + q * NT
                kk = e // T
                i = e - kk * T
                if full or (t0 + i < lim and k0 + kk < K):
                    buf[q] = Xm[k0 + kk, t0 + i]
                else:
                    buf[q] = F(0)
        else:
            i = tid // RUN
            kb = (tid - i * RUN) * L
            for q in range(L):
                if full or (t0 + i < lim and k0 + kb + q < K):
                    buf[q] = Xm[t0 + i, k0 + kb + q]
                else:
                    buf[q] = F(0)

    @cuda_jit(device=True)
    def stash(S, s, buf, tid):
        base = s * (BK * (T + PAD))
        if KMAJOR:
            for q in range(L):
                e = tid + q * NT
                kk = e // T
                S[base + kk * (T + PAD) + e - kk * T] = buf[q]
        else:
            i = tid // RUN
            kb = (tid - i * RUN) * L
            for q in range(L):
                S[base + (kb + q) * (T + PAD) + i] = buf[q]

    return fetch, stash


@functools.lru_cache(maxsize=None)
def gemm_kernel(form, dtype, tile):
    """The kernel ``(Am, Bm, C, M, N, K, vec, aux, act, state)`` for ``form`` in ``FORMS``.

    ``vec`` is the bias (x_wt) or db (dzt_a); ``aux`` the layer input whose derivative scales
    the result (dz_w, unless ``act`` is IDENTITY). Unused arguments take any array of the dtype.
    """
    if form not in FORMS:
        raise ValueError(f"GEMM form {form!r}: expected one of {FORMS}")
    F = numba_float(dtype)
    _, _, act_fn, deriv_fn = device_math(dtype)
    BM, BN, BK, TM, TN = tile
    if TM % 2 or TN % 2 or (BM * BK) % (BN // TN * BM // TM) or (BN * BK) % (BN // TN * BM // TM):
        raise ValueError(f"GEMM tile {tile}: TM and TN must be even and each tile's BK rows must "
                         "split evenly over the block's threads")
    TX, TY = BN // TN, BM // TM
    NT = TX * TY
    HM, HN = TM // 2, TN // 2  # a thread's rows (columns) are two runs of HM (HN), BM/2 apart
    LA, LB = BM * BK // NT, BN * BK // NT  # elements of the next A (B) tile each thread loads
    FWD, DW, DA = form == "x_wt", form == "dzt_a", form == "dz_w"
    A_KMAJOR = DW  # A stored (K, M)
    B_NMAJOR = FWD  # B stored (N, K)
    SA, SB = BK * (BM + PAD), BK * (BN + PAD)  # one stage of the flat shared tiles [k, m], [k, n]
    A_LEN, B_LEN = 2 * SA, 2 * SB  # two stages: fill one while multiplying the other
    fetch_a, stash_a = _tile_io(F, NT, BK, BM, LA, A_KMAJOR)
    fetch_b, stash_b = _tile_io(F, NT, BK, BN, LB, not B_NMAJOR)

    @cuda_jit
    def kernel(Am, Bm, C, M, N, K, vec, aux, act, state):
        if state[S_STOPPED] != 0:
            return
        tx = max(cuda.threadIdx.x, 0)  # max: the compiler then knows every index is >= 0
        ty = max(cuda.threadIdx.y, 0)
        tid = ty * TX + tx
        bm = cuda.blockIdx.y * BM
        bn = cuda.blockIdx.x * BN
        As = cuda.shared.array(A_LEN, F)
        Bs = cuda.shared.array(B_LEN, F)
        acc = cuda.local.array((TM, TN), F)
        ar = cuda.local.array(TM, F)
        bc = cuda.local.array(TN, F)
        ra = cuda.local.array(LA, F)
        rb = cuda.local.array(LB, F)
        for r in range(TM):
            for c in range(TN):
                acc[r, c] = F(0)
        sums_db = DW and cuda.blockIdx.x == 0 and tid < BM
        dbs = F(0)
        inside = bm + BM <= M and bn + BN <= N
        nk = (K + BK - 1) // BK
        # stage 0, then: fetch tile t+1 into registers, multiply tile t, stash t+1 (one barrier)
        full = inside and BK <= K
        fetch_a(Am, ra, bm, 0, M, K, tid, full)
        fetch_b(Bm, rb, bn, 0, N, K, tid, full)
        stash_a(As, 0, ra, tid)
        stash_b(Bs, 0, rb, tid)
        cuda.syncthreads()
        for t in range(nk):
            s = t & 1
            more = t + 1 < nk
            if more:
                k1 = (t + 1) * BK
                full = inside and k1 + BK <= K
                fetch_a(Am, ra, bm, k1, M, K, tid, full)
                fetch_b(Bm, rb, bn, k1, N, K, tid, full)
            if sums_db:
                for kk in range(BK):
                    dbs += As[s * SA + kk * (BM + PAD) + tid]
            a0 = s * SA + ty * HM
            b0 = s * SB + tx * HN
            for kk in range(BK):
                ao = a0 + kk * (BM + PAD)
                bo = b0 + kk * (BN + PAD)
                for r in range(HM):
                    ar[r] = As[ao + r]
                    ar[HM + r] = As[ao + BM // 2 + r]
                for c in range(HN):
                    bc[c] = Bs[bo + c]
                    bc[HN + c] = Bs[bo + BN // 2 + c]
                for r in range(TM):
                    for c in range(TN):
                        acc[r, c] += ar[r] * bc[c]
            if more:
                stash_a(As, 1 - s, ra, tid)
                stash_b(Bs, 1 - s, rb, tid)
            cuda.syncthreads()
        bad = False
        for r in range(TM):
            i = bm + (r // HM) * (BM // 2) + ty * HM + r % HM
            if i < M:
                for c in range(TN):
                    j = bn + (c // HN) * (BN // 2) + tx * HN + c % HN
                    if j < N:
                        v = acc[r, c]
                        if FWD:
                            v += vec[j]
                        elif DW and not math.isfinite(v):
                            bad = True
                        C[i, j] = v
        if (FWD or DA) and act != IDENTITY:
            # a second pass over this thread's own outputs keeps the loop above small enough to
            # unroll, so acc stays in registers (activation and derivative code is long)
            for r in range(TM):
                i = bm + (r // HM) * (BM // 2) + ty * HM + r % HM
                for c in range(TN):
                    j = bn + (c // HN) * (BN // 2) + tx * HN + c % HN
                    if i < M and j < N:
                        if FWD:
                            C[i, j] = act_fn(C[i, j], act)
                        else:
                            C[i, j] *= deriv_fn(aux[i, j], act)
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
    for size in ("huge", "big"):
        BM, BN = tiles[size][:2]
        if -(-M // BM) * -(-N // BN) >= 64:
            return tiles[size]
    return tiles["small"]


def plan(form, dtype, Am, Bm, C, M, N, K, vec, aux, act, state, tile=None):
    """The ``form`` GEMM for a product of shape (M, N) over K, as a replayable ``Launch``.

    The argument order is the kernel's: ``Am`` is argument 0 and ``state`` the last.
    """
    tile = pick_tile(M, N) if tile is None else tile
    BM, BN, _, TM, TN = tile
    grid = (-(-N // BN), -(-M // BM))
    return Launch(gemm_kernel(form, dtype, tile), grid, (BN // TN, BM // TM),
                  (Am, Bm, C, M, N, K, vec, aux, act, state))


def launch(form, dtype, Am, Bm, C, M, N, K, vec, aux, act, state, tile=None):
    """Launch the ``form`` GEMM for a product of shape (M, N) over K (once, not replayed)."""
    tile = pick_tile(M, N) if tile is None else tile
    BM, BN, _, TM, TN = tile
    grid = (-(-N // BN), -(-M // BM))
    gemm_kernel(form, dtype, tile)[grid, (BN // TN, BM // TM)](
        Am, Bm, C, M, N, K, vec, aux, act, state
    )
