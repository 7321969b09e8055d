"""CUDA kernels of the simple (Elman) RNN.

Same host-level signatures and semantics as :mod:`fastrnn.kernels.rnn` (whose docstring has the
conventions: time-major arrays, ``batch_sizes``, ``hs[0]`` as the initial state, ``hmask``...).

Each host-level function copies its inputs to the device once, runs the whole time loop there and
copies its outputs back once, into the host arrays passed in. The loop itself is in the ``*_device``
functions, which take device arrays and the recurrent weights in the PyTorch layout ``(G*H, H)``
(the product reads them transposed): :mod:`._stack`, which runs a whole layer call on the device,
calls them directly, and the host-level functions are thin wrappers around them. Per step the
forward launches the tiled recurrent product (:func:`._matmul.gemm`, the dropout mask fused into
it) and one element-wise cell kernel; the backward the other way round. The scratch arguments of
the host-level functions (``hin``, ``a``, ...) are accepted for signature compatibility and not
used: scratch lives on the device.
"""

from numba import cuda

from . import _device as dev
from ._device import rnn_act, rnn_dact
from ._matmul import gemm


@cuda.jit
def _fwd_cell(t, n, xp, a, hs, relu):
    """The state of step t: ``h = phi(xp + a)``; finished rows carry theirs."""
    b, j, inside = dev.unit(hs.shape[1], hs.shape[2])
    if inside and b < n:
        hs[t + 1, b, j] = rnn_act(xp[t, b, j] + a[b, j], relu)
    elif inside:
        dev.carry(hs, t, b, j)


@cuda.jit
def _bwd_cell(t, n, dy, hs, dh, relu, dgates):
    """The pre-activation gradients of step t (zero for finished rows)."""
    b, j, inside = dev.unit(dh.shape[0], dh.shape[1])
    if inside and b < n:
        dgates[t, b, j] = (dh[b, j] + dy[t, b, j]) * rnn_dact(hs[t + 1, b, j], relu)
    elif inside:
        dgates[t, b, j] = 0


# ---------------------------------------------------------------------------- device level
def rnn_forward_device(xp, whh, batch_sizes, hmask, relu, hs, a):
    """Simple RNN forward on device arrays: the arguments of :func:`rnn_forward`, with ``whh`` the
    recurrent weights ``W_hh`` (H, H) themselves (PyTorch layout; the product reads them
    transposed), ``batch_sizes`` on the host (it sets the launch sizes), ``hmask`` ``None`` for no
    mask and ``a`` (B, H) the one scratch array. Steps ``1..T`` of ``hs`` are written."""
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
    """Simple RNN forward over all steps, on the GPU: the arguments and results of
    :func:`fastrnn.kernels.rnn.rnn_forward`."""
    f = "rnn_forward"
    dt, T, B, H = dev.sizes(f, xp, "xp")
    bs = dev.check_args(f, dt, batch_sizes, T, B, inputs=[(whh_t, (H, H), "whh_t")],
                        outputs=[(hs, (T + 1, B, H), "hs")])
    d_hs = dev.states_to_device(hs, dt)
    rnn_forward_device(dev.to_device(xp, dt), dev.to_device_t(whh_t, dt), bs,
                       dev.mask_to_device(hmask, use_mask, B, H, dt, f), relu, d_hs,
                       dev.empty((B, H), dt))
    dev.copy_back((d_hs, hs))


def rnn_backward(dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh):
    """Simple RNN backward through time, on the GPU: the arguments and results of
    :func:`fastrnn.kernels.rnn.rnn_backward`."""
    f = "rnn_backward"
    dt, T, B, H = dev.sizes(f, dy, "dy")
    bs = dev.check_args(f, dt, batch_sizes, T, B,
                        inputs=[(hs, (T + 1, B, H), "hs"), (whh, (H, H), "whh")],
                        outputs=[(dgates, (T, B, H), "dgates"), (dh, (B, H), "dh")])
    d_dgates = dev.empty((T, B, H), dt)
    d_dh = dev.to_device(dh, dt)
    rnn_backward_device(dev.to_device(dy, dt), dev.to_device(hs, dt), dev.to_device(whh, dt), bs,
                        dev.mask_to_device(hmask, use_mask, B, H, dt, f), relu, d_dgates, d_dh)
    dev.copy_back((d_dgates, dgates), (d_dh, dh))
