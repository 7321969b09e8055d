"""Connections between stacked layers (``skip``): a naive reference of the forward, gradient
checks, padding, backend parity, streaming, the network and the estimators, saving, and the
exports that refuse them."""

import numpy as np
import pytest

from fastrnn.nn import GRU, LSTM, RNN, IndRNN, MinGRU, MinLSTM, SequenceNetwork

from _reference import (gru_sequence, indrnn_sequence, lstm_sequence, mingru_sequence,
                        minlstm_sequence, rnn_sequence, sigmoid, unit_params)
from conftest import CPU_BACKENDS, tol
from test_recurrent import batch, check_gradients, check_padding, check_parity, run

SKIPS = ("residual", "dense", "highway")
CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "mingru": MinGRU, "minlstm": MinLSTM,
         "indrnn": IndRNN}
COMPILED = [b for b in CPU_BACKENDS if b != "numpy"]


def make(cell, skip, backend="numpy", dtype=np.float64, seed=0, n_in=3, H=2, num_layers=3,
         bidirectional=True, **kw):
    layer = CELLS[cell](n_in, H, num_layers, bidirectional=bidirectional, skip=skip,
                        dtype=dtype, backend=backend, random_state=seed, **kw)
    rng = np.random.RandomState(seed + 100)
    for k, v in layer.params.items():  # non-trivial biases, so every path is exercised
        if "bias" in k:
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    return layer


# ---------------------------------------------------------------- a naive reference
def _unit_sequence(layer, x, sfx):
    """One layer-direction over one sequence ``x`` (n, size) from a zero state: outputs (n, H)."""
    p = unit_params(layer.params, sfx)
    H = layer.hidden_size
    kind = type(layer).__name__
    if kind == "LSTM":
        return lstm_sequence(x, np.zeros(H), np.zeros(H), p)[0]
    if kind == "GRU":
        return gru_sequence(x, np.zeros(H), p)[0]
    if kind == "MinGRU":
        return mingru_sequence(x, np.zeros(H), p)[0]
    if kind == "MinLSTM":
        return minlstm_sequence(x, np.zeros(H), p)[0]
    if kind == "IndRNN":
        return indrnn_sequence(x, np.zeros(H), p, layer.nonlinearity == "relu")[0]
    return rnn_sequence(x, np.zeros(H), p)[0]


def skip_sequence(layer, x):
    """The stack's output over one sequence ``x`` (n, input_size), written from the definitions
    of the connections, step by step."""
    P = {k: v.astype(np.float64) for k, v in layer.params.items()}
    x0 = x.astype(np.float64)
    outs = []
    for li in range(layer.num_layers):
        if li == 0:
            inp = x0
        elif layer.skip == "dense":
            inp = np.concatenate([x0] + outs, axis=1)
        else:
            inp = outs[-1]
        parts = []
        for d in range(layer.num_directions):
            sfx = f"_l{li}" + ("_reverse" if d else "")
            y = _unit_sequence(layer, inp[::-1] if d else inp, sfx)
            parts.append(y[::-1] if d else y)
        f = np.concatenate(parts, axis=1)
        proj = P.get(f"skip_proj_l{li}")
        carried = inp if proj is None else inp @ proj.T
        if layer.skip == "residual" and li > 0:
            z = f + carried
        elif layer.skip == "highway":
            z = np.empty_like(f)
            for t in range(len(f)):  # one step at a time, as the definition reads
                g = sigmoid(P[f"skip_gate_weight_l{li}"] @ inp[t] + P[f"skip_gate_bias_l{li}"])
                z[t] = g * f[t] + (1 - g) * carried[t]
        else:
            z = f
        outs.append(z)
    return outs[-1]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("skip", SKIPS)
def test_matches_naive_reference(skip, cell, bidirectional):
    layer = make(cell, skip, bidirectional=bidirectional)
    X, L = batch()
    Y, _ = layer.forward(X, L)
    for b, n in enumerate(L):
        np.testing.assert_allclose(Y[b, :n], skip_sequence(layer, X[b, :n]), rtol=1e-12,
                                   atol=1e-12)
        assert np.all(Y[b, n:] == 0)


def test_parameters_of_each_connection():
    D, H, n_in = 2, 2, 3
    res = make("lstm", "residual")
    assert not any(k.startswith("skip_") for k in res.params)  # layers l > 0: sizes match
    dense = make("gru", "dense")
    assert [dense.params[f"weight_ih_l{k}"].shape[1] for k in range(3)] == [
        n_in, n_in + D * H, n_in + 2 * D * H]
    hw = make("mingru", "highway")
    assert hw.params["skip_proj_l0"].shape == (D * H, n_in)  # 3 features in, 4 out
    assert "skip_proj_l1" not in hw.params  # identity
    fresh = MinGRU(3, 2, 2, skip="highway", random_state=0)
    assert np.all(fresh.params["skip_gate_bias_l1"] == -1.0)
    assert set(hw.grads) == set(hw.params)


def test_skip_none_draws_the_same_parameters_and_outputs():
    """The connections' parameters are drawn after the cell's: a residual stack (whose layers
    have the sizes of a plain one) holds the plain stack's cell parameters."""
    plain = LSTM(3, 4, 3, random_state=5, dtype=np.float64, backend="numpy")
    res = LSTM(3, 4, 3, skip="residual", random_state=5, dtype=np.float64, backend="numpy")
    for k, v in plain.params.items():
        np.testing.assert_array_equal(res.params[k], v)
    # one layer: residual adds nothing
    one = LSTM(3, 4, 1, skip="residual", random_state=5, dtype=np.float64, backend="numpy")
    ref = LSTM(3, 4, 1, random_state=5, dtype=np.float64, backend="numpy")
    X, L = batch()
    np.testing.assert_allclose(one.forward(X, L)[0], ref.forward(X, L)[0], rtol=1e-14, atol=0)


# ---------------------------------------------------------------- gradients and padding
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("skip", SKIPS)
def test_gradient_check(skip, cell):
    check_gradients(make(cell, skip))


@pytest.mark.parametrize("skip", SKIPS)
def test_gradient_check_with_dropout(skip):
    """Dropout between layers, with the masks of one draw held fixed."""
    layer = make("gru", skip, dropout=0.4, seed=2)
    plan_masks = {}
    draw = layer._draw_masks

    def fixed(plan):
        key = (plan.B, plan.T)
        if key not in plan_masks:
            plan_masks[key] = draw(plan)
        return plan_masks[key]

    layer._draw_masks = fixed
    check_gradients(layer)
    assert any(m is not None for m in next(iter(plan_masks.values()))[1])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("skip", SKIPS)
def test_padding_never_leaks(skip, cell):
    check_padding(make(cell, skip))


# ---------------------------------------------------------------- backends
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("backend", COMPILED)
def test_compiled_backend_matches_numpy(skip, cell, backend, dtype):
    check_parity(make(cell, skip, "numpy", dtype, H=3), make(cell, skip, backend, dtype, H=3),
                 dtype)


@pytest.mark.parametrize("cell", ["lstm", "gru", "minlstm", "indrnn"])
@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_streaming_step_equals_forward(skip, cell, backend, dtype):
    layer = make(cell, skip, backend, dtype, bidirectional=False).eval()
    X, _ = batch()
    Y, h_n = layer.forward(X)
    state = layer.init_state(X.shape[0])
    for t in range(X.shape[1]):
        y, _ = layer.step(X[:, t], state)
        np.testing.assert_allclose(y, Y[:, t], rtol=10 * tol(dtype), atol=10 * tol(dtype))
    h = state.h
    np.testing.assert_allclose(h, h_n[0] if layer.has_cell else h_n, rtol=10 * tol(dtype),
                               atol=10 * tol(dtype))
    bad = X[:, 0].copy()
    bad[0, 0] = np.nan
    before = state.h.copy()
    with pytest.raises(ValueError, match="non-finite"):
        layer.step(bad, state)
    np.testing.assert_array_equal(state.h, before)


@pytest.mark.parametrize("bad", ["resnet", "", 1, True])
def test_bad_skip_is_named(bad):
    with pytest.raises(ValueError, match="skip must be None, 'residual', 'dense' or 'highway'"):
        LSTM(3, 4, 2, skip=bad)


def test_repr_names_the_connection():
    assert "skip='dense'" in repr(GRU(3, 4, 2, skip="dense"))


# ---------------------------------------------------------------- the network
@pytest.mark.parametrize("skip", SKIPS)
def test_network_gradients_through_the_connections(skip):
    net = SequenceNetwork(3, n_features=2, cell="minlstm", hidden_size=3, num_layers=3,
                          bidirectional=True, pooling="mean", skip=skip, dtype=np.float64,
                          backend="numpy", random_state=0)
    assert net.config["skip"] == skip and net.rnn.skip == skip
    rng = np.random.RandomState(0)
    X, L = rng.randn(3, 5, 2), np.array([5, 2, 4])
    R = rng.randn(3, 3)

    def loss():
        return float(np.sum(net.forward(X, L)[0] * R))

    loss()
    net.backward(R)
    name = "rnn.skip_gate_weight_l1" if skip == "highway" else "rnn.weight_ih_l2"
    p, g = net.params[name], net.grads[name].copy()
    from conftest import numerical_grad
    from test_recurrent import rel_err
    assert rel_err(numerical_grad(loss, p), g) < 1e-6


def test_network_without_skip_keeps_its_config():
    net = SequenceNetwork(2, n_features=3, hidden_size=4, random_state=0)
    assert "skip" not in net.config
    with pytest.raises(ValueError, match="skip must be None"):
        SequenceNetwork(2, n_features=3, hidden_size=4, skip="wide")


def test_layer_runs_on_every_backend_with_the_same_masks():
    """Dropout masks come from the layer's random state in the same order on every backend."""
    outs = []
    for backend in CPU_BACKENDS:
        layer = make("lstm", "dense", backend, np.float64, dropout=0.5, seed=3)
        outs.append(run(layer, *batch())[1])
    for Y in outs[1:]:
        np.testing.assert_allclose(Y, outs[0], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- estimators, saving, CLI
def _seq_data(n=48, seed=1):
    from fastrnn.datasets import make_sequence_classification

    return make_sequence_classification(n_samples=n, n_classes=2, n_features=3, min_length=3,
                                        max_length=10, random_state=seed)


SMALL = dict(hidden_size=6, num_layers=3, learning_rate=0.03, batch_size=16, random_state=0)


@pytest.mark.parametrize("skip", SKIPS)
def test_classifier_with_connections_learns_saves_and_loads(skip, tmp_path):
    import fastrnn
    from fastrnn import RNNClassifier

    X, y = _seq_data()
    clf = RNNClassifier(cell="gru", skip=skip, max_iter=6, **SMALL).fit(X, y)
    assert clf.network_.rnn.skip == skip
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    clf.save(tmp_path / "m")
    back = fastrnn.load(tmp_path / "m")
    assert back.get_params() == clf.get_params()
    assert back.network_.rnn.skip == skip
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    predictor = fastrnn.load_predictor(tmp_path / "m")
    np.testing.assert_allclose(predictor.predict_proba(X), clf.predict_proba(X), rtol=1e-5,
                               atol=1e-6)


def test_regressor_and_tagger_take_skip(tmp_path):
    import fastrnn
    from fastrnn import RNNRegressor, RNNTagger

    X, y = _seq_data()
    reg = RNNRegressor(cell="minlstm", skip="highway", max_iter=2, **SMALL).fit(X, y * 1.0)
    reg.save(tmp_path / "reg")
    np.testing.assert_array_equal(fastrnn.load(tmp_path / "reg").predict(X), reg.predict(X))
    tags = [np.full(len(x), label) for x, label in zip(X, y)]
    tagger = RNNTagger(cell="indrnn", skip="dense", max_iter=2, **SMALL).fit(X, tags)
    assert tagger.network_.rnn.params["weight_ih_l2"].shape[1] == 3 + 2 * 2 * 6
    tagger.save(tmp_path / "tag")
    back = RNNTagger.load(tmp_path / "tag")
    for a, b in zip(back.predict(X), tagger.predict(X)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", ["resnet", 3])
def test_estimators_name_a_bad_skip(bad):
    from fastrnn import RNNClassifier, RNNLanguageModel

    X, y = _seq_data(n=10)
    with pytest.raises(ValueError, match="'skip' parameter"):
        RNNClassifier(skip=bad, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="'skip' parameter"):
        RNNLanguageModel(skip=bad, max_iter=1).fit(["some text to read"])


def test_a_saved_model_with_a_bad_skip_is_refused(tmp_path):
    import json
    import zipfile

    import fastrnn
    from fastrnn import RNNClassifier

    X, y = _seq_data(n=20)
    RNNClassifier(skip="residual", max_iter=1, **SMALL).fit(X, y).save(tmp_path / "m")
    with zipfile.ZipFile(tmp_path / "m") as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["meta.json"])
    meta["network"]["skip"] = "sideways"
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(tmp_path / "bad", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(fastrnn.ModelFileError, match="skip must be one of"):
        fastrnn.load(tmp_path / "bad")


def test_language_model_with_connections(tmp_path):
    import fastrnn
    from fastrnn import RNNLanguageModel

    texts = ["the cat sat on the mat. " * 4, "a dog ran in the fog. " * 4]
    lm = RNNLanguageModel(cell="lstm", skip="residual", hidden_size=8, num_layers=2, bptt=8,
                          batch_size=2, max_iter=2, random_state=0).fit(texts)
    assert lm.network_.rnn.skip == "residual"
    lm.save(tmp_path / "lm")
    back = fastrnn.load(tmp_path / "lm")
    assert back.get_params()["skip"] == "residual"
    assert back.perplexity(texts) == pytest.approx(lm.perplexity(texts), rel=1e-6)
    # generation reads the model step by step, through the connections
    assert lm.generate("the ", max_length=12, random_state=0) == back.generate(
        "the ", max_length=12, random_state=0)


def test_cli_trains_a_language_model_with_connections(tmp_path, capsys):
    from fastrnn.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat. a dog ran in the fog. " * 20)
    out = tmp_path / "m"
    rc = main(["train-lm", str(corpus), "--hidden-size", "8", "--num-layers", "2", "--skip",
               "highway", "--bptt", "8", "--batch-size", "4", "--epochs", "1", "--out", str(out),
               "--quiet"])
    assert rc == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "highway connections" in capsys.readouterr().out
    assert main(["train-lm", str(corpus), "--skip", "wide", "--out", str(out)]) == 2


# ---------------------------------------------------------------- ONNX and diagnostics
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("skip", SKIPS)
def test_onnx_export_of_a_layer_with_connections(skip, cell):
    """ONNX Runtime runs the exported stack (3 layers, both directions, ragged lengths, NaN in
    the padding) and gives the layer's outputs and final states."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastrnn.onnx import export

    layer = make(cell, skip, dtype=np.float32)
    X, L = batch()
    X = X.astype(np.float32)
    for b, n in enumerate(L):
        X[b, n:] = np.nan
    sess = ort.InferenceSession(export(layer).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    out = sess.run(None, {"X": X, "lengths": L})
    Y, h_n = layer.infer(X, L)
    for got, want in zip(out, [Y] + (list(h_n) if layer.has_cell else [h_n])):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "mean", None])
@pytest.mark.parametrize("skip", SKIPS)
def test_onnx_export_of_a_network_with_connections(skip, pooling):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastrnn.onnx import export

    net = SequenceNetwork(3, n_features=3, cell="gru", hidden_size=4, num_layers=3,
                          bidirectional=True, pooling=pooling, skip=skip, random_state=0)
    X, L = batch()
    X = X.astype(np.float32)
    sess = ort.InferenceSession(export(net).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"X": X, "lengths": L})
    want, _ = net.infer(X, L)
    if pooling is None:
        real = np.arange(X.shape[1])[None, :] < L[:, None]
        out, want = out[real], want[real]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_onnx_export_of_a_language_model_with_connections():
    """The next-token distribution reads the top layer's output after the connections."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastrnn import RNNLanguageModel
    from fastrnn.onnx import export

    texts = ["the cat sat on the mat", "a dog ran to the cat", "the dog sat"] * 3
    lm = RNNLanguageModel(level="word", skip="highway", hidden_size=6, num_layers=2,
                          batch_size=2, max_iter=2, random_state=0, ngram_order=None).fit(texts)
    sess = ort.InferenceSession(export(lm).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    prompts = ["the cat", "a"]
    ids = [np.asarray(lm._prompt_ids(p), np.int64) for p in prompts]
    X = np.zeros((2, max(len(i) for i in ids)), np.int64)
    for b, i in enumerate(ids):
        X[b, :len(i)] = i
    (proba,) = sess.run(None, {"X": X, "lengths": np.array([len(i) for i in ids])})
    V = len(lm.vocabulary_)
    for p, row in zip(prompts, proba):
        for token, prob in lm.predict_next(p, k=V):
            assert abs(row[lm.vocabulary_.token_to_id(token)] - prob) <= 1e-5


def _top_from_f0(layer, x, f0):
    """Naive: the stack's output over one full-length sequence when layer 0's recurrent outputs
    are replaced by ``f0`` (uni-directional), from the definitions of the connections."""
    P = {k: v.astype(np.float64) for k, v in layer.params.items()}
    outs = []
    for li in range(layer.num_layers):
        inp = x if li == 0 else (np.concatenate([x] + outs, axis=1) if layer.skip == "dense"
                                 else outs[-1])
        f = f0 if li == 0 else _unit_sequence(layer, inp, f"_l{li}")
        proj = P.get(f"skip_proj_l{li}")
        carried = inp if proj is None else inp @ proj.T
        if layer.skip == "residual" and li > 0:
            z = f + carried
        elif layer.skip == "highway":
            g = sigmoid(inp @ P[f"skip_gate_weight_l{li}"].T + P[f"skip_gate_bias_l{li}"])
            z = g * f + (1 - g) * carried
        else:
            z = f
        outs.append(z)
    return outs[-1]


@pytest.mark.parametrize("skip", SKIPS)
def test_gradient_flow_follows_the_connections(skip):
    """The gradient that reaches the bottom layer's last state, against central differences of
    a naive stack in which that state is perturbed."""
    from fastrnn.diagnostics import gradient_flow

    layer = make("gru", skip, n_in=3, H=3, bidirectional=False)
    rng = np.random.RandomState(4)
    X, R = rng.randn(2, 5, 3), rng.randn(2, 5, 3)
    flow = gradient_flow(layer, X, output_grad=lambda Y: R)
    for b in range(2):
        f0 = _unit_sequence(layer, X[b], "_l0")
        g = np.zeros(3)
        for j in range(3):
            up, down = f0.copy(), f0.copy()
            up[-1, j] += 1e-6
            down[-1, j] -= 1e-6
            g[j] = (np.sum(R[b] * _top_from_f0(layer, X[b], up))
                    - np.sum(R[b] * _top_from_f0(layer, X[b], down))) / 2e-6
        got = flow.loss_grad_per_sequence[0, 0, b, 0]
        assert got == pytest.approx(np.linalg.norm(g), rel=1e-6)


def test_gate_statistics_read_the_connected_inputs():
    """The forget gate of the second layer of a dense stack reads the input and the first
    layer's outputs: its mean against a naive computation of the gate."""
    from fastrnn.diagnostics import gate_statistics

    layer = make("lstm", "dense", bidirectional=False)
    X = np.random.RandomState(0).randn(3, 6, 3)
    stats = gate_statistics(layer, X)
    H = layer.hidden_size
    p = unit_params(layer.params, "_l1")
    forget = []
    for b in range(3):
        inp = np.concatenate([X[b], _unit_sequence(layer, X[b], "_l0")], axis=1)
        h = np.vstack([np.zeros(H), _unit_sequence(layer, inp, "_l1")[:-1]])
        pre = inp @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        forget.append(sigmoid(pre[:, H:2 * H]))
    assert stats.forget_mean[1, 0] == pytest.approx(np.mean(forget), rel=1e-10)


def test_a_fit_is_not_resumed_with_another_connection(tmp_path):
    """The connections are part of the architecture: a checkpoint of a fit with one is not
    resumed by a fit with another (nor without), and is left as it was."""
    from fastrnn import RNNClassifier
    from fastrnn.callbacks import Callback

    class StopAfterOne(Callback):
        def on_epoch_end(self, est, loop, logs):
            loop.stop_training = True

    X, y = _seq_data(n=24)
    ckpt = tmp_path / "clf.ckpt"
    RNNClassifier(skip="dense", max_iter=3, checkpoint_path=ckpt, callbacks=[StopAfterOne()],
                  **SMALL).fit(X, y)
    raw = ckpt.read_bytes()
    for other in (None, "residual"):
        with pytest.raises(ValueError, match=rf"skip='dense' there, {other!r} here"):
            RNNClassifier(skip=other, max_iter=3, checkpoint_path=ckpt, **SMALL).fit(
                X, y, resume=True)
        assert ckpt.read_bytes() == raw
    resumed = RNNClassifier(skip="dense", max_iter=3, checkpoint_path=ckpt, **SMALL).fit(
        X, y, resume=True)
    assert resumed.network_.rnn.skip == "dense"


def test_from_torch_refuses_connections():
    torch = pytest.importorskip("torch")
    module = torch.nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="no connections between its layers; got "
                                         "skip='residual'"):
        LSTM.from_torch(module, skip="residual")
    assert LSTM.from_torch(module).skip is None
