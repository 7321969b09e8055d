# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
"""Cython kernels of the simple (Elman) RNN: the recurrent loop over time, forward and backward.

Same signatures and semantics as :mod:`fastrnn.kernels.rnn` (the conventions are in its docstring).
float32 and float64 through fused types; every float array of a call shares one dtype (that of the
first argument) and is C-contiguous. The time loop runs without the GIL; the per-step recurrent
products go through BLAS (:mod:`fastrnn._cy._blas`).
"""

from cython cimport floating
from libc.stdint cimport int64_t

from ._argcheck cimport check_batch_sizes, check_mask, expect_shape, wants_double
from ._blas cimport matmul
from ._cellmath cimport rnn_act, rnn_dact
from ._rows cimport copy, masked, zero

from ._errors import explain

_CONVERSION_ERRORS = (ValueError, TypeError, BufferError, AttributeError)


cdef int _forward(const floating[:, :, ::1] xp, const floating[:, ::1] whh_t,
                  const int64_t[::1] batch_sizes, const floating[:, ::1] hmask, bint use_mask,
                  bint relu, floating[:, :, ::1] hs, floating[:, ::1] hin,
                  floating[:, ::1] a) except -1:
    cdef str k = "rnn_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], H = xp.shape[2]
    cdef Py_ssize_t t, q, n
    cdef const floating* src
    cdef const floating* x
    cdef const floating* inp
    cdef const floating* mask = NULL
    cdef floating* dst
    cdef floating* ap
    expect_shape(k, "whh_t", whh_t.shape, 2, H, H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_mask(k, hmask.shape, use_mask, B, H)
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "hin", hin.shape, 2, B, H)
    expect_shape(k, "a", a.shape, 2, B, H)
    if use_mask:
        mask = &hmask[0, 0]
    ap = &a[0, 0]
    with nogil:
        for t in range(T):
            n = batch_sizes[t]
            src = &hs[t, 0, 0]
            dst = &hs[t + 1, 0, 0]
            x = &xp[t, 0, 0]
            inp = masked(src, mask, &hin[0, 0], n * H, use_mask)
            matmul(inp, &whh_t[0, 0], ap, n, H, H, <floating>0)
            for q in range(n * H):
                dst[q] = rnn_act(x[q] + ap[q], relu)
            copy(src + n * H, dst + n * H, (B - n) * H)
    return 0


cdef int _backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] hs,
                   const floating[:, ::1] whh, const int64_t[::1] batch_sizes,
                   const floating[:, ::1] hmask, bint use_mask, bint relu,
                   floating[:, :, ::1] dgates, floating[:, ::1] dh) except -1:
    cdef str k = "rnn_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2]
    cdef Py_ssize_t t, q, n
    cdef const floating* h
    cdef const floating* d
    cdef const floating* mask = NULL
    cdef floating* g
    cdef floating* dhp
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "whh", whh.shape, 2, H, H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_mask(k, hmask.shape, use_mask, B, H)
    expect_shape(k, "dgates", dgates.shape, 3, T, B, H)
    expect_shape(k, "dh", dh.shape, 2, B, H)
    if use_mask:
        mask = &hmask[0, 0]
    dhp = &dh[0, 0]
    with nogil:
        for t in range(T - 1, -1, -1):
            n = batch_sizes[t]
            h = &hs[t + 1, 0, 0]
            d = &dy[t, 0, 0]
            g = &dgates[t, 0, 0]
            for q in range(n * H):
                g[q] = (dhp[q] + d[q]) * rnn_dact(h[q], relu)
            zero(g + n * H, (B - n) * H)
            matmul(g, &whh[0, 0], dhp, n, H, H, <floating>0)
            if use_mask:
                for q in range(n * H):
                    dhp[q] *= mask[q]
    return 0


_FORWARD_SPEC = (("xp", "f3"), ("whh_t", "f2"), ("batch_sizes", "i1"), ("hmask", "f2"),
                 ("use_mask", "flag"), ("relu", "flag"), ("hs", "f3w"), ("hin", "f2w"),
                 ("a", "f2w"))
_BACKWARD_SPEC = (("dy", "f3"), ("hs", "f3"), ("whh", "f2"), ("batch_sizes", "i1"), ("hmask", "f2"),
                  ("use_mask", "flag"), ("relu", "flag"), ("dgates", "f3w"), ("dh", "f2w"))


def rnn_forward(xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a):
    """Simple RNN forward over all steps: ``h_t = phi(xp_t + h_{t-1} W_hh^T)``.

    Parameters
    ----------
    xp : ndarray of shape (T, B, H)
        Input projections plus both biases.
    whh_t : ndarray of shape (H, H)
        Transposed recurrent weights ``W_hh^T``.
    batch_sizes : ndarray of shape (T,), int64
        Sequences still running at each step (the batch is sorted by length, longest first).
    hmask : ndarray of shape (B, H) or (0, 0)
        Recurrent-dropout mask, read only when ``use_mask``.
    use_mask, relu : bool
        Apply ``hmask``; use relu instead of tanh.
    hs : ndarray of shape (T+1, B, H)
        Output; ``hs[0]`` holds ``h_0`` on entry.
    hin, a : ndarray of shape (B, H)
        Scratch.
    """
    try:
        if wants_double(xp):
            _forward[double](xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a)
        else:
            _forward[float](xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a)
    except _CONVERSION_ERRORS as exc:
        explain("rnn_forward", _FORWARD_SPEC,
                (xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a), exc)


def rnn_backward(dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh):
    """Simple RNN backward through time.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
        Gradient of the loss with respect to the outputs (zero past each length).
    hs : ndarray of shape (T+1, B, H)
        States from the forward.
    whh : ndarray of shape (H, H)
        Recurrent weights ``W_hh``.
    batch_sizes, hmask, use_mask, relu
        As for :func:`rnn_forward`.
    dgates : ndarray of shape (T, B, H)
        Output: pre-activation gradients (zero for finished rows).
    dh : ndarray of shape (B, H)
        In: gradient with respect to ``h_n``; out: gradient with respect to ``h_0``.
    """
    try:
        if wants_double(dy):
            _backward[double](dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh)
        else:
            _backward[float](dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh)
    except _CONVERSION_ERRORS as exc:
        explain("rnn_backward", _BACKWARD_SPEC,
                (dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh), exc)
