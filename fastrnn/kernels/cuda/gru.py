"""CUDA kernels of the GRU (gate order r, z, n), both forms.

Same host-level signatures and semantics as :mod:`fastrnn.kernels.gru`: ``gru_forward`` /
``gru_backward`` apply the reset gate after the recurrent product (``reset_after=True``),
``gru_v1_forward`` / ``gru_v1_backward`` before it (the original form, two products per step).
Data movement and the ``*_device`` functions: see :mod:`fastrnn.kernels.cuda.rnn`.

On the device, ``acts`` is set to zero in the rows of finished sequences (the CPU kernels leave
those rows untouched; nothing reads them).
"""

from numba import cuda

from . import _device as dev
from ._device import gru_bwd, gru_fwd, gru_v1_bwd_r, gru_v1_bwd_zn, gru_v1_gates, gru_v1_state
from ._matmul import gemm


# ---------------------------------------------------------------------------- reset after
@cuda.jit
def _fwd_cell(t, n_, xp, a, bhh, hs, acts):
    """r, z, n, the candidate's recurrent part ``W_hn h + b_hn`` and the state of step t;
    finished rows carry their state and cache nothing."""
    b, j, inside = dev.unit(hs.shape[1], hs.shape[2])
    H = hs.shape[2]
    if inside and b < n_:
        hn = a[b, 2 * H + j] + bhh[2 * H + j]
        r, z, n, h = gru_fwd(xp[t, b, j] + a[b, j] + bhh[j],
                             xp[t, b, H + j] + a[b, H + j] + bhh[H + j],
                             xp[t, b, 2 * H + j], hn, hs[t, b, j])
        acts[t, b, j] = r
        acts[t, b, H + j] = z
        acts[t, b, 2 * H + j] = n
        acts[t, b, 3 * H + j] = hn
        hs[t + 1, b, j] = h
    elif inside:
        dev.carry(hs, t, b, j)
        dev.zero_gates(acts, t, b, j, 4)


@cuda.jit
def _bwd_cell(t, n_, dy, hs, acts, dh, dxp, dhp, ddirect):
    """The gradients of step t's input and recurrent products, and the direct gradient of
    ``h_{t-1}`` through the update gate (zero gradients for finished rows)."""
    b, j, inside = dev.unit(dh.shape[0], dh.shape[1])
    H = dh.shape[1]
    if inside and b < n_:
        dar, daz, dan, dhn, dd = gru_bwd(dh[b, j] + dy[t, b, j], acts[t, b, j], acts[t, b, H + j],
                                         acts[t, b, 2 * H + j], acts[t, b, 3 * H + j], hs[t, b, j])
        dxp[t, b, j] = dar
        dxp[t, b, H + j] = daz
        dxp[t, b, 2 * H + j] = dan
        dhp[t, b, j] = dar
        dhp[t, b, H + j] = daz
        dhp[t, b, 2 * H + j] = dhn
        ddirect[b, j] = dd
    elif inside:
        dev.zero_gates(dxp, t, b, j, 3)
        dev.zero_gates(dhp, t, b, j, 3)


def gru_forward_device(xp, whh, bhh, batch_sizes, hmask, hs, acts, a):
    """GRU forward (reset after) on device arrays: the arguments of :func:`gru_forward`, with
    ``whh`` the recurrent weights ``W_hh`` (3H, H) themselves, ``batch_sizes`` on the host,
    ``hmask`` ``None`` for no mask and ``a`` (B, 3H) the one scratch array. Steps ``1..T`` of
    ``hs``, and ``acts``, are written."""
    T, B, G = xp.shape
    H = G // 3
    for t in range(T):
        n_ = int(batch_sizes[t])
        gemm(n_, hs[t], whh, a, amask=hmask, trans_b=True)
        dev.launch(_fwd_cell, B, H, t, n_, xp, a, bhh, hs, acts)


def gru_backward_device(dy, hs, acts, whh, batch_sizes, hmask, dxp, dhp, dh, ddirect):
    """GRU backward (reset after) on device arrays (shapes as :func:`gru_backward`; ``hmask`` may be
    ``None``). ``dxp``, ``dhp`` are written, ``dh`` updated; ``ddirect`` (B, H) is scratch."""
    T, B, H = dy.shape
    for t in range(T - 1, -1, -1):
        n_ = int(batch_sizes[t])
        dev.launch(_bwd_cell, B, H, t, n_, dy, hs, acts, dh, dxp, dhp, ddirect)
        # dh = (dhp @ W_hh) * mask + the direct path through the update gate
        gemm(n_, dhp[t], whh, dh, cmask=hmask, add=ddirect)


def gru_forward(xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a):
    """GRU forward (reset after), on the GPU: the arguments and results of
    :func:`fastrnn.kernels.gru.gru_forward`."""
    f = "gru_forward"
    dt, T, B, H = dev.sizes(f, xp, "xp", 3)
    bs = dev.check_args(f, dt, batch_sizes, T, B,
                        inputs=[(xp, (T, B, 3 * H), "xp", dev.gates_hint(3)),
                                (whh_t, (H, 3 * H), "whh_t"), (bhh, (3 * H,), "bhh")],
                        outputs=[(hs, (T + 1, B, H), "hs"), (acts, (T, B, 4 * H), "acts")])
    d_hs = dev.states_to_device(hs, dt)
    d_acts = dev.empty((T, B, 4 * H), dt)
    gru_forward_device(dev.to_device(xp, dt), dev.to_device_t(whh_t, dt), dev.to_device(bhh, dt),
                       bs, dev.mask_to_device(hmask, use_mask, B, H, dt, f), d_hs, d_acts,
                       dev.empty((B, 3 * H), dt))
    dev.copy_back((d_hs, hs), (d_acts, acts))


def gru_backward(dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh, ddirect):
    """GRU backward (reset after), on the GPU: the arguments and results of
    :func:`fastrnn.kernels.gru.gru_backward`."""
    f = "gru_backward"
    dt, T, B, H = dev.sizes(f, dy, "dy")
    bs = dev.check_args(f, dt, batch_sizes, T, B,
                        inputs=[(hs, (T + 1, B, H), "hs"), (acts, (T, B, 4 * H), "acts"),
                                (whh, (3 * H, H), "whh")],
                        outputs=[(dxp, (T, B, 3 * H), "dxp"), (dhp, (T, B, 3 * H), "dhp"),
                                 (dh, (B, H), "dh")])
    d_dxp, d_dhp = dev.empty((T, B, 3 * H), dt), dev.empty((T, B, 3 * H), dt)
    d_dh = dev.to_device(dh, dt)
    gru_backward_device(dev.to_device(dy, dt), dev.to_device(hs, dt), dev.to_device(acts, dt),
                        dev.to_device(whh, dt), bs,
                        dev.mask_to_device(hmask, use_mask, B, H, dt, f),
                        d_dxp, d_dhp, d_dh, dev.empty((B, H), dt))
    dev.copy_back((d_dxp, dxp), (d_dhp, dhp), (d_dh, dh))


# ---------------------------------------------------------------------------- reset before (v1)
@cuda.jit
def _v1_fwd_gates(t, n_, xp, a, hs, hmask, use_mask, acts, rh):
    """r and z of step t, and the candidate's recurrent input ``r * h_in``."""
    b, j, inside = dev.unit(hs.shape[1], hs.shape[2])
    H = hs.shape[2]
    if inside and b < n_:
        hin = dev.masked_state(hs, t, b, j, hmask, use_mask)
        r, z, rhv = gru_v1_gates(xp[t, b, j] + a[b, j], xp[t, b, H + j] + a[b, H + j], hin)
        acts[t, b, j] = r
        acts[t, b, H + j] = z
        rh[t, b, j] = rhv
    elif inside:
        rh[t, b, j] = 0


@cuda.jit
def _v1_fwd_state(t, n_, xp, an, hs, acts):
    """The candidate and the new state of step t."""
    b, j, inside = dev.unit(hs.shape[1], hs.shape[2])
    H = hs.shape[2]
    if inside and b < n_:
        n, h = gru_v1_state(xp[t, b, 2 * H + j] + an[b, j], acts[t, b, H + j], hs[t, b, j])
        acts[t, b, 2 * H + j] = n
        hs[t + 1, b, j] = h
    elif inside:
        dev.carry(hs, t, b, j)
        dev.zero_gates(acts, t, b, j, 3)


@cuda.jit
def _v1_bwd_zn(t, n_, dy, hs, acts, dh, drz, dn, ddirect):
    """Gradients through the update gate and the candidate's tanh."""
    b, j, inside = dev.unit(n_, dh.shape[1])
    H = dh.shape[1]
    if inside:
        daz, dan, dd = gru_v1_bwd_zn(dh[b, j] + dy[t, b, j], acts[t, b, H + j],
                                     acts[t, b, 2 * H + j], hs[t, b, j])
        drz[b, H + j] = daz
        dn[b, j] = dan
        ddirect[b, j] = dd


@cuda.jit
def _v1_bwd_r(t, n_, hs, acts, hmask, use_mask, drh, drz):
    """Gradient of the reset gate's pre-activation, from the gradient of ``r * h_in``."""
    b, j, inside = dev.unit(n_, hs.shape[2])
    if inside:
        r = acts[t, b, j]
        drz[b, j] = gru_v1_bwd_r(drh[b, j], r, dev.masked_state(hs, t, b, j, hmask, use_mask))


@cuda.jit
def _v1_bwd_out(t, n_, acts, hmask, use_mask, dhin, drh, ddirect, drz, dn, dh, dgates):
    """The gradient of ``h_{t-1}`` and the pre-activation gradients of step t."""
    b, j, inside = dev.unit(dh.shape[0], dh.shape[1])
    H = dh.shape[1]
    if inside and b < n_:
        v = dhin[b, j] + drh[b, j] * acts[t, b, j]
        if use_mask:
            v *= hmask[b, j]
        dh[b, j] = v + ddirect[b, j]
        dgates[t, b, j] = drz[b, j]
        dgates[t, b, H + j] = drz[b, H + j]
        dgates[t, b, 2 * H + j] = dn[b, j]
    elif inside:
        dev.zero_gates(dgates, t, b, j, 3)


def gru_v1_forward_device(xp, whh_rz, whh_n, batch_sizes, hmask, hs, acts, rh, a, an):
    """GRU forward in the original form on device arrays: the arguments of
    :func:`gru_v1_forward`, with ``whh_rz`` and ``whh_n`` the rows ``:2H`` and ``2H:`` of the
    recurrent weights ``W_hh`` themselves, ``batch_sizes`` on the host, ``hmask`` ``None`` for no
    mask and ``a`` (B, 2H), ``an`` (B, H) the scratch arrays. Steps ``1..T`` of ``hs``, ``acts``
    and ``rh`` (zero for finished rows) are written."""
    T, B, G = xp.shape
    H = G // 3
    use_mask = hmask is not None
    m = hmask if use_mask else an  # never read without the mask; any 2-D array of the dtype
    for t in range(T):
        n_ = int(batch_sizes[t])
        gemm(n_, hs[t], whh_rz, a, amask=hmask, trans_b=True)
        dev.launch(_v1_fwd_gates, B, H, t, n_, xp, a, hs, m, use_mask, acts, rh)
        gemm(n_, rh[t], whh_n, an, trans_b=True)
        dev.launch(_v1_fwd_state, B, H, t, n_, xp, an, hs, acts)


def gru_v1_backward_device(dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, dgates, dh,
                           dn, drz, drh, dhin, ddirect):
    """GRU backward in the original form on device arrays (shapes as :func:`gru_v1_backward`;
    ``hmask`` may be ``None``). ``dgates`` is written, ``dh`` updated; the rest is scratch."""
    T, B, H = dy.shape
    use_mask = hmask is not None
    m = hmask if use_mask else dn
    for t in range(T - 1, -1, -1):
        n_ = int(batch_sizes[t])
        dev.launch(_v1_bwd_zn, B, H, t, n_, dy, hs, acts, dh, drz, dn, ddirect)
        gemm(n_, dn, whh_n, drh)
        dev.launch(_v1_bwd_r, B, H, t, n_, hs, acts, m, use_mask, drh, drz)
        gemm(n_, drz, whh_rz, dhin)
        dev.launch(_v1_bwd_out, B, H, t, n_, acts, m, use_mask, dhin, drh, ddirect, drz, dn, dh,
                   dgates)


def gru_v1_forward(xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh, hin, a, an):
    """GRU forward in the original form (reset before the product), on the GPU: the arguments and
    results of :func:`fastrnn.kernels.gru.gru_v1_forward`."""
    f = "gru_v1_forward"
    dt, T, B, H = dev.sizes(f, xp, "xp", 3)
    bs = dev.check_args(f, dt, batch_sizes, T, B,
                        inputs=[(xp, (T, B, 3 * H), "xp", dev.gates_hint(3)),
                                (whh_rz_t, (H, 2 * H), "whh_rz_t"), (whh_n_t, (H, H), "whh_n_t")],
                        outputs=[(hs, (T + 1, B, H), "hs"), (acts, (T, B, 3 * H), "acts"),
                                 (rh, (T, B, H), "rh")])
    d_hs = dev.states_to_device(hs, dt)
    d_acts, d_rh = dev.empty((T, B, 3 * H), dt), dev.empty((T, B, H), dt)
    gru_v1_forward_device(dev.to_device(xp, dt), dev.to_device_t(whh_rz_t, dt),
                          dev.to_device_t(whh_n_t, dt), bs,
                          dev.mask_to_device(hmask, use_mask, B, H, dt, f), d_hs, d_acts, d_rh,
                          dev.empty((B, 2 * H), dt), dev.empty((B, H), dt))
    dev.copy_back((d_hs, hs), (d_acts, acts), (d_rh, rh))


def gru_v1_backward(dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates, dh,
                    dn, drz, drh, dhin, ddirect):
    """GRU backward in the original form, on the GPU: the arguments and results of
    :func:`fastrnn.kernels.gru.gru_v1_backward`."""
    f = "gru_v1_backward"
    dt, T, B, H = dev.sizes(f, dy, "dy")
    bs = dev.check_args(f, dt, batch_sizes, T, B,
                        inputs=[(hs, (T + 1, B, H), "hs"), (acts, (T, B, 3 * H), "acts"),
                                (whh_rz, (2 * H, H), "whh_rz"), (whh_n, (H, H), "whh_n")],
                        outputs=[(dgates, (T, B, 3 * H), "dgates"), (dh, (B, H), "dh")])
    d_dgates = dev.empty((T, B, 3 * H), dt)
    d_dh = dev.to_device(dh, dt)
    scratch = [dev.empty((B, k * H), dt) for k in (1, 2, 1, 1, 1)]
    gru_v1_backward_device(dev.to_device(dy, dt), dev.to_device(hs, dt), dev.to_device(acts, dt),
                           dev.to_device(whh_rz, dt), dev.to_device(whh_n, dt), bs,
                           dev.mask_to_device(hmask, use_mask, B, H, dt, f), d_dgates, d_dh,
                           *scratch)
    dev.copy_back((d_dgates, dgates), (d_dh, dh))
