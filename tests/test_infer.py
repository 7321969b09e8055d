"""One-sequence inference in one C call (fastrnn/_cy/_infer.pyx, _infer.h, _gemv.h).

Every instruction set level the CPU supports is forced in turn (``set_isa``), so the AVX-512, AVX2
and portable kernels are all checked on a machine that has AVX-512. References are independent:
the step-by-step numpy twins of ``tests/_reference.py`` in float64 for the cells, numpy's float64
products for the matrix-vector kernels.
"""

import os
import re

import numpy as np
import pytest

from fastrnn._backend import available_backends
from fastrnn.nn import GRU, LSTM, RNN

import _reference as ref

CY_OK, CY_WHY = available_backends()["cython"]
REQUIRE = os.environ.get("FASTRNN_REQUIRE_CYTHON", "").strip().lower() in ("1", "true", "yes", "on")
pytestmark = pytest.mark.skipif(not CY_OK and not REQUIRE,
                                reason=f"the cython backend is not built here: {CY_WHY}")

if CY_OK:
    from fastrnn._cy import _infer, _single

    _SUPPORTED = _infer.isa()["supported_float32"]
    LEVELS = [lv for lv in ("avx512", "avx2", "generic")
              if _infer.LEVELS[lv] <= _infer.LEVELS[_SUPPORTED]]
else:
    LEVELS = ["generic"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(params=LEVELS)
def level(request):
    """Force an instruction set level for the test, and restore the best one after."""
    before = _infer.isa()["float32"]
    got = _infer.set_isa(request.param)
    assert got["float32"] == request.param
    yield request.param
    _infer.set_isa(before)


# ------------------------------------------------------------------ the matrix-vector kernels
@pytest.mark.parametrize("R,K", [(512, 128), (37, 19), (16, 16), (5, 3), (48, 100), (1, 1),
                                 (17, 33)])
def test_sgemv_matches_float64_product(level, R, K):
    rng = np.random.default_rng(R * 100 + K)
    W = rng.normal(size=(R, K)).astype(np.float32)
    x = rng.normal(size=K).astype(np.float32)
    want = W.astype(np.float64) @ x.astype(np.float64)
    got = _infer.sgemv(W, x)
    bound = 1e-6 * (np.abs(W).astype(np.float64) @ np.abs(x).astype(np.float64)) + 1e-30
    assert np.all(np.abs(got - want) <= 4 * bound), np.max(np.abs(got - want) / bound)


def test_set_isa_rejects_an_unknown_level():
    with pytest.raises(ValueError, match="ISA level must be one of"):
        _infer.set_isa("sse2")


def test_tanh_literals_are_those_of_the_fast_path():
    """The C tanh of _infer.h spells out the coefficients of fastrnn.kernels._vmath: compared
    here, exactly (reads the source, needs no build)."""
    from fastrnn.kernels import _vmath as vm

    with open(os.path.join(ROOT, "fastrnn", "_cy", "_infer.h"), encoding="utf-8") as fh:
        text = fh.read()
    body = text.split("float fr_tanh(float x)", 1)[1].split("\n}", 1)[0]
    number = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
    bounds = re.search(rf"hi = \(float\)({number}), lo = \(float\)({number})", body)
    assert (float(bounds.group(1)), float(bounds.group(2))) == (vm._XMAX, -vm._XMAX)
    chain = {v: [float(c) for line in re.findall(rf"^\s*{v} = (.*)$", body, flags=re.M)
                 for c in re.findall(rf"\(float\)\s*({number})", line)] for v in ("p", "q")}
    assert chain["p"] == [vm._P5, vm._P4, vm._P3, vm._P2, vm._P1, vm._P0]
    assert chain["q"] == [vm._Q3, vm._Q2, vm._Q1]


def test_tanh_of_the_one_sequence_kernel_is_accurate(level):
    """tanh through a one-unit RNN with zero weights but the input weight 1: relative error below
    5e-7 (the rational function of the fast path), NaN kept, saturated at +-1."""
    x = np.concatenate([np.linspace(-20, 20, 4001), np.logspace(-30, 1.3, 300)]).astype(np.float32)
    layer = RNN(1, 1, random_state=0, backend="cython").eval()
    layer.params["weight_ih_l0"][...] = 1
    layer.params["weight_hh_l0"][...] = 0
    got = np.array([layer.infer(np.float32(v).reshape(1, 1, 1))[0][0, 0, 0] for v in x])
    want = np.tanh(x.astype(np.float64))
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
    assert rel.max() < 5e-7
    assert np.abs(got).max() <= 1.0


# ------------------------------------------------------------------ whole layers against numpy
CELLS = [
    ("rnn", lambda **k: RNN(**k)),
    ("rnn_relu", lambda **k: RNN(nonlinearity="relu", **k)),
    ("lstm", lambda **k: LSTM(**k)),
    ("lstm_peep", lambda **k: LSTM(peephole=True, forget_gate=False, **k)),
    ("gru", lambda **k: GRU(**k)),
    ("gru_v1", lambda **k: GRU(reset_after=False, **k)),
]


def _ref_unit(name, x, h0, c0, p, peep):
    """The numpy twin of one layer-direction over an unpadded sequence."""
    if name.startswith("rnn"):
        y, h = ref.rnn_sequence(x, h0, p, relu=name == "rnn_relu")
        return y, h, None
    if name.startswith("lstm"):
        gates = (True, name != "lstm_peep", True)
        return ref.lstm_sequence(x, h0, c0, p, peep=peep, gates=gates)
    y, h = ref.gru_sequence(x, h0, p, reset_after=name == "gru")
    return y, h, None


def _ref_layer(name, layer, x, length, h0, c0):
    """Stacked, bidirectional reference in float64: x (T, I) of which ``length`` steps are real."""
    P = {k: v.astype(np.float64) for k, v in layer.params.items()}
    D, H = layer.num_directions, layer.hidden_size
    inp = x[:length].astype(np.float64)
    hn, cn = [], []
    for lay in range(layer.num_layers):
        outs = []
        for d in range(D):
            u = lay * D + d
            sfx = f"_l{lay}" + ("_reverse" if d else "")
            p = {k: P[k + sfx] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            peep = P.get("weight_peephole" + sfx)
            seq = inp[::-1] if d else inp
            y, h, c = _ref_unit(name, seq, h0[u].astype(np.float64),
                                None if c0 is None else c0[u].astype(np.float64), p, peep)
            outs.append(y[::-1] if d else y)
            hn.append(h)
            cn.append(c)
        inp = np.concatenate(outs, axis=1)
    Y = np.zeros((x.shape[0], D * H))
    Y[:length] = inp
    return Y, np.array(hn), (np.array(cn) if c0 is not None else None)


@pytest.fixture
def calls(monkeypatch):
    """Counts the calls of the one-sequence kernel."""
    n = []
    real = _single._forward

    def counted(*args):
        n.append(1)
        return real(*args)

    monkeypatch.setattr(_single, "_forward", counted)
    return n


@pytest.mark.parametrize("name,make", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("layers,bidir,length,state", [(1, False, 9, False), (1, False, 5, True),
                                                       (2, True, 6, True), (3, False, 9, False),
                                                       (2, True, 1, False)])
def test_one_sequence_matches_numpy_reference(level, calls, name, make, layers, bidir, length,
                                              state):
    rng = np.random.default_rng(layers * 10 + length)
    layer = make(input_size=7, hidden_size=20, num_layers=layers, bidirectional=bidir,
                 random_state=1, backend="cython").eval()
    for p in layer.params.values():
        p += rng.normal(scale=0.2, size=p.shape).astype(np.float32)
    T, U, H = 9, layers * (2 if bidir else 1), 20
    x = rng.normal(size=(1, T, 7)).astype(np.float32)
    h0 = rng.normal(size=(U, 1, H)).astype(np.float32) if state else np.zeros((U, 1, H), np.float32)
    c0 = rng.normal(size=(U, 1, H)).astype(np.float32) if state else np.zeros((U, 1, H), np.float32)
    lstm = name.startswith("lstm")
    Y, hn = layer.infer(x, [length], ((h0, c0) if lstm else h0) if state else None)
    assert calls, "the one-sequence kernel was not called"
    want_y, want_h, want_c = _ref_layer(name, layer, x[0], length, h0[:, 0],
                                        c0[:, 0] if lstm else None)
    np.testing.assert_allclose(Y[0], want_y, rtol=1e-5, atol=1e-5)
    got_h = hn[0] if lstm else hn
    np.testing.assert_allclose(got_h[:, 0], want_h, rtol=1e-5, atol=1e-5)
    if lstm:
        np.testing.assert_allclose(hn[1][:, 0], want_c, rtol=1e-5, atol=1e-5)
    assert np.all(Y[0, length:] == 0)


def test_backward_after_an_eval_forward_of_one_sequence():
    """A layer in evaluation mode may still be differentiated: the backward after a one-sequence
    forward gives the gradients of the numpy backend."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 6, 4)).astype(np.float32)
    grads = []
    for backend in ("cython", "numpy"):
        layer = LSTM(4, 5, num_layers=2, bidirectional=True, random_state=0,
                     backend=backend).eval()
        Y, _ = layer.forward(x)
        dx = layer.backward(np.ones_like(Y))
        grads.append((Y, dx, layer.grads["weight_hh_l1_reverse"].copy()))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_weights_changed_in_place_are_seen():
    """The bound weights read the layer's arrays at every call: an in-place change (as an
    optimiser makes) shows in the next call, and a replaced array is bound again."""
    layer = GRU(3, 4, random_state=0, backend="cython").eval()
    x = np.random.default_rng(0).normal(size=(1, 5, 3)).astype(np.float32)
    before = layer.infer(x)[0]
    layer.params["weight_hh_l0"] *= 0.5
    after = layer.infer(x)[0]
    assert not np.allclose(before, after)
    check = GRU(3, 4, random_state=0, backend="numpy").eval()
    check.load_state_dict(layer.params)
    np.testing.assert_allclose(after, check.infer(x)[0], rtol=1e-5, atol=1e-6)
    layer.params["weight_ih_l0"] = layer.params["weight_ih_l0"] * 2
    check.load_state_dict(layer.params)
    np.testing.assert_allclose(layer.infer(x)[0], check.infer(x)[0], rtol=1e-5, atol=1e-6)
