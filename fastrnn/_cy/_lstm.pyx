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

from ._argcheck cimport check_product, check_steps, expect_shape, mask_rows
from ._cellmath cimport lstm_bwd, lstm_fwd_row
from ._rows cimport carry, recurrent_grad, recurrent_product, zero_rows

from ._errors import call


def _forward(const floating[:, :, ::1] xp, const floating[:, ::1] whh_t,
             const int64_t[::1] batch_sizes, const floating[:, ::1] hmask, bint use_mask,
             const floating[:, ::1] peep, bint on_i, bint on_f, bint on_o,
             floating[:, :, ::1] hs, floating[:, :, ::1] cs, floating[:, :, ::1] acts,
             floating[:, ::1] hin, floating[:, ::1] a):
    cdef str k = "lstm_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], G = xp.shape[2], H = G // 4
    cdef Py_ssize_t t, b, n
    cdef const floating *mask = mask_rows(hmask, use_mask)
    cdef floating *ap = &a[0, 0]
    cdef const floating *wci
    cdef const floating *wcf
    cdef const floating *wco
    if G % 4:
        raise ValueError(f"{k}: xp's last dimension must be 4H (gates i, f, g, o), got {G}.")
    check_product(k, "whh_t", whh_t.shape, hin.shape, a.shape, B, H, G)
    check_steps(k, batch_sizes, hmask.shape, use_mask, "hs", hs.shape, T, B, H)
    expect_shape(k, "peep", peep.shape, 2, 3, H)
    expect_shape(k, "cs", cs.shape, 3, T + 1, B, H)
    expect_shape(k, "acts", acts.shape, 3, T, B, G)
    wci, wcf, wco = &peep[0, 0], &peep[1, 0], &peep[2, 0]
    with nogil:
        for t in range(T):
            n = batch_sizes[t]
            recurrent_product(&hs[t, 0, 0], mask, &hin[0, 0], &whh_t[0, 0], ap, n, H, G, use_mask)
            for b in range(n):
                lstm_fwd_row(H, &xp[t, b, 0], ap + b * G, &cs[t, b, 0], wci, wcf, wco, on_i, on_f,
                             on_o, &acts[t, b, 0], &cs[t + 1, b, 0], &hs[t + 1, b, 0])
            carry(&hs[t, 0, 0], n, B, H)
            carry(&cs[t, 0, 0], n, B, H)


def _backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] cs,
              const floating[:, :, ::1] acts, const floating[:, ::1] whh,
              const int64_t[::1] batch_sizes, const floating[:, ::1] hmask, bint use_mask,
              const floating[:, ::1] peep, bint on_i, bint on_f, bint on_o,
              floating[:, :, ::1] dgates, floating[:, ::1] dh, floating[:, ::1] dc,
              floating[:, ::1] dpeep):
    cdef str k = "lstm_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2], G = 4 * H
    cdef Py_ssize_t t, b, j, n
    cdef const floating *act
    cdef const floating *c_t
    cdef const floating *c_p
    cdef const floating *d
    cdef const floating *mask = mask_rows(hmask, use_mask)
    cdef const floating *wci
    cdef const floating *wcf
    cdef const floating *wco
    cdef floating *g_
    cdef floating *dhr
    cdef floating *dcr
    cdef floating *dpi
    cdef floating *dpf
    cdef floating *dpo
    cdef floating dai, daf, dag, dao, dcp, cp, c
    expect_shape(k, "acts", acts.shape, 3, T, B, G)
    expect_shape(k, "whh", whh.shape, 2, G, H)
    check_steps(k, batch_sizes, hmask.shape, use_mask, "cs", cs.shape, T, B, H)
    expect_shape(k, "peep", peep.shape, 2, 3, H)
    expect_shape(k, "dgates", dgates.shape, 3, T, B, G)
    expect_shape(k, "dh", dh.shape, 2, B, H)
    expect_shape(k, "dc", dc.shape, 2, B, H)
    expect_shape(k, "dpeep", dpeep.shape, 2, 3, H)
    wci, wcf, wco = &peep[0, 0], &peep[1, 0], &peep[2, 0]
    dpi, dpf, dpo = &dpeep[0, 0], &dpeep[1, 0], &dpeep[2, 0]
    with nogil:
        for t in range(T - 1, -1, -1):
            n = batch_sizes[t]
            for b in range(n):
                act, g_, c_t, c_p = &acts[t, b, 0], &dgates[t, b, 0], &cs[t + 1, b, 0], &cs[t, b, 0]
                d, dhr, dcr = &dy[t, b, 0], &dh[b, 0], &dc[b, 0]
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
            zero_rows(&dgates[t, 0, 0], n, B, G)
            recurrent_grad(&dgates[t, 0, 0], &whh[0, 0], &dh[0, 0], mask, n, G, H, use_mask)


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
    """LSTM forward over all steps: the arguments and results of
    :func:`fastrnn.kernels.lstm.lstm_forward` (``gates_on`` any sequence of 3 switches)."""
    on_i, on_f, on_o = _gate_flags(gates_on)
    call("lstm_forward", _FORWARD_SPEC, _forward,
         (xp, whh_t, batch_sizes, hmask, use_mask, peep, on_i, on_f, on_o, hs, cs, acts, hin, a),
         (xp, whh_t, batch_sizes, hmask, use_mask, peep, gates_on, hs, cs, acts, hin, a))


def lstm_backward(dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, gates_on, dgates, dh, dc,
                  dpeep):
    """LSTM backward through time: the arguments and results of
    :func:`fastrnn.kernels.lstm.lstm_backward`."""
    on_i, on_f, on_o = _gate_flags(gates_on)
    call("lstm_backward", _BACKWARD_SPEC, _backward,
         (dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, on_i, on_f, on_o, dgates, dh, dc,
          dpeep),
         (dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, gates_on, dgates, dh, dc, dpeep))
