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
from ._cuda_launch import Launch
from ._cuda_math import S_BAD, S_STOPPED, device_math, numba_float
from ._jit import GEMM_TILES, SIM_GEMM_TILES, cuda_jit, cuda_simulated

PAD = 1  # shared-memory row padding against bank conflicts on the transposing tile loads


# The kernel's source, with its register tile written out: TM*TN scalar accumulators (and TM + TN
# operands per k step) instead of local arrays, so they stay in registers whatever the compiler
# unrolls. ``{...}`` blocks are generated per tile by ``_source``.
_TEMPLATE = """
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
{init}
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
{load}
{fma}
        cuda.syncthreads()
    bad = False
{store}
    if FWD and act != IDENTITY:
        # a second pass over this thread's own outputs keeps the activation code out of the
        # unrolled store above
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
"""


def _source(TM, TN):
    rs, cs = range(TM), range(TN)
    init = "\n".join(f"    c{r}_{c} = F(0)" for r in rs for c in cs)
    load = "\n".join([f"            a{r} = As[kk, ty + {r} * TY]" for r in rs]
                     + [f"            b{c} = Bs[kk, tx + {c} * TX]" for c in cs])
    fma = "\n".join(f"            c{r}_{c} += a{r} * b{c}" for r in rs for c in cs)
    store = "\n".join(f"    bad |= store(C, vec, aux, act, M, N, bm + ty + {r} * TY, "
                       f"bn + tx + {c} * TX, c{r}_{c})" for r in rs for c in cs)
    return _TEMPLATE.format(init=init, load=load, fma=fma, store=store)


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
    FWD, DW, DA = form == "nt", form == "tn", form == "nn"

    @cuda_jit(device=True)
    def store(C, vec, aux, act, M, N, i, j, v):
        """C[i, j] = v with the form's epilogue; whether a non-finite dW was written."""
        if i < M and j < N:
            if FWD:
                v += vec[j]
            elif DA:
                if act != IDENTITY:
                    v *= deriv_fn(aux[i, j], act)
            C[i, j] = v
            if DW and not math.isfinite(v):
                return True
        return False

    env = {
        "cuda": cuda, "math": math, "F": F, "act_fn": act_fn, "store": store,
        "S_STOPPED": S_STOPPED, "S_BAD": S_BAD, "IDENTITY": IDENTITY,
        "BM": BM, "BN": BN, "BK": BK, "TM": TM, "TN": TN, "TX": TX, "TY": TY, "NT": TX * TY,
        "A_KMAJOR": form == "tn", "B_NMAJOR": form == "nt",  # A stored (K, M); B stored (N, K)
        "FWD": FWD, "DW": DW, "A_SHAPE": (BK, BM + PAD), "B_SHAPE": (BK, BN + PAD),
    }
    exec(compile(_source(TM, TN), f"<fastnn gemm {form} {tile}>", "exec"), env)
    return cuda_jit(env["kernel"])


def pick_tile(M, N):
    """The tile for an (M, N) product: big tiles once there are enough of them to fill the GPU."""
    tiles = SIM_GEMM_TILES if cuda_simulated() else GEMM_TILES
    BM, BN = tiles["big"][:2]
    big = -(-M // BM) * -(-N // BN) >= 64
    return tiles["big" if big else "small"]


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
