"""ONNX export (fastrnn.onnx.export): ONNX Runtime running the exported graph against fastrnn's own
forward and predictions, on ragged and equal-length batches."""

import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fastrnn import RNNClassifier, RNNRegressor, RNNTagger  # noqa: E402
from fastrnn import nn  # noqa: E402
from fastrnn import onnx as fonnx  # noqa: E402
from fastrnn.estimators import RNNLanguageModel  # noqa: E402

ATOL = 1e-5

CELLS = {
    "rnn-tanh": (nn.RNN, {}),
    "rnn-relu": (nn.RNN, dict(nonlinearity="relu")),
    "lstm": (nn.LSTM, {}),
    "lstm-peephole": (nn.LSTM, dict(peephole=True)),
    "gru": (nn.GRU, {}),
    "gru-v1": (nn.GRU, dict(reset_after=False)),
    "mingru": (nn.MinGRU, {}),
    "mingru-g": (nn.MinGRU, dict(candidate="g")),
    "minlstm": (nn.MinLSTM, {}),
    "minlstm-g": (nn.MinLSTM, dict(candidate="g")),
    "indrnn-relu": (nn.IndRNN, {}),
    "indrnn-tanh": (nn.IndRNN, dict(nonlinearity="tanh")),
}
SHAPES = {"1-layer": dict(num_layers=1), "2-layer-bi": dict(num_layers=2, bidirectional=True)}
LENGTHS = {"ragged": [6, 1, 4, 6, 2], "equal": [6, 6, 6, 6, 6]}


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def make_layer(cell, shape, seed=0, **kw):
    cls, options = CELLS[cell]
    layer = cls(3, 4, init="pytorch", random_state=seed, **options, **SHAPES[shape], **kw)
    rng = np.random.default_rng(seed)
    for k, v in layer.params.items():
        if k.startswith("weight_peephole"):  # zero at first: give them values that matter
            v[...] = rng.normal(size=v.shape)
    return layer


def padded(seqs, T, dtype):
    out = np.zeros((len(seqs), T) + seqs[0].shape[1:], dtype)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cell", CELLS)
def test_layer_matches_forward(cell, shape, lengths):
    layer = make_layer(cell, shape)
    rng = np.random.default_rng(1)
    L = np.array(LENGTHS[lengths])
    X = rng.normal(size=(len(L), L.max(), 3)).astype(np.float32)
    X[0, :, 0] = 3.0  # large inputs, where the relu RNN grows
    for b, n in enumerate(L):
        X[b, n:] = 1e3  # padding values: must not reach any output
    out = session(fonnx.export(layer)).run(None, {"X": X, "lengths": L})
    Y, h_n = layer.infer(X, L)
    expected = [Y] + (list(h_n) if layer.has_cell else [h_n])
    assert len(out) == len(expected)
    for got, want in zip(out, expected):
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.abs(got - want).max() <= ATOL
    for b, n in enumerate(L):
        assert np.all(out[0][b, n:] == 0.0)


@pytest.mark.parametrize("cell", ["rnn-tanh", "lstm", "gru", "mingru", "minlstm-g",
                                  "indrnn-relu"])
def test_layer_initial_state_and_dynamic_axes(cell):
    layer = make_layer(cell, "2-layer-bi", seed=3)
    sess = session(fonnx.export(layer, initial_state=True))
    rng = np.random.default_rng(2)
    for B, T in ((1, 1), (3, 7)):  # one graph, any batch size and number of steps
        X = rng.normal(size=(B, T, 3)).astype(np.float32)
        L = rng.integers(1, T + 1, size=B)
        states = [rng.normal(size=(4, B, 4)).astype(np.float32)
                  for _ in range(2 if layer.has_cell else 1)]
        feed = {"X": X, "lengths": L, "h0": states[0]}
        if layer.has_cell:
            feed["c0"] = states[1]
        out = sess.run(None, feed)
        Y, h_n = layer.infer(X, L, tuple(states) if layer.has_cell else states[0])
        expected = [Y] + (list(h_n) if layer.has_cell else [h_n])
        for got, want in zip(out, expected):
            assert np.abs(got - want).max() <= ATOL


def test_float64_layer_exported_in_float32():
    layer = nn.GRU(3, 5, dtype=np.float64, init="pytorch", random_state=0)
    X = np.random.default_rng(0).normal(size=(2, 4, 3))
    L = np.array([4, 2])
    out = session(fonnx.export(layer)).run(None, {"X": X.astype(np.float32), "lengths": L})
    Y, h_n = layer.infer(X, L)
    assert out[0].dtype == np.float32
    assert np.abs(out[0] - Y).max() <= ATOL and np.abs(out[1] - h_n).max() <= ATOL
    model = fonnx.export(layer, dtype="float64")  # a valid graph in double precision
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_gate_ablation_refused():
    with pytest.raises(ValueError, match="forget_gate=False.*cannot be exported"):
        fonnx.export(nn.LSTM(3, 4, forget_gate=False))


def test_bad_arguments():
    with pytest.raises(ValueError, match="opset must be an integer from 14"):
        fonnx.export(nn.RNN(2, 3), opset=9)
    with pytest.raises(TypeError, match="got str"):
        fonnx.export("model")
    with pytest.raises(ValueError, match="initial_state=True"):
        fonnx.export(nn.SequenceNetwork(2, n_features=3), initial_state=True)
    with pytest.raises(ValueError, match="dtype must be"):
        fonnx.export(nn.RNN(2, 3), dtype="float16")
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        fonnx.export(RNNClassifier())


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(ImportError, match=r"fastrnn\[onnx\]"):
        fonnx.export(nn.RNN(2, 3))


def test_writes_the_file(tmp_path):
    layer = make_layer("lstm", "1-layer")
    path = tmp_path / "lstm.onnx"
    proto = fonnx.export(layer, path, opset=fonnx.MIN_OPSET)
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == proto.SerializeToString()
    assert loaded.opset_import[0].version == fonnx.MIN_OPSET


# --------------------------------------------------------------------------------------------
# networks and estimators
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [fonnx.MIN_OPSET, 18])  # ReduceMax's axes: attribute, input
@pytest.mark.parametrize("pooling", ["last", "mean", "max", None])
def test_network_matches_infer(pooling, opset):
    net = nn.SequenceNetwork(3, n_features=2, cell="lstm", hidden_size=4, num_layers=2,
                             bidirectional=True, pooling=pooling, learn_initial_state=True,
                             random_state=0)
    rng = np.random.default_rng(0)
    net.params["h0"][...] = rng.normal(size=net.params["h0"].shape)
    net.params["c0"][...] = rng.normal(size=net.params["c0"].shape)
    L = np.array([5, 1, 3])
    X = rng.normal(size=(3, 5, 2)).astype(np.float32)
    (out,) = session(fonnx.export(net, opset=opset)).run(None, {"X": X, "lengths": L})
    want, _ = net.infer(X, L)
    if pooling is None:  # per step: compare the real steps
        mask = np.arange(5)[None, :] < L[:, None]
        out, want = out[mask], want[mask]
    assert out.shape == want.shape
    assert np.abs(out - want).max() <= ATOL


def sequences(rng, lengths, n_features=3):
    return [(rng.normal(size=(n, n_features)) * 3 + 1).astype(np.float32) for n in lengths]


def fit_quietly(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def classifier_through_onnx(clf, X, lengths, dtype):
    """Run the exported classifier in ONNX Runtime on the padded ``X``; check its probabilities
    and labels against the classifier's; return the labels."""
    label, proba = session(fonnx.export(clf)).run(
        None, {"X": padded(X, max(lengths), dtype), "lengths": np.array(lengths)})
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert label.tolist() == clf.predict(X).tolist()
    return label


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "mingru", "minlstm", "indrnn"])
def test_classifier_matches_predict(cell, pooling):
    rng = np.random.default_rng(0)
    lengths = [7, 1, 4, 7, 5, 2]
    X = sequences(rng, lengths)
    y = np.array(["cat", "dog", "eel", "cat", "dog", "eel"])
    clf = fit_quietly(RNNClassifier(cell=cell, hidden_size=5, num_layers=2, pooling=pooling,
                                    max_iter=2, random_state=0), X, y)
    assert clf.feature_mean_ is not None  # the graph standardises
    label, proba = session(fonnx.export(clf)).run(
        None, {"X": padded(X, 7, np.float32), "lengths": np.array(lengths)})
    assert proba.dtype == np.float64
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert label.tolist() == clf.predict(X).tolist()


@pytest.mark.parametrize("n_features, frame_size, difference, standardize", [
    (1, 4, True, True), (2, 3, False, True), (1, 1, True, False), (2, 5, True, False)])
def test_classifier_reading_frames_and_differences(n_features, frame_size, difference,
                                                   standardize):
    """The graph computes the first difference (per sequence, over its real steps) and the
    frames (the last one filled up with the sequence's last real step) as the estimator does,
    on ragged lengths that are and are not multiples of the frame size; padding holds large
    values that must not reach anything."""
    rng = np.random.default_rng(4)
    lengths = [11, 3, 8, 12, 1, 6]
    X = sequences(rng, lengths, n_features)
    y = np.array(["a", "b", "c"] * 2)
    clf = fit_quietly(RNNClassifier(frame_size=frame_size, difference=difference,
                                    standardize=standardize, hidden_size=5, max_iter=2,
                                    random_state=0), X, y)
    assert (clf.frame_size_, clf.difference_) == (frame_size, difference)
    Xp = padded(X, max(lengths), np.float32)
    for b, n in enumerate(lengths):
        Xp[b, n:] = 1e3
    label, proba = session(fonnx.export(clf)).run(None, {"X": Xp, "lengths": np.array(lengths)})
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert label.tolist() == clf.predict(X).tolist()


def test_classifier_token_input_and_numeric_classes():
    rng = np.random.default_rng(1)
    lengths = [6, 1, 3, 6, 4]
    ids = [rng.integers(1, 30, size=n) for n in lengths]
    y = np.array([10, 20, 30, 20, 10])
    clf = fit_quietly(RNNClassifier(hidden_size=5, max_iter=2, random_state=0), ids, y)
    assert classifier_through_onnx(clf, ids, lengths, np.int64).dtype == y.dtype


def test_classifier_several_ids_per_step():
    rng = np.random.default_rng(2)
    lengths = [5, 1, 3, 5]
    ids = [rng.integers(1, 20, size=(n, 2)) for n in lengths]
    clf = fit_quietly(RNNClassifier(hidden_size=4, max_iter=2, random_state=0), ids,
                      [0, 1, 0, 1])
    assert clf.n_features_in_ == 2
    classifier_through_onnx(clf, ids, lengths, np.int64)


@pytest.mark.parametrize("options", [dict(standardize=False), dict(dtype="float64")])
def test_classifier_bool_classes_unscaled_or_float64(options):
    rng = np.random.default_rng(5)
    lengths = [5, 1, 3, 5, 2]
    X = [s.astype(np.float64) for s in sequences(rng, lengths)]
    y = np.array([True, False, True, False, True])
    clf = fit_quietly(RNNClassifier(hidden_size=5, max_iter=2, random_state=0, **options), X, y)
    assert classifier_through_onnx(clf, X, lengths, np.float32).dtype == np.bool_


def test_classifier_with_object_classes_refused():
    rng = np.random.default_rng(0)
    X = sequences(rng, [3, 2, 3, 2])
    y = [("a", 1), ("b", 2), ("a", 1), ("b", 2)]
    clf = fit_quietly(RNNClassifier(hidden_size=3, max_iter=1, random_state=0), X, y)
    with pytest.raises(ValueError, match="neither numbers nor strings"):
        fonnx.export(clf)


@pytest.mark.parametrize("y_ndim", [1, 2])
def test_regressor_matches_predict(y_ndim):
    rng = np.random.default_rng(3)
    lengths = [6, 1, 4, 6]
    X = sequences(rng, lengths)
    y = rng.normal(size=(4, 2)) * 10 + 5
    y = y[:, 0] if y_ndim == 1 else y
    reg = fit_quietly(RNNRegressor(hidden_size=5, bidirectional=True, pooling="mean",
                                   max_iter=2, random_state=0), X, y)
    (pred,) = session(fonnx.export(reg)).run(
        None, {"X": padded(X, 6, np.float32), "lengths": np.array(lengths)})
    want = reg.predict(X)
    assert pred.shape == want.shape and pred.dtype == np.float64
    assert np.abs(pred - want).max() <= ATOL * max(1.0, np.abs(want).max())


def test_tagger_matches_predict():
    rng = np.random.default_rng(4)
    lengths = [6, 1, 4, 6, 3]
    X = sequences(rng, lengths)
    y = [rng.choice(["B", "I", "O"], size=n) for n in lengths]
    tagger = fit_quietly(RNNTagger(cell="gru", hidden_size=5, max_iter=2, random_state=0), X, y)
    label, proba = session(fonnx.export(tagger)).run(
        None, {"X": padded(X, 6, np.float32), "lengths": np.array(lengths)})
    want_proba, want_label = tagger.predict_proba(X), tagger.predict(X)
    for b, n in enumerate(lengths):
        assert np.abs(proba[b, :n] - want_proba[b]).max() <= ATOL
        assert label[b, :n].tolist() == want_label[b].tolist()
        assert np.all(proba[b, n:] == 0.0)


@pytest.mark.parametrize("cell", ["lstm", "minlstm", "indrnn"])
def test_language_model_next_token_distribution(cell):
    texts = ["the cat sat on the mat", "a dog ran to the cat", "the dog sat"] * 3
    lm = RNNLanguageModel(level="word", cell=cell, hidden_size=8, num_layers=2, max_iter=2,
                          batch_size=2, random_state=0, ngram_order=None).fit(texts)
    prompts = ["the cat", "a"]
    ids = [np.asarray(lm._prompt_ids(p), np.int64) for p in prompts]
    T = max(len(i) for i in ids)
    (proba,) = session(fonnx.export(lm)).run(
        None, {"X": padded(ids, T, np.int64), "lengths": np.array([len(i) for i in ids])})
    V = len(lm.vocabulary_)
    assert proba.shape == (2, V)
    for p, row in zip(prompts, proba):
        for token, prob in lm.predict_next(p, k=V):
            assert abs(row[lm.vocabulary_.token_to_id(token)] - prob) <= ATOL
        assert np.all(row[list(lm.network_.head.excluded)] == 0.0)  # <pad>, <bos>
        assert row.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_classifier_with_a_bag_of_embeddings(pooling):
    rng = np.random.default_rng(6)
    lengths = [7, 1, 4, 7, 3]
    ids = [rng.integers(1, 25, size=n) for n in lengths]
    clf = fit_quietly(RNNClassifier(hidden_size=4, max_iter=2, random_state=0, pooling=pooling,
                                    bag_of_embeddings=True), ids, [0, 1, 2, 1, 0])
    assert clf.network_.bag_of_embeddings
    classifier_through_onnx(clf, ids, lengths, np.int64)
