"""CUDA kernels of the cells with an element-wise recurrence: minGRU, minLSTM (Feng et al. 2024,
arXiv:2410.01201) and IndRNN (Li et al. 2018, arXiv:1803.04831).

Their units never read one another's state, so each kernel runs one thread per (sequence,
unit) and that thread loops over the steps itself: one launch per layer-direction and pass, the
input projections of all steps being one product before it (:mod:`._stack`). The mathematics is
that of the CPU kernels (:mod:`fastrnn.kernels.minimal`), from the same scalar functions
(:mod:`fastrnn.kernels._cellmath`, compiled for the device in :mod:`._device`).

Conventions of :mod:`._stack`: time-major arrays of the batch sorted longest first, ``lens`` the
sorted lengths on the device, ``hs`` of shape ``(T+1, B, H)`` with ``hs[0]`` the initial state.
A sequence past its length carries its state (and, backwards, its gradient) unchanged, and its
pre-activation gradients are zero there.
"""

from numba import cuda

from . import _device as dev
from ._device import mingru_ab, mingru_bwd, minlstm_ab, minlstm_bwd, rnn_act, rnn_dact


@cuda.jit
def _scan_forward(xp, lens, cand, lstm, hs):
    """minGRU (``lstm`` False) or minLSTM: ``h_t = a_t h_{t-1} + b_t`` over all steps, the
    coefficients from the pre-activations ``xp`` (T, B, G*H): z and the candidate, or f, i and the
    candidate."""
    b, j, inside = dev.unit(hs.shape[1], hs.shape[2])
    if not inside:
        return
    H = hs.shape[2]
    h = hs[0, b, j]
    for t in range(xp.shape[0]):
        if t < lens[b]:
            if lstm:
                a, c = minlstm_ab(xp[t, b, j], xp[t, b, H + j], xp[t, b, 2 * H + j], cand)
            else:
                a, c = mingru_ab(xp[t, b, j], xp[t, b, H + j], cand)
            h = a * h + c
        hs[t + 1, b, j] = h


@cuda.jit
def _scan_backward(dy, xp, hs, lens, cand, lstm, dh, dxp):
    """Backward of :func:`_scan_forward`: with ``g_t = dy_t + a_{t+1} g_{t+1}`` the gradient
    arriving at ``h_t`` (from ``dh_n``), the pre-activation gradients of every step into ``dxp``;
    ``dh`` (B, H) holds ``dh_n`` on entry and the gradient of ``h_0`` on exit."""
    b, j, inside = dev.unit(dh.shape[0], dh.shape[1])
    if not inside:
        return
    H = dh.shape[1]
    g = dh[b, j]
    for t in range(dy.shape[0] - 1, -1, -1):
        if t < lens[b]:
            g += dy[t, b, j]
            hp = hs[t, b, j]
            if lstm:
                af, ai, ah = xp[t, b, j], xp[t, b, H + j], xp[t, b, 2 * H + j]
                dxp[t, b, j], dxp[t, b, H + j], dxp[t, b, 2 * H + j] = minlstm_bwd(
                    g, af, ai, ah, hp, cand)
                a, _ = minlstm_ab(af, ai, ah, cand)
            else:
                az, ah = xp[t, b, j], xp[t, b, H + j]
                dxp[t, b, j], dxp[t, b, H + j] = mingru_bwd(g, az, ah, hp, cand)
                a, _ = mingru_ab(az, ah, cand)
            g *= a
        else:
            dxp[t, b, j] = 0
            dxp[t, b, H + j] = 0
            if lstm:
                dxp[t, b, 2 * H + j] = 0
    dh[b, j] = g


@cuda.jit
def _indrnn_forward(xp, u, hmask, use_mask, lens, relu, hs):
    """IndRNN: ``h_t = phi(xp_t + u' h_{t-1})`` over all steps, ``u'`` the unit's recurrent weight
    ``u`` (H,) times the sequence's recurrent-dropout mask (with ``use_mask``)."""
    b, j, inside = dev.unit(hs.shape[1], hs.shape[2])
    if not inside:
        return
    w = u[j]
    if use_mask:
        w *= hmask[b, j]
    h = hs[0, b, j]
    for t in range(xp.shape[0]):
        if t < lens[b]:
            h = rnn_act(xp[t, b, j] + w * h, relu)
        hs[t + 1, b, j] = h


@cuda.jit
def _indrnn_backward(dy, hs, u, hmask, use_mask, lens, relu, dh, dxp, du):
    """Backward of :func:`_indrnn_forward`: pre-activation gradients into ``dxp``, ``dh`` from
    ``dh_n`` to the gradient of ``h_0``, and ``du[b, j]`` the gradient of ``u[j]`` from sequence
    ``b`` (the mask applied), to be summed over the batch."""
    b, j, inside = dev.unit(dh.shape[0], dh.shape[1])
    if not inside:
        return
    m = hmask[b, j] if use_mask else 1.0
    w = u[j] * m
    g = dh[b, j]
    acc = 0.0 * g
    for t in range(dy.shape[0] - 1, -1, -1):
        if t < lens[b]:
            d = (g + dy[t, b, j]) * rnn_dact(hs[t + 1, b, j], relu)
            dxp[t, b, j] = d
            acc += d * hs[t, b, j]
            g = d * w
        else:
            dxp[t, b, j] = 0
    dh[b, j] = g
    du[b, j] = acc * m


# ---------------------------------------------------------------------------- device level
def scan_forward_device(xp, lens, cand, lstm, hs):
    """minGRU / minLSTM forward of one unit on device arrays; steps ``1..T`` of ``hs`` are
    written."""
    _, B, H = hs.shape
    dev.launch(_scan_forward, B, H, xp, lens, bool(cand), bool(lstm), hs)


def scan_backward_device(dy, xp, hs, lens, cand, lstm, dh, dxp):
    """minGRU / minLSTM backward of one unit on device arrays (see :func:`_scan_backward`)."""
    B, H = dh.shape
    dev.launch(_scan_backward, B, H, dy, xp, hs, lens, bool(cand), bool(lstm), dh, dxp)


def indrnn_forward_device(xp, u, hmask, lens, relu, hs):
    """IndRNN forward of one unit on device arrays (``hmask`` None for no mask)."""
    _, B, H = hs.shape
    use = hmask is not None
    dev.launch(_indrnn_forward, B, H, xp, u, hmask if use else hs[0], use, lens, bool(relu), hs)


def indrnn_backward_device(dy, hs, u, hmask, lens, relu, dh, dxp, du):
    """IndRNN backward of one unit on device arrays (see :func:`_indrnn_backward`)."""
    B, H = dh.shape
    use = hmask is not None
    dev.launch(_indrnn_backward, B, H, dy, hs, u, hmask if use else dh, use, lens, bool(relu), dh,
               dxp, du)
