"""Numba kernels of the GRU (gate order r, z, n). Conventions: see :mod:`fastrnn.kernels.rnn`.

Two forms: ``gru_forward``/``gru_backward`` apply the reset gate after the recurrent product
(``reset_after=True``, as PyTorch and cuDNN); ``gru_v1_forward``/``gru_v1_backward`` apply it to the
state before the product (the original form, ``reset_after=False``), which needs a second product per
step once ``r_t`` is known.
"""

import numpy as np

from ._fastpath import (input_grads, project, project_ahead, project_tables, weight_grad,
                        weight_grad2)
from ._gemm import KC, gemm
from ._jit import (gru_bwd, gru_fwd, gru_v1_bwd_r, gru_v1_bwd_zn, gru_v1_gates, gru_v1_state, njit,
                   njit_inline, recurrent_product)
from ._simd import vfma, vload_n, vsplat, vstore_n
from ._vmath import vsigmoid, vtanh


@njit
def gru_forward(xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a):
    """GRU forward (reset after).

    Parameters
    ----------
    xp : ndarray of shape (T, B, 3H)
        Input projections plus ``b_ih`` only (``b_hh`` is inside the reset product).
    whh_t : ndarray of shape (H, 3H)
    bhh : ndarray of shape (3H,)
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
        src = hs[t]
        recurrent_product(src, hmask, use_mask, hin, whh_t, a, n_)
        x = xp[t]
        act = acts[t]
        dst = hs[t + 1]
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
        for b in range(n_, B):
            for j in range(H):
                dst[b, j] = src[b, j]


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
        act = acts[t]
        hp = hs[t]
        d = dy[t]
        gx = dxp[t]
        gh = dhp[t]
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
        for b in range(n_, B):
            for j in range(3 * H):
                gx[b, j] = 0.0
                gh[b, j] = 0.0
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
    hs : ndarray of shape (T+1, B, H)
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
        src = hs[t]
        for b in range(n_):
            for j in range(H):
                hin[b, j] = src[b, j] * hmask[b, j] if use_mask else src[b, j]
        np.dot(hin[:n_], whh_rz_t, a[:n_])
        x = xp[t]
        act = acts[t]
        rht = rh[t]
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
        for b in range(n_, B):
            for j in range(H):
                dst[b, j] = src[b, j]
                rht[b, j] = 0.0


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
        act = acts[t]
        hp = hs[t]
        d = dy[t]
        g_ = dgates[t]
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
        for b in range(n_, B):
            for j in range(3 * H):
                g_[b, j] = 0.0


# ---------------------------------------------------------------------------------------------------
# Fast path: float32, Numba backend only (conventions: :mod:`fastrnn.kernels._fastpath`).
# ---------------------------------------------------------------------------------------------------

@njit_inline
def _masked_rows(src, s_off, mask, use_mask, dst, r0, hi, H):
    """``dst[b] = src[s_off + b*H ...] * mask[b]`` for the rows ``r0 <= b < hi`` (the recurrent
    input)."""
    for b in range(r0, hi):
        for j in range(H):
            v = src[s_off + b * H + j]
            dst[b * H + j] = v * mask[b * H + j] if use_mask else v


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
        vstore_n(xg, go + j, r, m)
        vstore_n(xg, go + H + j, z, m)
        vstore_n(xg, go + 2 * H + j, n, m)
        vstore_n(hnc, ho + j, hnv, m)
        vstore_n(hs, hn + j, h, m)
        vstore_n(Y, yo + j, h, m)


@njit
def gru_fast_forward(X, xrow, wih_p, wrz_p, wn_p, bias, bhn, batch_sizes, r0, r1, hmask, use_mask,
                     xg, hnc, hs, hin, Y, yrow, ycol):
    """GRU (reset after) forward of sorted rows ``[r0, r1)``: input projection, then the sweep.

    Parameters
    ----------
    wrz_p, wn_p : ndarray, 1-D float32
        ``W_hh[:2H]^T`` (H x 2H) and ``W_hh[2H:]^T`` (H x H), packed.
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
    F = wih_p.shape[0] // (((G + 31) // 32) * 32)  # input features
    xgf = xg.reshape(xg.size)
    hncf = hnc.reshape(hnc.size)
    hsf = hs.reshape(hs.size)
    hinf = hin.reshape(hin.size)
    maskf = hmask.reshape(hmask.size)
    ahead = project_ahead(r1 - r0, G)
    pa, pc, ps = project_tables(xrow, batch_sizes, B, r0, r1, G)
    hrow = np.arange(B) * H
    grow = np.arange(B) * G
    for t in range(T):
        if t % ahead == 0:
            project(X, F, wih_p, xgf, G, pa, pc, ps, t, min(T, t + ahead))
        hi = min(r1, batch_sizes[t])
        if hi > r0:
            if use_mask:
                _masked_rows(hsf, t * B * H, maskf, True, hinf, r0, hi, H)
                a, a_off = hinf, 0
            else:
                a, a_off = hsf, t * B * H
            gemm(hi - r0, 2 * H, H, a, hrow[r0:], a_off, 1, wrz_p, KC, xgf, grow[r0:], t * B * G,
                 True)
            gemm(hi - r0, H, H, a, hrow[r0:], a_off, 1, wn_p, KC, hncf, hrow[r0:], t * B * H, False)
            for b in range(r0, hi):
                _gru_cell_fwd(xgf, (t * B + b) * G, bias, bhn, hncf, (t * B + b) * H, hsf,
                              (t * B + b) * H, ((t + 1) * B + b) * H, Y, yrow[t * B + b] + ycol, H)
        for b in range(max(r0, hi), r1):
            src = (t * B + b) * H
            dst = ((t + 1) * B + b) * H
            for j in range(H):
                hsf[dst + j] = hsf[src + j]


@njit_inline
def _gru_cell_bwd(dh, ho, dY, dyo, xg, go, hnc, hco, hs, hp, dg, dgn, dd, dbi, dbh, H):
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        dht = vload_n(dh, ho + j, m) + vload_n(dY, dyo + j, m)
        r = vload_n(xg, go + j, m)
        z = vload_n(xg, go + H + j, m)
        n = vload_n(xg, go + 2 * H + j, m)
        hnv = vload_n(hnc, hco + j, m)
        dan = dht * (one - z) * (one - n * n)
        dar = dan * hnv * r * (one - r)
        daz = dht * (vload_n(hs, hp + j, m) - n) * z * (one - z)
        dhn = dan * r
        vstore_n(dg, go + j, dar, m)
        vstore_n(dg, go + H + j, daz, m)
        vstore_n(dg, go + 2 * H + j, dan, m)
        vstore_n(dgn, hco + j, dhn, m)
        vstore_n(dd, ho + j, dht * z, m)
        vstore_n(dbi, j, vload_n(dbi, j, m) + dar, m)
        vstore_n(dbi, H + j, vload_n(dbi, H + j, m) + daz, m)
        vstore_n(dbi, 2 * H + j, vload_n(dbi, 2 * H + j, m) + dan, m)
        vstore_n(dbh, 2 * H + j, vload_n(dbh, 2 * H + j, m) + dhn, m)


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
    xgf = xg.reshape(xg.size)
    hncf = hnc.reshape(hnc.size)
    hsf = hs.reshape(hs.size)
    dgf = dg.reshape(dg.size)
    dgnf = dgn.reshape(dgn.size)
    dhf = dh.reshape(dh.size)
    ddf = dd.reshape(dd.size)
    maskf = hmask.reshape(hmask.size)
    dbi[:] = 0.0
    dbh[:] = 0.0
    hrow = np.arange(B) * H
    grow = np.arange(B) * G
    for t in range(T - 1, -1, -1):
        hi = min(r1, batch_sizes[t])
        for b in range(r0, hi):
            _gru_cell_bwd(dhf, b * H, dY, dyrow[t * B + b] + dycol, xgf, (t * B + b) * G, hncf,
                          (t * B + b) * H, hsf, (t * B + b) * H, dgf, dgnf, ddf, dbi, dbh, H)
        for b in range(max(r0, hi), r1):
            for j in range(G):
                dgf[(t * B + b) * G + j] = 0.0
            for j in range(H):
                dgnf[(t * B + b) * H + j] = 0.0
        if hi > r0:
            gemm(hi - r0, H, 2 * H, dgf, grow[r0:], t * B * G, 1, wrz_p, KC, dhf, hrow[r0:], 0,
                 False)
            gemm(hi - r0, H, H, dgnf, hrow[r0:], t * B * H, 1, wn_p, KC, dhf, hrow[r0:], 0, True)
            for b in range(r0, hi):
                for j in range(H):
                    v = dhf[b * H + j]
                    if use_mask:
                        v *= maskf[b * H + j]
                    dhf[b * H + j] = v + ddf[b * H + j]


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


@njit
def gru_v1_fast_forward(X, xrow, wih_p, wrz_p, wn_p, bias, batch_sizes, r0, r1, hmask, use_mask,
                        xg, rh, hs, hin, Y, yrow, ycol):
    """GRU forward in the original form (reset before the product) of sorted rows ``[r0, r1)``.

    ``bias`` (3H,) is ``b_ih + b_hh``; ``xg`` (T, B, 3H) receives ``r, z, n``; ``rh`` (T, B, H)
    receives ``r * h_{t-1}`` (masked; zero for finished rows). Others as for
    :func:`gru_fast_forward`.
    """
    T, B, G = xg.shape
    H = G // 3
    F = wih_p.shape[0] // (((G + 31) // 32) * 32)  # input features
    xgf = xg.reshape(xg.size)
    rhf = rh.reshape(rh.size)
    hsf = hs.reshape(hs.size)
    hinf = hin.reshape(hin.size)
    maskf = hmask.reshape(hmask.size)
    ahead = project_ahead(r1 - r0, G)
    pa, pc, ps = project_tables(xrow, batch_sizes, B, r0, r1, G)
    hrow = np.arange(B) * H
    grow = np.arange(B) * G
    one = vsplat(1.0)
    for t in range(T):
        if t % ahead == 0:
            project(X, F, wih_p, xgf, G, pa, pc, ps, t, min(T, t + ahead))
        hi = min(r1, batch_sizes[t])
        if hi > r0:
            _masked_rows(hsf, t * B * H, maskf, use_mask, hinf, r0, hi, H)
            gemm(hi - r0, 2 * H, H, hinf, hrow[r0:], 0, 1, wrz_p, KC, xgf, grow[r0:], t * B * G,
                 True)
            for b in range(r0, hi):
                go = (t * B + b) * G
                ro = (t * B + b) * H
                for j in range(0, H, 16):
                    m = min(16, H - j)
                    r = vsigmoid(vload_n(xgf, go + j, m) + vload_n(bias, j, m))
                    z = vsigmoid(vload_n(xgf, go + H + j, m) + vload_n(bias, H + j, m))
                    vstore_n(xgf, go + j, r, m)
                    vstore_n(xgf, go + H + j, z, m)
                    vstore_n(rhf, ro + j, r * vload_n(hinf, b * H + j, m), m)
            gemm(hi - r0, H, H, rhf, hrow[r0:], t * B * H, 1, wn_p, KC, xgf, grow[r0:],
                 t * B * G + 2 * H, True)
            for b in range(r0, hi):
                go = (t * B + b) * G
                hp = (t * B + b) * H
                hn = ((t + 1) * B + b) * H
                yo = yrow[t * B + b] + ycol
                for j in range(0, H, 16):
                    m = min(16, H - j)
                    n = vtanh(vload_n(xgf, go + 2 * H + j, m) + vload_n(bias, 2 * H + j, m))
                    z = vload_n(xgf, go + H + j, m)
                    h = vfma(z, vload_n(hsf, hp + j, m), (one - z) * n)
                    vstore_n(xgf, go + 2 * H + j, n, m)
                    vstore_n(hsf, hn + j, h, m)
                    vstore_n(Y, yo + j, h, m)
        for b in range(max(r0, hi), r1):
            src = (t * B + b) * H
            dst = ((t + 1) * B + b) * H
            for j in range(H):
                hsf[dst + j] = hsf[src + j]
                rhf[src + j] = 0.0


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
    xgf = xg.reshape(xg.size)
    hsf = hs.reshape(hs.size)
    dgf = dg.reshape(dg.size)
    dhf = dh.reshape(dh.size)
    ddf = dd.reshape(dd.size)
    drhf = drh.reshape(drh.size)
    maskf = hmask.reshape(hmask.size)
    db[:] = 0.0
    hrow = np.arange(B) * H
    grow = np.arange(B) * G
    one = vsplat(1.0)
    full = vsplat(1.0)
    for t in range(T - 1, -1, -1):
        hi = min(r1, batch_sizes[t])
        for b in range(r0, hi):
            go = (t * B + b) * G
            hp = (t * B + b) * H
            dyo = dyrow[t * B + b] + dycol
            for j in range(0, H, 16):
                m = min(16, H - j)
                dht = vload_n(dhf, b * H + j, m) + vload_n(dY, dyo + j, m)
                z = vload_n(xgf, go + H + j, m)
                n = vload_n(xgf, go + 2 * H + j, m)
                dan = dht * (one - z) * (one - n * n)
                daz = dht * (vload_n(hsf, hp + j, m) - n) * z * (one - z)
                vstore_n(dgf, go + H + j, daz, m)
                vstore_n(dgf, go + 2 * H + j, dan, m)
                vstore_n(ddf, b * H + j, dht * z, m)
                vstore_n(db, H + j, vload_n(db, H + j, m) + daz, m)
                vstore_n(db, 2 * H + j, vload_n(db, 2 * H + j, m) + dan, m)
        for b in range(max(r0, hi), r1):
            for j in range(G):
                dgf[(t * B + b) * G + j] = 0.0
        if hi > r0:
            gemm(hi - r0, H, H, dgf, grow[r0:], t * B * G + 2 * H, 1, wn_p, KC, drhf, hrow[r0:], 0,
                 False)
            for b in range(r0, hi):
                go = (t * B + b) * G
                hp = (t * B + b) * H
                for j in range(0, H, 16):
                    m = min(16, H - j)
                    r = vload_n(xgf, go + j, m)
                    mk = vload_n(maskf, b * H + j, m) if use_mask else full
                    hin = vload_n(hsf, hp + j, m) * mk
                    dar = vload_n(drhf, b * H + j, m) * hin * r * (one - r)
                    vstore_n(dgf, go + j, dar, m)
                    vstore_n(db, j, vload_n(db, j, m) + dar, m)
            gemm(hi - r0, H, 2 * H, dgf, grow[r0:], t * B * G, 1, wrz_p, KC, dhf, hrow[r0:], 0,
                 False)
            for b in range(r0, hi):
                go = (t * B + b) * G
                for j in range(0, H, 16):
                    m = min(16, H - j)
                    v = vfma(vload_n(drhf, b * H + j, m), vload_n(xgf, go + j, m),
                             vload_n(dhf, b * H + j, m))
                    if use_mask:
                        v = v * vload_n(maskf, b * H + j, m)
                    vstore_n(dhf, b * H + j, v + vload_n(ddf, b * H + j, m), m)


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
