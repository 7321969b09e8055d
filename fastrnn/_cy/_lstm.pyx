# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
"""Cython kernels of the LSTM (gate order i, f, g, o).

Same signatures and semantics as :mod:`fastrnn.kernels.lstm` (conventions:
:mod:`fastrnn.kernels.rnn`).
``peep`` of shape ``(3, H)`` holds the diagonal peephole weights ``(w_ci, w_cf, w_co)`` (zeros when
peepholes are off); ``gates_on`` of shape ``(3,)`` switches the input, forget and output gates on
(an ablated gate is fixed at 1). float32 and float64 through fused types; the time loop runs
without the GIL.
"""

from cython cimport floating
from libc.stdint cimport int64_t

from ._argcheck cimport check_batch_sizes, check_mask, expect_shape, wants_double
from ._blas cimport matmul
from ._cellmath cimport lstm_bwd, lstm_fwd_row
from ._rows cimport copy, masked, zero

from ._errors import explain

_CONVERSION_ERRORS = (ValueError, TypeError, BufferError, AttributeError)


cdef int _forward(const floating[:, :, ::1] xp, const floating[:, ::1] whh_t,
                  const int64_t[::1] batch_sizes, const floating[:, ::1] hmask, bint use_mask,
                  const floating[:, ::1] peep, bint on_i, bint on_f, bint on_o,
                  floating[:, :, ::1] hs, floating[:, :, ::1] cs, floating[:, :, ::1] acts,
                  floating[:, ::1] hin, floating[:, ::1] a) except -1:
    cdef str k = "lstm_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], G = xp.shape[2], H = G // 4
    cdef Py_ssize_t t, b, j, n
    cdef const floating* hsrc
    cdef const floating* csrc
    cdef const floating* x
    cdef const floating* inp
    cdef const floating* mask = NULL
    cdef const floating* wci
    cdef const floating* wcf
    cdef const floating* wco
    cdef floating* ap
    cdef floating* act
    cdef floating* hdst
    cdef floating* cdst
    if G % 4:
        raise ValueError(f"{k}: xp's last dimension must be 4H (gates i, f, g, o), got {G}.")
    expect_shape(k, "whh_t", whh_t.shape, 2, H, G)
    check_batch_sizes(k, batch_sizes, T, B)
    check_mask(k, hmask.shape, use_mask, B, H)
    expect_shape(k, "peep", peep.shape, 2, 3, H)
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "cs", cs.shape, 3, T + 1, B, H)
    expect_shape(k, "acts", acts.shape, 3, T, B, G)
    expect_shape(k, "hin", hin.shape, 2, B, H)
    expect_shape(k, "a", a.shape, 2, B, G)
    if use_mask:
        mask = &hmask[0, 0]
    wci, wcf, wco = &peep[0, 0], &peep[1, 0], &peep[2, 0]
    with nogil:
        for t in range(T):
            n = batch_sizes[t]
            hsrc = &hs[t, 0, 0]
            csrc = &cs[t, 0, 0]
            ap = &a[0, 0]
            inp = masked(hsrc, mask, &hin[0, 0], n * H, use_mask)
            matmul(inp, &whh_t[0, 0], ap, n, H, G, <floating>0)
            x = &xp[t, 0, 0]
            act = &acts[t, 0, 0]
            hdst = &hs[t + 1, 0, 0]
            cdst = &cs[t + 1, 0, 0]
            for b in range(n):
                lstm_fwd_row(H, x, ap, csrc, wci, wcf, wco, on_i, on_f, on_o, act, cdst, hdst)
                x += G
                ap += G
                act += G
                csrc += H
                cdst += H
                hdst += H
            copy(&hs[t, 0, 0] + n * H, &hs[t + 1, 0, 0] + n * H, (B - n) * H)
            copy(&cs[t, 0, 0] + n * H, &cs[t + 1, 0, 0] + n * H, (B - n) * H)
    return 0


cdef int _backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] cs,
                   const floating[:, :, ::1] acts, const floating[:, ::1] whh,
                   const int64_t[::1] batch_sizes, const floating[:, ::1] hmask, bint use_mask,
                   const floating[:, ::1] peep, bint on_i, bint on_f, bint on_o,
                   floating[:, :, ::1] dgates, floating[:, ::1] dh, floating[:, ::1] dc,
                   floating[:, ::1] dpeep) except -1:
    cdef str k = "lstm_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2], G = 4 * H
    cdef Py_ssize_t t, b, j, n, q
    cdef const floating* act
    cdef const floating* c_t
    cdef const floating* c_p
    cdef const floating* d
    cdef const floating* mask = NULL
    cdef const floating* wci
    cdef const floating* wcf
    cdef const floating* wco
    cdef floating* g_
    cdef floating* dhr
    cdef floating* dcr
    cdef floating* dpi
    cdef floating* dpf
    cdef floating* dpo
    cdef floating dai, daf, dag, dao, dcp, cp, c
    expect_shape(k, "cs", cs.shape, 3, T + 1, B, H)
    expect_shape(k, "acts", acts.shape, 3, T, B, G)
    expect_shape(k, "whh", whh.shape, 2, G, H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_mask(k, hmask.shape, use_mask, B, H)
    expect_shape(k, "peep", peep.shape, 2, 3, H)
    expect_shape(k, "dgates", dgates.shape, 3, T, B, G)
    expect_shape(k, "dh", dh.shape, 2, B, H)
    expect_shape(k, "dc", dc.shape, 2, B, H)
    expect_shape(k, "dpeep", dpeep.shape, 2, 3, H)
    if use_mask:
        mask = &hmask[0, 0]
    wci, wcf, wco = &peep[0, 0], &peep[1, 0], &peep[2, 0]
    dpi, dpf, dpo = &dpeep[0, 0], &dpeep[1, 0], &dpeep[2, 0]
    with nogil:
        for t in range(T - 1, -1, -1):
            n = batch_sizes[t]
            act = &acts[t, 0, 0]
            c_t = &cs[t + 1, 0, 0]
            c_p = &cs[t, 0, 0]
            d = &dy[t, 0, 0]
            g_ = &dgates[t, 0, 0]
            dhr = &dh[0, 0]
            dcr = &dc[0, 0]
            for b in range(n):
                for j in range(H):
                    cp = c_p[j]
                    c = c_t[j]
                    lstm_bwd(dhr[j] + d[j], dcr[j], act[j], act[H + j], act[2 * H + j],
                             act[3 * H + j], c, cp, wci[j], wcf[j], wco[j], on_i, on_f, on_o,
                             &dai, &daf, &dag, &dao, &dcp)
                    g_[j] = dai
                    g_[H + j] = daf
                    g_[2 * H + j] = dag
                    g_[3 * H + j] = dao
                    dcr[j] = dcp
                    dpi[j] += dai * cp
                    dpf[j] += daf * cp
                    dpo[j] += dao * c
                act += G
                g_ += G
                c_t += H
                c_p += H
                d += H
                dhr += H
                dcr += H
            g_ = &dgates[t, 0, 0]
            zero(g_ + n * G, (B - n) * G)
            matmul(g_, &whh[0, 0], &dh[0, 0], n, G, H, <floating>0)
            if use_mask:
                dhr = &dh[0, 0]
                for q in range(n * H):
                    dhr[q] *= mask[q]
    return 0


def _gate_flags(gates_on):
    try:
        if len(gates_on) != 3:
            raise ValueError
        return gates_on[0] != 0, gates_on[1] != 0, gates_on[2] != 0
    except (TypeError, ValueError):
        raise ValueError(
            f"gates_on must hold 3 switches (input, forget, output gate), got {gates_on!r}. Pass "
            "e.g. np.array([1, 1, 1])."
        ) from None


_FORWARD_SPEC = (("xp", "f3"), ("whh_t", "f2"), ("batch_sizes", "i1"), ("hmask", "f2"),
                 ("use_mask", "flag"), ("peep", "f2"), ("gates_on", "flag"), ("hs", "f3w"),
                 ("cs", "f3w"), ("acts", "f3w"), ("hin", "f2w"), ("a", "f2w"))
_BACKWARD_SPEC = (("dy", "f3"), ("cs", "f3"), ("acts", "f3"), ("whh", "f2"), ("batch_sizes", "i1"),
                  ("hmask", "f2"), ("use_mask", "flag"), ("peep", "f2"), ("gates_on", "flag"),
                  ("dgates", "f3w"), ("dh", "f2w"), ("dc", "f2w"), ("dpeep", "f2w"))


def lstm_forward(xp, whh_t, batch_sizes, hmask, use_mask, peep, gates_on, hs, cs, acts, hin, a):
    """LSTM forward over all steps.

    Parameters
    ----------
    xp : ndarray of shape (T, B, 4H)
        Input projections plus both biases.
    whh_t : ndarray of shape (H, 4H)
        Transposed recurrent weights.
    batch_sizes : ndarray of shape (T,), int64
        Sequences still running at each step (the batch is sorted by length, longest first).
    hmask : ndarray of shape (B, H) or (0, 0)
        Recurrent-dropout mask, read only when ``use_mask``.
    use_mask : bool
    peep : ndarray of shape (3, H)
        Peephole weights ``w_ci, w_cf, w_co`` (zeros when unused).
    gates_on : sequence of 3 ints
        Input, forget and output gate switches.
    hs, cs : ndarray of shape (T+1, B, H)
        Output hidden and cell states; index 0 holds ``h_0``, ``c_0`` on entry.
    acts : ndarray of shape (T, B, 4H)
        Output: activated gates ``i, f, g, o`` (cache for the backward).
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 4H)
        Scratch.
    """
    on_i, on_f, on_o = _gate_flags(gates_on)
    try:
        if wants_double(xp):
            _forward[double](xp, whh_t, batch_sizes, hmask, use_mask, peep, on_i, on_f, on_o,
                             hs, cs, acts, hin, a)
        else:
            _forward[float](xp, whh_t, batch_sizes, hmask, use_mask, peep, on_i, on_f, on_o,
                            hs, cs, acts, hin, a)
    except _CONVERSION_ERRORS as exc:
        explain("lstm_forward", _FORWARD_SPEC,
                (xp, whh_t, batch_sizes, hmask, use_mask, peep, gates_on, hs, cs, acts, hin, a),
                exc)


def lstm_backward(dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, gates_on, dgates, dh, dc,
                  dpeep):
    """LSTM backward through time.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
        Gradient of the loss with respect to the outputs (zero past each length).
    cs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 4H)
        From the forward.
    whh : ndarray of shape (4H, H)
        Recurrent weights.
    batch_sizes, hmask, use_mask, peep, gates_on
        As for :func:`lstm_forward`.
    dgates : ndarray of shape (T, B, 4H)
        Output: pre-activation gradients (zero for finished rows).
    dh, dc : ndarray of shape (B, H)
        In: gradients with respect to ``h_n``, ``c_n``; out: with respect to ``h_0``, ``c_0``.
    dpeep : ndarray of shape (3, H)
        Output: peephole weight gradients (accumulated; zero it first).
    """
    on_i, on_f, on_o = _gate_flags(gates_on)
    try:
        if wants_double(dy):
            _backward[double](dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, on_i, on_f,
                              on_o, dgates, dh, dc, dpeep)
        else:
            _backward[float](dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, on_i, on_f,
                             on_o, dgates, dh, dc, dpeep)
    except _CONVERSION_ERRORS as exc:
        explain("lstm_backward", _BACKWARD_SPEC,
                (dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, gates_on, dgates, dh, dc,
                 dpeep), exc)
