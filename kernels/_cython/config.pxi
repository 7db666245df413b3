# The module's settings, each set from Python: the BLAS (set_blas), the OpenMP threads, folding
# plain SGD's first-layer update into its GEMM, and the register tiles. Included by
# _cython_cpu.pyx after products.pxi, whose BLAS pointers and tile switch these set.

from fastnn_cpu cimport fastnn_have_openmp, FASTNN_SMALL_GEMM, sgemm_t, dgemm_t

cdef int _nthreads = 1
cdef bint _fold_sgd = True


def set_blas(size_t sgemm_address, size_t dgemm_address):
    """Install the Fortran-interface sgemm/dgemm the kernels call (0 keeps the current one)."""
    global _sgemm, _dgemm
    if sgemm_address:
        _sgemm = <sgemm_t>sgemm_address
    if dgemm_address:
        _dgemm = <dgemm_t>dgemm_address


def blas_addresses():
    """Addresses of the sgemm/dgemm in use, as a tuple of ints."""
    return <size_t>_sgemm, <size_t>_dgemm


def set_num_threads(int n):
    """Threads for the OpenMP loops (ignored without OpenMP)."""
    global _nthreads
    _nthreads = n if n > 0 else 1


def get_num_threads():
    """Threads the OpenMP loops use (1 without OpenMP)."""
    return _nthreads if fastnn_have_openmp() else 1


def set_fold_sgd(bint on):
    """Fold plain SGD's first-layer update into its weight-gradient GEMM in train_epoch (default).

    Folding saves writing, checking and re-reading the first layer's dW; the layer's slot in
    ``grad`` is then not written. Off, train_epoch fills all of ``grad`` (the tests compare both).
    """
    global _fold_sgd
    _fold_sgd = on


def set_small_tiles(bint on):
    """Run small products on the register tiles of ``small_gemm.h`` (default in the AVX2 build).

    Off, BLAS (or plain loops) takes every product, as in the baseline build; the tests compare
    both. Returns whether the tiles are now in use (never in the baseline build).
    """
    global _tiles
    _tiles = on and FASTNN_SMALL_GEMM
    return _tiles


def openmp_enabled():
    """True if this module was compiled with OpenMP."""
    return bool(fastnn_have_openmp())
