# cython: language_level=3, cdivision=True, boundscheck=False, wraparound=False
"""Shape checks shared by the Cython kernels, and the mask they read.

The kernels index without bounds checks, so every shape they rely on is checked once per call,
before the loop (a few integer comparisons). A failed check raises ``ValueError`` naming the
kernel, the argument, the shape expected and the shape received.
"""

from cython cimport floating
from libc.stdint cimport int64_t


cdef inline int expect_shape(str kernel, str name, const Py_ssize_t* shape, int ndim,
                             Py_ssize_t d0, Py_ssize_t d1=-1, Py_ssize_t d2=-1) except -1:
    cdef Py_ssize_t want[3]
    cdef int q
    want[0] = d0
    want[1] = d1
    want[2] = d2
    for q in range(ndim):
        if shape[q] != want[q]:
            raise ValueError(
                f"{kernel}: {name} must have shape {tuple([want[r] for r in range(ndim)])}, got "
                f"{tuple([shape[r] for r in range(ndim)])}. Allocate it as the docstring of "
                f"fastrnn._cy.{kernel} says (T steps, B sequences, H hidden units)."
            )
    return 0


cdef inline int check_batch_sizes(str kernel, const int64_t[::1] batch_sizes, Py_ssize_t T,
                                  Py_ssize_t B) except -1:
    cdef Py_ssize_t t
    if batch_sizes.shape[0] != T:
        raise ValueError(
            f"{kernel}: batch_sizes must have one entry per step, shape ({T},), got "
            f"({batch_sizes.shape[0]},). Pass the number of sequences still running at each step."
        )
    for t in range(T):
        if batch_sizes[t] < 0 or batch_sizes[t] > B:
            raise ValueError(
                f"{kernel}: batch_sizes[{t}] = {batch_sizes[t]} is outside [0, {B}] (B, the batch "
                "size). It must count the sequences still running at step t; sort the batch by "
                "length, longest first."
            )
    return 0


cdef inline int check_mask(str kernel, const Py_ssize_t* shape, bint use_mask, Py_ssize_t B,
                           Py_ssize_t H) except -1:
    if use_mask:
        expect_shape(kernel, "hmask (use_mask is true)", shape, 2, B, H)
    return 0


cdef inline int check_steps(str kernel, const int64_t[::1] batch_sizes,
                            const Py_ssize_t* mask_shape, bint use_mask, str states,
                            const Py_ssize_t* states_shape, Py_ssize_t T, Py_ssize_t B,
                            Py_ssize_t H) except -1:
    """The arguments of the time loop every kernel shares: ``batch_sizes`` of ``T`` steps within
    ``[0, B]``, the recurrent-dropout mask (B, H) when ``use_mask``, and the states ``states``
    (T+1, B, H) (``hs`` or ``cs``)."""
    check_batch_sizes(kernel, batch_sizes, T, B)
    check_mask(kernel, mask_shape, use_mask, B, H)
    expect_shape(kernel, states, states_shape, 3, T + 1, B, H)
    return 0


cdef inline int check_product(str kernel, str w_name, const Py_ssize_t* w_shape,
                              const Py_ssize_t* hin_shape, const Py_ssize_t* out_shape,
                              Py_ssize_t B, Py_ssize_t H, Py_ssize_t G) except -1:
    """The operands of a forward kernel's recurrent product ``out = (h * mask) @ W``: the
    transposed weights ``w_name`` (H, G), the masked state's scratch ``hin`` (B, H) and the result
    ``a`` (B, G)."""
    expect_shape(kernel, w_name, w_shape, 2, H, G)
    expect_shape(kernel, "hin", hin_shape, 2, B, H)
    expect_shape(kernel, "a", out_shape, 2, B, G)
    return 0

cdef inline const floating* mask_rows(const floating[:, ::1] hmask, bint use_mask) noexcept:
    """The recurrent-dropout mask's rows, or NULL without ``use_mask`` (it is never read then; its
    shape is checked by :func:`check_mask`)."""
    return &hmask[0, 0] if use_mask else NULL
