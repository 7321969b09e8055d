"""The cell mathematics compiled for the CPU kernels, and the one ``njit`` they all use."""

import numba
import numpy as np

from .._config import NUMBA_OPTS
from . import _jitcache  # noqa: F401  (stamps the on-disk cache with all kernel sources)
from ._cellmath import build

njit = numba.njit(**NUMBA_OPTS)

#: for small helpers that must be inlined into their caller (vector helpers, tile epilogues)
njit_inline = numba.njit(inline="always", **{k: v for k, v in NUMBA_OPTS.items() if k != "cache"})

cm = build(njit_inline)

# Module-level names: Numba resolves a kernel's globals by name, not through attribute access.
sigmoid = cm.sigmoid
rnn_act = cm.rnn_act
rnn_dact = cm.rnn_dact
lstm_fwd = cm.lstm_fwd
lstm_bwd = cm.lstm_bwd
gru_fwd = cm.gru_fwd
gru_bwd = cm.gru_bwd
gru_v1_gates = cm.gru_v1_gates
gru_v1_state = cm.gru_v1_state
gru_v1_bwd_zn = cm.gru_v1_bwd_zn
gru_v1_bwd_r = cm.gru_v1_bwd_r
mingru_ab = cm.mingru_ab
mingru_bwd = cm.mingru_bwd
minlstm_ab = cm.minlstm_ab
minlstm_bwd = cm.minlstm_bwd


# The skeleton of a step of the general kernels (rnn, lstm, gru), shared by all cells: the rows
# b < n of the step are the sequences still running, the others carry their state.

@njit_inline
def masked_rows(src, hmask, use_mask, hin, n):
    """``hin[:n] = src[:n] * hmask[:n]``, or a copy of ``src[:n]`` without ``use_mask``."""
    H = src.shape[1]
    for b in range(n):
        for j in range(H):
            hin[b, j] = src[b, j] * hmask[b, j] if use_mask else src[b, j]


@njit_inline
def recurrent_product(src, hmask, use_mask, hin, whh_t, out, n):
    """``out[:n] = (src[:n] * hmask[:n]) @ whh_t`` (the mask only when ``use_mask``; ``hin`` is
    scratch for the masked rows): the per-step recurrent product of the generic kernels."""
    if use_mask:
        masked_rows(src, hmask, True, hin, n)
        np.dot(hin[:n], whh_t, out[:n])
    else:
        np.dot(src[:n], whh_t, out[:n])


@njit_inline
def carry_finished(src, dst, n):
    """``dst[n:] = src[n:]``: the rows of finished sequences carry their state."""
    for b in range(n, src.shape[0]):
        for j in range(src.shape[1]):
            dst[b, j] = src[b, j]


@njit_inline
def zero_finished(g, n):
    """``g[n:] = 0``: no gradient for the rows of finished sequences."""
    for b in range(n, g.shape[0]):
        for j in range(g.shape[1]):
            g[b, j] = 0.0


@njit_inline
def recurrent_grad(g, whh, dh, n, hmask, use_mask):
    """``dh[:n] = g[:n] @ whh``, times ``hmask[:n]`` with ``use_mask``: the gradient of
    ``h_{t-1}`` through the recurrent product (and the recurrent-dropout mask)."""
    np.dot(g[:n], whh, dh[:n])
    if use_mask:
        for b in range(n):
            for j in range(dh.shape[1]):
                dh[b, j] *= hmask[b, j]
