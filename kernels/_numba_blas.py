"""GEMM for the Numba kernels on fastnn's BLAS (``_blas``), the one the Cython kernels use.

Numba's ``np.dot`` always calls SciPy's BLAS, whose kernels may be the slow ones for this CPU. Here
the Fortran-interface sgemm/dgemm chosen by ``_blas`` are registered with LLVM under fixed
names (``fastnn_sgemm_``/``fastnn_dgemm_``), and an intrinsic calls them by name. Compiled code
refers to the names, not to addresses, so Numba's on-disk cache stays valid across processes:
the names are bound again, to this process's addresses, when this module is imported.

The helpers take C-contiguous row-major arrays and trust their callers, as kernels do. They are
named for the product they make, as in every backend: ``x_wt`` (X @ W.T), ``dzt_a``
(beta * dW + alpha * dZ.T @ A_prev) and ``dz_w`` (dZ @ W).
"""

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _blas
from ._jit import jit

_info = _blas.load()
llvm.add_symbol("fastnn_sgemm_", _info["sgemm"])
llvm.add_symbol("fastnn_dgemm_", _info["dgemm"])

_T, _N = ord("T"), ord("N")


@intrinsic
def _gemm(typingctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Fortran ``?gemm`` on the data of arrays a, b, c (column-major view), by-reference args."""
    if not (isinstance(a, types.Array) and a.dtype in (types.float32, types.float64)):
        return None
    sig = types.void(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        tys = signature.args
        dt = tys[6].dtype
        fty = ir.FloatType() if dt == types.float32 else ir.DoubleType()
        i8p, i32p, fp = ir.IntType(8).as_pointer(), ir.IntType(32).as_pointer(), fty.as_pointer()
        fnty = ir.FunctionType(
            ir.VoidType(), [i8p, i8p, i32p, i32p, i32p, fp, fp, i32p, fp, i32p, fp, fp, i32p]
        )
        name = "fastnn_sgemm_" if dt == types.float32 else "fastnn_dgemm_"
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)

        def slot(i, to):
            val = context.cast(builder, args[i], tys[i], to)
            ptr = cgutils.alloca_once(builder, context.get_value_type(to))
            builder.store(val, ptr)
            return ptr

        def data(i):
            ary = context.make_array(tys[i])(context, builder, args[i])
            return builder.bitcast(ary.data, fp)

        call_args = [
            slot(0, types.int8), slot(1, types.int8),
            slot(2, types.int32), slot(3, types.int32), slot(4, types.int32),
            slot(5, dt), data(6), slot(7, types.int32), data(8), slot(9, types.int32),
            slot(10, dt), data(11), slot(12, types.int32),
        ]
        builder.call(fn, call_args)
        return context.get_dummy_value()

    return sig, codegen


@jit(inline="always")
def blas_x_wt(X, W, out):
    """out (n, fout) = X (n, fin) @ W.T with W (fout, fin)."""
    n, fin = X.shape
    fout = W.shape[0]
    _gemm(_T, _N, fout, n, fin, 1.0, W, fin, X, fin, 0.0, out, fout)


@jit(inline="always")
def blas_dzt_a(dZ, A_prev, W, alpha, beta):
    """W (fout, fin) = beta * W + alpha * dZ.T @ A_prev: the weight gradient (alpha 1, beta 0),
    or plain SGD's update folded into it (alpha -lr, beta 1 - lr * l2)."""
    n, fout = dZ.shape
    fin = A_prev.shape[1]
    _gemm(_N, _T, fin, fout, n, alpha, A_prev, fin, dZ, fout, beta, W, fin)


@jit(inline="always")
def blas_dz_w(dZ, W, dA):
    """dA (n, fin) = dZ (n, fout) @ W (fout, fin)."""
    n, fout = dZ.shape
    fin = W.shape[1]
    _gemm(_N, _N, fin, n, fout, 1.0, W, fin, dZ, fout, 0.0, dA, fin)
