"""CUDA kernels of the LSTM (gate order i, f, g, o).

Same host-level signatures and semantics as :mod:`fastrnn.kernels.lstm`: ``peep`` of shape
``(3, H)`` holds the diagonal peephole weights ``(w_ci, w_cf, w_co)`` (zeros when unused) and
``gates_on`` of shape ``(3,)`` switches the input, forget and output gates on. Data movement and the
``*_device`` functions: see :mod:`fastrnn.kernels.cuda.rnn`.

The peephole gradient is a sum over all steps and sequences. Instead of atomic additions inside
the time loop (whose order, hence rounding, changes run to run), one reduction kernel after the
loop sums ``dgates * c`` over ``t`` and ``b``, one thread per peephole weight: deterministic.

On the device, ``acts`` is set to zero in the rows of finished sequences (the CPU kernels leave
those rows untouched; nothing reads them).
"""

import numpy as np
from numba import cuda

from . import _device as dev
from ._device import lstm_bwd, lstm_fwd
from ._matmul import gemm


@cuda.jit
def _fwd_cell(t, n, xp, a, peep, on_i, on_f, on_o, hs, cs, acts):
    j, b = cuda.grid(2)
    B, H = hs.shape[1], hs.shape[2]
    if b >= B or j >= H:
        return
    if b < n:
        i, f, g, o, c, h = lstm_fwd(
            xp[t, b, j] + a[b, j], xp[t, b, H + j] + a[b, H + j],
            xp[t, b, 2 * H + j] + a[b, 2 * H + j], xp[t, b, 3 * H + j] + a[b, 3 * H + j],
            cs[t, b, j], peep[0, j], peep[1, j], peep[2, j], on_i, on_f, on_o)
        acts[t, b, j] = i
        acts[t, b, H + j] = f
        acts[t, b, 2 * H + j] = g
        acts[t, b, 3 * H + j] = o
        cs[t + 1, b, j] = c
        hs[t + 1, b, j] = h
    else:
        hs[t + 1, b, j] = hs[t, b, j]
        cs[t + 1, b, j] = cs[t, b, j]
        for k in range(4):
            acts[t, b, k * H + j] = 0


@cuda.jit
def _bwd_cell(t, n, dy, cs, acts, peep, on_i, on_f, on_o, dh, dc, dgates):
    j, b = cuda.grid(2)
    B, H = dh.shape[0], dh.shape[1]
    if b >= B or j >= H:
        return
    if b < n:
        dai, daf, dag, dao, dcp = lstm_bwd(
            dh[b, j] + dy[t, b, j], dc[b, j], acts[t, b, j], acts[t, b, H + j],
            acts[t, b, 2 * H + j], acts[t, b, 3 * H + j], cs[t + 1, b, j], cs[t, b, j],
            peep[0, j], peep[1, j], peep[2, j], on_i, on_f, on_o)
        dgates[t, b, j] = dai
        dgates[t, b, H + j] = daf
        dgates[t, b, 2 * H + j] = dag
        dgates[t, b, 3 * H + j] = dao
        dc[b, j] = dcp
    else:
        for k in range(4):
            dgates[t, b, k * H + j] = 0


@cuda.jit
def _peep_grad(dgates, cs, dpeep):
    """``dpeep[k, j] += sum_{t, b} dgates[t, b, gate_k * H + j] * c``, with ``c = c_{t-1}`` for the
    input and forget gates (k = 0, 1) and ``c = c_t`` for the output gate (k = 2). One thread per
    weight."""
    j, k = cuda.grid(2)
    H = dpeep.shape[1]
    if k >= 3 or j >= H:
        return
    T, B = dgates.shape[0], dgates.shape[1]
    col = j + (k if k < 2 else 3) * H
    lag = 1 if k == 2 else 0
    acc = dpeep[k, j]
    for t in range(T - 1, -1, -1):
        for b in range(B):
            acc += dgates[t, b, col] * cs[t + lag, b, j]
    dpeep[k, j] = acc


def _flags(gates_on, func):
    g = np.asarray(gates_on)
    if g.shape != (3,):
        raise ValueError(
            f"cuda {func}: gates_on must have shape (3,) (input, forget and output gate switches), "
            f"got shape {g.shape}."
        )
    return bool(g[0] != 0), bool(g[1] != 0), bool(g[2] != 0)


# ---------------------------------------------------------------------------- device level
def lstm_forward_device(xp, whh, batch_sizes, hmask, peep, gates_on, hs, cs, acts, a):
    """LSTM forward on device arrays.

    Parameters
    ----------
    xp : device array of shape (T, B, 4H)
        Input projections plus both biases.
    whh : device array of shape (4H, H)
        Recurrent weights ``W_hh`` (PyTorch layout; the product uses ``W_hh^T``).
    batch_sizes : ndarray of shape (T,), int64
        Host array.
    hmask : device array of shape (B, H) or None
    peep : device array of shape (3, H)
    gates_on : tuple of 3 bool
        Input, forget and output gate switches.
    hs, cs : device arrays of shape (T+1, B, H)
        Index 0 holds ``h_0``, ``c_0``; steps ``1..T`` are written.
    acts : device array of shape (T, B, 4H)
        Output: activated gates ``i, f, g, o``.
    a : device array of shape (B, 4H)
        Scratch.
    """
    T, B, G = xp.shape
    H = G // 4
    on_i, on_f, on_o = gates_on
    for t in range(T):
        n = int(batch_sizes[t])
        gemm(n, hs[t], whh, a, amask=hmask, trans_b=True)
        dev.launch(_fwd_cell, B, H, t, n, xp, a, peep, on_i, on_f, on_o, hs, cs, acts)


def lstm_backward_device(dy, cs, acts, whh, batch_sizes, hmask, peep, gates_on, dgates, dh, dc,
                         dpeep):
    """LSTM backward on device arrays (shapes as :func:`lstm_backward`; ``hmask`` may be ``None``,
    ``gates_on`` is a tuple of 3 bool). ``dgates`` is written; ``dh``, ``dc`` and ``dpeep`` are
    updated."""
    T, B, H = dy.shape
    on_i, on_f, on_o = gates_on
    for t in range(T - 1, -1, -1):
        n = int(batch_sizes[t])
        dev.launch(_bwd_cell, B, H, t, n, dy, cs, acts, peep, on_i, on_f, on_o, dh, dc, dgates)
        gemm(n, dgates[t], whh, dh, cmask=hmask)
    if T:
        dev.launch(_peep_grad, 3, H, dgates, cs, dpeep)


# ---------------------------------------------------------------------------- host level
def lstm_forward(xp, whh_t, batch_sizes, hmask, use_mask, peep, gates_on, hs, cs, acts, hin, a):
    """LSTM forward over all steps, on the GPU.

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
        Output: activated gates ``i, f, g, o`` (zero in the rows of finished sequences).
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 4H)
        Unused (scratch lives on the device).
    """
    f = "lstm_forward"
    dt = dev.compute_dtype(xp, "xp", f)
    T, B, G = xp.shape
    H = G // 4
    dev.check_shape(xp, (T, B, 4 * H), "xp", f, "The last axis holds the 4 gates, 4*hidden_size.")
    dev.check_shape(whh_t, (H, 4 * H), "whh_t", f)
    dev.check_shape(peep, (3, H), "peep", f)
    on = _flags(gates_on, f)
    dev.check_out(hs, (T + 1, B, H), dt, "hs", f)
    dev.check_out(cs, (T + 1, B, H), dt, "cs", f)
    dev.check_out(acts, (T, B, 4 * H), dt, "acts", f)
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    d_hs = dev.states_to_device(hs, dt)
    d_cs = dev.states_to_device(cs, dt)
    d_acts = dev.empty((T, B, 4 * H), dt)
    lstm_forward_device(dev.to_device(xp, dt), dev.to_device_t(whh_t, dt), bs,
                        dev.mask_to_device(hmask, use_mask, B, H, dt, f), dev.to_device(peep, dt),
                        on, d_hs, d_cs, d_acts, dev.empty((B, 4 * H), dt))
    dev.copy_back(d_hs, hs)
    dev.copy_back(d_cs, cs)
    dev.copy_back(d_acts, acts)


def lstm_backward(dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, gates_on,
                  dgates, dh, dc, dpeep):
    """LSTM backward through time, on the GPU.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
    cs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 4H)
        From the forward.
    whh : ndarray of shape (4H, H)
    batch_sizes : ndarray of shape (T,), int64
    hmask : ndarray of shape (B, H) or (0, 0)
    use_mask : bool
    peep : ndarray of shape (3, H)
    gates_on : ndarray of shape (3,), int
    dgates : ndarray of shape (T, B, 4H)
        Output: pre-activation gradients (zero for finished rows).
    dh, dc : ndarray of shape (B, H)
        In: gradients with respect to ``h_n``, ``c_n``; out: with respect to ``h_0``, ``c_0``.
    dpeep : ndarray of shape (3, H)
        Output: peephole weight gradients (accumulated; zero it first).
    """
    f = "lstm_backward"
    dt = dev.compute_dtype(dy, "dy", f)
    T, B, H = dy.shape
    dev.check_shape(cs, (T + 1, B, H), "cs", f)
    dev.check_shape(acts, (T, B, 4 * H), "acts", f)
    dev.check_shape(whh, (4 * H, H), "whh", f)
    dev.check_shape(peep, (3, H), "peep", f)
    on = _flags(gates_on, f)
    dev.check_out(dgates, (T, B, 4 * H), dt, "dgates", f)
    dev.check_out(dh, (B, H), dt, "dh", f)
    dev.check_out(dc, (B, H), dt, "dc", f)
    dev.check_out(dpeep, (3, H), dt, "dpeep", f)
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    d_dgates = dev.empty((T, B, 4 * H), dt)
    d_dh, d_dc, d_dpeep = dev.to_device(dh, dt), dev.to_device(dc, dt), dev.to_device(dpeep, dt)
    lstm_backward_device(dev.to_device(dy, dt), dev.to_device(cs, dt), dev.to_device(acts, dt),
                         dev.to_device(whh, dt), bs,
                         dev.mask_to_device(hmask, use_mask, B, H, dt, f),
                         dev.to_device(peep, dt), on, d_dgates, d_dh, d_dc, d_dpeep)
    dev.copy_back(d_dgates, dgates)
    dev.copy_back(d_dh, dh)
    dev.copy_back(d_dc, dc)
    dev.copy_back(d_dpeep, dpeep)
