"""minGRU, minLSTM and IndRNN in the estimators: they learn, save and load, stream, and a saved
model's cell and options are checked on loading."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastrnn
from fastrnn import RNNClassifier, RNNLanguageModel, RNNRegressor, RNNTagger
from fastrnn.datasets import make_sequence_classification

NEW_CELLS = ["mingru", "minlstm", "indrnn"]
SMALL = dict(hidden_size=8, learning_rate=0.03, batch_size=16, random_state=0)


def seq_data(n=60, seed=1):
    return make_sequence_classification(n_samples=n, n_classes=2, n_features=3, min_length=3,
                                        max_length=12, random_state=seed)


@pytest.mark.parametrize("cell", NEW_CELLS)
def test_classifier_learns_and_saves(cell, tmp_path):
    X, y = seq_data()
    clf = RNNClassifier(cell=cell, bidirectional=True, pooling="mean", max_iter=25,
                        **SMALL).fit(X, y)
    assert clf.network_.rnn._spec.kind == cell
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X, y) > 0.8
    clf.save(tmp_path / "m")
    back = fastrnn.load(tmp_path / "m")
    assert back.get_params() == clf.get_params()
    assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("cell, options", [("mingru", dict(candidate="g")),
                                           ("minlstm", dict(candidate="g")),
                                           ("indrnn", dict(nonlinearity="tanh")),
                                           ("indrnn", dict(recurrent_max=0.5)),
                                           ("indrnn", dict(recurrent_max=None))])
def test_regressor_and_tagger_round_trip_with_cell_options(cell, options, tmp_path):
    from fastrnn.nn import SequenceNetwork

    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(2, 8), 2) for _ in range(20)]
    Y = rng.randn(20, 2)
    reg = RNNRegressor(cell=cell, num_layers=2, max_iter=2, **SMALL)
    # the estimators take no cell options: build the network with them as a saved model would
    real = SequenceNetwork.__init__

    def with_options(self, *args, **kw):
        real(self, *args, **{**kw, "cell_options": options})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SequenceNetwork, "__init__", with_options)
        reg.fit(X, Y)
    for k, v in options.items():
        assert getattr(reg.network_.rnn, k) == v
    reg.save(tmp_path / "reg")
    back = fastrnn.load(tmp_path / "reg")
    for k, v in options.items():
        assert getattr(back.network_.rnn, k) == v
    assert_array_equal(back.predict(X), reg.predict(X))

    Xt = [rng.randint(4, 10, size=rng.randint(2, 9)) for _ in range(20)]
    yt = [np.where(x % 2 == 0, "even", "odd") for x in Xt]
    tagger = RNNTagger(cell=cell, embedding_dim=4, max_iter=2, **SMALL).fit(Xt, yt)
    tagger.save(tmp_path / "tag")
    back = RNNTagger.load(tmp_path / "tag")
    for a, b in zip(back.predict_proba(Xt), tagger.predict_proba(Xt)):
        assert_array_equal(a, b)


def test_a_saved_model_with_a_bad_cell_option_is_refused(tmp_path):
    import json
    import zipfile

    X, y = seq_data(n=20)
    RNNClassifier(cell="mingru", max_iter=1, **SMALL).fit(X, y).save(tmp_path / "m")
    with zipfile.ZipFile(tmp_path / "m") as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["meta.json"])

    def find(d):  # the network's config, wherever the format keeps it
        if isinstance(d, dict):
            if "cell_options" in d and d.get("cell") == "mingru":
                return d
            for v in d.values():
                found = find(v)
                if found is not None:
                    return found
        return None

    config = find(meta)
    assert config is not None
    config["cell_options"] = {"nonlinearity": "relu"}  # an IndRNN option, not a minGRU one
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(tmp_path / "bad", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(Exception, match="nonlinearity.*which a mingru cell does not take"):
        fastrnn.load(tmp_path / "bad")


def test_recurrent_dropout_of_a_minimal_cell_is_refused_with_the_reason():
    X, y = seq_data(n=20)
    with pytest.raises(ValueError, match="no recurrent weight for recurrent_dropout"):
        RNNClassifier(cell="minlstm", recurrent_dropout=0.2, max_iter=1, **SMALL).fit(X, y)


@pytest.mark.parametrize("cell", NEW_CELLS)
def test_language_model_trains_generates_and_round_trips(cell, tmp_path):
    texts = ["the cat sat on the mat.\n", "a dog sat on a log.\n"] * 4
    lm = RNNLanguageModel(cell=cell, hidden_size=16, embedding_dim=8, bptt=8, batch_size=4,
                          max_iter=2, random_state=0).fit(texts)
    assert lm.network_.rnn._spec.kind == cell
    assert np.isfinite(lm.perplexity(texts))
    lm.save(tmp_path / "lm")
    back = fastrnn.load(tmp_path / "lm")
    assert back.perplexity(texts) == lm.perplexity(texts)
    assert (back.generate("the", max_length=10, random_state=1)
            == lm.generate("the", max_length=10, random_state=1))


@pytest.mark.parametrize("cell", NEW_CELLS)
@pytest.mark.parametrize("backend", ["numpy", "numba", "auto"])
def test_classifier_step_equals_predict_proba_of_each_prefix(cell, backend):
    rng = np.random.RandomState(0)
    X = rng.normal(2.0, 3.0, (24, 7, 3))
    y = (X[:, :, 0].mean(axis=1) > 2.0).astype(int)
    clf = RNNClassifier(cell=cell, num_layers=2, pooling="mean", dtype="float64",
                        bidirectional=False, backend=backend, max_iter=3, hidden_size=6,
                        batch_size=8, random_state=0).fit(X, y)
    state = clf.init_state(3)
    for t in range(1, 8):
        out, state = clf.step(X[:3, t - 1], state)
        np.testing.assert_allclose(out, clf.predict_proba(X[:3, :t]), rtol=1e-9, atol=1e-12)
