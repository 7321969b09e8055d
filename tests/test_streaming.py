"""The step API: one input at a time equals the full-sequence forward, with no allocation per step."""

import numpy as np
import pytest

from fastrnn.nn import GRU, LSTM, RNN
from conftest import bytes_grown, tol

CELLS = [(LSTM, dict(peephole=True)), (LSTM, {}), (GRU, {}), (GRU, dict(reset_after=False)),
         (RNN, dict(nonlinearity="relu"))]


@pytest.mark.parametrize("cls, kw", CELLS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_steps_equal_full_sequence(cls, kw, backend, dtype):
    layer = cls(3, 5, num_layers=2, dtype=dtype, backend=backend, random_state=0, **kw)
    layer.eval()
    X = np.random.RandomState(0).randn(2, 7, 3).astype(dtype)
    Y, h_n = layer.forward(X)
    state = layer.init_state(2)
    ys = [layer.step(X[:, t], state)[0].copy() for t in range(7)]
    np.testing.assert_allclose(np.stack(ys, 1), Y, rtol=10 * tol(dtype), atol=10 * tol(dtype))
    np.testing.assert_allclose(state.h, h_n[0] if layer.has_cell else h_n,
                               rtol=10 * tol(dtype), atol=10 * tol(dtype))
    assert state.steps == 7
    state.reset()
    y0, _ = layer.step(X[:, 0], state)
    np.testing.assert_allclose(y0, Y[:, 0], rtol=10 * tol(dtype), atol=10 * tol(dtype))


def test_step_allocates_nothing_per_call(compiled_backend):
    layer = LSTM(8, 16, dtype=np.float32, backend=compiled_backend, random_state=0)
    state = layer.init_state(1)
    x = np.ones((1, 8), np.float32)
    for _ in range(5):
        layer.step(x, state)
    grown = bytes_grown(lambda: layer.step(x, state), 200)
    assert grown < 200 * 64, f"step() allocated {grown} bytes over 200 calls"


def test_step_errors():
    with pytest.raises(ValueError, match="bidirectional"):
        LSTM(3, 4, bidirectional=True).init_state()
    layer = GRU(3, 4)
    state = layer.init_state(2)
    with pytest.raises(ValueError, match=r"shape \(batch_size, input_size\) = \(2, 3\)"):
        layer.step(np.zeros((1, 3)), state)
    with pytest.raises(ValueError, match="non-finite"):
        layer.step(np.full((2, 3), np.nan), state)
    with pytest.raises(ValueError, match="init_state"):
        layer.step(np.zeros((2, 3)), None)


def test_auto_runs_single_sequence_inference_on_cython(monkeypatch):
    from fastrnn import _backend

    if not _backend.has_backend("cython"):
        pytest.skip("the Cython extension is not built (make test builds it)")
    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    layer = LSTM(5, 7, backend="auto", dtype=np.float64, random_state=0)
    ref = LSTM(5, 7, backend="numpy", dtype=np.float64, random_state=0)
    X = np.random.RandomState(0).randn(1, 6, 5)
    used = []
    real_get = _backend.get_backend

    def spy(name="auto"):
        used.append(name)
        return real_get(name)

    monkeypatch.setattr("fastrnn.nn.recurrent.get_backend", spy)
    layer.eval()
    ref.eval()
    Y, _ = layer.forward(X)
    assert used[-1] == "cython"
    # the backward of that call runs on the backend of its forward
    dY = np.random.RandomState(1).randn(*Y.shape)
    dX = layer.backward(dY)
    assert used[-1] == "cython"
    np.testing.assert_allclose(Y, ref.forward(X)[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dX, ref.backward(dY), rtol=1e-10, atol=1e-12)
    # a batch, or training mode, stays on the layer's backend
    layer.forward(np.repeat(X, 2, axis=0))
    assert used[-1] == "numba"
    layer.train()
    layer.forward(X)
    assert used[-1] == "numba"


@pytest.mark.parametrize("cls, kw", CELLS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_rejected_step_leaves_the_state_unchanged(cls, kw, compiled_backend):
    layer = cls(3, 4, num_layers=2, backend=compiled_backend, random_state=0, **kw).eval()
    state = layer.init_state(2)
    x = np.random.RandomState(0).randn(2, 3)
    layer.step(x, state)
    before = (state.h.copy(), None if state.c is None else state.c.copy(), state.steps)
    bad = x.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        layer.step(bad, state)
    np.testing.assert_array_equal(state.h, before[0])
    if state.c is not None:
        np.testing.assert_array_equal(state.c, before[1])
    assert state.steps == before[2]
    y, _ = layer.step(x, state)  # and the stream goes on
    assert np.all(np.isfinite(y))


def test_routing_table_and_what_ran(monkeypatch, capsys):
    """backend='auto' sends the calls listed in the routing table to their backend (when it is
    available) and everything else to the default; the layer says what ran."""
    from fastrnn import _backend

    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    layer = LSTM(3, 4, random_state=0)
    assert layer.backend == "auto" and layer.last_backend_ is None
    X = np.random.RandomState(0).randn(2, 5, 3)
    layer.forward(X)
    assert layer.last_backend_ == _backend.DEFAULT
    has_cy = _backend.has_backend("cython")
    layer.eval().forward(X[:1])
    assert layer.last_backend_ == ("cython" if has_cy else _backend.DEFAULT)
    state = layer.init_state(1)
    assert state.backend == layer.last_backend_ == ("cython" if has_cy else _backend.DEFAULT)
    for call, name in _backend.AUTO_ROUTES.items():
        assert _backend.route("auto", call) == (name if _backend.has_backend(name)
                                                else _backend.DEFAULT)
        assert _backend.route("numpy", call) == "numpy"  # an explicit backend is kept
    monkeypatch.setenv("FASTRNN_BACKEND", "numpy")
    assert _backend.route("auto", "step") == "numpy"  # the variable forces every call
    layer.eval().forward(X[:1])
    assert layer.last_backend_ == "numpy"
    monkeypatch.delenv("FASTRNN_BACKEND")
    _backend.show_backends()
    out = capsys.readouterr().out
    assert f"auto: {_backend.DEFAULT} for training and batches" in out
    assert f"auto: {'cython' if has_cy else _backend.DEFAULT} for streaming steps" in out


def test_infer_keeps_nothing_and_equals_forward_in_eval(backend):
    layer = LSTM(3, 4, num_layers=2, dropout=0.5, recurrent_dropout=0.3, backend=backend,
                 random_state=0)
    X = np.random.RandomState(1).randn(3, 6, 3)
    L = np.array([6, 2, 4])
    Y1, _ = layer.forward(X, L)  # training mode: dropout
    cache, rng_state = layer._cache, layer.rng_.get_state()[2]
    Yi, (hi, ci) = layer.infer(X, L)
    assert layer._cache is cache and layer.rng_.get_state()[2] == rng_state and layer.training
    Ye, (he, ce) = layer.eval().forward(X, L)
    np.testing.assert_array_equal(Yi, Ye)
    np.testing.assert_array_equal(hi, he)
    assert not np.allclose(Y1, Ye)
