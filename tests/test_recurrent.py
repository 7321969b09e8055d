"""Recurrent layers: naive-reference parity, gradient checks, padding invariance, backend parity,
PyTorch parity and state dicts."""

import numpy as np
import pytest

from fastrnn.nn import GRU, LSTM, RNN

from _reference import network_sequence
from conftest import numerical_grad, tol

CELLS = {
    "rnn-tanh": (RNN, {}),
    "rnn-relu": (RNN, dict(nonlinearity="relu")),
    "lstm": (LSTM, {}),
    "gru": (GRU, {}),
    "gru-v1": (GRU, dict(reset_after=False)),
}
VARIANTS = {
    "lstm-peephole": (LSTM, dict(peephole=True)),
    "lstm-no-input-gate": (LSTM, dict(input_gate=False)),
    "lstm-no-forget-gate": (LSTM, dict(forget_gate=False)),
    "lstm-no-output-gate": (LSTM, dict(output_gate=False, peephole=True)),
}
ALL = {**CELLS, **VARIANTS}
SHAPES = {"single": dict(), "stacked-bidir": dict(num_layers=2, bidirectional=True)}


def make(name, backend="numpy", dtype=np.float64, seed=0, **kw):
    cls, extra = ALL[name]
    layer = cls(3, 4, dtype=dtype, backend=backend, random_state=seed, **extra, **kw)
    rng = np.random.RandomState(seed + 100)
    for k, v in layer.params.items():  # non-trivial biases and peepholes, so every path is exercised
        if k.startswith(("bias", "weight_peephole")):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    return layer


def batch(B=4, T=6, I=3, seed=1, lengths=(6, 1, 4, 6)):
    rng = np.random.RandomState(seed)
    return rng.randn(B, T, I), np.array(lengths)


def run(layer, X, L, h0=None, R=None, S=None):
    """Forward, a random linear loss of Y and h_n (and c_n), backward. Returns everything."""
    Y, hn = layer.forward(X, L, h0)
    rng = np.random.RandomState(7)
    if R is None:
        R = rng.randn(*Y.shape)
        S = [rng.randn(*np.shape(h)) for h in (hn if layer.has_cell else (hn,))]
    hs = hn if layer.has_cell else (hn,)
    loss = float(np.sum(Y.astype(np.float64) * R) + sum(np.sum(h * s) for h, s in zip(hs, S)))
    dX = layer.backward(R, dh_n=tuple(S) if layer.has_cell else S[0])
    return loss, Y, hn, dX, {k: v.copy() for k, v in layer.grads.items()}, layer.grad_h0, R, S


def initial_state(layer, B, seed=3):
    rng = np.random.RandomState(seed)
    shape = (layer.num_layers * layer.num_directions, B, layer.hidden_size)
    h0 = 0.5 * rng.randn(*shape)
    return (h0, 0.5 * rng.randn(*shape)) if layer.has_cell else h0


def forward_from_random_state(layer):
    """``X, L, h0, Y, h_n`` of a forward over the ragged test batch from a random state."""
    X, L = batch()
    h0 = initial_state(layer, len(L))
    return (X, L, h0) + tuple(layer.forward(X, L, h0))


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else np.linalg.norm(a - b) / den


# ---------------------------------------------------------------- naive reference
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ALL)
def test_matches_naive_reference(name, shape, backend, dtype):
    layer = make(name, backend, dtype, **SHAPES[shape])
    X, L, h0, Y, hn = forward_from_random_state(layer)
    hn, cn = hn if layer.has_cell else (hn, None)
    H0, C0 = h0 if layer.has_cell else (h0, None)
    assert Y.dtype == np.dtype(dtype) and hn.dtype == np.dtype(dtype)
    t = max(tol(dtype) * 10, 1e-10)
    for b, n in enumerate(L):
        y, h, c = network_sequence(layer, X[b, :n], H0[:, b],
                                   None if C0 is None else C0[:, b])
        np.testing.assert_allclose(Y[b, :n], y, rtol=t, atol=t)
        assert np.all(Y[b, n:] == 0), "outputs past a sequence's length must be zero"
        D, H = layer.num_directions, layer.hidden_size
        # the state of the forward direction is the state at the last real step
        np.testing.assert_allclose(hn[:, b], h, rtol=t, atol=t)
        if c is not None:
            np.testing.assert_allclose(cn[:, b], c, rtol=t, atol=t)
        if D == 2:  # reverse direction's final state is its output at step 0
            np.testing.assert_allclose(hn[-1, b], Y[b, 0, H:], rtol=t, atol=t)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ALL)
def test_gradient_check(name, shape, backend):
    check_gradients(make(name, backend, np.float64, **SHAPES[shape]))


def check_gradients(layer):
    """Central differences (float64) of a loss of the outputs and final states against the
    backward's gradients of every parameter, the input and the initial state, on a ragged batch."""
    X, L = batch()  # lengths include 1 and T
    h0 = initial_state(layer, len(L))
    _, _, _, dX, grads, gh0, R, S = run(layer, X, L, h0)

    def f():
        return run(layer, X, L, h0, R, S)[0]

    for k, p in layer.params.items():
        if k.startswith("weight_peephole") and not layer.peephole:
            continue
        assert rel_err(numerical_grad(f, p), grads[k]) < 1e-6, k
    num_dX = numerical_grad(f, X)
    assert rel_err(num_dX, dX) < 1e-6
    for b, n in enumerate(L):
        assert np.all(dX[b, n:] == 0)
    states = h0 if layer.has_cell else (h0,)
    ghs = gh0 if layer.has_cell else (gh0,)
    for s, g in zip(states, ghs):
        assert rel_err(numerical_grad(f, s), g) < 1e-6


def test_ablated_gate_gets_no_gradient(backend):
    layer = make("lstm-no-forget-gate", backend)
    X, L = batch()
    grads = run(layer, X, L)[4]
    H = layer.hidden_size
    assert np.all(grads["weight_ih_l0"][H:2 * H] == 0)
    assert np.all(grads["weight_hh_l0"][H:2 * H] == 0)
    assert np.abs(grads["weight_ih_l0"][:H]).sum() > 0


# ---------------------------------------------------------------- padding invariance
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CELLS)
def test_padding_never_leaks(name, shape, backend):
    check_padding(make(name, backend, np.float64, **SHAPES[shape]))


def check_padding(layer):
    """Garbage (NaN included) in the padded positions, or extra padded steps, change no output,
    final state or gradient, and the outputs and input gradients past each length are zero."""
    X, L = batch()
    base = run(layer, X, L)
    # garbage (NaN included) in the padded positions
    Xg = X.copy()
    for b, n in enumerate(L):
        Xg[b, n:] = np.nan if b % 2 else 1e6
    other = run(layer, Xg, L, R=base[6], S=base[7])
    # extra padded steps
    Xe = np.concatenate([X, np.full((X.shape[0], 3, X.shape[2]), 9.0)], axis=1)
    Re = np.concatenate([base[6], np.full((X.shape[0], 3, base[6].shape[2]), 5.0)], axis=1)
    extra = run(layer, Xe, L, R=Re, S=base[7])
    for res in (other, extra):
        np.testing.assert_array_equal(res[1][:, :X.shape[1]], base[1])
        np.testing.assert_array_equal(res[2], base[2])
        np.testing.assert_array_equal(res[3][:, :X.shape[1]], base[3])
        for k in base[4]:
            np.testing.assert_allclose(res[4][k], base[4][k], rtol=1e-13, atol=1e-13)
    assert np.all(extra[1][:, X.shape[1]:] == 0) and np.all(extra[3][:, X.shape[1]:] == 0)


@pytest.mark.parametrize("name", CELLS)
def test_sequence_independent_of_batch(name, backend):
    layer = make(name, backend, np.float64, num_layers=2, bidirectional=True)
    X, L = batch()
    Y, _ = layer.forward(X, L)
    for b, n in enumerate(L):
        Yb, _ = layer.forward(X[b:b + 1, :n], [n])
        np.testing.assert_allclose(Y[b, :n], Yb[0], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- backend parity
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ALL)
def test_compiled_backend_matches_numpy(name, shape, compiled_backend, dtype):
    check_parity(make(name, "numpy", dtype, **SHAPES[shape]),
                 make(name, compiled_backend, dtype, **SHAPES[shape]), dtype)


def check_parity(reference, layer, dtype):
    """``layer`` gives the outputs, input gradients and parameter gradients of the same layer on
    the numpy reference backend, to the dtype's tolerance, in its dtype."""
    ref, got = run(reference, *batch()), run(layer, *batch())
    t = tol(dtype)
    for a, b in [(got[1], ref[1]), (got[3], ref[3])] + [(got[4][k], ref[4][k]) for k in ref[4]]:
        assert rel_err(a, b) < t
    assert got[1].dtype == np.dtype(dtype) and got[3].dtype == np.dtype(dtype)


def test_recurrent_dropout_mask_is_per_sequence_and_off_in_eval(backend):
    layer = make("lstm", backend, recurrent_dropout=0.5, seed=4)
    X, L = batch()
    layer.eval()
    Y1, _ = layer.forward(X, L)
    Y2, _ = layer.forward(X, L)
    np.testing.assert_array_equal(Y1, Y2)
    layer.train()
    Y3, _ = layer.forward(X, L)
    assert not np.allclose(Y1, Y3)
    from fastrnn.nn._plan import Plan

    hmasks, drops = layer._draw_masks(Plan(np.asarray(L, np.int64), X.shape[1]))
    mask = hmasks[0]  # one row per sequence, used at every step
    assert mask.shape == (4, 4) and set(np.unique(mask)) <= {0.0, 2.0}
    assert drops == [None]  # a single layer has no dropout between layers


# ---------------------------------------------------------------- PyTorch parity
@pytest.mark.parametrize("shape", SHAPES)
# PyTorch has no GRU with the reset gate before the product (gru-v1); the naive reference covers it.
@pytest.mark.parametrize("name", [c for c in CELLS if c != "gru-v1"])
def test_matches_pytorch(name, shape, backend):
    torch = pytest.importorskip("torch")
    layer = make(name, backend, np.float64, **SHAPES[shape])
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[name.split("-")[0]]
    kw = dict(nonlinearity="relu") if name == "rnn-relu" else {}
    tl = cls(3, 4, batch_first=True, dtype=torch.float64, **SHAPES[shape], **kw)
    tl.load_state_dict({k: torch.tensor(v) for k, v in layer.params.items()})
    X, L = batch()
    h0 = initial_state(layer, len(L))
    _, Y, hn, dX, grads, gh0, R, S = run(layer, X, L, h0)

    Xt = torch.tensor(X, requires_grad=True)
    states = h0 if layer.has_cell else (h0,)
    ht = tuple(torch.tensor(s, requires_grad=True) for s in states)
    packed = torch.nn.utils.rnn.pack_padded_sequence(Xt, torch.tensor(L), batch_first=True,
                                                     enforce_sorted=False)
    out, thn = tl(packed, ht if layer.has_cell else ht[0])
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=X.shape[1])
    thn = thn if layer.has_cell else (thn,)
    loss = (out * torch.tensor(R)).sum() + sum((h * torch.tensor(s)).sum() for h, s in zip(thn, S))
    loss.backward()
    np.testing.assert_allclose(Y, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours = hn if layer.has_cell else (hn,)
    for a, b in zip(ours, thn):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for k in layer.params:
        np.testing.assert_allclose(grads[k], tl.get_parameter(k).grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=k)
    for a, b in zip(gh0 if layer.has_cell else (gh0,), ht):
        np.testing.assert_allclose(a, b.grad.numpy(), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- parameters and initialisation
def test_param_names_shapes_and_init():
    lstm = LSTM(5, 7, num_layers=2, bidirectional=True, random_state=0)
    assert list(lstm.params)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert lstm.params["weight_ih_l0"].shape == (28, 5)
    assert lstm.params["weight_ih_l1_reverse"].shape == (28, 14)
    assert lstm.params["weight_hh_l1"].shape == (28, 7)
    assert all(v.dtype == np.float32 for v in lstm.params.values())
    b = lstm.params["bias_ih_l0"]
    assert np.all(b[7:14] == 1.0) and np.all(b[:7] == 0) and np.all(b[14:] == 0)
    for g in range(4):  # each recurrent gate block is orthogonal
        w = lstm.params["weight_hh_l0"][g * 7:(g + 1) * 7].astype(np.float64)
        np.testing.assert_allclose(w @ w.T, np.eye(7), atol=1e-5)
    limit = np.sqrt(6 / (5 + 28))
    assert np.abs(lstm.params["weight_ih_l0"]).max() <= limit
    irnn = RNN(2, 3, nonlinearity="relu", init="irnn")
    np.testing.assert_array_equal(irnn.params["weight_hh_l0"], np.eye(3))
    again = LSTM(5, 7, num_layers=2, bidirectional=True, random_state=0)
    for k in lstm.params:
        np.testing.assert_array_equal(lstm.params[k], again.params[k])
    assert not np.array_equal(LSTM(5, 7, random_state=1).params["weight_ih_l0"],
                              lstm.params["weight_ih_l0"])


def test_state_dict_round_trip_and_in_place_load():
    a = GRU(3, 4, random_state=0, dtype=np.float64)
    b = GRU(3, 4, random_state=1, dtype=np.float64)
    ref = b.params["weight_hh_l0"]
    b.load_state_dict({k: v.tolist() for k, v in a.state_dict().items()})
    assert b.params["weight_hh_l0"] is ref
    X, L = batch()
    np.testing.assert_array_equal(a.forward(X, L)[0], b.forward(X, L)[0])
    sd = a.state_dict()
    sd["weight_hh_l0"][...] = 0
    assert not np.all(a.params["weight_hh_l0"] == 0), "state_dict must return copies"


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, match", [
    (lambda l: l.forward(np.zeros((2, 3))), "3-D"),
    (lambda l: l.forward(np.zeros((2, 3, 5))), "5 features"),
    (lambda l: l.forward(np.zeros((0, 3, 3))), "empty"),
    (lambda l: l.forward(np.zeros((2, 3, 3)), lengths=[0, 3]), r"lengths\[0\] = 0"),
    (lambda l: l.forward(np.zeros((2, 3, 3)), lengths=[4, 3]), r"lengths\[0\] = 4"),
    (lambda l: l.forward(np.zeros((2, 3, 3)), lengths=[3]), "one length per sequence"),
    (lambda l: l.forward(np.zeros((2, 3, 3)), lengths=[1.5, 3]), "whole numbers"),
    (lambda l: l.forward(np.full((2, 3, 3), np.inf)), "non-finite value"),
    (lambda l: l.forward(np.zeros((2, 3, 3)), h0=np.zeros((1, 3, 4))), "h0 must have shape"),
    (lambda l: l.forward(np.zeros((2, 3, 3)), h0=np.full((1, 2, 4), np.nan)), "non-finite"),
    (lambda l: l.backward(np.zeros((2, 3, 4))), "call forward"),
    (lambda l: l.load_state_dict({}), "missing keys"),
    (lambda l: l.load_state_dict({**l.state_dict(), "x": 1}), "unexpected keys"),
    (lambda l: l.load_state_dict({**l.state_dict(), "weight_hh_l0": np.zeros((5, 4))}),
     r"'weight_hh_l0' has shape \(5, 4\), expected \(4, 4\)"),
])
def test_bad_input_errors(call, match):
    layer = RNN(3, 4)
    with pytest.raises(ValueError, match=match):
        call(layer)


def test_lstm_state_must_be_a_pair_and_bad_args():
    with pytest.raises(ValueError, match="pair"):
        LSTM(3, 4).forward(np.zeros((2, 3, 3)), h0=np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="dY must have the shape of Y"):
        l = LSTM(3, 4)
        l.forward(np.zeros((2, 3, 3)))
        l.backward(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="hidden_size"):
        LSTM(3, 0)
    with pytest.raises(ValueError, match="dtype"):
        LSTM(3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="backend"):
        LSTM(3, 4, backend="tpu")
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")


# ---------------------------------------------------------------- messages that name the problem
def test_a_huge_unsigned_length_is_reported_as_given():
    lengths = np.array([2 ** 64 - 1, 3], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"lengths\[0\] = 18446744073709551615"):
        RNN(3, 4).forward(np.zeros((2, 3, 3)), lengths=lengths)


def test_a_finite_value_overflowing_float32_is_not_called_missing():
    X = np.zeros((2, 3, 3))
    X[1, 2, 0] = 1e39
    with pytest.raises(ValueError) as info:
        RNN(3, 4, dtype=np.float32).forward(X)
    msg = str(info.value)
    assert "1e+39" in msg and "sequence 1, step 2, feature 0" in msg
    assert "overflows float32" in msg and "float64" in msg
    assert "non-finite" not in msg and "impute" not in msg
    RNN(3, 4, dtype=np.float32).forward(X, lengths=[3, 2])  # padding may hold anything
    RNN(3, 4, dtype=np.float64).forward(X)  # float64 holds it


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_a_bad_dh_n_is_named_dh_n(cls):
    layer = cls(3, 4)
    layer.forward(np.zeros((2, 3, 3)))
    bad = np.zeros((1, 3, 4))
    with pytest.raises(ValueError, match=r"^dh_n must have shape \(1, 2, 4\)"):
        layer.backward(np.zeros((2, 3, 4)), (bad, bad) if cls is LSTM else bad)
    if cls is LSTM:
        good = np.zeros((1, 2, 4))
        with pytest.raises(ValueError, match=r"^dc_n must have shape"):
            layer.backward(np.zeros((2, 3, 4)), (good, bad))
        with pytest.raises(ValueError, match=r"dh_n must be a pair \(dh_n, dc_n\)"):
            layer.backward(np.zeros((2, 3, 4)), good)
        with pytest.raises(ValueError, match=r"dh_n holds non-finite values"):
            layer.backward(np.zeros((2, 3, 4)), (np.full((1, 2, 4), np.nan), good))


@pytest.mark.parametrize("make, exc, match", [
    (lambda sd: None, TypeError, r"state dict must be a mapping.*got NoneType"),
    (lambda sd: list(sd.items()), TypeError, r"got a list.*dict\(pairs\)"),
    (lambda sd: "weights", TypeError, r"got str"),
    (lambda sd: {**sd, "weight_hh_l0": "abc"}, ValueError,
     r"'weight_hh_l0' holds str values \(<U3\).*numbers"),
    (lambda sd: {**sd, "weight_hh_l0": sd["weight_hh_l0"] + 1j}, ValueError,
     r"'weight_hh_l0' holds complex numbers.*real"),
    (lambda sd: {**sd, "weight_hh_l0": None}, ValueError, r"'weight_hh_l0' holds None"),
])
def test_load_state_dict_refuses_what_is_not_real_arrays(make, exc, match):
    layer = RNN(3, 4, random_state=0)
    before = {k: v.copy() for k, v in layer.params.items()}
    with pytest.raises(exc, match=match):
        layer.load_state_dict(make(RNN(3, 4, random_state=1).state_dict()))
    for k, v in layer.params.items():
        np.testing.assert_array_equal(v, before[k])  # nothing half-loaded


@pytest.mark.parametrize("seed", [-1, 2 ** 32])
def test_a_seed_out_of_range_is_named_with_its_value(seed):
    from fastrnn.text import length_buckets

    match = rf"random_state must be .*\[0, 2\*\*32 - 1\].*got {seed}"
    with pytest.raises(ValueError, match=match):
        LSTM(3, 4, random_state=seed)
    with pytest.raises(ValueError, match=match):
        list(length_buckets([3, 4, 5], 2, random_state=seed))
