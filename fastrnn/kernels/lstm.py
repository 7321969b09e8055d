"""Numba kernels of the LSTM (gate order i, f, g, o). Conventions: see :mod:`fastrnn.kernels.rnn`.

Variants are switched by arguments, not by separate kernels: ``peep`` of shape ``(3, H)`` holds
the diagonal peephole weights ``(w_ci, w_cf, w_co)`` (zeros when peepholes are off), ``gates_on``
of shape ``(3,)`` switches the input, forget and output gates on (an ablated gate is fixed at 1).
"""

from ._fastpath import (backward_product, backward_step, backward_sweep, carry_rows, flat,
                        forward_step, forward_sweep)
from ._jit import (carry_finished, lstm_bwd, lstm_fwd, njit, njit_inline, recurrent_grad,
                   recurrent_product, zero_finished)
from ._simd import vacc4, vfma, vload4, vload_n, vsplat, vstore4, vstore_n, vzero
from ._vmath import vsigmoid, vtanh


@njit_inline
def _switches(gates_on):
    """The input, forget and output gates switched on (``gates_on`` of shape (3,))."""
    return gates_on[0] != 0, gates_on[1] != 0, gates_on[2] != 0


@njit
def lstm_forward(xp, whh_t, batch_sizes, hmask, use_mask, peep, gates_on, hs, cs, acts, hin, a):
    """LSTM forward over all steps.

    Parameters
    ----------
    xp : ndarray of shape (T, B, 4H)
        Input projections plus both biases.
    whh_t : ndarray of shape (H, 4H)
        Transposed recurrent weights.
    batch_sizes, hmask, use_mask
        As for :func:`fastrnn.kernels.rnn.rnn_forward`.
    peep : ndarray of shape (3, H)
        Peephole weights ``w_ci, w_cf, w_co`` (zeros when unused).
    gates_on : ndarray of shape (3,), int
        Input, forget and output gate switches.
    hs, cs : ndarray of shape (T+1, B, H)
        Output hidden and cell states; index 0 holds ``h_0``, ``c_0`` on entry.
    acts : ndarray of shape (T, B, 4H)
        Output: activated gates ``i, f, g, o`` (cache for the backward).
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 4H)
        Scratch.
    """
    T, B, G = xp.shape
    H = G // 4
    on_i, on_f, on_o = _switches(gates_on)
    for t in range(T):
        n = batch_sizes[t]
        hsrc, csrc, hdst, cdst = hs[t], cs[t], hs[t + 1], cs[t + 1]
        recurrent_product(hsrc, hmask, use_mask, hin, whh_t, a, n)
        x, act = xp[t], acts[t]
        for b in range(n):
            for j in range(H):
                i, f, g, o, c, h = lstm_fwd(
                    x[b, j] + a[b, j], x[b, H + j] + a[b, H + j],
                    x[b, 2 * H + j] + a[b, 2 * H + j], x[b, 3 * H + j] + a[b, 3 * H + j],
                    csrc[b, j], peep[0, j], peep[1, j], peep[2, j], on_i, on_f, on_o)
                act[b, j] = i
                act[b, H + j] = f
                act[b, 2 * H + j] = g
                act[b, 3 * H + j] = o
                cdst[b, j] = c
                hdst[b, j] = h
        carry_finished(hsrc, hdst, n)
        carry_finished(csrc, cdst, n)


@njit
def lstm_backward(dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, gates_on,
                  dgates, dh, dc, dpeep):
    """LSTM backward through time.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
    cs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 4H)
        From the forward.
    whh : ndarray of shape (4H, H)
    dgates : ndarray of shape (T, B, 4H)
        Output: pre-activation gradients (zero for finished rows).
    dh, dc : ndarray of shape (B, H)
        In: gradients with respect to ``h_n``, ``c_n``; out: with respect to ``h_0``, ``c_0``.
    dpeep : ndarray of shape (3, H)
        Output: peephole weight gradients (accumulated; zero it first).
    """
    T, B, H = dy.shape
    on_i, on_f, on_o = _switches(gates_on)
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        act, c_t, c_p, d, g_ = acts[t], cs[t + 1], cs[t], dy[t], dgates[t]
        for b in range(n):
            for j in range(H):
                cp = c_p[b, j]
                c = c_t[b, j]
                dai, daf, dag, dao, dcp = lstm_bwd(
                    dh[b, j] + d[b, j], dc[b, j], act[b, j], act[b, H + j], act[b, 2 * H + j],
                    act[b, 3 * H + j], c, cp, peep[0, j], peep[1, j], peep[2, j], on_i, on_f, on_o)
                g_[b, j] = dai
                g_[b, H + j] = daf
                g_[b, 2 * H + j] = dag
                g_[b, 3 * H + j] = dao
                dc[b, j] = dcp
                dpeep[0, j] += dai * cp
                dpeep[1, j] += daf * cp
                dpeep[2, j] += dao * c
        zero_finished(g_, n)
        recurrent_grad(g_, whh, dh, n, hmask, use_mask)


# ---------------------------------------------------------------------------------------------------
# Fast path: float32, Numba backend only (conventions: :mod:`fastrnn.kernels._fastpath`).
# The shared kernels above stay the reference implementation of the signatures every backend shares.
# ---------------------------------------------------------------------------------------------------

@njit_inline
def _lstm_cell_fwd(xg, go, bias, hs, cs, hp, hn, peep, use_peep, on_i, on_f, on_o, Y, yo, H):
    """One row of the LSTM cell, 16 hidden units at a time: pre-activations ``xg[go:go+4H]`` (input
    and recurrent products; the biases are added here) become the activated gates ``i, f, g, o`` in
    place; ``c`` and ``h`` go to ``cs[hn:]``, ``hs[hn:]`` and ``h`` also to ``Y[yo:]``."""
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        ai = vload_n(xg, go + j, m) + vload_n(bias, j, m)
        af = vload_n(xg, go + H + j, m) + vload_n(bias, H + j, m)
        ag = vload_n(xg, go + 2 * H + j, m) + vload_n(bias, 2 * H + j, m)
        ao = vload_n(xg, go + 3 * H + j, m) + vload_n(bias, 3 * H + j, m)
        cp = vload_n(cs, hp + j, m)
        if use_peep:
            ai = vfma(vload_n(peep, j, m), cp, ai)
            af = vfma(vload_n(peep, H + j, m), cp, af)
        i = vsigmoid(ai) if on_i else one
        f = vsigmoid(af) if on_f else one
        g = vtanh(ag)
        c = vfma(f, cp, i * g)
        if use_peep:
            ao = vfma(vload_n(peep, 2 * H + j, m), c, ao)
        o = vsigmoid(ao) if on_o else one
        h = o * vtanh(c)
        vstore4(xg, go + j, H, m, i, f, g, o)
        vstore_n(cs, hn + j, c, m)
        vstore_n(hs, hn + j, h, m)
        vstore_n(Y, yo + j, h, m)


@njit
def lstm_fast_forward(X, xrow, F, wih_p, whh_p, bias, batch_sizes, r0, r1, hmask, use_mask, peep,
                      use_peep, gates_on, xg, hs, cs, hin, Y, yrow, ycol):
    """LSTM forward of sorted rows ``[r0, r1)``: input projection, then the recurrent sweep.

    Parameters
    ----------
    X : ndarray, 1-D float32
        The layer input in the caller's layout; ``xrow`` of shape (T*B,) gives each row's offset.
    F : int
        Input features (the width of a row of ``X``).
    wih_p, whh_p : ndarray, 1-D float32
        ``W_ih^T`` (I x 4H) and ``W_hh^T`` (H x 4H) packed by :func:`~fastrnn.kernels._gemm.pack_b`
        (``whh_p`` may be uint16, packed in bf16: see
        :func:`~fastrnn.kernels._bf16step.step_gemm`).
    bias : ndarray of shape (4H,)
        ``b_ih + b_hh``.
    batch_sizes : ndarray of shape (T,), int64
    r0, r1 : int
        The sorted rows of this part.
    hmask : ndarray of shape (B, H) or (0, 0); use_mask : bool
        Recurrent dropout mask on ``h_{t-1}``.
    peep : ndarray of shape (3, H); use_peep : bool
    gates_on : ndarray of shape (3,), int
    xg : ndarray of shape (T, B, 4H)
        Output: the activated gates ``i, f, g, o`` (the backward's cache).
    hs, cs : ndarray of shape (T+1, B, H)
        Output states; index 0 holds ``h_0``, ``c_0`` on entry; rows of finished sequences carry
        them.
    hin : ndarray of shape (B, H)
        Scratch (masked recurrent input).
    Y : ndarray, 1-D float32
        Output rows ``Y[yrow[t*B+b] + ycol : ... + H] = h_t`` of the real steps.
    """
    T, B, G = xg.shape
    H = G // 4
    sw = forward_sweep(X, xrow, F, wih_p, xg, batch_sizes, r0, r1, hs, hmask, use_mask, hin)
    csf, peepf = flat(cs), flat(peep)
    on_i, on_f, on_o = _switches(gates_on)
    for t in range(T):
        hi = forward_step(sw, t, whh_p, G)[0]
        for b in range(r0, hi):
            _lstm_cell_fwd(sw.xg, (t * B + b) * G, bias, sw.hs, csf, (t * B + b) * H,
                           ((t + 1) * B + b) * H, peepf, use_peep, on_i, on_f, on_o,
                           Y, yrow[t * B + b] + ycol, H)
        carry_rows(sw.hs, t, B, H, max(r0, hi), r1)
        carry_rows(csf, t, B, H, max(r0, hi), r1)


@njit_inline
def _lstm_cell_bwd(dh, dY, dyo, xg, go, dg, cs, cp_o, c_o, dc, ho, peep, use_peep, on_i, on_f, on_o,
                   db, dpeep, H):
    zero = vzero()
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        dht = vload_n(dh, ho + j, m) + vload_n(dY, dyo + j, m)
        i, f, g, o = vload4(xg, go + j, H, m)
        c = vload_n(cs, c_o + j, m)
        cp = vload_n(cs, cp_o + j, m)
        tc = vtanh(c)
        dao = dht * tc * o * (one - o) if on_o else zero
        dct = vfma(dht * o, one - tc * tc, vload_n(dc, ho + j, m))
        if use_peep:
            dct = vfma(dao, vload_n(peep, 2 * H + j, m), dct)
        dai = dct * g * i * (one - i) if on_i else zero
        daf = dct * cp * f * (one - f) if on_f else zero
        dag = dct * i * (one - g * g)
        dcp = dct * f
        if use_peep:
            dcp = vfma(dai, vload_n(peep, j, m), dcp)
            dcp = vfma(daf, vload_n(peep, H + j, m), dcp)
            vstore_n(dpeep, j, vfma(dai, cp, vload_n(dpeep, j, m)), m)
            vstore_n(dpeep, H + j, vfma(daf, cp, vload_n(dpeep, H + j, m)), m)
            vstore_n(dpeep, 2 * H + j, vfma(dao, c, vload_n(dpeep, 2 * H + j, m)), m)
        vstore4(dg, go + j, H, m, dai, daf, dag, dao)
        vstore_n(dc, ho + j, dcp, m)
        vacc4(db, j, H, m, dai, daf, dag, dao)


@njit
def lstm_fast_backward(dY, dyrow, dycol, xg, cs, whh_p, batch_sizes, r0, r1, hmask, use_mask, peep,
                       use_peep, gates_on, dg, dh, dc, db, dpeep):
    """LSTM backward sweep of sorted rows ``[r0, r1)``.

    Parameters
    ----------
    dY : ndarray, 1-D float32
        Output gradients in the caller's layout, rows ``dY[dyrow[t*B+b] + dycol : ... + H]``.
    xg : ndarray of shape (T, B, 4H)
        Activated gates from :func:`lstm_fast_forward`.
    cs : ndarray of shape (T+1, B, H)
    whh_p : ndarray, 1-D float32 or uint16
        ``W_hh`` (4H x H) packed by :func:`~fastrnn.kernels._gemm.pack_b`, or in bf16 (see
        :func:`~fastrnn.kernels._bf16step.step_gemm`).
    dg : ndarray of shape (T, B, 4H)
        Output: pre-activation gradients (zero for finished rows).
    dh, dc : ndarray of shape (B, H)
        In: gradients with respect to ``h_n``, ``c_n``; out: with respect to ``h_0``, ``c_0``.
    db : ndarray of shape (4H,)
        Output: this part's bias gradient (overwritten).
    dpeep : ndarray of shape (3, H)
        Output: this part's peephole gradient (overwritten; only with ``use_peep``).
    """
    T, B, G = xg.shape
    H = G // 4
    bw = backward_sweep(dg, dh, hmask, use_mask, batch_sizes, r0, r1)
    xgf, csf, dcf, peepf, dpf = flat(xg), flat(cs), flat(dc), flat(peep), flat(dpeep)
    on_i, on_f, on_o = _switches(gates_on)
    db[:] = 0.0
    dpf[:] = 0.0
    for t in range(T - 1, -1, -1):
        hi = backward_step(bw, t)
        for b in range(r0, hi):
            _lstm_cell_bwd(bw.dh, dY, dyrow[t * B + b] + dycol, xgf, (t * B + b) * G, bw.dg, csf,
                           (t * B + b) * H, ((t + 1) * B + b) * H, dcf, b * H, peepf, use_peep,
                           on_i, on_f, on_o, db, dpf, H)
        backward_product(bw, t, hi, whh_p)
