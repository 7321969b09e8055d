"""The cell mathematics compiled for the CPU kernels, and the one ``njit`` they all use."""

import numba

from .._config import NUMBA_OPTS
import numpy as np

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


@njit_inline
def recurrent_product(src, hmask, use_mask, hin, whh_t, out, n):
    """``out[:n] = (src[:n] * hmask[:n]) @ whh_t`` (the mask only when ``use_mask``; ``hin`` is
    scratch for the masked rows): the per-step recurrent product of the generic kernels."""
    if use_mask:
        H = src.shape[1]
        for b in range(n):
            for j in range(H):
                hin[b, j] = src[b, j] * hmask[b, j]
        np.dot(hin[:n], whh_t, out[:n])
    else:
        np.dot(src[:n], whh_t, out[:n])
