# cython: language_level=3, cdivision=True, boundscheck=False, wraparound=False
"""Row operations shared by the Cython kernels (contiguous rows of ``count`` elements)."""

from cython cimport floating
from libc.string cimport memcpy, memset


cdef inline const floating* masked(const floating* h, const floating* mask, floating* out,
                                   Py_ssize_t count, bint use_mask) noexcept nogil:
    """The recurrent product's input: ``h * mask`` written to ``out`` when ``use_mask``, else ``h``
    itself (no copy)."""
    cdef Py_ssize_t q
    if not use_mask:
        return h
    for q in range(count):
        out[q] = h[q] * mask[q]
    return out


cdef inline void copy(const floating* src, floating* dst, Py_ssize_t count) noexcept nogil:
    if count > 0:
        memcpy(dst, src, count * sizeof(floating))


cdef inline void zero(floating* dst, Py_ssize_t count) noexcept nogil:
    # IEEE 754: all bits zero is +0.0
    if count > 0:
        memset(dst, 0, count * sizeof(floating))
