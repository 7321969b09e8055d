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

from ._argcheck cimport check_product, check_steps, expect_shape, mask_rows
from ._cellmath cimport rnn_act, rnn_dact
from ._rows cimport carry, recurrent_grad, recurrent_product, zero_rows

from ._errors import call


def _forward(const floating[:, :, ::1] xp, const floating[:, ::1] whh_t,
             const int64_t[::1] batch_sizes, const floating[:, ::1] hmask, bint use_mask, bint relu,
             floating[:, :, ::1] hs, floating[:, ::1] hin, floating[:, ::1] a):
    cdef str k = "rnn_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], H = xp.shape[2]
    cdef Py_ssize_t t, q, n
    cdef const floating *x
    cdef const floating *mask = mask_rows(hmask, use_mask)
    cdef floating *src
    cdef floating *dst
    cdef floating *ap = &a[0, 0]
    check_product(k, "whh_t", whh_t.shape, hin.shape, a.shape, B, H, H)
    check_steps(k, batch_sizes, hmask.shape, use_mask, "hs", hs.shape, T, B, H)
    with nogil:
        for t in range(T):
            n, src, dst, x = batch_sizes[t], &hs[t, 0, 0], &hs[t + 1, 0, 0], &xp[t, 0, 0]
            recurrent_product(src, mask, &hin[0, 0], &whh_t[0, 0], ap, n, H, H, use_mask)
            for q in range(n * H):
                dst[q] = rnn_act(x[q] + ap[q], relu)
            carry(src, n, B, H)


def _backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] hs,
              const floating[:, ::1] whh, const int64_t[::1] batch_sizes,
              const floating[:, ::1] hmask, bint use_mask, bint relu,
              floating[:, :, ::1] dgates, floating[:, ::1] dh):
    cdef str k = "rnn_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2]
    cdef Py_ssize_t t, q, n
    cdef const floating *h
    cdef const floating *d
    cdef const floating *mask = mask_rows(hmask, use_mask)
    cdef floating *g
    cdef floating *dhp = &dh[0, 0]
    expect_shape(k, "whh", whh.shape, 2, H, H)
    check_steps(k, batch_sizes, hmask.shape, use_mask, "hs", hs.shape, T, B, H)
    expect_shape(k, "dgates", dgates.shape, 3, T, B, H)
    expect_shape(k, "dh", dh.shape, 2, B, H)
    with nogil:
        for t in range(T - 1, -1, -1):
            n, h, d, g = batch_sizes[t], &hs[t + 1, 0, 0], &dy[t, 0, 0], &dgates[t, 0, 0]
            for q in range(n * H):
                g[q] = (dhp[q] + d[q]) * rnn_dact(h[q], relu)
            zero_rows(g, n, B, H)
            recurrent_grad(g, &whh[0, 0], dhp, mask, n, H, H, use_mask)


_FORWARD_SPEC = (("xp", "f3"), ("whh_t", "f2"), ("batch_sizes", "i1"), ("hmask", "f2"),
                 ("use_mask", "flag"), ("relu", "flag"), ("hs", "f3w"), ("hin", "f2w"),
                 ("a", "f2w"))
_BACKWARD_SPEC = (("dy", "f3"), ("hs", "f3"), ("whh", "f2"), ("batch_sizes", "i1"), ("hmask", "f2"),
                  ("use_mask", "flag"), ("relu", "flag"), ("dgates", "f3w"), ("dh", "f2w"))


def rnn_forward(xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a):
    """Simple RNN forward over all steps, ``h_t = phi(xp_t + h_{t-1} W_hh^T)``: the arguments and
    results of :func:`fastrnn.kernels.rnn.rnn_forward`."""
    call("rnn_forward", _FORWARD_SPEC, _forward,
         (xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a))


def rnn_backward(dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh):
    """Simple RNN backward through time: the arguments and results of
    :func:`fastrnn.kernels.rnn.rnn_backward`."""
    call("rnn_backward", _BACKWARD_SPEC, _backward,
         (dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh))
