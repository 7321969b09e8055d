"""The linear part of a token classifier: a logistic regression on TF-IDF features of the ids,
added to the network's logits, in every inference path (batch, saved, predictor, streaming)."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression

import fastrnn
from fastrnn import RNNClassifier
from fastrnn.estimators._linear_part import LINEAR_C
from fastrnn.nn import SequenceNetwork
from fastrnn.nn._linear import TokenLinear

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FIT = dict(hidden_size=4, embedding_dim=4, max_iter=3, batch_size=8, random_state=0,
           dtype="float64")


def _token_data(n=60, V=25, seed=0, K=1):
    """Sequences of ids in 1..V-1 whose label depends on which ids occur (so that a linear
    model on the bag of ids learns something), with repeated ids."""
    rng = np.random.RandomState(seed)
    X, y = [], []
    for _ in range(n):
        T = rng.randint(2, 12)
        ids = rng.randint(1, V, size=T)
        label = int(np.isin(ids, [3, 5, 7]).sum() >= 2) + int(np.isin(ids, [11, 13]).any())
        X.append(ids if K == 1 else np.stack([ids] + [rng.randint(1, V, size=T)
                                                      for _ in range(K - 1)], axis=1))
        y.append("abc"[label])
    return X, np.array(y)


def _sklearn_tfidf(train, test):
    """Sublinear TF-IDF of the first id of each step by scikit-learn alone: ids as words."""
    words = lambda seqs: [[str(i) for i in (s[:, 0] if s.ndim == 2 else s)] for s in seqs]
    cv = CountVectorizer(analyzer=lambda d: d).fit(words(train))
    tf = TfidfTransformer(sublinear_tf=True).fit(cv.transform(words(train)))
    return tf.transform(cv.transform(words(train))), tf.transform(cv.transform(words(test)))


def _padded(seqs):
    lengths = np.array([len(s) for s in seqs])
    out = np.zeros((len(seqs), lengths.max()) + np.shape(seqs[0])[1:], np.int64)
    for b, s in enumerate(seqs):
        out[b, :len(s)] = s
    return out, lengths


@pytest.mark.parametrize("K", [1, 3])
def test_linear_part_is_sklearn_logistic_regression_on_tfidf(K):
    X, y = _token_data(V=20, K=K)
    X_new, _ = _token_data(n=20, V=25, seed=1, K=K)  # ids 20..24 were never seen
    clf = RNNClassifier(vocab_size=25, **FIT).fit(X, y)
    net = clf.network_
    assert net.linear is not None
    A, B = _sklearn_tfidf(X, X_new)
    lr = LogisticRegression(C=LINEAR_C, max_iter=5000).fit(A, y)
    for seqs, feats in ((X, A), (X_new, B)):
        ids, lengths = _padded(seqs)
        ref = lr.decision_function(feats)
        got = net.linear.apply(ids, lengths)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    # the classifier's logits are the network's plus the linear part's
    ids, lengths = _padded(X)
    net.eval()
    alone = SequenceNetwork(**{k: v for k, v in net.config.items() if k != "linear"},
                            random_state=0)
    alone.load_state_dict(net.params)
    deep, _ = alone.infer(ids, lengths)
    np.testing.assert_allclose(clf.decision_function(X), deep + lr.decision_function(A),
                               rtol=1e-4, atol=1e-4)


def test_unseen_ids_neither_count_nor_change_the_norm():
    lin = TokenLinear(10, 2, dtype=np.float64)
    rng = np.random.RandomState(0)
    lin.params["idf"][1:6] = rng.uniform(1, 3, 5)  # ids 6..9 unseen: idf 0
    lin.params["weight"][...] = rng.normal(size=(10, 2))
    lin.params["bias"][...] = [0.5, -0.5]
    ids = np.array([[2, 7, 2, 9, 3], [2, 2, 3, 0, 0]])
    got = lin.apply(ids, np.array([5, 3]))
    np.testing.assert_allclose(got[0], got[1])  # the same seen ids, the same counts
    u = np.zeros(10)
    u[2], u[3] = (1 + np.log(2)) * lin.params["idf"][2], lin.params["idf"][3]
    np.testing.assert_allclose(got[0], u @ lin.params["weight"] / np.linalg.norm(u) + [0.5, -0.5])
    only_unseen = lin.apply(np.array([[7, 8]]), np.array([2]))
    np.testing.assert_allclose(only_unseen[0], [0.5, -0.5])


def test_network_trains_with_the_linear_logits_as_an_offset():
    """forward adds the linear logits; backward's gradients are exact (finite differences of the
    float64 loss), and the linear part gets none."""
    rng = np.random.RandomState(3)
    net = SequenceNetwork(3, vocab_size=12, embedding_dim=3, hidden_size=4, pooling="max",
                          linear=True, dtype=np.float64, random_state=0)
    net.set_linear(rng.uniform(0, 2, 12) * (np.arange(12) > 0), rng.normal(size=(12, 3)),
                   rng.normal(size=3))
    net.eval()
    ids = rng.randint(1, 12, size=(4, 6))
    lengths = np.array([6, 3, 5, 1])
    target = rng.normal(size=(4, 3))

    def loss():
        out, _ = net.forward(ids, lengths)
        return 0.5 * float(np.sum((out - target) ** 2))

    out, _ = net.forward(ids, lengths)
    plain = SequenceNetwork(3, vocab_size=12, embedding_dim=3, hidden_size=4, pooling="max",
                            dtype=np.float64, random_state=0)
    plain.load_state_dict(net.params)
    ref, _ = plain.infer(ids, lengths)
    np.testing.assert_allclose(out, ref + net.linear.apply(ids, lengths), rtol=1e-12)
    net.backward(out - target)
    assert not any(k.startswith("linear") for k in net.grads)
    eps = 1e-6
    for name in ("head.weight", "rnn.weight_hh_l0", "embedding.weight"):
        p, g = net.params[name], net.grads[name].copy()
        for idx in list(zip(*np.unravel_index(rng.choice(p.size, 5, replace=False), p.shape))):
            keep = p[idx]
            p[idx] = keep + eps
            up = loss()
            p[idx] = keep - eps
            down = loss()
            p[idx] = keep
            np.testing.assert_allclose(g[idx], (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_saved_loaded_predictor_and_streaming_predict_the_same(tmp_path):
    X, y = _token_data()
    clf = RNNClassifier(bidirectional=False, **FIT).fit(X, y)
    assert clf.network_.linear is not None
    path = tmp_path / "model.frnn"
    clf.save(path)
    loaded = fastrnn.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.network_.linear.params["weight"],
                                  clf.network_.linear.params["weight"])
    pred = fastrnn.load_predictor(path)
    np.testing.assert_array_equal(pred.predict_proba(X), clf.predict_proba(X))
    streams = [x[:5] for x in X[:3] if len(x) >= 5][:2]
    state = clf.init_state(len(streams))
    for t in range(1, 6):
        out, state = clf.step(np.array([s[t - 1] for s in streams]), state)
        np.testing.assert_allclose(out, clf.predict_proba([s[:t] for s in streams]),
                                   rtol=1e-9, atol=1e-12)


def test_early_stopping_restores_the_network_and_keeps_the_linear_part():
    X, y = _token_data(n=80)
    clf = RNNClassifier(early_stopping=True, validation_fraction=0.25, **FIT).fit(X, y)
    lin = clf.network_.linear
    assert lin is not None and np.any(lin.params["weight"] != 0)
    assert np.isfinite(clf.best_validation_score_)


def test_auto_is_on_for_token_ids_in_fit_only():
    X, y = _token_data()
    assert RNNClassifier(linear=False, **FIT).fit(X, y).network_.linear is None
    inc = RNNClassifier(**FIT).partial_fit(X, y, classes=["a", "b", "c"])
    assert inc.network_.linear is None
    rng = np.random.RandomState(0)
    Xf = rng.normal(size=(20, 5, 2))
    yf = (Xf[:, :, 0].sum(axis=1) > 0).astype(int)
    assert RNNClassifier(hidden_size=3, max_iter=1).fit(Xf, yf).network_.linear is None
    with pytest.raises(ValueError, match="linear=True .* float features"):
        RNNClassifier(hidden_size=3, max_iter=1, linear=True).fit(Xf, yf)
    with pytest.raises(ValueError, match="linear adds a linear model .* vocab_size=None"):
        SequenceNetwork(2, n_features=3, linear=True)
    with pytest.raises(ValueError, match="set_linear needs a network built with linear=True"):
        SequenceNetwork(2, vocab_size=5, embedding_dim=2).set_linear(
            np.ones(5), np.ones((5, 2)), np.ones(2))


def test_gradient_flow_sees_the_linear_logits():
    """The diagnostics' training-loss gradient of a classifier with a linear part equals that of
    the network alone with the linear logits added by hand."""
    from fastrnn.diagnostics import gradient_flow

    X, y = _token_data(n=30)
    clf = RNNClassifier(**FIT).fit(X, y)
    net = clf.network_
    ids, lengths = _padded(X)
    offset = net.linear.apply(ids, lengths).astype(np.float64)
    assert np.abs(offset).max() > 0.1
    alone = SequenceNetwork(**{k: v for k, v in net.config.items() if k != "linear"},
                            random_state=0)
    alone.load_state_dict(net.params)
    onehot = np.eye(3)[np.searchsorted(clf.classes_, y)]

    def grad(out):
        z = out + offset
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True) - onehot) / len(X)

    by_hand = gradient_flow(alone, ids, lengths=lengths, output_grad=grad)
    flow = gradient_flow(clf, X, y)
    np.testing.assert_allclose(flow.loss_grad, by_hand.loss_grad, rtol=1e-10)


@pytest.mark.parametrize("K", [1, 3])
def test_onnx_graph_adds_the_linear_logits(K):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastrnn import onnx as fonnx

    X, y = _token_data(V=20, K=K)
    clf = RNNClassifier(vocab_size=25, **FIT).fit(X, y)
    X_new, _ = _token_data(n=12, V=25, seed=4, K=K)  # repeated ids, and ids never seen
    ids, lengths = _padded(X_new)
    sess = ort.InferenceSession(fonnx.export(clf).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    label, proba = sess.run(None, {"X": ids, "lengths": lengths})
    np.testing.assert_allclose(proba, clf.predict_proba(X_new), rtol=0, atol=1e-5)  # float32
    assert label.tolist() == clf.predict(X_new).tolist()
    # without its linear part the graph would give other probabilities
    lin = clf.network_.linear
    offset = lin.apply(ids, lengths)
    assert np.abs(offset - offset.mean(axis=0)).max() > 0.1


def test_long_documents_get_fewer_epochs_with_the_linear_part(monkeypatch):
    """Long documents (more time steps than ``max_iter="auto"`` reads in its least epochs) get
    ``AUTO_MIN_EPOCHS`` epochs with the linear part, and the time-step budget's epochs
    without it."""
    from fastrnn.estimators import _base

    X, y = _token_data(n=60)
    steps = sum(len(x) for x in X)
    budget = 6 * steps  # long: 10 epochs would read more than the budget
    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", budget)
    kw = dict(FIT, max_iter="auto")
    with_linear = RNNClassifier(**kw).fit(X, y)
    alone = RNNClassifier(linear=False, **kw).fit(X, y)
    assert alone.n_iter_ == 6
    assert with_linear.n_iter_ == _base.AUTO_MIN_EPOCHS == 3
