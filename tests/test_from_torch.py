"""Layers built from PyTorch modules (``LSTM.from_torch`` ...) against the modules' own outputs."""

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastrnn import nn  # noqa: E402

OPTIONS = {
    "plain": dict(),
    "batch-first-2-layer-bi": dict(num_layers=2, bidirectional=True, batch_first=True),
    "no-bias": dict(bias=False),
    "time-major-dropout": dict(num_layers=2, dropout=0.3),
}
CELLS = {"RNN": {}, "RNN-relu": dict(nonlinearity="relu"), "LSTM": {}, "GRU": {}}


def torch_outputs(module, X, lengths, batch_first):
    """The module's outputs (B, T, D*H), zero past each length, and final states, for the
    batch-first numpy input ``X``."""
    xt = torch.from_numpy(X if batch_first else np.ascontiguousarray(X.transpose(1, 0, 2)))
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.from_numpy(lengths), batch_first=batch_first, enforce_sorted=False)
    with torch.no_grad():
        out, state = module(packed)
    Y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=X.shape[1])
    states = state if isinstance(state, tuple) else (state,)
    return Y.numpy(), [s.numpy() for s in states]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_matches_torch(cell, options, dtype):
    name = cell.split("-")[0]
    torch.manual_seed(0)
    module = getattr(torch.nn, name)(3, 5, dtype=dtype, **CELLS[cell], **OPTIONS[options])
    module.eval()
    with torch.no_grad():  # non-zero biases everywhere (PyTorch's are random already)
        for p in module.parameters():
            p.mul_(1.5)
    layer = getattr(nn, name).from_torch(module)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert layer.dtype == np_dtype
    assert layer.num_layers == module.num_layers and layer.bidirectional == module.bidirectional
    assert layer.dropout == module.dropout
    rng = np.random.default_rng(1)
    lengths = np.array([6, 1, 4, 6])
    X = rng.normal(size=(4, 6, 3)).astype(np_dtype)
    Y_t, states_t = torch_outputs(module, X, lengths, bool(module.batch_first))
    Y, h_n = layer.infer(X, lengths)
    states = list(h_n) if layer.has_cell else [h_n]
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert np.abs(Y - Y_t).max() <= tol
    assert len(states) == len(states_t)
    for s, s_t in zip(states, states_t):
        assert np.abs(s - s_t).max() <= tol


def test_options_passed_on():
    module = torch.nn.GRU(2, 3)
    layer = nn.GRU.from_torch(module, backend="numpy", dtype=np.float64, random_state=0)
    assert layer.backend == "numpy" and layer.dtype == np.float64 and layer.reset_after
    np.testing.assert_array_equal(layer.params["weight_hh_l0"],
                                  module.weight_hh_l0.detach().numpy().astype(np.float64))
    lstm = nn.LSTM.from_torch(torch.nn.LSTM(2, 3), peephole=True)  # zero peepholes
    assert np.all(lstm.params["weight_peephole_l0"] == 0)
    half = nn.RNN.from_torch(torch.nn.RNN(2, 3).to(torch.float16))
    assert half.dtype == np.float32


def test_refusals():
    with pytest.raises(ValueError, match="proj_size=2"):
        nn.LSTM.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match=r"takes a torch.nn.GRU, got torch.nn.*LSTM"):
        nn.GRU.from_torch(torch.nn.LSTM(3, 4))
    with pytest.raises(TypeError, match="LSTMCell"):
        nn.LSTM.from_torch(torch.nn.LSTMCell(3, 4))
    with pytest.raises(ValueError, match=r"\['hidden_size'\]"):
        nn.RNN.from_torch(torch.nn.RNN(3, 4), hidden_size=8)


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"fastrnn\[torch\]"):
        nn.LSTM.from_torch(object())


def test_imported_layer_in_a_network():
    """The recipe of the "Deploying models" page: an imported LSTM and a torch Linear head in a
    SequenceNetwork give the PyTorch pipeline's outputs (max pooling over the real steps)."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    linear = torch.nn.Linear(8, 5)
    net = nn.SequenceNetwork(n_outputs=5, n_features=3, cell="lstm", hidden_size=4,
                             num_layers=2, bidirectional=True, pooling="max")
    net.rnn.load_state_dict(nn.LSTM.from_torch(lstm).state_dict())
    net.head.params["weight"][...] = linear.weight.detach().numpy()
    net.head.params["bias"][...] = linear.bias.detach().numpy()
    rng = np.random.default_rng(0)
    lengths = np.array([5, 2, 1])
    X = rng.normal(size=(3, 5, 3)).astype(np.float32)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(X), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, _ = lstm(packed)
        Y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                      padding_value=-np.inf)
        want = linear(Y.max(dim=1).values).numpy()
    got, _ = net.infer(X, lengths)
    assert np.abs(got - want).max() <= 1e-5
