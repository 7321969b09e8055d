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
    """The gates, cell and state of step t; finished rows carry their state and cache no gate."""
    b, j, inside = dev.unit(hs.shape[1], hs.shape[2])
    H = hs.shape[2]
    if inside and b < n:
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
    elif inside:
        dev.carry(hs, t, b, j)
        dev.carry(cs, t, b, j)
        dev.zero_gates(acts, t, b, j, 4)


@cuda.jit
def _bwd_cell(t, n, dy, cs, acts, peep, on_i, on_f, on_o, dh, dc, dgates):
    """The pre-activation gradients of step t and the gradient of ``c_{t-1}`` (zero gradients
    for finished rows)."""
    b, j, inside = dev.unit(dh.shape[0], dh.shape[1])
    H = dh.shape[1]
    if inside and b < n:
        dai, daf, dag, dao, dcp = lstm_bwd(
            dh[b, j] + dy[t, b, j], dc[b, j], acts[t, b, j], acts[t, b, H + j],
            acts[t, b, 2 * H + j], acts[t, b, 3 * H + j], cs[t + 1, b, j], cs[t, b, j],
            peep[0, j], peep[1, j], peep[2, j], on_i, on_f, on_o)
        dgates[t, b, j] = dai
        dgates[t, b, H + j] = daf
        dgates[t, b, 2 * H + j] = dag
        dgates[t, b, 3 * H + j] = dao
        dc[b, j] = dcp
    elif inside:
        dev.zero_gates(dgates, t, b, j, 4)


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
    """LSTM forward on device arrays: the arguments of :func:`lstm_forward`, with ``whh`` the
    recurrent weights ``W_hh`` (4H, H) themselves, ``gates_on`` a tuple of 3 bool,
    ``batch_sizes`` on the host, ``hmask`` ``None`` for no mask and ``a`` (B, 4H) the one scratch
    array. Steps ``1..T`` of ``hs`` and ``cs``, and ``acts``, are written."""
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
    """LSTM forward over all steps, on the GPU: the arguments and results of
    :func:`fastrnn.kernels.lstm.lstm_forward`."""
    f = "lstm_forward"
    dt, T, B, H = dev.sizes(f, xp, "xp", 4)
    on = _flags(gates_on, f)
    bs = dev.check_args(f, dt, batch_sizes, T, B,
                        inputs=[(xp, (T, B, 4 * H), "xp", dev.gates_hint(4)),
                                (whh_t, (H, 4 * H), "whh_t"), (peep, (3, H), "peep")],
                        outputs=[(hs, (T + 1, B, H), "hs"), (cs, (T + 1, B, H), "cs"),
                                 (acts, (T, B, 4 * H), "acts")])
    d_hs, d_cs = dev.states_to_device(hs, dt), dev.states_to_device(cs, dt)
    d_acts = dev.empty((T, B, 4 * H), dt)
    lstm_forward_device(dev.to_device(xp, dt), dev.to_device_t(whh_t, dt), bs,
                        dev.mask_to_device(hmask, use_mask, B, H, dt, f), dev.to_device(peep, dt),
                        on, d_hs, d_cs, d_acts, dev.empty((B, 4 * H), dt))
    dev.copy_back((d_hs, hs), (d_cs, cs), (d_acts, acts))


def lstm_backward(dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, gates_on,
                  dgates, dh, dc, dpeep):
    """LSTM backward through time, on the GPU: the arguments and results of
    :func:`fastrnn.kernels.lstm.lstm_backward`."""
    f = "lstm_backward"
    dt, T, B, H = dev.sizes(f, dy, "dy")
    on = _flags(gates_on, f)
    bs = dev.check_args(f, dt, batch_sizes, T, B,
                        inputs=[(cs, (T + 1, B, H), "cs"), (acts, (T, B, 4 * H), "acts"),
                                (whh, (4 * H, H), "whh"), (peep, (3, H), "peep")],
                        outputs=[(dgates, (T, B, 4 * H), "dgates"), (dh, (B, H), "dh"),
                                 (dc, (B, H), "dc"), (dpeep, (3, H), "dpeep")])
    d_dgates = dev.empty((T, B, 4 * H), dt)
    d_dh, d_dc, d_dpeep = dev.to_device(dh, dt), dev.to_device(dc, dt), dev.to_device(dpeep, dt)
    lstm_backward_device(dev.to_device(dy, dt), dev.to_device(cs, dt), dev.to_device(acts, dt),
                         dev.to_device(whh, dt), bs,
                         dev.mask_to_device(hmask, use_mask, B, H, dt, f),
                         dev.to_device(peep, dt), on, d_dgates, d_dh, d_dc, d_dpeep)
    dev.copy_back((d_dgates, dgates), (d_dh, dh), (d_dc, dc), (d_dpeep, dpeep))
