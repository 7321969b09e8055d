"""CUDA backend: the transfer counter (:func:`fastrnn.kernels.cuda._device.transfers`) and the
streaming step on the device (:mod:`fastrnn.kernels.cuda._stream`).

The simulator is switched on by tests/test_cuda.py, imported here for that and for its helpers;
sizes are tiny (B = 2, H = 3, a few steps) because the simulator runs every GPU thread as a Python
thread. The references are independent of the code under test: the counts are checked against
the copies seen by wrapping numba-cuda itself and against sizes computed here, the steps against
the numpy backend's streaming and its full-sequence forward.
"""

import numpy as np
import pytest

from test_cuda import (GRU, LSTM, RNN, IndRNN, MinGRU, MinLSTM, TransferCounter,  # noqa: F401
                       _fast_thread_switching, assert_close)

from fastrnn.kernels.cuda import _device as dev  # noqa: E402  (after the simulator is chosen)

I, H, B = 2, 3, 2  # H = 3 leaves idle threads in the blocks


# ---------------------------------------------------------------------------- the counter
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_counter_agrees_with_numba_cuda_and_counts_the_bytes(cls, monkeypatch):
    """A layer call's copies as counted by the backend's counter, by wrapping numba-cuda, and in
    bytes from the sizes of what a call must move (its input, initial states, parameters and
    lengths up; its outputs and final states down)."""
    raw = TransferCounter(monkeypatch)
    layer = cls(I, H, num_layers=2, dtype=np.float64, backend="cuda", random_state=0)
    X = np.random.RandomState(0).randn(B, 4, I)
    raw.take()
    with dev.transfers() as fwd:
        Y, _ = layer.forward(X, lengths=[4, 2])
    h2d, d2h, _ = raw.take()
    assert (fwd.uploads, fwd.downloads) == (h2d, d2h) == (2, 1)
    n_states = 2 if layer.has_cell else 1
    state_bytes = 2 * B * H * 8
    param_bytes = sum(p.nbytes for p in layer.params.values())
    assert fwd.upload_bytes == X.nbytes + n_states * state_bytes + param_bytes + B * 8
    assert fwd.download_bytes == Y.nbytes + n_states * state_bytes
    with dev.transfers() as bwd:
        layer.backward(np.ones_like(Y))
    h2d, d2h, _ = raw.take()
    assert (bwd.uploads, bwd.downloads) == (h2d, d2h) == (1, 1)
    assert bwd.upload_bytes == Y.nbytes + n_states * state_bytes
    assert bwd.download_bytes == X.nbytes + n_states * state_bytes + param_bytes


def test_counter_blocks_nest_and_stop_counting_at_exit():
    a = np.arange(6.0)
    with dev.transfers() as outer:
        d = dev.upload(a)
        with dev.transfers() as inner:
            dev.download(d, np.empty_like(a))
        dev.upload(a, d)
    dev.upload(a, d)  # outside every block: not counted
    assert (inner.uploads, inner.downloads, inner.download_bytes) == (0, 1, a.nbytes)
    assert (outer.uploads, outer.upload_bytes) == (2, 2 * a.nbytes)
    assert (outer.downloads, outer.download_bytes) == (1, a.nbytes)
