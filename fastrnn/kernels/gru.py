"""Numba kernels of the GRU (gate order r, z, n). Conventions: see :mod:`fastrnn.kernels.rnn`.

Two forms: ``gru_forward``/``gru_backward`` apply the reset gate after the recurrent product
(``reset_after=True``, as PyTorch and cuDNN); ``gru_v1_forward``/``gru_v1_backward`` apply it to
the state before the product (the original form, ``reset_after=False``), which needs a second
product per step once ``r_t`` is known.
"""

import numpy as np

from ._bf16step import step_gemm
from ._fastpath import (backward_step, backward_sweep, carry_rows, flat, forward_step,
                        forward_sweep, input_grads, weight_grad, weight_grad2, zero_rows)
from ._jit import (carry_finished, gru_bwd, gru_fwd, gru_v1_bwd_r, gru_v1_bwd_zn, gru_v1_gates,
                   gru_v1_state, masked_rows, njit, njit_inline, recurrent_product, zero_finished)
from ._simd import vacc3, vfma, vload3, vload_n, vsplat, vstore3, vstore_n
from ._vmath import vsigmoid, vtanh


@njit
def gru_forward(xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a):
    """GRU forward (reset after).

    Parameters
    ----------
    xp : ndarray of shape (T, B, 3H)
        Input projections plus ``b_ih`` only (``b_hh`` is inside the reset product).
    whh_t : ndarray of shape (H, 3H)
        Transposed recurrent weights.
    bhh : ndarray of shape (3H,)
        Recurrent bias.
    batch_sizes, hmask, use_mask
        As for :func:`fastrnn.kernels.rnn.rnn_forward`.
    hs : ndarray of shape (T+1, B, H)
        Output states; ``hs[0]`` holds ``h_0``.
    acts : ndarray of shape (T, B, 4H)
        Output cache: ``r, z, n`` and the recurrent part of the candidate ``W_hn h + b_hn``.
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 3H)
        Scratch.
    """
    T, B, G = xp.shape
    H = G // 3
    for t in range(T):
        n_ = batch_sizes[t]
        src, dst, x, act = hs[t], hs[t + 1], xp[t], acts[t]
        recurrent_product(src, hmask, use_mask, hin, whh_t, a, n_)
        for b in range(n_):
            for j in range(H):
                hn = a[b, 2 * H + j] + bhh[2 * H + j]
                r, z, n, h = gru_fwd(x[b, j] + a[b, j] + bhh[j],
                                     x[b, H + j] + a[b, H + j] + bhh[H + j],
                                     x[b, 2 * H + j], hn, src[b, j])
                act[b, j] = r
                act[b, H + j] = z
                act[b, 2 * H + j] = n
                act[b, 3 * H + j] = hn
                dst[b, j] = h
        carry_finished(src, dst, n_)


@njit
def gru_backward(dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh, ddirect):
    """GRU backward (reset after).

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
    hs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 4H)
    whh : ndarray of shape (3H, H)
    dxp : ndarray of shape (T, B, 3H)
        Output: gradients of the input projections (for ``W_ih``, ``b_ih`` and the input).
    dhp : ndarray of shape (T, B, 3H)
        Output: gradients of the recurrent products (for ``W_hh``, ``b_hh``).
    dh : ndarray of shape (B, H)
        In: gradient w.r.t. ``h_n``; out: w.r.t. ``h_0``.
    ddirect : ndarray of shape (B, H)
        Scratch.
    """
    T, B, H = dy.shape
    for t in range(T - 1, -1, -1):
        n_ = batch_sizes[t]
        act, hp, d, gx, gh = acts[t], hs[t], dy[t], dxp[t], dhp[t]
        for b in range(n_):
            for j in range(H):
                dar, daz, dan, dhn, dd = gru_bwd(dh[b, j] + d[b, j], act[b, j], act[b, H + j],
                                                 act[b, 2 * H + j], act[b, 3 * H + j], hp[b, j])
                gx[b, j] = dar
                gx[b, H + j] = daz
                gx[b, 2 * H + j] = dan
                gh[b, j] = dar
                gh[b, H + j] = daz
                gh[b, 2 * H + j] = dhn
                ddirect[b, j] = dd
        zero_finished(gx, n_)
        zero_finished(gh, n_)
        np.dot(gh[:n_], whh, dh[:n_])
        for b in range(n_):
            for j in range(H):
                if use_mask:
                    dh[b, j] = dh[b, j] * hmask[b, j] + ddirect[b, j]
                else:
                    dh[b, j] += ddirect[b, j]


@njit
def gru_v1_forward(xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh, hin, a, an):
    """GRU forward in the original form (reset before the product).

    Parameters
    ----------
    xp : ndarray of shape (T, B, 3H)
        Input projections plus both biases (all biases are outside the reset gate in this form).
    whh_rz_t : ndarray of shape (H, 2H)
        Transposed recurrent weights of the r and z gates.
    whh_n_t : ndarray of shape (H, H)
        Transposed recurrent weights of the candidate.
    batch_sizes, hmask, use_mask
        As for :func:`gru_forward`.
    hs : ndarray of shape (T+1, B, H)
        Output states; ``hs[0]`` holds ``h_0``.
    acts : ndarray of shape (T, B, 3H)
        Output cache ``r, z, n``.
    rh : ndarray of shape (T, B, H)
        Output cache: ``r_t * h_{t-1}`` (after the dropout mask), the input of ``W_hn``.
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 2H)
    an : ndarray of shape (B, H)
        Scratch.
    """
    T, B, G = xp.shape
    H = G // 3
    for t in range(T):
        n_ = batch_sizes[t]
        src, x, act, rht = hs[t], xp[t], acts[t], rh[t]
        masked_rows(src, hmask, use_mask, hin, n_)
        np.dot(hin[:n_], whh_rz_t, a[:n_])
        for b in range(n_):
            for j in range(H):
                r, z, rh_ = gru_v1_gates(x[b, j] + a[b, j], x[b, H + j] + a[b, H + j], hin[b, j])
                act[b, j] = r
                act[b, H + j] = z
                rht[b, j] = rh_
        np.dot(rht[:n_], whh_n_t, an[:n_])
        dst = hs[t + 1]
        for b in range(n_):
            for j in range(H):
                n, h = gru_v1_state(x[b, 2 * H + j] + an[b, j], act[b, H + j], src[b, j])
                act[b, 2 * H + j] = n
                dst[b, j] = h
        carry_finished(src, dst, n_)
        zero_finished(rht, n_)


@njit
def gru_v1_backward(dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates, dh,
                    dn, drz, drh, dhin, ddirect):
    """GRU backward in the original form.

    Parameters
    ----------
    whh_rz : ndarray of shape (2H, H)
    whh_n : ndarray of shape (H, H)
    dgates : ndarray of shape (T, B, 3H)
        Output: pre-activation gradients (the same for the input and the recurrent side).
    dh : ndarray of shape (B, H)
        In: gradient w.r.t. ``h_n``; out: w.r.t. ``h_0``.
    dn, drh, dhin, ddirect : ndarray of shape (B, H)
    drz : ndarray of shape (B, 2H)
        Scratch (contiguous operands of the two products).
    """
    T, B, H = dy.shape
    for t in range(T - 1, -1, -1):
        n_ = batch_sizes[t]
        act, hp, d, g_ = acts[t], hs[t], dy[t], dgates[t]
        for b in range(n_):
            for j in range(H):
                drz[b, H + j], dn[b, j], ddirect[b, j] = gru_v1_bwd_zn(
                    dh[b, j] + d[b, j], act[b, H + j], act[b, 2 * H + j], hp[b, j])
        np.dot(dn[:n_], whh_n, drh[:n_])
        for b in range(n_):
            for j in range(H):
                r = act[b, j]
                hin = hp[b, j] * hmask[b, j] if use_mask else hp[b, j]
                drz[b, j] = gru_v1_bwd_r(drh[b, j], r, hin)
        np.dot(drz[:n_], whh_rz, dhin[:n_])
        for b in range(n_):
            for j in range(H):
                v = dhin[b, j] + drh[b, j] * act[b, j]
                if use_mask:
                    v *= hmask[b, j]
                dh[b, j] = v + ddirect[b, j]
                g_[b, j] = drz[b, j]
                g_[b, H + j] = drz[b, H + j]
                g_[b, 2 * H + j] = dn[b, j]
        zero_finished(g_, n_)


# ---------------------------------------------------------------------------------------------------
# Fast path: float32, Numba backend only (conventions: :mod:`fastrnn.kernels._fastpath`).
# ---------------------------------------------------------------------------------------------------

@njit_inline
def _gru_cell_fwd(xg, go, bias, bhn, hnc, ho, hs, hp, hn, Y, yo, H):
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        r = vsigmoid(vload_n(xg, go + j, m) + vload_n(bias, j, m))
        z = vsigmoid(vload_n(xg, go + H + j, m) + vload_n(bias, H + j, m))
        hnv = vload_n(hnc, ho + j, m) + vload_n(bhn, j, m)
        n = vtanh(vfma(r, hnv, vload_n(xg, go + 2 * H + j, m) + vload_n(bias, 2 * H + j, m)))
        h = vfma(z, vload_n(hs, hp + j, m), (one - z) * n)
        vstore3(xg, go + j, H, m, r, z, n)
        vstore_n(hnc, ho + j, hnv, m)
        vstore_n(hs, hn + j, h, m)
        vstore_n(Y, yo + j, h, m)


@njit
def gru_fast_forward(X, xrow, F, wih_p, wrz_p, wn_p, bias, bhn, batch_sizes, r0, r1, hmask,
                     use_mask, xg, hnc, hs, hin, Y, yrow, ycol):
    """GRU (reset after) forward of sorted rows ``[r0, r1)``: input projection, then the sweep.

    Parameters
    ----------
    wrz_p, wn_p : ndarray, 1-D float32 or uint16
        ``W_hh[:2H]^T`` (H x 2H) and ``W_hh[2H:]^T`` (H x H), packed (in bf16 for the bf16
        product: see :func:`~fastrnn.kernels._bf16step.step_gemm`).
    bias : ndarray of shape (3H,)
        ``b_ih + [b_hr, b_hz, 0]``; ``bhn`` of shape (H,) is ``b_hn`` (inside the reset product).
    xg : ndarray of shape (T, B, 3H)
        Output: ``r, z, n`` (the backward's cache).
    hnc : ndarray of shape (T, B, H)
        Output: ``W_hn h_{t-1} + b_hn`` (cache).
    Others as for :func:`fastrnn.kernels.lstm.lstm_fast_forward`.
    """
    T, B, G = xg.shape
    H = G // 3
    sw = forward_sweep(X, xrow, F, wih_p, xg, batch_sizes, r0, r1, hs, hmask, use_mask, hin)
    hncf, hrow = flat(hnc), sw.hrow
    for t in range(T):
        hi, a, a_off = forward_step(sw, t, wrz_p, 2 * H)
        step_gemm(hi - r0, H, H, a, hrow[r0:], a_off, wn_p, hncf, hrow[r0:], t * B * H, False)
        for b in range(r0, hi):
            _gru_cell_fwd(sw.xg, (t * B + b) * G, bias, bhn, hncf, (t * B + b) * H, sw.hs,
                          (t * B + b) * H, ((t + 1) * B + b) * H, Y, yrow[t * B + b] + ycol, H)
        carry_rows(sw.hs, t, B, H, max(r0, hi), r1)


@njit_inline
def _gru_cell_bwd(dh, ho, dY, dyo, xg, go, hnc, hco, hs, hp, dg, dgn, dd, dbi, dbh, H):
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        dht = vload_n(dh, ho + j, m) + vload_n(dY, dyo + j, m)
        r, z, n = vload3(xg, go + j, H, m)
        hnv = vload_n(hnc, hco + j, m)
        dan = dht * (one - z) * (one - n * n)
        dar = dan * hnv * r * (one - r)
        daz = dht * (vload_n(hs, hp + j, m) - n) * z * (one - z)
        dhn = dan * r
        vstore3(dg, go + j, H, m, dar, daz, dan)
        vstore_n(dgn, hco + j, dhn, m)
        vstore_n(dd, ho + j, dht * z, m)
        vacc3(dbi, j, H, m, dar, daz, dan)
        vstore_n(dbh, 2 * H + j, vload_n(dbh, 2 * H + j, m) + dhn, m)


@njit_inline
def _gru_dh_prev(dh, ho, mask, use_mask, dd, H):
    """Gradient of ``h_{t-1}`` of one row: ``dh[ho:]`` holds the product of the gate gradients
    with ``W_hh``; applies the mask and adds the direct gradient ``dd[ho:]``."""
    for j in range(H):
        v = dh[ho + j]
        if use_mask:
            v *= mask[ho + j]
        dh[ho + j] = v + dd[ho + j]


@njit
def gru_fast_backward(dY, dyrow, dycol, xg, hnc, hs, wrz_p, wn_p, batch_sizes, r0, r1, hmask,
                      use_mask, dg, dgn, dh, dd, dbi, dbh):
    """GRU (reset after) backward sweep of sorted rows ``[r0, r1)``.

    ``wrz_p``, ``wn_p``: ``W_hh[:2H]`` (2H x H) and ``W_hh[2H:]`` (H x H), packed. ``dg`` (T, B, 3H)
    receives ``dar, daz, dan`` (the gradients of the input projections), ``dgn`` (T, B, H) the
    gradient of ``W_hn h + b_hn``; both zero for finished rows. ``dd`` (B, H) is scratch; ``dbi``
    and ``dbh`` (3H,) receive this part's gradients of ``b_ih`` and ``b_hh`` (the r and z parts of
    ``dbh`` are those of ``dbi``; only its n part is written here).
    """
    T, B, G = xg.shape
    H = G // 3
    bw = backward_sweep(dg, dh, hmask, use_mask, batch_sizes, r0, r1)
    xgf, hncf, hsf, dgnf, ddf = flat(xg), flat(hnc), flat(hs), flat(dgn), flat(dd)
    dbi[:] = 0.0
    dbh[:] = 0.0
    hrow, grow = bw.hrow, bw.grow
    for t in range(T - 1, -1, -1):
        hi = backward_step(bw, t)
        zero_rows(dgnf, t, B, H, max(r0, hi), r1)
        for b in range(r0, hi):
            _gru_cell_bwd(bw.dh, b * H, dY, dyrow[t * B + b] + dycol, xgf, (t * B + b) * G, hncf,
                          (t * B + b) * H, hsf, (t * B + b) * H, bw.dg, dgnf, ddf, dbi, dbh, H)
        step_gemm(hi - r0, H, 2 * H, bw.dg, grow[r0:], t * B * G, wrz_p, bw.dh, hrow[r0:], 0,
                  False)
        step_gemm(hi - r0, H, H, dgnf, hrow[r0:], t * B * H, wn_p, bw.dh, hrow[r0:], 0, True)
        for b in range(r0, hi):
            _gru_dh_prev(bw.dh, b * H, bw.mask, use_mask, ddf, H)


@njit
def gru_fast_grads(dg, dgn, K, x, xrow, F, hin, hrow, H, gwih, gwhh, q0, q1, wih_p,
                   batch_sizes, B, r0, r1, dx, accumulate, buf):
    """One part of the GRU (reset after) gradients after the sweep: rows ``[q0, q1)`` of
    ``dW_ih = dg^T X`` and of ``dW_hh = [dg_r, dg_z, dgn]^T hin``, and the input gradient of the
    sorted rows ``[r0, r1)``."""
    G = 3 * H
    weight_grad2(dg, G, 0, 2 * H, K, x, xrow, F, gwih, hin, hrow, H, gwhh, 0, q0, q1, buf)
    weight_grad(dg, G, 2 * H, H, K, x, xrow, F, gwih, F, 2 * H, q0, q1, buf)
    weight_grad(dgn, H, 0, H, K, hin, hrow, H, gwhh, H, 2 * H, q0, q1, buf)
    input_grads(dg, G, wih_p, batch_sizes, B, r0, r1, dx, xrow, F, accumulate)


@njit_inline
def _gru_v1_gates_fwd(xg, go, bias, hin, ho, rh, ro, H):
    """Reset and update gates of one row of the original GRU, 16 units at a time: the
    pre-activations ``xg[go:go+2H]`` (the biases are added here) become ``r, z`` in place, and
    ``r * h_in`` (``h_in`` at ``hin[ho:]``) goes to ``rh[ro:]``, the input of the candidate's
    product."""
    for j in range(0, H, 16):
        m = min(16, H - j)
        r = vsigmoid(vload_n(xg, go + j, m) + vload_n(bias, j, m))
        z = vsigmoid(vload_n(xg, go + H + j, m) + vload_n(bias, H + j, m))
        vstore_n(xg, go + j, r, m)
        vstore_n(xg, go + H + j, z, m)
        vstore_n(rh, ro + j, r * vload_n(hin, ho + j, m), m)


@njit_inline
def _gru_v1_state_fwd(xg, go, bias, hs, hp, hn, Y, yo, H):
    """Candidate and new state of one row of the original GRU: ``xg[go+2H:go+3H]`` holds the
    candidate's pre-activation without its bias and becomes ``n``; ``h`` goes to ``hs[hn:]`` and
    ``Y[yo:]``."""
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        n = vtanh(vload_n(xg, go + 2 * H + j, m) + vload_n(bias, 2 * H + j, m))
        z = vload_n(xg, go + H + j, m)
        h = vfma(z, vload_n(hs, hp + j, m), (one - z) * n)
        vstore_n(xg, go + 2 * H + j, n, m)
        vstore_n(hs, hn + j, h, m)
        vstore_n(Y, yo + j, h, m)


@njit
def gru_v1_fast_forward(X, xrow, F, wih_p, wrz_p, wn_p, bias, batch_sizes, r0, r1, hmask, use_mask,
                        xg, rh, hs, hin, Y, yrow, ycol):
    """GRU forward in the original form (reset before the product) of sorted rows ``[r0, r1)``.

    ``bias`` (3H,) is ``b_ih + b_hh``; ``xg`` (T, B, 3H) receives ``r, z, n``; ``rh`` (T, B, H)
    receives ``r * h_{t-1}`` (masked; zero for finished rows). Others as for
    :func:`gru_fast_forward`.
    """
    T, B, G = xg.shape
    H = G // 3
    sw = forward_sweep(X, xrow, F, wih_p, xg, batch_sizes, r0, r1, hs, hmask, use_mask, hin)
    rhf = flat(rh)
    for t in range(T):
        hi, a, a_off = forward_step(sw, t, wrz_p, 2 * H)
        for b in range(r0, hi):
            _gru_v1_gates_fwd(sw.xg, (t * B + b) * G, bias, a, a_off + b * H, rhf,
                              (t * B + b) * H, H)
        step_gemm(hi - r0, H, H, rhf, sw.hrow[r0:], t * B * H, wn_p, sw.xg, sw.grow[r0:],
                  t * B * G + 2 * H, True)
        for b in range(r0, hi):
            _gru_v1_state_fwd(sw.xg, (t * B + b) * G, bias, sw.hs, (t * B + b) * H,
                              ((t + 1) * B + b) * H, Y, yrow[t * B + b] + ycol, H)
        carry_rows(sw.hs, t, B, H, max(r0, hi), r1)
        zero_rows(rhf, t, B, H, max(r0, hi), r1)


@njit_inline
def _gru_v1_cell_bwd_zn(dh, ho, dY, dyo, xg, go, hs, hp, dg, dd, db, H):
    """Back through the update gate and the candidate's tanh of one row of the original GRU:
    ``daz``, ``dan`` to ``dg[go+H:go+3H]`` and the bias gradient ``db``, the direct gradient of
    ``h_{t-1}`` (through the update gate) to ``dd[ho:]``."""
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        dht = vload_n(dh, ho + j, m) + vload_n(dY, dyo + j, m)
        z = vload_n(xg, go + H + j, m)
        n = vload_n(xg, go + 2 * H + j, m)
        dan = dht * (one - z) * (one - n * n)
        daz = dht * (vload_n(hs, hp + j, m) - n) * z * (one - z)
        vstore_n(dg, go + H + j, daz, m)
        vstore_n(dg, go + 2 * H + j, dan, m)
        vstore_n(dd, ho + j, dht * z, m)
        vstore_n(db, H + j, vload_n(db, H + j, m) + daz, m)
        vstore_n(db, 2 * H + j, vload_n(db, 2 * H + j, m) + dan, m)


@njit_inline
def _gru_v1_cell_bwd_r(drh, ho, xg, go, hs, hp, mask, use_mask, dg, db, H):
    """Gradient of the reset gate's pre-activation of one row of the original GRU, from ``drh[ho:]``
    (the gradient of ``r * h_in``), to ``dg[go:go+H]`` and ``db``."""
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        r = vload_n(xg, go + j, m)
        mk = vload_n(mask, ho + j, m) if use_mask else one
        hin = vload_n(hs, hp + j, m) * mk
        dar = vload_n(drh, ho + j, m) * hin * r * (one - r)
        vstore_n(dg, go + j, dar, m)
        vstore_n(db, j, vload_n(db, j, m) + dar, m)


@njit_inline
def _gru_v1_dh_prev(dh, ho, drh, xg, go, mask, use_mask, dd, H):
    """Gradient of ``h_{t-1}`` of one row of the original GRU: ``dh[ho:]`` holds the product of the
    gate gradients with ``W_hh[:2H]``; adds ``drh * r`` (through ``r * h_in``), applies the mask and
    adds the direct gradient ``dd[ho:]``."""
    for j in range(0, H, 16):
        m = min(16, H - j)
        v = vfma(vload_n(drh, ho + j, m), vload_n(xg, go + j, m), vload_n(dh, ho + j, m))
        if use_mask:
            v = v * vload_n(mask, ho + j, m)
        vstore_n(dh, ho + j, v + vload_n(dd, ho + j, m), m)


@njit
def gru_v1_fast_backward(dY, dyrow, dycol, xg, hs, wrz_p, wn_p, batch_sizes, r0, r1, hmask,
                         use_mask, dg, dh, dd, drh, db):
    """GRU (reset before) backward sweep of sorted rows ``[r0, r1)``.

    ``wrz_p``, ``wn_p``: ``W_hh[:2H]`` (2H x H) and ``W_hh[2H:]`` (H x H), packed. ``dg`` (T, B, 3H)
    receives the pre-activation gradients (the same for the input and the recurrent side; zero for
    finished rows); ``dd``, ``drh`` (B, H) are scratch; ``db`` (3H,) this part's bias gradient.
    """
    T, B, G = xg.shape
    H = G // 3
    bw = backward_sweep(dg, dh, hmask, use_mask, batch_sizes, r0, r1)
    xgf, hsf, ddf, drhf = flat(xg), flat(hs), flat(dd), flat(drh)
    db[:] = 0.0
    hrow, grow = bw.hrow, bw.grow
    for t in range(T - 1, -1, -1):
        hi = backward_step(bw, t)
        for b in range(r0, hi):
            _gru_v1_cell_bwd_zn(bw.dh, b * H, dY, dyrow[t * B + b] + dycol, xgf, (t * B + b) * G,
                                hsf, (t * B + b) * H, bw.dg, ddf, db, H)
        step_gemm(hi - r0, H, H, bw.dg, grow[r0:], t * B * G + 2 * H, wn_p, drhf, hrow[r0:], 0,
                  False)
        for b in range(r0, hi):
            _gru_v1_cell_bwd_r(drhf, b * H, xgf, (t * B + b) * G, hsf, (t * B + b) * H, bw.mask,
                               use_mask, bw.dg, db, H)
        step_gemm(hi - r0, H, 2 * H, bw.dg, grow[r0:], t * B * G, wrz_p, bw.dh, hrow[r0:], 0,
                  False)
        for b in range(r0, hi):
            _gru_v1_dh_prev(bw.dh, b * H, drhf, xgf, (t * B + b) * G, bw.mask, use_mask, ddf, H)


@njit
def gru_v1_fast_grads(dg, K, x, xrow, F, hin, hrow, rh, H, gwih, gwhh, q0, q1, wih_p,
                      batch_sizes, B, r0, r1, dx, accumulate, buf):
    """One part of the GRU (reset before) gradients: rows ``[q0, q1)`` of ``dW_ih = dg^T X``, of
    ``dW_hh[:2H] = dg[:, :2H]^T hin`` and ``dW_hh[2H:] = dg[:, 2H:]^T rh``; the input gradient of
    the sorted rows ``[r0, r1)``."""
    G = 3 * H
    weight_grad2(dg, G, 0, 2 * H, K, x, xrow, F, gwih, hin, hrow, H, gwhh, 0, q0, q1, buf)
    weight_grad2(dg, G, 2 * H, H, K, x, xrow, F, gwih, rh, hrow, H, gwhh, 2 * H, q0, q1, buf)
    input_grads(dg, G, wih_p, batch_sizes, B, r0, r1, dx, xrow, F, accumulate)
