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


# ---------------------------------------------------------------------------- streaming
CELLS = {
    "rnn-tanh": (RNN, {}),
    "rnn-relu": (RNN, dict(nonlinearity="relu")),
    "lstm": (LSTM, {}),
    "lstm-peephole-no-forget": (LSTM, dict(peephole=True, forget_gate=False)),
    "gru": (GRU, {}),
    "gru-v1": (GRU, dict(reset_after=False)),
    "mingru": (MinGRU, {}),
    "minlstm-g": (MinLSTM, dict(candidate="g")),
    "indrnn-relu": (IndRNN, {}),
    "indrnn-tanh": (IndRNN, dict(nonlinearity="tanh")),
}


def make_pair(name, num_layers=2, dtype=np.float64):
    """The same layer (eval mode) on the numpy backend and on cuda, with non-trivial biases and
    peepholes."""
    cls, kw = CELLS[name]
    layers = [cls(I, H, num_layers=num_layers, dtype=dtype, backend=bk, random_state=0, **kw)
              for bk in ("numpy", "cuda")]
    rng = np.random.RandomState(7)
    for k, v in layers[0].params.items():
        if k.startswith(("bias", "weight_peephole")):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
        layers[1].params[k][...] = v
    return [layer.eval() for layer in layers]


def states(state):
    return (state.h.copy(),) if state.c is None else (state.h.copy(), state.c.copy())


@pytest.mark.parametrize("name", list(CELLS))
def test_device_step_matches_numpy_streaming_and_copies_x_up_and_y_down(name):
    """Every cell, two stacked layers: the outputs and the carried states of the device steps
    equal the numpy backend's streaming (float64, 1e-10); binding uploads the weights once and
    copies nothing else; each step uploads x_t and downloads y_t, once each and nothing more."""
    ref, layer = make_pair(name)
    X = np.random.RandomState(3).randn(4, B, I)
    with dev.transfers() as bound:
        state = layer.init_state(B)
    assert (bound.uploads, bound.downloads) == (1, 0)
    ref_state = ref.init_state(B)
    itemsize = np.dtype(layer.dtype).itemsize
    for t, x in enumerate(X):
        with dev.transfers() as moved:
            y, _ = layer.step(x, state)
        assert (moved.uploads, moved.upload_bytes) == (1, B * I * itemsize), f"step {t}"
        assert (moved.downloads, moved.download_bytes) == (1, B * H * itemsize), f"step {t}"
        y_ref, _ = ref.step(x, ref_state)
        assert_close(y, y_ref, np.float64, f"y at step {t}")
    for got, want in zip(states(state), states(ref_state)):  # reading them downloads them
        assert_close(got, want, np.float64, "carried state")
    assert state.steps == ref_state.steps == len(X)


def test_device_step_float32_matches_numpy():
    ref, layer = make_pair("lstm-peephole-no-forget", dtype=np.float32)
    state, ref_state = layer.init_state(B), ref.init_state(B)
    for x in np.random.RandomState(4).randn(2, B, I).astype(np.float32):
        y, _ = layer.step(x, state)
        assert y.dtype == np.float32
        assert_close(y, ref.step(x, ref_state)[0], np.float32, "y")


def test_device_step_over_several_thread_blocks():
    """33 units: a launch spans two blocks along the units, the last one mostly idle."""
    layers = [GRU(I, 33, reset_after=False, dtype=np.float64, backend=bk, random_state=1).eval()
              for bk in ("numpy", "cuda")]
    sr, sd = layers[0].init_state(B), layers[1].init_state(B)
    for x in np.random.RandomState(2).randn(2, B, I):
        assert_close(layers[1].step(x, sd)[0], layers[0].step(x, sr)[0], np.float64, "y")


@pytest.mark.parametrize("name", ["lstm", "gru-v1", "indrnn-relu"])
def test_changed_weights_are_uploaded_before_the_next_step(name):
    """The weights are compared with the uploaded ones at every step: a change in place (even
    of one element by one unit in the last place), a replaced array or load_state_dict is
    uploaded (once) before the next step, whose output then follows the new weights. The
    reference runs each step as a one-step numpy forward with the weights that step saw, from
    the state the previous one reached."""
    ref, layer = make_pair(name)
    X = np.random.RandomState(5).randn(5, B, I)
    state = layer.init_state(B)
    seen, ys = [], []

    def step(t, uploads):
        seen.append(layer.state_dict())
        with dev.transfers() as moved:
            y, _ = layer.step(X[t], state)
        assert (moved.uploads, moved.downloads) == (uploads, 1), f"step {t}"
        ys.append(y.copy())

    step(0, 1)  # x only: the weights went up with init_state
    w = layer.params["weight_ih_l1"]
    w[0, 0] = np.nextafter(w[0, 0], np.inf)  # the smallest change there is, in place
    step(1, 2)  # the weights, then x
    layer.params["bias_ih_l0"] = layer.params["bias_ih_l0"] + 0.25  # a new array
    step(2, 2)
    layer.load_state_dict({k: v * 0.9 for k, v in layer.state_dict().items()})
    step(3, 2)
    step(4, 1)  # unchanged: x only

    h = None
    for t, weights in enumerate(seen):
        ref.load_state_dict(weights)
        Y, h = ref.forward(X[t][:, None, :], h0=h)
        assert_close(ys[t], Y[:, 0], np.float64, f"step {t}")


def test_host_writes_and_reads_of_the_state_and_reset():
    """Reading h and c downloads them without making the next step upload anything; writing
    into them (or assigning new arrays) is uploaded before the next step; reset zeroes the
    state on the device without a copy. The reference is the numpy forward from the same
    states."""
    ref, layer = make_pair("lstm")
    X = np.random.RandomState(6).randn(3, B, I)
    state = layer.init_state(B)
    layer.step(X[0], state)
    with dev.transfers() as moved:
        h1, c1 = states(state)
    assert (moved.uploads, moved.downloads) == (0, 2)
    with dev.transfers() as moved:
        y, _ = layer.step(X[1], state)
    assert (moved.uploads, moved.downloads) == (1, 1)  # reading changed nothing: x only
    _, (h_ref, c_ref) = ref.forward(X[1][:, None, :], h0=(h1, c1))
    assert_close(states(state)[0], h_ref, np.float64, "h after a read")

    new_h = np.random.RandomState(8).randn(*h1.shape)
    state.h[...] = new_h                  # in place
    state.c = np.zeros_like(c1)           # a new array
    with dev.transfers() as moved:
        y, _ = layer.step(X[2], state)
    assert moved.uploads == 3  # h, c, x
    Y_ref, _ = ref.forward(X[2][:, None, :], h0=(new_h, np.zeros_like(c1)))
    assert_close(y, Y_ref[:, 0], np.float64, "y after a write")

    state.h = new_h.copy()  # replaced right after a step, before any read: c must stay current
    c_now = state.c.copy()
    assert np.array_equal(state.h, new_h)
    y, _ = layer.step(X[0], state)
    Y_ref, _ = ref.forward(X[0][:, None, :], h0=(new_h, c_now))
    assert_close(y, Y_ref[:, 0], np.float64, "y after replacing h")
    state.h = np.zeros((1, B, H))
    with pytest.raises(ValueError, match=r"state.h must have shape \(2, 2, 3\).*got \(1, 2, 3\)"):
        layer.step(X[0], state)
    state.h = np.zeros((2, B, H))

    with dev.transfers() as moved:
        state.reset()
        y, _ = layer.step(X[0], state)
    assert (moved.uploads, moved.downloads) == (1, 1)
    assert_close(y, ref.forward(X[0][:, None, :])[0][:, 0], np.float64, "y after reset")
    assert state.steps == 1


def test_a_non_finite_input_changes_nothing_and_copies_nothing():
    ref, layer = make_pair("gru")
    state = layer.init_state(B)
    x = np.random.RandomState(9).randn(B, I)
    y0 = layer.step(x, state)[0].copy()
    bad = x.copy()
    bad[1, 0] = np.nan
    with dev.transfers() as moved, pytest.raises(ValueError, match="non-finite"):
        layer.step(bad, state)
    assert (moved.uploads, moved.downloads) == (0, 0) and state.steps == 1
    ref_state = ref.init_state(B)
    ref.step(x, ref_state)
    assert_close(layer.step(x, state)[0], ref.step(x, ref_state)[0], np.float64, "next step")
    assert not np.array_equal(y0, state.out)


def test_a_stack_with_connections_steps_with_the_host_level_kernels():
    """With connections between the layers each layer steps on its own (the host-level path,
    a plain StreamState); the outputs still follow the numpy backend."""
    layers = [LSTM(I, H, 2, skip="residual", dtype=np.float64, backend=bk, random_state=0).eval()
              for bk in ("numpy", "cuda")]
    sr, sd = layers[0].init_state(B), layers[1].init_state(B)
    assert type(sd).__name__ == "StreamState"
    for x in np.random.RandomState(10).randn(2, B, I):
        assert_close(layers[1].step(x, sd)[0], layers[0].step(x, sr)[0], np.float64, "y")
