"""Numba kernels of the GRU (gate order r, z, n). Conventions: see :mod:`fastrnn.kernels.rnn`.

Two forms (SPEC §1): ``gru_forward``/``gru_backward`` apply the reset gate after the recurrent product
(``reset_after=True``, as PyTorch and cuDNN); ``gru_v1_forward``/``gru_v1_backward`` apply it to the
state before the product (the original form, ``reset_after=False``), which needs a second product per
step once ``r_t`` is known.
"""

import numpy as np

from ._jit import gru_bwd, gru_fwd, njit, sigmoid


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
        if use_mask:
            for b in range(n_):
                for j in range(H):
                    hin[b, j] = src[b, j] * hmask[b, j]
            np.dot(hin[:n_], whh_t, a[:n_])
        else:
            np.dot(src[:n_], whh_t, a[:n_])
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
                r = sigmoid(x[b, j] + a[b, j])
                act[b, j] = r
                act[b, H + j] = sigmoid(x[b, H + j] + a[b, H + j])
                rht[b, j] = r * hin[b, j]
        np.dot(rht[:n_], whh_n_t, an[:n_])
        dst = hs[t + 1]
        for b in range(n_):
            for j in range(H):
                n = np.tanh(x[b, 2 * H + j] + an[b, j])
                z = act[b, H + j]
                act[b, 2 * H + j] = n
                dst[b, j] = (1.0 - z) * n + z * src[b, j]
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
                dht = dh[b, j] + d[b, j]
                z = act[b, H + j]
                n = act[b, 2 * H + j]
                drz[b, H + j] = dht * (hp[b, j] - n) * z * (1.0 - z)
                dn[b, j] = dht * (1.0 - z) * (1.0 - n * n)
                ddirect[b, j] = dht * z
        np.dot(dn[:n_], whh_n, drh[:n_])
        for b in range(n_):
            for j in range(H):
                r = act[b, j]
                hin = hp[b, j] * hmask[b, j] if use_mask else hp[b, j]
                drz[b, j] = drh[b, j] * hin * r * (1.0 - r)
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
