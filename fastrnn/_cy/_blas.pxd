# cython: language_level=3, cdivision=True, boundscheck=False, wraparound=False
"""Row-major matrix products for the Cython kernels, through ``scipy.linalg.cython_blas``.

BLAS is column-major. A C-contiguous ``(r, c)`` array read column-major with leading dimension
``c`` is its transpose, so the C-order product ``C = A @ W`` (``A`` n×k, ``W`` k×m) is computed as
the column-major product ``C^T = W^T A^T``: ``gemm("N", "N", m, n, k, 1, W, m, A, k, beta, C, m)``.
For one row (batch 1) it is the matrix-vector product ``C^T = W^T a``, ``gemv("N", m, k, 1, W, m,
a, 1, beta, C, 1)``.
"""

from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv


cdef inline void matmul(const floating* A, const floating* W, floating* C, Py_ssize_t n,
                        Py_ssize_t k, Py_ssize_t m, floating beta) noexcept nogil:
    """``C[:n, :m] = A[:n, :k] @ W[:k, :m] + beta * C[:n, :m]``; all three C-contiguous (row-major,
    leading dimensions ``k``, ``m``, ``m``). ``beta`` is 0 or 1; with ``beta == 0`` C is only
    written."""
    cdef int n_ = <int>n, k_ = <int>k, m_ = <int>m, inc = 1
    cdef floating one = 1
    cdef char tr = b'N'
    cdef Py_ssize_t q
    if n <= 0 or m <= 0:
        return
    if k <= 0:
        # An empty sum; reference BLAS gemv would leave C untouched, so do it here.
        if beta == 0:
            for q in range(n * m):
                C[q] = 0
        return
    if n == 1:
        if floating is float:
            sgemv(&tr, &m_, &k_, &one, <float*>W, &m_, <float*>A, &inc, &beta, C, &inc)
        else:
            dgemv(&tr, &m_, &k_, &one, <double*>W, &m_, <double*>A, &inc, &beta, C, &inc)
    else:
        if floating is float:
            sgemm(&tr, &tr, &m_, &n_, &k_, &one, <float*>W, &m_, <float*>A, &k_, &beta, C, &m_)
        else:
            dgemm(&tr, &tr, &m_, &n_, &k_, &one, <double*>W, &m_, <double*>A, &k_, &beta, C, &m_)
