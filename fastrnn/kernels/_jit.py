"""The cell mathematics compiled for the CPU kernels, and the one ``njit`` they all use."""

import numba

from .._config import NUMBA_OPTS
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
