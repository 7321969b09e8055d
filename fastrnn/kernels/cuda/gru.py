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
    j, b = cuda.grid(2)
    B, H = hs.shape[1], hs.shape[2]
    if b >= B or j >= H:
        return
    if b < n_:
        hn = a[b, 2 * H + j] + bhh[2 * H + j]
        r, z, n, h = gru_fwd(xp[t, b, j] + a[b, j] + bhh[j],
                             xp[t, b, H + j] + a[b, H + j] + bhh[H + j],
                             xp[t, b, 2 * H + j], hn, hs[t, b, j])
        acts[t, b, j] = r
        acts[t, b, H + j] = z
        acts[t, b, 2 * H + j] = n
        acts[t, b, 3 * H + j] = hn
        hs[t + 1, b, j] = h
    else:
        hs[t + 1, b, j] = hs[t, b, j]
        for k in range(4):
            acts[t, b, k * H + j] = 0


@cuda.jit
def _bwd_cell(t, n_, dy, hs, acts, dh, dxp, dhp, ddirect):
    j, b = cuda.grid(2)
    B, H = dh.shape[0], dh.shape[1]
    if b >= B or j >= H:
        return
    if b < n_:
        dar, daz, dan, dhn, dd = gru_bwd(dh[b, j] + dy[t, b, j], acts[t, b, j], acts[t, b, H + j],
                                         acts[t, b, 2 * H + j], acts[t, b, 3 * H + j], hs[t, b, j])
        dxp[t, b, j] = dar
        dxp[t, b, H + j] = daz
        dxp[t, b, 2 * H + j] = dan
        dhp[t, b, j] = dar
        dhp[t, b, H + j] = daz
        dhp[t, b, 2 * H + j] = dhn
        ddirect[b, j] = dd
    else:
        for k in range(3):
            dxp[t, b, k * H + j] = 0
            dhp[t, b, k * H + j] = 0


def gru_forward_device(xp, whh, bhh, batch_sizes, hmask, hs, acts, a):
    """GRU forward (reset after) on device arrays.

    Parameters
    ----------
    xp : device array of shape (T, B, 3H)
        Input projections plus ``b_ih`` only.
    whh : device array of shape (3H, H)
        Recurrent weights ``W_hh`` (PyTorch layout; the product uses ``W_hh^T``).
    bhh : device array of shape (3H,)
    batch_sizes : ndarray of shape (T,), int64
        Host array.
    hmask : device array of shape (B, H) or None
    hs : device array of shape (T+1, B, H)
        ``hs[0]`` holds ``h_0``; steps ``1..T`` are written.
    acts : device array of shape (T, B, 4H)
        Output cache ``r, z, n`` and ``W_hn h + b_hn``.
    a : device array of shape (B, 3H)
        Scratch.
    """
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
    """GRU forward (reset after), on the GPU.

    Parameters
    ----------
    xp : ndarray of shape (T, B, 3H)
        Input projections plus ``b_ih`` only (``b_hh`` is inside the reset product).
    whh_t : ndarray of shape (H, 3H)
    bhh : ndarray of shape (3H,)
    batch_sizes : ndarray of shape (T,), int64
    hmask : ndarray of shape (B, H) or (0, 0)
    use_mask : bool
    hs : ndarray of shape (T+1, B, H)
        Output states; ``hs[0]`` holds ``h_0``.
    acts : ndarray of shape (T, B, 4H)
        Output cache: ``r, z, n`` and the recurrent part of the candidate ``W_hn h + b_hn``
        (zero in the rows of finished sequences).
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 3H)
        Unused (scratch lives on the device).
    """
    f = "gru_forward"
    dt = dev.compute_dtype(xp, "xp", f)
    T, B, G = xp.shape
    H = G // 3
    dev.check_shape(xp, (T, B, 3 * H), "xp", f, "The last axis holds the 3 gates, 3*hidden_size.")
    dev.check_shape(whh_t, (H, 3 * H), "whh_t", f)
    dev.check_shape(bhh, (3 * H,), "bhh", f)
    dev.check_out(hs, (T + 1, B, H), dt, "hs", f)
    dev.check_out(acts, (T, B, 4 * H), dt, "acts", f)
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    d_hs = dev.states_to_device(hs, dt)
    d_acts = dev.empty((T, B, 4 * H), dt)
    gru_forward_device(dev.to_device(xp, dt), dev.to_device_t(whh_t, dt), dev.to_device(bhh, dt),
                       bs,
                       dev.mask_to_device(hmask, use_mask, B, H, dt, f), d_hs, d_acts,
                       dev.empty((B, 3 * H), dt))
    dev.copy_back(d_hs, hs)
    dev.copy_back(d_acts, acts)


def gru_backward(dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh, ddirect):
    """GRU backward (reset after), on the GPU.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
    hs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 4H)
    whh : ndarray of shape (3H, H)
    batch_sizes : ndarray of shape (T,), int64
    hmask : ndarray of shape (B, H) or (0, 0)
    use_mask : bool
    dxp : ndarray of shape (T, B, 3H)
        Output: gradients of the input projections (for ``W_ih``, ``b_ih`` and the input).
    dhp : ndarray of shape (T, B, 3H)
        Output: gradients of the recurrent products (for ``W_hh``, ``b_hh``).
    dh : ndarray of shape (B, H)
        In: gradient w.r.t. ``h_n``; out: w.r.t. ``h_0``.
    ddirect : ndarray of shape (B, H)
        Unused (scratch lives on the device).
    """
    f = "gru_backward"
    dt = dev.compute_dtype(dy, "dy", f)
    T, B, H = dy.shape
    dev.check_shape(hs, (T + 1, B, H), "hs", f)
    dev.check_shape(acts, (T, B, 4 * H), "acts", f)
    dev.check_shape(whh, (3 * H, H), "whh", f)
    dev.check_out(dxp, (T, B, 3 * H), dt, "dxp", f)
    dev.check_out(dhp, (T, B, 3 * H), dt, "dhp", f)
    dev.check_out(dh, (B, H), dt, "dh", f)
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    d_dxp, d_dhp = dev.empty((T, B, 3 * H), dt), dev.empty((T, B, 3 * H), dt)
    d_dh = dev.to_device(dh, dt)
    gru_backward_device(dev.to_device(dy, dt), dev.to_device(hs, dt), dev.to_device(acts, dt),
                        dev.to_device(whh, dt), bs,
                        dev.mask_to_device(hmask, use_mask, B, H, dt, f),
                        d_dxp, d_dhp, d_dh, dev.empty((B, H), dt))
    dev.copy_back(d_dxp, dxp)
    dev.copy_back(d_dhp, dhp)
    dev.copy_back(d_dh, dh)


# ---------------------------------------------------------------------------- reset before (v1)
@cuda.jit
def _v1_fwd_gates(t, n_, xp, a, hs, hmask, use_mask, acts, rh):
    """r and z of step t, and the candidate's recurrent input ``r * h_in``."""
    j, b = cuda.grid(2)
    B, H = hs.shape[1], hs.shape[2]
    if b >= B or j >= H:
        return
    if b < n_:
        hin = hs[t, b, j]
        if use_mask:
            hin *= hmask[b, j]
        r, z, rhv = gru_v1_gates(xp[t, b, j] + a[b, j], xp[t, b, H + j] + a[b, H + j], hin)
        acts[t, b, j] = r
        acts[t, b, H + j] = z
        rh[t, b, j] = rhv
    else:
        rh[t, b, j] = 0


@cuda.jit
def _v1_fwd_state(t, n_, xp, an, hs, acts):
    """The candidate and the new state of step t."""
    j, b = cuda.grid(2)
    B, H = hs.shape[1], hs.shape[2]
    if b >= B or j >= H:
        return
    if b < n_:
        n, h = gru_v1_state(xp[t, b, 2 * H + j] + an[b, j], acts[t, b, H + j], hs[t, b, j])
        acts[t, b, 2 * H + j] = n
        hs[t + 1, b, j] = h
    else:
        hs[t + 1, b, j] = hs[t, b, j]
        for k in range(3):
            acts[t, b, k * H + j] = 0


@cuda.jit
def _v1_bwd_zn(t, n_, dy, hs, acts, dh, drz, dn, ddirect):
    """Gradients through the update gate and the candidate's tanh."""
    j, b = cuda.grid(2)
    B, H = dh.shape[0], dh.shape[1]
    if b >= B or j >= H or b >= n_:
        return
    daz, dan, dd = gru_v1_bwd_zn(dh[b, j] + dy[t, b, j], acts[t, b, H + j], acts[t, b, 2 * H + j],
                                 hs[t, b, j])
    drz[b, H + j] = daz
    dn[b, j] = dan
    ddirect[b, j] = dd


@cuda.jit
def _v1_bwd_r(t, n_, hs, acts, hmask, use_mask, drh, drz):
    """Gradient of the reset gate's pre-activation, from the gradient of ``r * h_in``."""
    j, b = cuda.grid(2)
    B, H = drh.shape[0], hs.shape[2]
    if b >= B or j >= H or b >= n_:
        return
    r = acts[t, b, j]
    hin = hs[t, b, j]
    if use_mask:
        hin *= hmask[b, j]
    drz[b, j] = gru_v1_bwd_r(drh[b, j], r, hin)


@cuda.jit
def _v1_bwd_out(t, n_, acts, hmask, use_mask, dhin, drh, ddirect, drz, dn, dh, dgates):
    """The gradient of ``h_{t-1}`` and the pre-activation gradients of step t."""
    j, b = cuda.grid(2)
    B, H = dh.shape[0], dh.shape[1]
    if b >= B or j >= H:
        return
    if b < n_:
        v = dhin[b, j] + drh[b, j] * acts[t, b, j]
        if use_mask:
            v *= hmask[b, j]
        dh[b, j] = v + ddirect[b, j]
        dgates[t, b, j] = drz[b, j]
        dgates[t, b, H + j] = drz[b, H + j]
        dgates[t, b, 2 * H + j] = dn[b, j]
    else:
        for k in range(3):
            dgates[t, b, k * H + j] = 0


def gru_v1_forward_device(xp, whh_rz, whh_n, batch_sizes, hmask, hs, acts, rh, a, an):
    """GRU forward in the original form on device arrays.

    Parameters
    ----------
    xp : device array of shape (T, B, 3H)
        Input projections plus both biases.
    whh_rz : device array of shape (2H, H)
        Recurrent weights of the r and z gates (rows ``:2H`` of ``W_hh``, PyTorch layout).
    whh_n : device array of shape (H, H)
        Recurrent weights of the candidate (rows ``2H:`` of ``W_hh``).
    batch_sizes : ndarray of shape (T,), int64
        Host array.
    hmask : device array of shape (B, H) or None
    hs : device array of shape (T+1, B, H)
    acts : device array of shape (T, B, 3H)
        Output cache ``r, z, n``.
    rh : device array of shape (T, B, H)
        Output cache ``r_t * h_{t-1}`` (after the mask); zero for finished rows.
    a : device array of shape (B, 2H)
    an : device array of shape (B, H)
        Scratch.
    """
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
    """GRU forward in the original form (reset before the product), on the GPU.

    Parameters
    ----------
    xp : ndarray of shape (T, B, 3H)
        Input projections plus both biases (all biases are outside the reset gate in this form).
    whh_rz_t : ndarray of shape (H, 2H)
        Transposed recurrent weights of the r and z gates.
    whh_n_t : ndarray of shape (H, H)
        Transposed recurrent weights of the candidate.
    batch_sizes : ndarray of shape (T,), int64
    hmask : ndarray of shape (B, H) or (0, 0)
    use_mask : bool
    hs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 3H)
        Output cache ``r, z, n`` (zero in the rows of finished sequences).
    rh : ndarray of shape (T, B, H)
        Output cache: ``r_t * h_{t-1}`` (after the dropout mask), the input of ``W_hn``.
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 2H)
    an : ndarray of shape (B, H)
        Unused (scratch lives on the device).
    """
    f = "gru_v1_forward"
    dt = dev.compute_dtype(xp, "xp", f)
    T, B, G = xp.shape
    H = G // 3
    dev.check_shape(xp, (T, B, 3 * H), "xp", f, "The last axis holds the 3 gates, 3*hidden_size.")
    dev.check_shape(whh_rz_t, (H, 2 * H), "whh_rz_t", f)
    dev.check_shape(whh_n_t, (H, H), "whh_n_t", f)
    dev.check_out(hs, (T + 1, B, H), dt, "hs", f)
    dev.check_out(acts, (T, B, 3 * H), dt, "acts", f)
    dev.check_out(rh, (T, B, H), dt, "rh", f)
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    d_hs = dev.states_to_device(hs, dt)
    d_acts, d_rh = dev.empty((T, B, 3 * H), dt), dev.empty((T, B, H), dt)
    gru_v1_forward_device(dev.to_device(xp, dt), dev.to_device_t(whh_rz_t, dt),
                          dev.to_device_t(whh_n_t, dt), bs,
                          dev.mask_to_device(hmask, use_mask, B, H, dt, f), d_hs, d_acts, d_rh,
                          dev.empty((B, 2 * H), dt), dev.empty((B, H), dt))
    dev.copy_back(d_hs, hs)
    dev.copy_back(d_acts, acts)
    dev.copy_back(d_rh, rh)


def gru_v1_backward(dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates, dh,
                    dn, drz, drh, dhin, ddirect):
    """GRU backward in the original form, on the GPU.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
    hs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 3H)
    whh_rz : ndarray of shape (2H, H)
    whh_n : ndarray of shape (H, H)
    batch_sizes : ndarray of shape (T,), int64
    hmask : ndarray of shape (B, H) or (0, 0)
    use_mask : bool
    dgates : ndarray of shape (T, B, 3H)
        Output: pre-activation gradients (the same for the input and the recurrent side).
    dh : ndarray of shape (B, H)
        In: gradient w.r.t. ``h_n``; out: w.r.t. ``h_0``.
    dn, drh, dhin, ddirect : ndarray of shape (B, H)
    drz : ndarray of shape (B, 2H)
        Unused (scratch lives on the device).
    """
    f = "gru_v1_backward"
    dt = dev.compute_dtype(dy, "dy", f)
    T, B, H = dy.shape
    dev.check_shape(hs, (T + 1, B, H), "hs", f)
    dev.check_shape(acts, (T, B, 3 * H), "acts", f)
    dev.check_shape(whh_rz, (2 * H, H), "whh_rz", f)
    dev.check_shape(whh_n, (H, H), "whh_n", f)
    dev.check_out(dgates, (T, B, 3 * H), dt, "dgates", f)
    dev.check_out(dh, (B, H), dt, "dh", f)
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    d_dgates = dev.empty((T, B, 3 * H), dt)
    d_dh = dev.to_device(dh, dt)
    scratch = [dev.empty((B, k * H), dt) for k in (1, 2, 1, 1, 1)]
    gru_v1_backward_device(dev.to_device(dy, dt), dev.to_device(hs, dt), dev.to_device(acts, dt),
                           dev.to_device(whh_rz, dt), dev.to_device(whh_n, dt), bs,
                           dev.mask_to_device(hmask, use_mask, B, H, dt, f), d_dgates, d_dh,
                           *scratch)
    dev.copy_back(d_dgates, dgates)
    dev.copy_back(d_dh, dh)
