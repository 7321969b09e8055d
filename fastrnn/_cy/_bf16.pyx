# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
"""The bf16 matrix product of mixed-precision training (``precision="bf16"`` of the layers).

``C (+)= bf16(A) bf16(B)``: both operands rounded from float32 to bfloat16 (to nearest, ties to
even), the products summed in float32 (``fastrnn/_cy/_bf16gemm.h``). ``B`` is packed once by
:func:`pack_b` and may serve several products; the rows of ``A``, ``B`` and ``C`` are given by
tables of offsets into 1-D arrays (a negative offset: a row of zeros in ``A`` or ``B``, a row left
alone in ``C``), so transposed matrices and rows gathered from a padded batch need no copy.

The micro-kernel is AVX-512 BF16's ``vdpbf16ps`` where the CPU has it, else portable C that rounds
the operands the same way (exact, much slower). ``FASTRNN_ISA`` (``"avx512"``, ``"avx2"`` or
``"generic"``) caps the level when the module is imported, as :func:`set_isa` does later: below
``"avx512"`` the portable kernel runs.
"""

from libc.stdint cimport int64_t, uint16_t

import numpy as np

from .._workspace import aligned_empty
from ._isa import isa_from_env


cdef extern from "_bf16gemm.h" nogil:
    ctypedef Py_ssize_t frb_idx
    enum: FRB_NR
    frb_idx frb_bpack_size(frb_idx K, frb_idx N)
    frb_idx frb_work_size()
    void frb_bpack(frb_idx K, frb_idx N, const float *B, const int64_t *b_rows, frb_idx b_cs,
                   uint16_t *out)
    void frb_gemm(frb_idx M, frb_idx N, frb_idx K, const float *A, const int64_t *a_rows,
                  frb_idx a_cs, const uint16_t *Bp, float *C, const int64_t *c_rows,
                  int accumulate, uint16_t *work)
    int frb_supported()
    int frb_set(int level)
    uint16_t frb_round(float x)
    void frb_gemm_rows(frb_idx M, frb_idx N, frb_idx K, const float *A, const int64_t *a_rows,
                       const uint16_t *Bp, float *C, const int64_t *c_rows, int accumulate)

__all__ = ["pack_b", "gemm", "gemm_rows_address", "packed_size", "isa", "set_isa", "supported",
           "NR"]

#: columns of a panel of a packed ``B``: packed matrices are stored panel after panel, so the
#: packed arrays of ``K x N1`` and ``K x N2`` matrices, ``N1`` a multiple of ``NR``, side by side
#: are the packed ``K x (N1 + N2)`` matrix of the two side by side
NR = FRB_NR

LEVELS = {"avx512": 2, "avx2": 0, "generic": 0}
_NAMES = {2: "avx512", 0: "generic"}


def supported():
    """Whether this CPU runs the AVX-512 BF16 kernel."""
    return bool(frb_supported())


def isa():
    """The kernel in use: ``"avx512"`` (``vdpbf16ps``) or ``"generic"`` (portable C)."""
    return _NAMES[_level]


def set_isa(name):
    """Cap the kernel: ``"avx512"`` (the default; portable C on a CPU without AVX-512 BF16),
    ``"avx2"`` or ``"generic"`` (portable C). Returns the kernel now in use (see :func:`isa`)."""
    global _level
    if name not in LEVELS:
        raise ValueError(f"the ISA must be one of {sorted(LEVELS)}, got {name!r}.")
    _level = frb_set(LEVELS[name])
    return isa()


cdef int _level = frb_set(LEVELS[isa_from_env(LEVELS)])


def packed_size(Py_ssize_t K, Py_ssize_t N):
    """Number of uint16 values of a ``K x N`` matrix packed by :func:`pack_b`."""
    return frb_bpack_size(K, N)


cdef int _check_rows(const int64_t[::1] rows, Py_ssize_t span, Py_ssize_t size, str what) except -1:
    """Every non-negative offset plus ``span`` stays within ``size`` elements."""
    cdef Py_ssize_t i
    cdef int64_t r, hi = -1
    for i in range(rows.shape[0]):
        r = rows[i]
        if r > hi:
            hi = r
    if hi >= 0 and hi + span > size:
        raise ValueError(f"{what}: a row at offset {hi} spans {span} elements, past the end of "
                         f"its array of {size}; pass row offsets inside the array.")
    return 0


def pack_b(const float[::1] B, const int64_t[::1] b_rows, Py_ssize_t b_cs, Py_ssize_t N):
    """Round a ``K x N`` matrix to bf16 and pack it as the right operand of :func:`gemm`.

    Parameters
    ----------
    B : ndarray of float32, 1-D
        Holds ``B[k, j] = B[b_rows[k] + j * b_cs]``.
    b_rows : ndarray of int64, shape (K,)
        Offset of each row; negative: a row of zeros.
    b_cs : int
        Distance between the columns (1 for a row-major matrix, its row length for a transposed
        one).
    N : int
        Columns.

    Returns
    -------
    ndarray of uint16, shape (packed_size(K, N),)
    """
    cdef Py_ssize_t K = b_rows.shape[0]
    if N < 0 or b_cs < 0:
        raise ValueError(f"pack_b: N and b_cs must be >= 0, got {N} and {b_cs}.")
    _check_rows(b_rows, (N - 1) * b_cs + 1 if N > 0 else 0, B.shape[0], "pack_b")
    out = aligned_empty(frb_bpack_size(K, N), np.uint16)
    cdef uint16_t[::1] o = out
    with nogil:
        frb_bpack(K, N, &B[0] if B.shape[0] else NULL, &b_rows[0] if K else NULL, b_cs,
                  &o[0] if o.shape[0] else NULL)
    return out


def gemm(const float[::1] A, const int64_t[::1] a_rows, Py_ssize_t a_cs, Py_ssize_t K,
         const uint16_t[::1] Bp, Py_ssize_t N, float[::1] C, const int64_t[::1] c_rows,
         bint accumulate):
    """``C (+)= bf16(A) bf16(B)`` with ``B`` packed by :func:`pack_b`, float32 sums.

    Parameters
    ----------
    A : ndarray of float32, 1-D
        Holds ``A[i, k] = A[a_rows[i] + k * a_cs]``.
    a_rows : ndarray of int64, shape (M,)
        Offset of each row of ``A``; negative: a row of zeros.
    a_cs : int
        Distance between the columns of ``A``.
    K : int
        Inner dimension.
    Bp : ndarray of uint16
        ``B`` (``K x N``) packed by :func:`pack_b`.
    N : int
        Columns of ``B`` and ``C``.
    C : ndarray of float32, 1-D
        Row ``i`` of the result is ``C[c_rows[i] : c_rows[i] + N]``.
    c_rows : ndarray of int64, shape (M,)
        Offset of each row of ``C``; negative: the row is not written.
    accumulate : bool
        Add to ``C`` instead of overwriting it.
    """
    cdef Py_ssize_t M = a_rows.shape[0]
    if c_rows.shape[0] != M:
        raise ValueError(f"gemm: a_rows and c_rows must have the same length, got {M} and "
                         f"{c_rows.shape[0]}.")
    if K < 0 or N < 0 or a_cs < 0:
        raise ValueError(f"gemm: K, N and a_cs must be >= 0, got {K}, {N} and {a_cs}.")
    if Bp.shape[0] != frb_bpack_size(K, N):
        raise ValueError(f"gemm: Bp holds {Bp.shape[0]} values, a packed {K} x {N} matrix "
                         f"{frb_bpack_size(K, N)}; pack B with pack_b for these K and N.")
    if M == 0 or N == 0:
        return
    _check_rows(a_rows, (K - 1) * a_cs + 1 if K > 0 else 0, A.shape[0], "gemm (A)")
    _check_rows(c_rows, N, C.shape[0], "gemm (C)")
    work = aligned_empty(frb_work_size(), np.uint16)
    cdef uint16_t[::1] w = work
    with nogil:
        frb_gemm(M, N, K, &A[0] if A.shape[0] else NULL, &a_rows[0], a_cs,
                 &Bp[0] if Bp.shape[0] else NULL, &C[0], &c_rows[0], accumulate, &w[0])


def gemm_rows_address():
    """Address of the C function ``frb_gemm_rows(M, N, K, A, a_rows, Bp, C, c_rows,
    accumulate)`` (``fastrnn/_cy/_bf16gemm.h``): :func:`gemm` with ``a_cs = 1``, raw pointers and
    no checks, for the compiled recurrent sweeps (:mod:`fastrnn.kernels._bf16step`). It follows
    :func:`set_isa` as :func:`gemm` does."""
    return <size_t>&frb_gemm_rows


def round_bf16(const float[::1] x):
    """The bf16 values of ``x`` (to nearest, ties to even), as the kernels round their operands:
    uint16 bit patterns, the upper halves of the float32 values."""
    out = np.empty(x.shape[0], np.uint16)
    cdef uint16_t[::1] o = out
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        o[i] = frb_round(x[i])
    return out
