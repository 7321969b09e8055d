"""Numba kernels of the simple (Elman) RNN: the recurrent loop over time, forward and backward.

Conventions shared by every kernel module (``rnn``, ``lstm``, ``gru``; the numpy reference in
``numpy_ref`` has the same signatures):

* Arrays are time-major: ``xp`` of shape ``(T, B, G*H)`` holds the input projections of all steps
  (``x_t W_ih^T + b``), computed by one matrix product at layer level.
* The batch is sorted by length, longest first; ``batch_sizes[t]`` is the number of sequences still
  running at step ``t``, so rows ``b >= batch_sizes[t]`` are finished and only carry their state.
* ``hs`` of shape ``(T+1, B, H)`` receives the states; ``hs[0]`` is the initial state (set by the
  caller) and ``hs[t+1]`` the state after step ``t``, carried unchanged past a sequence's end.
* ``hmask`` of shape ``(B, H)`` is the recurrent-dropout mask applied to ``h_{t-1}`` where it enters the
  recurrent product; it is read only when ``use_mask`` is true (pass a ``(0, 0)`` array otherwise).
* The backward writes the pre-activation gradients ``dgates`` (zero for finished rows) and overwrites
  ``dh`` (on entry ``dh_n``; on exit the gradient of the initial state). The weight gradients are
  left to the caller: they are single large matrix products over all steps.
* ``scratch`` arrays are preallocated by the caller; nothing is allocated inside the time loop.
"""

import numpy as np

from ._jit import njit, rnn_act, rnn_dact


@njit
def rnn_forward(xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a):
    """Simple RNN forward over all steps.

    Parameters
    ----------
    xp : ndarray of shape (T, B, H)
        Input projections plus both biases.
    whh_t : ndarray of shape (H, H)
        Transposed recurrent weights ``W_hh^T``.
    batch_sizes : ndarray of shape (T,), int64
    hmask : ndarray of shape (B, H) or (0, 0)
    use_mask, relu : bool
    hs : ndarray of shape (T+1, B, H)
        Output; ``hs[0]`` holds ``h_0`` on entry.
    hin, a : ndarray of shape (B, H)
        Scratch.
    """
    T, B, H = xp.shape
    for t in range(T):
        n = batch_sizes[t]
        src = hs[t]
        if use_mask:
            for b in range(n):
                for j in range(H):
                    hin[b, j] = src[b, j] * hmask[b, j]
            np.dot(hin[:n], whh_t, a[:n])
        else:
            np.dot(src[:n], whh_t, a[:n])
        dst = hs[t + 1]
        x = xp[t]
        for b in range(n):
            for j in range(H):
                dst[b, j] = rnn_act(x[b, j] + a[b, j], relu)
        for b in range(n, B):
            for j in range(H):
                dst[b, j] = src[b, j]


@njit
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
    dgates : ndarray of shape (T, B, H)
        Output: pre-activation gradients.
    dh : ndarray of shape (B, H)
        In: gradient with respect to ``h_n``; out: gradient with respect to ``h_0``.
    """
    T, B, H = dy.shape
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        h = hs[t + 1]
        g = dgates[t]
        d = dy[t]
        for b in range(n):
            for j in range(H):
                g[b, j] = (dh[b, j] + d[b, j]) * rnn_dact(h[b, j], relu)
        for b in range(n, B):
            for j in range(H):
                g[b, j] = 0.0
        np.dot(g[:n], whh, dh[:n])
        if use_mask:
            for b in range(n):
                for j in range(H):
                    dh[b, j] *= hmask[b, j]
