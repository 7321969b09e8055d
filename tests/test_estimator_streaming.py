"""Streaming inference on fitted estimators: step t equals the batch method on the first t steps."""

import numpy as np
import pytest

from fastrnn.estimators import RNNClassifier, RNNRegressor, RNNTagger
from fastrnn.estimators.language_model import RNNLanguageModel
from conftest import bytes_grown

# the models are fitted for a few epochs only: what is tested is the equality of two inference paths
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: streaming reads one direction: the estimators' default is bidirectional
FIT = dict(hidden_size=6, max_iter=3, batch_size=8, random_state=0, learning_rate=0.02,
           bidirectional=False)


def _float_data(n=24, T=7, F=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(2.0, 3.0, (n, T, F))  # off-centre, so the standardisation matters
    y = (X[:, :, 0].mean(axis=1) > 2.0).astype(int)
    return X, y


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell, num_layers", [("lstm", 2), ("gru", 1), ("rnn", 1)])
@pytest.mark.parametrize("backend", ["numpy", "numba", "auto"])
def test_classifier_step_equals_predict_proba_of_each_prefix(pooling, cell, num_layers, backend):
    X, y = _float_data()
    clf = RNNClassifier(cell=cell, num_layers=num_layers, pooling=pooling, dtype="float64",
                        backend=backend, **FIT).fit(X, y)
    streams = X[:3]
    state = clf.init_state(3)
    for t in range(1, X.shape[1] + 1):
        out, state = clf.step(streams[:, t - 1], state)
        np.testing.assert_allclose(out, clf.predict_proba(streams[:, :t]), rtol=1e-9, atol=1e-12)
    assert state.steps == X.shape[1]
    # reset starts new sequences
    state.reset()
    out, _ = clf.step(streams[:, 0], state)
    np.testing.assert_allclose(out, clf.predict_proba(streams[:, :1]), rtol=1e-9, atol=1e-12)


def test_classifier_single_stream_accepts_one_feature_vector_and_float32():
    X, y = _float_data()
    clf = RNNClassifier(cell="lstm", pooling="mean", **FIT).fit(X, y)
    state = clf.init_state()
    for t in range(1, 5):
        out, state = clf.step(X[0, t - 1], state)
        np.testing.assert_allclose(out[0], clf.predict_proba(X[:1, :t])[0], rtol=1e-4, atol=1e-6)
        assert clf.classes_[np.argmax(out[0])] == clf.predict(X[:1, :t])[0]


def test_token_classifier_streams_ids():
    rng = np.random.RandomState(1)
    X = rng.randint(1, 9, (30, 6))  # 0 is padding in a token matrix
    y = (X == 3).any(axis=1).astype(int)
    clf = RNNClassifier(embedding_dim=4, pooling="max", dtype="float64", **FIT).fit(X, y)
    state = clf.init_state(2)
    for t in range(1, 7):
        out, state = clf.step(X[:2, t - 1], state)
        np.testing.assert_allclose(out, clf.predict_proba(X[:2, :t]), rtol=1e-9, atol=1e-12)
    state1 = clf.init_state()
    out, _ = clf.step(int(X[0, 0]), state1)
    np.testing.assert_allclose(out, clf.predict_proba(X[:1, :1]), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="token id 99, out of range"):
        clf.step(np.array([0, 99]), state)
    with pytest.raises(ValueError, match="token id -1, out of range"):
        clf.step(np.array([-1, 2]), state)
    with pytest.raises(ValueError, match=r"integer token id"):
        clf.step(np.array([0.5, 1.0]), state)


@pytest.mark.parametrize("multi", [False, True])
def test_regressor_step_equals_predict_of_each_prefix(multi):
    X, _ = _float_data(seed=2)
    y = X.sum(axis=(1, 2)) * 10 + 100
    if multi:
        y = np.stack([y, -y / 3], axis=1)
    reg = RNNRegressor(cell="gru", dtype="float64", **FIT).fit(X, y)
    state = reg.init_state(4)
    for t in range(1, X.shape[1] + 1):
        out, state = reg.step(X[:4, t - 1], state)
        assert out.shape == ((4, 2) if multi else (4,))
        np.testing.assert_allclose(out, reg.predict(X[:4, :t]), rtol=1e-9)


def test_tagger_step_gives_the_tag_probabilities_of_each_step():
    rng = np.random.RandomState(3)
    X = [rng.randint(1, 7, n) for n in (5, 8, 6, 7) * 5]
    y = [(x % 2) for x in X]
    tagger = RNNTagger(embedding_dim=4, dtype="float64", **FIT).fit(X, y)
    x = X[1]
    full = tagger.predict_proba([x])[0]
    state = tagger.init_state()
    for t in range(len(x)):
        out, state = tagger.step(x[t], state)
        np.testing.assert_allclose(out[0], full[t], rtol=1e-9, atol=1e-12)


def test_bidirectional_and_unfitted_models_refuse_to_stream():
    X, y = _float_data()
    with pytest.raises(ValueError, match="bidirectional"):
        RNNClassifier(**{**FIT, "bidirectional": True}).fit(X, y).init_state()
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RNNClassifier().init_state()


def test_step_input_errors():
    X, y = _float_data()
    clf = RNNClassifier(**FIT).fit(X, y)
    other = RNNClassifier(**FIT).fit(X, y)
    state = clf.init_state(2)
    with pytest.raises(ValueError, match=r"\(n_streams, n_features\) = \(2, 3\)"):
        clf.step(np.zeros(3), state)
    with pytest.raises(ValueError, match="NaN or infinity"):
        clf.step(np.full((2, 3), np.inf), state)
    with pytest.raises(ValueError, match="init_state"):
        other.step(np.zeros((2, 3)), state)
    with pytest.raises(ValueError, match="n_streams"):
        clf.init_state(0)


def test_step_allocates_nothing_that_grows():
    X, y = _float_data()
    clf = RNNClassifier(cell="lstm", pooling="mean", **FIT).fit(X, y)
    state = clf.init_state()
    x = X[0, 0]
    for _ in range(5):
        clf.step(x, state)
    grown = bytes_grown(lambda: clf.step(x, state), 200)
    assert grown < 200 * 64, f"step() kept {grown} bytes over 200 calls"


@pytest.fixture(scope="module")
def lm():
    texts = ["the cat sat on the mat. ", "a dog ate the hat! ", "the hat sat on a cat. "] * 4
    return RNNLanguageModel(hidden_size=12, embedding_dim=6, bptt=8, batch_size=4, max_iter=2,
                            dtype="float64", random_state=0).fit(texts)


def test_language_model_step_equals_predict_next(lm):
    text = "the hat"
    state = lm.init_state()
    V = len(lm.vocabulary_)

    def expected(prefix):
        p = np.zeros(V)
        for tok, prob in lm.predict_next(prefix, k=V):
            p[lm.vocabulary_.token_to_id(tok)] = prob
        return p

    np.testing.assert_allclose(state.output[0], expected(""), rtol=1e-9, atol=1e-14)
    for t in range(1, len(text) + 1):
        out, state = lm.step(text[t - 1], state)
        np.testing.assert_allclose(out[0], expected(text[:t]), rtol=1e-9, atol=1e-14)
        assert out[0].sum() == pytest.approx(1.0)


def test_language_model_step_log_probs_sum_to_the_score(lm):
    docs = ["the cat ate", "a mat"]
    state = lm.init_state(1)
    total, count = 0.0, 0
    for doc in docs:
        state.reset()
        ids = list(lm.vocabulary_.encode(doc)) + [3]  # the tokens, then <eos>
        p = state.output[0]
        for i in ids:
            total += np.log(p[i])
            count += 1
            p, state = lm.step(int(i), state)
            p = p[0]
    assert total / count == pytest.approx(lm.score(docs), rel=1e-9)


def test_language_model_parallel_streams_and_errors(lm):
    state = lm.init_state(2)
    one = lm.init_state(1)
    for a, b in zip("the", "a d"):
        out, state = lm.step([a, b], state)
        ref, one = lm.step(b, one)
    np.testing.assert_allclose(out[1], ref[0], rtol=1e-12)
    with pytest.raises(ValueError, match="one token per stream"):
        lm.step("t", state)
    with pytest.raises(ValueError, match="neither a token string nor an id"):
        lm.step(["t", 10 ** 6], state)
