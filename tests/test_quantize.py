"""Int8 inference: ``quantize`` of the layers, networks and estimators, the int8 kernels of every
instruction set level against a naive numpy twin, and saving and loading the int8 weights.

The twin (``_twin_*`` below) is written from the definition in ``fastrnn/nn/_quant.py``: per-row
symmetric weights, per-vector symmetric activations, integer products, ``acc * sx * sw``. The
integer products are exact, so the kernels must give the twin's floats exactly.
"""

import os
import warnings

import numpy as np
import pytest

import fastrnn
from fastrnn import ModelFileError, RNNClassifier
from fastrnn._backend import available_backends
from fastrnn._persist import read_model, save_model
from fastrnn.nn import GRU, LSTM, RNN, MinGRU

import _reference as ref

CY_OK, CY_WHY = available_backends()["cython"]
REQUIRE = os.environ.get("FASTRNN_REQUIRE_CYTHON", "").strip().lower() in ("1", "true", "yes", "on")
pytestmark = pytest.mark.skipif(not CY_OK and not REQUIRE,
                                reason=f"the cython backend is not built here: {CY_WHY}")

if CY_OK:
    from fastrnn._cy import _infer

    _SUPPORTED = _infer.isa()["supported_int8"]
    LEVELS = [lv for lv in ("avx512", "avx2", "generic")
              if _infer.LEVELS[lv] <= _infer.LEVELS[_SUPPORTED]]
else:
    LEVELS = ["generic"]


@pytest.fixture(params=LEVELS)
def level(request):
    before = _infer.isa()["float32"]
    assert _infer.set_isa(request.param)["int8"] == request.param
    yield request.param
    _infer.set_isa(before)


# ------------------------------------------------------------------------------ the numpy twin
def _twin_rows(w):
    """Per-row symmetric int8 weights and their scales."""
    w = w.astype(np.float32)
    amax = np.abs(w).max(axis=1)
    scale = amax / np.float32(127)
    q = np.zeros(w.shape, np.int8)
    nz = scale > 0
    q[nz] = np.clip(np.rint(w[nz] / scale[nz, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def _twin_vector(x):
    """Per-vector symmetric int8 activations and their scale, as the kernels compute them:
    ``rint(x * (127 / max|x|))``."""
    x = x.astype(np.float32)
    amax = np.float32(np.abs(x).max())
    if amax == 0:
        return np.zeros(x.shape, np.int8), np.float32(0)
    q = np.clip(np.rint(x * (np.float32(127) / amax)), -127, 127).astype(np.int8)
    return q, amax / np.float32(127)


def _twin_product(qw, sw, x):
    """``W @ x`` in int8: quantise, integer product, dequantise (float32, left to right)."""
    qx, sx = _twin_vector(x)
    acc = qw.astype(np.int32) @ qx.astype(np.int32)
    return acc.astype(np.float32) * sx * sw


@pytest.mark.parametrize("R,K", [(512, 128), (37, 19), (16, 16), (5, 3), (48, 100), (64, 64),
                                 (3, 1), (130, 257)])
def test_int8_product_matches_the_twin_exactly(level, R, K):
    rng = np.random.default_rng(R + 1000 * K)
    W = rng.normal(size=(R, K)).astype(np.float32)
    W[0] = 0  # a row of zeros: scale 0
    x = rng.normal(size=K).astype(np.float32) * 3
    qw, sw = _twin_rows(W)
    got = _infer.qgemv(_infer.QMatrix(qw, sw), x)
    np.testing.assert_array_equal(got, _twin_product(qw, sw, x))
    # extreme weights and activations: every product at +-127 * 127
    qw = np.where(rng.random((R, K)) < 0.5, 127, -127).astype(np.int8)
    x = np.where(rng.random(K) < 0.5, 1.0, -1.0).astype(np.float32)
    got = _infer.qgemv(_infer.QMatrix(qw, np.ones(R, np.float32)), x)
    np.testing.assert_array_equal(got, _twin_product(qw, np.ones(R, np.float32), x))


def test_int8_product_of_a_zero_vector_is_zero(level):
    qw, sw = _twin_rows(np.random.default_rng(0).normal(size=(20, 8)))
    got = _infer.qgemv(_infer.QMatrix(qw, sw), np.zeros(8, np.float32))
    np.testing.assert_array_equal(got, np.zeros(20, np.float32))


def test_quantize_rows_is_the_twin():
    from fastrnn.nn._quant import quantize_rows

    w = np.random.default_rng(1).normal(size=(30, 11)).astype(np.float32)
    w[3] = 0
    q, s = quantize_rows(w)
    tq, ts = _twin_rows(w)
    np.testing.assert_array_equal(q, tq)
    np.testing.assert_array_equal(s, ts)
    assert np.abs(q).max() == 127


def test_qmatrix_rejects_bad_arrays():
    with pytest.raises(ValueError, match="int8"):
        _infer.QMatrix(np.zeros((4, 3), np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="one per row"):
        _infer.QMatrix(np.zeros((4, 3), np.int8), np.ones(3, np.float32))


# -------------------------------------------------------------------- layers against the twin
def _twin_layer(layer, x, length):
    """A one-layer, one-direction quantised layer over x[:length], in numpy: the int8 products
    of the twin, float64 cell mathematics."""
    p = layer.params
    kind = layer._spec.kind
    H = layer.hidden_size
    qi, si = _twin_rows(p["weight_ih_l0"])
    qh, sh = _twin_rows(p["weight_hh_l0"])
    bi, bh = p["bias_ih_l0"].astype(np.float64), p["bias_hh_l0"].astype(np.float64)
    h, c, out = np.zeros(H), np.zeros(H), []
    for t in range(length):
        xp = _twin_product(qi, si, x[t]).astype(np.float64) + bi
        if kind == "gru_v1":
            a = _twin_product(qh[:2 * H], sh[:2 * H], h.astype(np.float32)).astype(np.float64)
            r = ref.sigmoid(xp[:H] + a[:H] + bh[:H])
            z = ref.sigmoid(xp[H:2 * H] + a[H:] + bh[H:2 * H])
            an = _twin_product(qh[2 * H:], sh[2 * H:], (r * h).astype(np.float32))
            n = np.tanh(xp[2 * H:] + an + bh[2 * H:])
            h = (1 - z) * n + z * h
        else:
            a = _twin_product(qh, sh, h.astype(np.float32)).astype(np.float64) + bh
            if kind == "rnn":
                h = np.tanh(xp + a)
            elif kind == "gru":
                r = ref.sigmoid(xp[:H] + a[:H])
                z = ref.sigmoid(xp[H:2 * H] + a[H:2 * H])
                n = np.tanh(xp[2 * H:] + r * a[2 * H:])
                h = (1 - z) * n + z * h
            else:
                g = xp + a
                i, f = ref.sigmoid(g[:H]), ref.sigmoid(g[H:2 * H])
                c = f * c + i * np.tanh(g[2 * H:3 * H])
                h = ref.sigmoid(g[3 * H:]) * np.tanh(c)
        out.append(h)
    return np.array(out)


@pytest.mark.parametrize("make", [lambda: RNN(6, 16, random_state=0),
                                  lambda: LSTM(6, 16, random_state=0),
                                  lambda: GRU(6, 16, random_state=0),
                                  lambda: GRU(6, 16, reset_after=False, random_state=0)],
                         ids=["rnn", "lstm", "gru", "gru_v1"])
def test_quantized_layer_matches_the_twin(level, make):
    layer = make()
    rng = np.random.default_rng(5)
    for v in layer.params.values():
        v += rng.normal(scale=0.3, size=v.shape).astype(np.float32)
    layer.quantize("int8").eval()
    x = rng.normal(size=(2, 7, 6)).astype(np.float32)
    Y, _ = layer.infer(x, [7, 4])
    for b, length in enumerate((7, 4)):
        want = _twin_layer(layer, x[b], length)
        np.testing.assert_allclose(Y[b, :length], want, rtol=2e-4, atol=2e-4)
        assert np.all(Y[b, length:] == 0)


def test_quantized_stacked_bidirectional_layer_is_close_to_float():
    rng = np.random.default_rng(2)
    layer = LSTM(5, 24, num_layers=2, bidirectional=True, peephole=True, random_state=0).eval()
    x = rng.normal(size=(3, 10, 5)).astype(np.float32)
    (Yf, (hf, cf)) = layer.infer(x, [10, 3, 8])
    (Yq, (hq, cq)) = layer.quantize().infer(x, [10, 3, 8])
    assert layer.quantized_ == "int8" and layer.last_backend_ == "cython"
    assert np.abs(Yq - Yf).max() < 0.02 * np.abs(Yf).max()
    assert np.abs(hq - hf).max() < 0.02 * np.abs(hf).max()
    assert np.all(Yq[1, 3:] == 0)


def test_quantized_layer_refuses_training_and_backward():
    layer = GRU(3, 4, random_state=0).quantize()
    x = np.ones((1, 2, 3), np.float32)
    with pytest.raises(ValueError, match="quantised"):
        layer.forward(x)  # a new layer is in training mode
    layer.eval()
    Y, _ = layer.forward(x)
    with pytest.raises(ValueError, match="backward"):
        layer.backward(np.ones_like(Y))


@pytest.mark.parametrize("make,match", [
    (lambda: LSTM(3, 4, dtype=np.float64), "float32"),
    (lambda: MinGRU(3, 4), "recurrent matrix"),
    (lambda: LSTM(3, 4, num_layers=2, skip="residual"), "skip='residual'"),
])
def test_quantize_refuses_what_it_cannot_run(make, match):
    with pytest.raises(ValueError, match=match):
        make().quantize("int8")


def test_quantize_refuses_an_unknown_precision():
    with pytest.raises(ValueError,
                       match=r"precision must be one of \[.int8., .bf16.\], got .int4."):
        LSTM(3, 4).quantize("int4")


# ------------------------------------------------------------------------------ estimators
def _vowels_like(n, seed):
    """Sequences of the size of JapaneseVowels (12 channels, 7 to 29 steps, 9 classes) whose class
    is the channel of largest mean."""
    rng = np.random.RandomState(seed)
    X, y = [], []
    for _ in range(n):
        T = rng.randint(7, 30)
        k = rng.randint(9)
        x = rng.normal(size=(T, 12)).astype(np.float32)
        x[:, k] += 1.0
        X.append(x)
        y.append(k)
    return X, np.array(y)


@pytest.fixture(scope="module")
def fitted():
    X, y = _vowels_like(270, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RNNClassifier(max_iter=15, random_state=0).fit(X, y)


def test_estimator_quantize_returns_a_quantized_copy(fitted):
    q = fitted.quantize("int8")
    assert q is not fitted and type(q) is type(fitted)
    assert q.network_.rnn.quantized_ == "int8"
    assert fitted.network_.rnn.quantized_ is None
    X, _ = _vowels_like(370, 1)
    agree = np.mean(q.predict(X) == fitted.predict(X))
    assert agree > 0.95, agree
    pf, pq = fitted.predict_proba(X), q.predict_proba(X)
    assert np.abs(pf - pq).max() < 0.05
    # one sequence at a time, as a server predicts: the same probabilities as in a batch
    np.testing.assert_allclose(q.predict_proba(X[:1]), pq[:1], rtol=1e-6, atol=1e-7)


def test_quantized_model_round_trip(fitted, tmp_path):
    q = fitted.quantize()
    X, _ = _vowels_like(40, 2)
    want = q.predict_proba(X)
    path = tmp_path / "q.fastrnn"
    q.save(path)
    loaded = fastrnn.load(path)
    assert loaded.network_.rnn.quantized_ == "int8"
    np.testing.assert_array_equal(loaded.predict_proba(X), want)
    pred = fastrnn.load_predictor(path)
    np.testing.assert_array_equal(pred.predict_proba(X), want)
    # (the float head's product of one row rounds otherwise than that of a batch)
    np.testing.assert_allclose(pred.predict_proba(X[:1]), want[:1], rtol=1e-6, atol=1e-7)
    # the int8 weights are stored as int8 with their scales
    meta, arrays = read_model(path)
    assert meta["network"]["quantized"] == "int8"
    assert arrays["network/int8/rnn.weight_hh_l0"].dtype == np.int8
    assert arrays["network/int8/rnn.weight_hh_l0/scale"].dtype == np.float32


def test_a_quantized_model_pickles_and_copies_after_predicting(fitted):
    import copy
    import pickle

    q = fitted.quantize()
    X, _ = _vowels_like(10, 3)
    want = q.predict_proba(X)  # binds the int8 weights for the kernel
    for twin in (pickle.loads(pickle.dumps(q)), copy.deepcopy(q)):
        assert twin.network_.rnn.quantized_ == "int8"
        np.testing.assert_array_equal(twin.predict_proba(X), want)


def test_a_float_model_saves_no_int8_weights(fitted, tmp_path):
    path = tmp_path / "f.fastrnn"
    fitted.save(path)
    meta, arrays = read_model(path)
    assert "quantized" not in meta["network"]
    assert not any("int8" in k for k in arrays)


def _resave(path, meta, arrays):
    """Write a model file from what ``read_model`` returned (its header entries left out)."""
    header = ("format", "format_version", "fastrnn_version", "class")
    save_model(path, meta["class"], {k: v for k, v in meta.items() if k not in header}, arrays)


def test_a_file_with_bad_int8_weights_is_refused(fitted, tmp_path):
    path = tmp_path / "q.fastrnn"
    fitted.quantize().save(path)
    meta, arrays = read_model(path)
    del arrays["network/int8/rnn.weight_ih_l0/scale"]
    _resave(tmp_path / "bad.fastrnn", meta, arrays)
    with pytest.raises(ModelFileError, match="int8 weights"):
        fastrnn.load(tmp_path / "bad.fastrnn")
    meta, arrays = read_model(path)
    arrays["network/int8/rnn.weight_ih_l0"] = arrays["network/int8/rnn.weight_ih_l0"].astype(
        np.float32)
    _resave(tmp_path / "bad2.fastrnn", meta, arrays)
    with pytest.raises(ModelFileError, match="int8"):
        fastrnn.load_predictor(tmp_path / "bad2.fastrnn")


def test_quantize_needs_a_fitted_estimator():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RNNClassifier().quantize()


def test_language_model_quantize_and_round_trip(tmp_path):
    from fastrnn import RNNLanguageModel

    texts = ["the cat sat on the mat.", "a dog ran far.", "the dog sat.", "a cat ran on."] * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lm = RNNLanguageModel(hidden_size=16, embedding_dim=8, max_iter=2, random_state=0)
        lm.fit(texts)
    q = lm.quantize()
    pf, pq = lm.perplexity(texts), q.perplexity(texts)
    assert abs(pq - pf) < 0.05 * pf
    q.save(tmp_path / "lm.fastrnn")
    back = fastrnn.load(tmp_path / "lm.fastrnn")
    assert back.network_.rnn.quantized_ == "int8"
    assert back.perplexity(texts) == pytest.approx(pq, rel=1e-12)


# ------------------------------------------------------------------------------------- bf16
def _from_bf16(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def test_to_bf16_rounds_to_nearest_ties_to_even():
    from fastrnn.nn._quant import to_bf16

    x = np.random.default_rng(0).normal(size=5000).astype(np.float32)
    x = np.concatenate([x, np.float32([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 0.0])])
    got = _from_bf16(to_bf16(x)).astype(np.float64)
    # the two bf16 neighbours of each value: its truncation and the next one away from zero
    down = _from_bf16(x.view(np.uint32) >> 16 & 0xFFFF).astype(np.float64)
    up = _from_bf16(((x.view(np.uint32) >> 16) + 1 & 0xFFFF).astype(np.uint32)).astype(np.float64)
    xd = x.astype(np.float64)
    assert np.all(np.abs(got - xd) <= np.minimum(np.abs(down - xd), np.abs(up - xd)))
    assert got[-4] == 1.0 and got[-3] == 1 + 2 ** -6 and got[-2] == -1.0  # ties to even


def test_to_bf16_keeps_nan_a_nan_and_infinity_infinite():
    from fastrnn.nn._quant import to_bf16

    bits = np.array([0x7F800001, 0x7FFFFFFF, 0xFF800001, 0x7FC00000, 0x7F800000, 0xFF800000,
                     0x7F7FFFFF], np.uint32)
    got = _from_bf16(to_bf16(bits.view(np.float32)))
    assert np.isnan(got[:4]).all() and np.signbit(got[2]) and not np.signbit(got[0])
    assert got[4] == np.inf and got[5] == -np.inf
    assert got[6] == np.inf  # the largest float32 rounds up past bf16's largest finite value


@pytest.mark.parametrize("R,K", [(512, 128), (37, 19), (5, 3), (64, 1), (130, 257)])
def test_bf16_product_matches_float64_on_bf16_values(level, R, K):
    from fastrnn.nn._quant import to_bf16

    rng = np.random.default_rng(R + K)
    W = rng.normal(size=(R, K)).astype(np.float32)
    x = rng.normal(size=K).astype(np.float32)
    wb, xb = to_bf16(W), to_bf16(x)
    got = _infer.bgemv(_infer.BMatrix(wb), x)
    Wd, xd = _from_bf16(wb).astype(np.float64), _from_bf16(xb).astype(np.float64)
    want = Wd @ xd
    bound = 1e-6 * (np.abs(Wd) @ np.abs(xd)) + 1e-30
    assert np.all(np.abs(got - want) <= 4 * bound)


def test_bf16_layer_is_close_to_float_and_round_trips(fitted, tmp_path):
    rng = np.random.default_rng(4)
    layer = GRU(5, 24, num_layers=2, bidirectional=True, random_state=0).eval()
    x = rng.normal(size=(2, 8, 5)).astype(np.float32)
    Yf, _ = layer.infer(x, [8, 3])
    Yb, _ = layer.quantize("bf16").infer(x, [8, 3])
    assert layer.quantized_ == "bf16"
    assert np.abs(Yb - Yf).max() < 0.01 * np.abs(Yf).max()
    b = fitted.quantize("bf16")
    X, _ = _vowels_like(50, 5)
    assert np.mean(b.predict(X) == fitted.predict(X)) > 0.97
    want = b.predict_proba(X)
    b.save(tmp_path / "b.fastrnn")
    meta, arrays = read_model(tmp_path / "b.fastrnn")
    assert meta["network"]["quantized"] == "bf16"
    assert arrays["network/bf16/rnn.weight_hh_l0"].dtype == np.uint16
    np.testing.assert_array_equal(fastrnn.load_predictor(tmp_path / "b.fastrnn").predict_proba(X),
                                  want)
    del arrays["network/bf16/rnn.weight_hh_l0"]
    _resave(tmp_path / "bad.fastrnn", meta, arrays)
    with pytest.raises(ModelFileError, match="bf16 weights"):
        fastrnn.load(tmp_path / "bad.fastrnn")
