# cython: language_level=3, cdivision=True, boundscheck=False, wraparound=False
"""Row operations shared by the Cython kernels (contiguous rows of ``count`` elements), and the
steps every cell's time loop takes around its cell: the recurrent product of the rows still running,
the state carried by the finished rows, the gradient through the recurrent product."""

from cython cimport floating
from libc.string cimport memcpy, memset

from ._blas cimport matmul


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


cdef inline const floating* recurrent_product(const floating* h, const floating* mask,
                                              floating* hin, const floating* whh_t, floating* out,
                                              Py_ssize_t n, Py_ssize_t H, Py_ssize_t G,
                                              bint use_mask) noexcept nogil:
    """``out[:n] = (h[:n] * mask[:n]) @ whh_t`` for the ``n`` rows still running (rows of ``H``;
    ``whh_t`` is ``H x G``), the mask only with ``use_mask`` (``hin`` is scratch for the masked
    rows). Returns the product's left operand (``h`` itself, or ``hin``)."""
    cdef const floating* inp = masked(h, mask, hin, n * H, use_mask)
    matmul(inp, whh_t, out, n, H, G, <floating>0)
    return inp


cdef inline void carry(floating* s, Py_ssize_t n, Py_ssize_t B, Py_ssize_t H) noexcept nogil:
    """The finished sequences keep their state: rows ``n .. B-1`` of the step at ``s`` (``B`` rows
    of ``H``) copied to the next step, ``B*H`` further."""
    copy(s + n * H, s + (B + n) * H, (B - n) * H)


cdef inline void zero_rows(floating* g, Py_ssize_t n, Py_ssize_t B, Py_ssize_t W) noexcept nogil:
    """No gradient for the finished sequences: rows ``n .. B-1`` of ``g`` (``B`` rows of ``W``)
    set to zero."""
    zero(g + n * W, (B - n) * W)


cdef inline void recurrent_grad(const floating* g, const floating* whh, floating* dh,
                                const floating* mask, Py_ssize_t n, Py_ssize_t G, Py_ssize_t H,
                                bint use_mask) noexcept nogil:
    """The gradient of ``h_{t-1}`` through the recurrent product: ``dh[:n] = g[:n] @ whh`` (rows
    of ``G`` gate gradients; ``whh`` is ``G x H``), times the recurrent-dropout mask with
    ``use_mask``."""
    cdef Py_ssize_t q
    matmul(g, whh, dh, n, G, H, <floating>0)
    if use_mask:
        for q in range(n * H):
            dh[q] *= mask[q]
