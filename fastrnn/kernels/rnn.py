"""Numba kernels of the simple (Elman) RNN: the recurrent loop over time, forward and backward.

Conventions shared by every kernel module (``rnn``, ``lstm``, ``gru``; the numpy reference in
``numpy_ref`` has the same signatures):

* Arrays are time-major: ``xp`` of shape ``(T, B, G*H)`` holds the input projections of all steps
  (``x_t W_ih^T + b``), computed by one matrix product at layer level.
* The batch is sorted by length, longest first; ``batch_sizes[t]`` is the number of sequences still
  running at step ``t``, so rows ``b >= batch_sizes[t]`` are finished and only carry their state.
* ``hs`` of shape ``(T+1, B, H)`` receives the states; ``hs[0]`` is the initial state (set by the
  caller) and ``hs[t+1]`` the state after step ``t``, carried unchanged past a sequence's end.
* ``hmask`` of shape ``(B, H)`` is the recurrent-dropout mask applied to ``h_{t-1}`` where it
  enters the recurrent product; it is read only when ``use_mask`` is true (pass a ``(0, 0)`` array
  otherwise).
* The backward reads ``dy`` of shape ``(T, B, H)``, the gradient of the loss with respect to the
  outputs (zero past each length), with the caches of the forward; the other arguments are those of
  the forward. It writes the pre-activation gradients ``dgates`` (zero for finished rows) and
  overwrites ``dh`` (on entry ``dh_n``; on exit the gradient of the initial state). The weight
  gradients are left to the caller: they are single large matrix products over all steps.
* ``scratch`` arrays are preallocated by the caller; nothing is allocated inside the time loop.

Each module also holds the fast path of its cell (``*_fast_*`` functions): float32 only, used by the
layers on the Numba backend in place of the eight shared kernels, with its own conventions (see
:mod:`fastrnn.kernels._fastpath`): fused input projection, SIMD matrix products
(:mod:`fastrnn.kernels._gemm`), vectorized activations (:mod:`fastrnn.kernels._vmath`), the caller's
layout read through row tables, and the batch split into parts that run on separate threads. The
shared kernels stay the reference for the other backends and serve float64.
"""

from ._fastpath import (backward_product, backward_step, backward_sweep, carry_rows, flat,
                        forward_step, forward_sweep)
from ._jit import (carry_finished, njit, njit_inline, recurrent_grad, recurrent_product, rnn_act,
                   rnn_dact, zero_finished)
from ._simd import vgt_select, vload_n, vsplat, vstore_n, vzero
from ._vmath import vtanh


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
    T, B, H = xp.shape
    for t in range(T):
        n = batch_sizes[t]
        src, dst, x = hs[t], hs[t + 1], xp[t]
        recurrent_product(src, hmask, use_mask, hin, whh_t, a, n)
        for b in range(n):
            for j in range(H):
                dst[b, j] = rnn_act(x[b, j] + a[b, j], relu)
        carry_finished(src, dst, n)


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
    batch_sizes, hmask, use_mask, relu
        As for :func:`rnn_forward`.
    dgates : ndarray of shape (T, B, H)
        Output: pre-activation gradients (zero for finished rows).
    dh : ndarray of shape (B, H)
        In: gradient with respect to ``h_n``; out: gradient with respect to ``h_0``.
    """
    T, B, H = dy.shape
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        h, g, d = hs[t + 1], dgates[t], dy[t]
        for b in range(n):
            for j in range(H):
                g[b, j] = (dh[b, j] + d[b, j]) * rnn_dact(h[b, j], relu)
        zero_finished(g, n)
        recurrent_grad(g, whh, dh, n, hmask, use_mask)


# ---------------------------------------------------------------------------------------------------
# Fast path: float32, Numba backend only (conventions: :mod:`fastrnn.kernels._fastpath`).
# ---------------------------------------------------------------------------------------------------

@njit_inline
def _rnn_cell_fwd(xg, go, bias, hs, hn, relu, Y, yo, H):
    zero = vzero()
    for j in range(0, H, 16):
        m = min(16, H - j)
        a = vload_n(xg, go + j, m) + vload_n(bias, j, m)
        h = vgt_select(a, zero, a, zero * a) if relu else vtanh(a)
        vstore_n(hs, hn + j, h, m)
        vstore_n(Y, yo + j, h, m)


@njit
def rnn_fast_forward(X, xrow, F, wih_p, whh_p, bias, batch_sizes, r0, r1, hmask, use_mask, relu, xg,
                     hs, hin, Y, yrow, ycol):
    """Simple RNN forward of sorted rows ``[r0, r1)``: input projection, then the recurrent sweep.

    Arguments as for :func:`fastrnn.kernels.lstm.lstm_fast_forward` with ``G = H``; ``relu`` selects
    the activation; ``xg`` of shape (T, B, H) is scratch (the pre-activations).
    """
    T, B, H = xg.shape
    sw = forward_sweep(X, xrow, F, wih_p, xg, batch_sizes, r0, r1, hs, hmask, use_mask, hin)
    for t in range(T):
        hi = forward_step(sw, t, whh_p, H)[0]
        for b in range(r0, hi):
            _rnn_cell_fwd(sw.xg, (t * B + b) * H, bias, sw.hs, ((t + 1) * B + b) * H, relu,
                          Y, yrow[t * B + b] + ycol, H)
        carry_rows(sw.hs, t, B, H, max(r0, hi), r1)


@njit_inline
def _rnn_cell_bwd(dh, ho, dY, dyo, hs, hn, relu, dg, go, db, H):
    zero = vzero()
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        h = vload_n(hs, hn + j, m)
        d = vgt_select(h, zero, one, zero) if relu else one - h * h
        g = (vload_n(dh, ho + j, m) + vload_n(dY, dyo + j, m)) * d
        vstore_n(dg, go + j, g, m)
        vstore_n(db, j, vload_n(db, j, m) + g, m)


@njit
def rnn_fast_backward(dY, dyrow, dycol, hs, whh_p, batch_sizes, r0, r1, hmask, use_mask, relu, dg,
                      dh, db):
    """Simple RNN backward sweep of sorted rows ``[r0, r1)``.

    ``hs`` (T+1, B, H) from the forward; ``whh_p`` is ``W_hh`` (H x H) packed; ``dg`` (T, B, H)
    receives the pre-activation gradients (zero for finished rows); ``dh`` (B, H) holds the gradient
    of ``h_n`` on entry and of ``h_0`` on exit; ``db`` (H,) this part's bias gradient.
    """
    T, B, H = dg.shape
    bw = backward_sweep(dg, dh, hmask, use_mask, batch_sizes, r0, r1)
    hsf = flat(hs)
    db[:] = 0.0
    for t in range(T - 1, -1, -1):
        hi = backward_step(bw, t)
        for b in range(r0, hi):
            _rnn_cell_bwd(bw.dh, b * H, dY, dyrow[t * B + b] + dycol, hsf, ((t + 1) * B + b) * H,
                          relu, bw.dg, (t * B + b) * H, db, H)
        backward_product(bw, t, hi, whh_p)
