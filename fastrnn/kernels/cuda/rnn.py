"""CUDA kernels of the simple (Elman) RNN.

Same host-level signatures and semantics as :mod:`fastrnn.kernels.rnn` (whose docstring has the
conventions: time-major arrays, ``batch_sizes``, ``hs[0]`` as the initial state, ``hmask``...).

Each host-level function copies its inputs to the device once, runs the whole time loop there and
copies its outputs back once, into the host arrays passed in. The loop itself is in the ``*_device``
functions, which take device arrays and the recurrent weights in the PyTorch layout ``(G*H, H)``
(the product reads them transposed): :mod:`._stack`, which runs a whole layer call on the device,
calls them directly, and the host-level functions are thin wrappers around them. Per step the
forward launches the tiled recurrent product (:func:`._matmul.gemm`, the dropout mask fused into
it) and one element-wise cell kernel; the backward the other way round. The host-level scratch
arguments (``hin``, ``a``) are accepted for signature compatibility and not used: scratch lives on
the device.
"""

from numba import cuda

from . import _device as dev
from ._device import rnn_act, rnn_dact
from ._matmul import gemm


@cuda.jit
def _fwd_cell(t, n, xp, a, hs, relu):
    j, b = cuda.grid(2)
    B, H = hs.shape[1], hs.shape[2]
    if b >= B or j >= H:
        return
    if b < n:
        hs[t + 1, b, j] = rnn_act(xp[t, b, j] + a[b, j], relu)
    else:
        hs[t + 1, b, j] = hs[t, b, j]


@cuda.jit
def _bwd_cell(t, n, dy, hs, dh, relu, dgates):
    j, b = cuda.grid(2)
    B, H = dh.shape[0], dh.shape[1]
    if b >= B or j >= H:
        return
    if b < n:
        dgates[t, b, j] = (dh[b, j] + dy[t, b, j]) * rnn_dact(hs[t + 1, b, j], relu)
    else:
        dgates[t, b, j] = 0


# ---------------------------------------------------------------------------- device level
def rnn_forward_device(xp, whh, batch_sizes, hmask, relu, hs, a):
    """Simple RNN forward on device arrays.

    Parameters
    ----------
    xp : device array of shape (T, B, H)
        Input projections plus both biases.
    whh : device array of shape (H, H)
        Recurrent weights ``W_hh`` (PyTorch layout; the product uses ``W_hh^T``).
    batch_sizes : ndarray of shape (T,), int64
        Host array (it sets the launch sizes).
    hmask : device array of shape (B, H) or None
        Recurrent-dropout mask; ``None`` for none.
    relu : bool
    hs : device array of shape (T+1, B, H)
        ``hs[0]`` holds ``h_0``; steps ``1..T`` are written.
    a : device array of shape (B, H)
        Scratch.
    """
    T, B, H = xp.shape
    for t in range(T):
        n = int(batch_sizes[t])
        gemm(n, hs[t], whh, a, amask=hmask, trans_b=True)
        dev.launch(_fwd_cell, B, H, t, n, xp, a, hs, bool(relu))


def rnn_backward_device(dy, hs, whh, batch_sizes, hmask, relu, dgates, dh):
    """Simple RNN backward on device arrays (shapes as :func:`rnn_backward`; ``hmask`` may be
    ``None``). ``dgates`` is written; ``dh`` is updated in place."""
    T, B, H = dy.shape
    for t in range(T - 1, -1, -1):
        n = int(batch_sizes[t])
        dev.launch(_bwd_cell, B, H, t, n, dy, hs, dh, bool(relu), dgates)
        gemm(n, dgates[t], whh, dh, cmask=hmask)


# ---------------------------------------------------------------------------- host level
def rnn_forward(xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a):
    """Simple RNN forward over all steps, on the GPU.

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
        Unused (scratch lives on the device).
    """
    f = "rnn_forward"
    dt = dev.compute_dtype(xp, "xp", f)
    T, B, H = xp.shape
    dev.check_shape(whh_t, (H, H), "whh_t", f)
    dev.check_out(hs, (T + 1, B, H), dt, "hs", f)
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    d_hs = dev.states_to_device(hs, dt)
    rnn_forward_device(dev.to_device(xp, dt), dev.to_device_t(whh_t, dt), bs,
                       dev.mask_to_device(hmask, use_mask, B, H, dt, f), relu, d_hs,
                       dev.empty((B, H), dt))
    dev.copy_back(d_hs, hs)


def rnn_backward(dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh):
    """Simple RNN backward through time, on the GPU.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
        Gradient of the loss with respect to the outputs (zero past each length).
    hs : ndarray of shape (T+1, B, H)
        States from the forward.
    whh : ndarray of shape (H, H)
        Recurrent weights ``W_hh``.
    dgates : ndarray of shape (T, B, H)
        Output: pre-activation gradients (zero for finished rows).
    dh : ndarray of shape (B, H)
        In: gradient with respect to ``h_n``; out: gradient with respect to ``h_0``.
    """
    f = "rnn_backward"
    dt = dev.compute_dtype(dy, "dy", f)
    T, B, H = dy.shape
    dev.check_shape(hs, (T + 1, B, H), "hs", f)
    dev.check_shape(whh, (H, H), "whh", f)
    dev.check_out(dgates, (T, B, H), dt, "dgates", f)
    dev.check_out(dh, (B, H), dt, "dh", f)
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    d_dgates = dev.empty((T, B, H), dt)
    d_dh = dev.to_device(dh, dt)
    rnn_backward_device(dev.to_device(dy, dt), dev.to_device(hs, dt), dev.to_device(whh, dt), bs,
                        dev.mask_to_device(hmask, use_mask, B, H, dt, f), relu, d_dgates, d_dh)
    dev.copy_back(d_dgates, dgates)
    dev.copy_back(d_dh, dh)
