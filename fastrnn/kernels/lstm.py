"""Numba kernels of the LSTM (gate order i, f, g, o). Conventions: see :mod:`fastrnn.kernels.rnn`.

Variants are switched by arguments, not by separate kernels: ``peep`` of shape ``(3, H)`` holds the
diagonal peephole weights ``(w_ci, w_cf, w_co)`` (zeros when peepholes are off), ``gates_on`` of shape
``(3,)`` switches the input, forget and output gates on (an ablated gate is fixed at 1).
"""

import numpy as np

from ._jit import lstm_bwd, lstm_fwd, njit


@njit
def lstm_forward(xp, whh_t, batch_sizes, hmask, use_mask, peep, gates_on, hs, cs, acts, hin, a):
    """LSTM forward over all steps.

    Parameters
    ----------
    xp : ndarray of shape (T, B, 4H)
        Input projections plus both biases.
    whh_t : ndarray of shape (H, 4H)
        Transposed recurrent weights.
    batch_sizes : ndarray of shape (T,), int64
    hmask : ndarray of shape (B, H) or (0, 0)
    use_mask : bool
    peep : ndarray of shape (3, H)
    gates_on : ndarray of shape (3,), int
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
    on_i = gates_on[0] != 0
    on_f = gates_on[1] != 0
    on_o = gates_on[2] != 0
    for t in range(T):
        n = batch_sizes[t]
        hsrc = hs[t]
        csrc = cs[t]
        if use_mask:
            for b in range(n):
                for j in range(H):
                    hin[b, j] = hsrc[b, j] * hmask[b, j]
            np.dot(hin[:n], whh_t, a[:n])
        else:
            np.dot(hsrc[:n], whh_t, a[:n])
        x = xp[t]
        act = acts[t]
        hdst = hs[t + 1]
        cdst = cs[t + 1]
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
        for b in range(n, B):
            for j in range(H):
                hdst[b, j] = hsrc[b, j]
                cdst[b, j] = csrc[b, j]


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
        Output: pre-activation gradients.
    dh, dc : ndarray of shape (B, H)
        In: gradients with respect to ``h_n``, ``c_n``; out: with respect to ``h_0``, ``c_0``.
    dpeep : ndarray of shape (3, H)
        Output: peephole weight gradients (accumulated; zero it first).
    """
    T, B, H = dy.shape
    on_i = gates_on[0] != 0
    on_f = gates_on[1] != 0
    on_o = gates_on[2] != 0
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        act = acts[t]
        c_t = cs[t + 1]
        c_p = cs[t]
        d = dy[t]
        g_ = dgates[t]
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
        for b in range(n, B):
            for j in range(4 * H):
                g_[b, j] = 0.0
        np.dot(g_[:n], whh, dh[:n])
        if use_mask:
            for b in range(n):
                for j in range(H):
                    dh[b, j] *= hmask[b, j]
