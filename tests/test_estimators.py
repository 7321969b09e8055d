"""RNNClassifier, RNNRegressor and RNNTagger: learning, input forms, the training loop, scikit-learn
integration, persistence and clear errors. Networks are tiny so the whole module runs in seconds."""

import doctest
import importlib
import io
import os
import pickle
import re
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from conftest import SOAK
import fastrnn
from fastrnn import RNNClassifier, RNNRegressor, RNNTagger
from fastrnn.datasets import make_sequence_classification
from fastrnn.train import StoppingRule
from fastrnn.estimators import _base, _inputs
from fastrnn.text import SequenceVectorizer, pad_sequences

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_size=8, learning_rate=0.03, batch_size=16, random_state=0)


def seq_data(n=60, n_classes=2, n_features=3, seed=0, min_length=3, max_length=12):
    return make_sequence_classification(n_samples=n, n_classes=n_classes, n_features=n_features,
                                        min_length=min_length, max_length=max_length,
                                        random_state=seed)


def token_data(n=80, seed=0):
    """Token sequences; class 1 iff the token 7 occurs (a max-pooled RNN finds it)."""
    rng = np.random.RandomState(seed)
    X, y = [], []
    for i in range(n):
        x = rng.randint(4, 12, size=rng.randint(2, 10)).astype(np.int32)
        x[x == 7] = 8
        if i % 2:
            x[rng.randint(len(x))] = 7
        X.append(x)
        y.append(i % 2)
    return X, np.array(y)


def tag_data(n=60, seed=0):
    """Tag each token 'even'/'odd' by its id, and 'after7' when it follows a 7 (needs context)."""
    rng = np.random.RandomState(seed)
    X = [rng.randint(4, 10, size=rng.randint(2, 9)) for _ in range(n)]
    y = []
    for x in X:
        tags = np.where(x % 2 == 0, "even", "odd").astype(object)
        tags[1:][x[:-1] == 7] = "after7"
        y.append(tags.astype(str))
    return X, y


@pytest.fixture(scope="module")
def fitted_clf():
    X, y = seq_data(n_classes=3)
    labels = np.array(["cat", "dog", "emu"])[y]
    return RNNClassifier(max_iter=25, **SMALL).fit(X, labels), X, labels


# ---------------------------------------------------------------------------------------------
# learning and output contracts
# ---------------------------------------------------------------------------------------------


def test_classifier_learns_and_outputs_are_consistent(fitted_clf):
    clf, X, y = fitted_clf
    assert clf.score(X, y) > 0.9
    assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float64
    assert_allclose(proba.sum(axis=1), 1.0)
    pred = clf.predict(X)
    assert pred.shape == (len(X),)
    assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-10, atol=1e-12)
    dec = clf.decision_function(X)
    assert dec.shape == (len(X), 3)
    assert_array_equal(dec.argmax(axis=1), proba.argmax(axis=1))
    Z = clf.transform(X)
    assert Z.shape == (len(X), 2 * 8) and Z.dtype == np.float32  # bidirectional by default
    assert list(clf.get_feature_names_out()[:2]) == ["rnnclassifier0", "rnnclassifier1"]


def test_fitted_attributes_follow_mlp_conventions(fitted_clf):
    clf, X, _ = fitted_clf
    assert clf.n_features_in_ == 3 and clf.vocab_size_ is None
    assert clf.n_iter_ == len(clf.loss_curve_) == len(clf.grad_norm_curve_)
    assert clf.t_ == clf.n_iter_ * len(X)
    assert clf.best_loss_ == pytest.approx(min(clf.loss_curve_))
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert all(g > 0 for g in clf.grad_norm_curve_)
    assert clf.feature_mean_.shape == (3,) and clf.feature_scale_.shape == (3,)


def test_binary_decision_function_is_the_logit_difference():
    X, y = seq_data(n=40)
    clf = RNNClassifier(max_iter=5, **SMALL).fit(X, y)
    dec = clf.decision_function(X)
    assert dec.shape == (40,)
    assert_array_equal(dec > 0, clf.predict(X) == 1)
    proba = clf.predict_proba(X)
    assert_allclose(proba[:, 1], 1 / (1 + np.exp(-dec)), rtol=1e-10)


@pytest.mark.parametrize("cell,bidirectional,pooling,num_layers", [
    ("lstm", True, "last", 1), ("gru", False, "mean", 1), ("rnn", True, "max", 2),
    ("lstm", False, "max", 2),
])
def test_architectures_learn(cell, bidirectional, pooling, num_layers):
    X, y = seq_data(n=60, seed=1)
    clf = RNNClassifier(cell=cell, bidirectional=bidirectional, pooling=pooling,
                        num_layers=num_layers, max_iter=25, **SMALL).fit(X, y)
    assert clf.score(X, y) > 0.85
    assert clf.transform(X[:2]).shape == (2, 8 * (2 if bidirectional else 1))


def test_dropout_and_recurrent_dropout_train_but_predict_deterministically():
    X, y = seq_data(n=60, seed=2)
    clf = RNNClassifier(dropout=0.2, recurrent_dropout=0.2, max_iter=25, **SMALL).fit(X, y)
    assert clf.score(X, y) > 0.85
    assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))


def test_backends_give_the_same_model(backend):
    X, y = seq_data(n=24, seed=3)
    ref = RNNClassifier(max_iter=2, dtype="float64", backend="numpy", **SMALL).fit(X, y)
    clf = RNNClassifier(max_iter=2, dtype="float64", backend=backend, **SMALL).fit(X, y)
    assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=1e-8, atol=1e-10)


def test_regressor_single_and_multi_output():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 12), 2) for _ in range(80)]
    Y = np.array([[x[:, 0].mean(), x[:, 1].max()] for x in X])
    reg = RNNRegressor(max_iter=40, **SMALL).fit(X, Y)
    assert reg.n_outputs_ == 2 and reg.predict(X).shape == (80, 2)
    assert reg.score(X, Y) > 0.8
    reg1 = RNNRegressor(max_iter=2, **SMALL).fit(X, Y[:, 0])
    assert reg1.predict(X).shape == (80,)
    reg2 = RNNRegressor(max_iter=2, **SMALL).fit(X, Y[:, :1])
    assert reg2.predict(X).shape == (80, 1)
    assert_allclose(reg2.predict(X)[:, 0], reg1.predict(X))
    assert reg.transform(X[:3]).shape == (3, 8)


def test_regressor_target_standardisation_is_exactly_undone():
    rng = np.random.RandomState(1)
    X = [rng.randn(rng.randint(3, 9), 2) for _ in range(30)]
    y = rng.randn(30)
    kw = dict(max_iter=3, dtype="float64", **SMALL)
    a = RNNRegressor(**kw).fit(X, y).predict(X)
    b = RNNRegressor(**kw).fit(X, 1000 * y - 7).predict(X)
    assert_allclose(b, 1000 * a - 7, rtol=1e-9, atol=1e-6)


def test_input_standardisation_makes_channel_scale_irrelevant():
    X, y = seq_data(n=30, seed=4)
    scale, shift = np.array([100.0, 0.01, 5.0]), np.array([-3.0, 1e3, 0.0])
    kw = dict(max_iter=3, dtype="float64", **SMALL)
    a = RNNClassifier(**kw).fit(X, y)
    b = RNNClassifier(**kw).fit([x * scale + shift for x in X], y)
    assert_allclose(b.predict_proba([x * scale + shift for x in X]), a.predict_proba(X),
                    rtol=1e-7, atol=1e-9)
    raw = RNNClassifier(standardize=False, **kw).fit([x * scale + shift for x in X], y)
    assert raw.feature_mean_ is None
    assert not np.allclose(raw.predict_proba([x * scale + shift for x in X]),
                           a.predict_proba(X), atol=1e-3)


def test_tagger_learns_context_and_returns_label_sequences():
    X, y = tag_data(n=80)
    tagger = RNNTagger(embedding_dim=8, hidden_size=16, learning_rate=0.03, max_iter=30,
                       random_state=0).fit(X, y)
    assert set(tagger.classes_) == {"after7", "even", "odd"}
    assert tagger.score(X, y) > 0.95
    pred = tagger.predict(X[:5])
    assert isinstance(pred, list) and [p.shape for p in pred] == [x.shape for x in X[:5]]
    proba = tagger.predict_proba(X[:5])
    assert [p.shape for p in proba] == [(len(x), 3) for x in X[:5]]
    assert_allclose(np.concatenate(proba).sum(axis=1), 1.0)
    after7 = np.concatenate([t == "after7" for t in y])
    got = np.concatenate(tagger.predict(X)) == np.concatenate(y)
    assert got[after7].mean() > 0.9  # needs the previous token: the recurrence is used


def test_tagger_float_input_and_rectangular_labels():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 6, 2)
    y = (X[:, :, 0] > 0).astype(int)  # (n, T) labels for a rectangular X
    tagger = RNNTagger(max_iter=30, **SMALL).fit(X, y)
    assert tagger.score(X, y) > 0.9
    assert_array_equal(tagger.classes_, [0, 1])


def test_tagger_padded_token_matrix_with_padded_labels():
    X, y = tag_data(n=30)
    Xp, lengths = pad_sequences(X)
    Yp = pad_sequences([np.searchsorted(["after7", "even", "odd"], t) for t in y], value=-1)[0]
    kw = dict(embedding_dim=4, max_iter=2, **SMALL)
    a = RNNTagger(**kw).fit(X, [np.searchsorted(["after7", "even", "odd"], t) for t in y])
    b = RNNTagger(**kw).fit(Xp, Yp)  # labels past each length are ignored
    for pa, pb in zip(a.predict_proba(X), b.predict_proba(Xp)):
        assert_array_equal(pa, pb)


# ---------------------------------------------------------------------------------------------
# input forms: results never depend on how the user padded
# ---------------------------------------------------------------------------------------------


def test_token_matrix_with_trailing_pad_equals_ragged_list():
    X, y = token_data(n=40)
    Xp, _ = pad_sequences(X)
    wider = np.hstack([Xp, np.zeros((len(X), 5), dtype=Xp.dtype)])
    kw = dict(embedding_dim=6, max_iter=3, **SMALL)
    a = RNNClassifier(**kw).fit(X, y)
    b = RNNClassifier(**kw).fit(Xp, y)
    c = RNNClassifier(**kw).fit(wider, y)
    for est in (b, c):
        for k, v in a.network_.params.items():
            assert_array_equal(est.network_.params[k], v, err_msg=k)
    assert_array_equal(a.predict_proba(X), c.predict_proba(wider))
    assert a.vocab_size_ == max(x.max() for x in X) + 1 and a.n_features_in_ == 1


def test_rectangular_arrays_equal_lists_of_equal_length_sequences():
    rng = np.random.RandomState(0)
    X3 = rng.randn(20, 5, 2)
    y = rng.randint(0, 2, 20)
    kw = dict(max_iter=2, **SMALL)
    a = RNNClassifier(**kw).fit(X3, y)
    b = RNNClassifier(**kw).fit(list(X3), y)
    assert_array_equal(a.predict_proba(X3), b.predict_proba(list(X3)))
    X2 = X3[:, :, 0]
    c = RNNClassifier(**kw).fit(X2, y)
    d = RNNClassifier(**kw).fit(X2.tolist(), y)
    e = RNNClassifier(**kw).fit(list(X2[:, :, None]), y)
    assert c.n_features_in_ == 1
    assert_array_equal(c.predict_proba(X2), d.predict_proba(X2))
    assert_array_equal(c.predict_proba(X2), e.predict_proba(X2))
    # a model fitted on rectangular input predicts sequences of other lengths
    assert c.predict([X2[0, :3], X2[1], np.r_[X2[2], X2[3]]]).shape == (3,)


def test_predictions_do_not_depend_on_batch_composition():
    X, y = seq_data(n=50, min_length=2, max_length=30)
    clf = RNNClassifier(max_iter=2, **SMALL).fit(X, y)
    full = clf.predict_proba(X)
    one_by_one = np.vstack([clf.predict_proba([x]) for x in X[:10]])
    assert_allclose(one_by_one, full[:10], rtol=1e-5, atol=1e-6)
    perm = np.random.RandomState(0).permutation(len(X))
    assert_allclose(clf.predict_proba([X[i] for i in perm]), full[perm], rtol=1e-5, atol=1e-6)


def test_integer_input_is_token_ids_unless_embedding_dim_is_none():
    from fastrnn.estimators._base import auto_embedding_dim

    rng = np.random.RandomState(0)
    X = rng.randint(0, 5, size=(20, 6, 2))
    y = rng.randint(0, 2, 20)
    # embedding_dim=None: integers and booleans are numbers
    a = RNNClassifier(max_iter=2, embedding_dim=None, **SMALL).fit(X, y)
    b = RNNClassifier(max_iter=2, **SMALL).fit(X.astype(np.float64), y)
    assert a.embedding_dim_ is None and b.embedding_dim_ is None
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    RNNClassifier(max_iter=1, **SMALL).fit(X > 2, y).predict(X > 2)
    # the default ("auto") reads integers as token ids, K ids per step summed
    ids = rng.randint(1, 9, size=(20, 6))
    c = RNNClassifier(max_iter=2, **SMALL).fit(ids, y)
    assert c.embedding_dim_ == auto_embedding_dim(9) and c.vocab_size_ == 9
    d = RNNClassifier(max_iter=2, embedding_dim=c.embedding_dim_, **SMALL).fit(ids, y)
    assert_array_equal(c.predict_proba(ids), d.predict_proba(ids))
    e = RNNClassifier(max_iter=2, **SMALL).fit(X, y)
    assert e.n_features_in_ == 2 and e.embedding_dim_ is not None
    with pytest.raises(ValueError, match="token id.s. per step"):
        e.predict(X[:, :, :1])


# ---------------------------------------------------------------------------------------------
# the training loop
# ---------------------------------------------------------------------------------------------


def test_random_state_makes_fit_reproducible():
    X, y = seq_data(n=30)
    kw = dict(max_iter=3, dropout=0.1, hidden_size=8, learning_rate=0.03, batch_size=8)
    a = RNNClassifier(random_state=5, **kw).fit(X, y)
    b = RNNClassifier(random_state=5, **kw).fit(X, y)
    c = RNNClassifier(random_state=6, **kw).fit(X, y)
    assert a.loss_curve_ == b.loss_curve_
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))
    # refitting the same estimator gives the same model too
    assert_array_equal(a.fit(X, y).predict_proba(X), b.predict_proba(X))


def test_stops_on_training_loss_after_n_iter_no_change():
    X, y = seq_data(n=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = RNNClassifier(max_iter=50, tol=100.0, n_iter_no_change=3, early_stopping=False,
                            **SMALL).fit(X, y)
    # epoch 1 improves on +inf, then 4 epochs without an improvement of tol: stop
    assert clf.n_iter_ == 5


def test_convergence_warning_when_max_iter_is_reached():
    X, y = seq_data(n=20)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        RNNClassifier(max_iter=2, tol=0.0, early_stopping=False, **SMALL).fit(X, y)


def test_early_stopping_on_validation_accuracy():
    X, y = seq_data(n=60)
    clf = RNNClassifier(early_stopping=True, validation_fraction=0.25, n_iter_no_change=2,
                        max_iter=60, **SMALL).fit(X, y)
    assert clf.n_iter_ < 60
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    assert clf.t_ == clf.n_iter_ * 45  # the training part only
    reg = RNNRegressor(early_stopping=True, max_iter=5, n_iter_no_change=50, **SMALL)
    reg.fit(X, np.array([x[:, 0].mean() for x in X]))
    assert len(reg.validation_scores_) == 5 and reg.best_validation_score_ <= 1.0


def test_early_stopping_restores_the_best_parameters(monkeypatch):
    X, y = seq_data(n=40)
    snapshots = []
    orig = StoppingRule.update

    def spy(self, value):
        out = orig(self, value)
        snapshots.append((value, {k: v.copy() for k, v in est.network_.params.items()}))
        return out

    monkeypatch.setattr(StoppingRule, "update", spy)
    est = RNNClassifier(early_stopping=True, n_iter_no_change=3, max_iter=12, **SMALL)
    est.fit(X, y)
    best = int(np.argmax([s for s, _ in snapshots]))  # first epoch with the best score
    for k, v in snapshots[best][1].items():
        assert_array_equal(est.network_.params[k], v, err_msg=k)


def test_warm_start_continues_and_cold_start_restarts():
    X, y = seq_data(n=30)
    clf = RNNClassifier(max_iter=3, warm_start=True, **SMALL).fit(X, y)
    net = clf.network_
    before = {k: v.copy() for k, v in net.params.items()}
    clf.fit(X, y)
    assert clf.network_ is net and clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert any(not np.array_equal(before[k], v) for k, v in net.params.items())
    clf.set_params(warm_start=False).fit(X, y)
    assert clf.network_ is not net and clf.n_iter_ == 3


def test_partial_fit_runs_one_epoch_per_call():
    X, y = seq_data(n=40)
    clf = RNNClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:20], y[:20], classes=[0, 1])
    clf.partial_fit(X[20:], y[20:])
    assert clf.n_iter_ == 2 and clf.t_ == 40
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.85
    with pytest.raises(ValueError, match=r"label\(s\) \[5\]"):
        clf.partial_fit(X[:2], [0, 5])
    with pytest.raises(ValueError, match="classes cannot change"):
        clf.partial_fit(X[:2], [0, 1], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="early_stopping"):
        RNNClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="balanced"):
        RNNClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    # a batch of a single class is fine in partial_fit
    RNNClassifier(**SMALL).partial_fit(X[:3], [1, 1, 1], classes=[0, 1])
    reg = RNNRegressor(**SMALL)
    reg.partial_fit(X, y.astype(float)).partial_fit(X, y.astype(float))
    assert reg.n_iter_ == 2


def test_sample_weight_zero_ignores_sequences():
    X, y = seq_data(n=80, seed=5)
    rng = np.random.RandomState(0)
    noisy = rng.rand(80) < 0.4
    y_bad = np.where(noisy, 1 - y, y)  # 40 % of the labels flipped
    w = (~noisy).astype(float)
    kw = dict(max_iter=25, **SMALL)
    weighted = RNNClassifier(**kw).fit(X, y_bad, sample_weight=w)
    assert weighted.score(X, y) > 0.9
    unweighted = RNNClassifier(**kw).fit(X, y_bad)
    assert unweighted.score(X, y) < weighted.score(X, y)


def test_class_weight_shifts_the_decisions():
    X, _ = seq_data(n=60, seed=6)
    y = np.random.RandomState(0).randint(0, 2, 60)  # labels without signal: the weights decide
    kw = dict(max_iter=10, **SMALL)
    plain = RNNClassifier(**kw).fit(X, y)
    favour0 = RNNClassifier(class_weight={0: 1.0, 1: 0.01}, **kw).fit(X, y)
    assert (favour0.predict(X) == 0).mean() > (plain.predict(X) == 0).mean()
    assert (favour0.predict(X) == 0).mean() > 0.8
    # "balanced" uses the class frequencies; it trains on imbalanced data
    idx = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:6]]
    RNNClassifier(class_weight="balanced", **kw).fit([X[i] for i in idx], y[idx])


def test_verbose_shows_one_progress_bar_per_fit(capsys):
    X, y = seq_data(n=30)
    RNNClassifier(max_iter=2, verbose=1, early_stopping=True, **SMALL).fit(X, y)
    err = capsys.readouterr().err
    assert "seq/s" in err and "loss=" in err and "val_score=" in err
    # one bar for both epochs (27 training sequences each), closed once
    assert err.count("\n") == 1 and "54/54" in err.splitlines()[-1]
    RNNClassifier(max_iter=1, verbose=2, **SMALL).fit(X, y)
    err = capsys.readouterr().err
    assert re.search(r"epoch 1\.00 step \d+ 30 seq \d+s loss [0-9.]+ lr 0\.0[0-9]+", err)
    RNNClassifier(max_iter=1, verbose=0, **SMALL).fit(X, y)
    assert capsys.readouterr().err == ""


def test_a_diverging_model_is_rolled_back_and_then_reported():
    from fastrnn.train import NonFiniteWarning

    X, y = seq_data(n=20)
    clf = RNNClassifier(max_iter=1, warm_start=True, **SMALL).fit(X, y)
    clf.network_.params["head.weight"][0, 0] = np.nan  # every step now has a NaN loss
    with pytest.warns(NonFiniteWarning, match="rolled back"):
        with pytest.raises(FloatingPointError, match="lower learning_rate"):
            clf.set_params(max_iter=5).fit(X, y)


# ---------------------------------------------------------------------------------------------
# scikit-learn integration
# ---------------------------------------------------------------------------------------------


def _strings(n, seed=0):
    rng = np.random.RandomState(seed)
    docs, y = [], []
    for i in range(n):
        s = "".join(rng.choice(list("abcdef"), size=rng.randint(3, 12)))
        if i % 2:
            pos = rng.randint(len(s))
            s = s[:pos] + "x" + s[pos:]
        docs.append(s)
        y.append("has_x" if i % 2 else "no_x")
    return docs, np.array(y)


def test_pipeline_on_raw_strings_through_the_vectorizer():
    docs, y = _strings(80)
    pipe = make_pipeline(SequenceVectorizer(analyzer="char"),
                         RNNClassifier(embedding_dim=8, max_iter=20, **SMALL))
    pipe.fit(docs, y)
    assert pipe.score(docs, y) > 0.9
    clf = pipe[-1]
    assert clf.vocab_size_ == pipe[0].vocab_size_
    # unseen characters become UNK (1) in the vectorizer, which the embedding knows
    assert pipe.predict(["zzzx", "qqq"]).shape == (2,)


def test_cross_val_score_in_parallel_on_ragged_input_and_raw_strings():
    X, y = seq_data(n=48)
    scores = cross_val_score(RNNClassifier(max_iter=15, **SMALL), X, y, cv=3, n_jobs=2)
    assert scores.shape == (3,) and scores.mean() > 0.8
    docs, labels = _strings(60)
    pipe = make_pipeline(SequenceVectorizer(analyzer="char"),
                         RNNClassifier(embedding_dim=8, max_iter=20, **SMALL))
    scores = cross_val_score(pipe, docs, labels, cv=3, n_jobs=2)
    assert scores.mean() > 0.8


def test_grid_search_on_ragged_input():
    X, y = seq_data(n=40)
    search = GridSearchCV(RNNClassifier(max_iter=8, **SMALL),
                          {"pooling": ["max", "last"], "hidden_size": [4, 8]}, cv=2)
    search.fit(X, y)
    assert set(search.best_params_) == {"pooling", "hidden_size"}
    assert search.predict(X).shape == (40,)
    reg = GridSearchCV(RNNRegressor(max_iter=3, **SMALL), {"cell": ["lstm", "rnn"]}, cv=2)
    reg.fit(X, np.array([x.sum() for x in X]))
    assert reg.predict(X[:3]).shape == (3,)


def test_tagger_in_cross_validation():
    X, y = tag_data(n=30)
    scores = cross_val_score(RNNTagger(embedding_dim=4, max_iter=3, **SMALL), X, y, cv=2)
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))


def test_clone_and_pickle_round_trips_predict_identically(fitted_clf):
    clf, X, y = fitted_clf
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and not hasattr(twin, "network_")
    assert_array_equal(twin.fit(X, y).predict_proba(X), clf.predict_proba(X))
    tagger = RNNTagger(embedding_dim=4, max_iter=2, **SMALL).fit(*tag_data(20))
    Xt = tag_data(20)[0]
    for a, b in zip(pickle.loads(pickle.dumps(tagger)).predict_proba(Xt), tagger.predict_proba(Xt)):
        assert_array_equal(a, b)
    back = pickle.loads(pickle.dumps(clf))
    assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    back.partial_fit(X, y)  # the optimiser state came along


def test_fit_transform_equals_fit_then_transform():
    X, y = seq_data(n=30)
    a = RNNClassifier(max_iter=2, **SMALL).fit_transform(X, y)
    b = RNNClassifier(max_iter=2, **SMALL).fit(X, y).transform(X)
    assert_array_equal(a, b)


def test_invalid_parameters_are_reported_by_name():
    X, y = seq_data(n=10)
    for params, name in [({"cell": "transformer"}, "cell"), ({"hidden_size": 0}, "hidden_size"),
                         ({"pooling": "sum"}, "pooling"), ({"learning_rate": -1}, "learning_rate"),
                         ({"dropout": 1.5}, "dropout"), ({"optimizer": "rmsprop"}, "optimizer"),
                         ({"dtype": "float16"}, "dtype"), ({"backend": "tpu"}, "backend")]:
        with pytest.raises(ValueError, match=f"'{name}' parameter"):
            RNNClassifier(**params).fit(X, y)


def test_optimizer_instances_are_copied():
    from fastrnn.optim import SGD

    X, y = seq_data(n=20)
    opt = SGD(lr=0.1, momentum=0.9)
    clf = RNNClassifier(optimizer=opt, max_iter=2, **{k: v for k, v in SMALL.items()
                                                      if k != "learning_rate"}).fit(X, y)
    assert clf._trainer.optimizer is not opt and opt.state_dict() == SGD(
        lr=0.1, momentum=0.9).state_dict()


# ---------------------------------------------------------------------------------------------
# persistence
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", ["str", "object", "int", "float"])
def test_save_and_load_predict_identically(tmp_path, labels):
    X, y = seq_data(n=30, n_classes=3)
    y = {"str": np.array(["a", "b", "c"])[y], "object": np.array(["a", "b", "c"], dtype=object)[y],
         "int": y * 10 - 5, "float": y * 2.0}[labels]
    clf = RNNClassifier(max_iter=2, class_weight={y[0]: 2.0}, **SMALL).fit(X, y)
    path = tmp_path / "model.fastrnn"
    assert clf.save(path) is clf
    back = fastrnn.load(path)
    assert type(back) is RNNClassifier and back.get_params() == clf.get_params()
    assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert_array_equal(back.predict(X), clf.predict(X))
    assert back.classes_.dtype == clf.classes_.dtype
    assert back.loss_curve_ == clf.loss_curve_ and back.n_iter_ == clf.n_iter_
    assert os.listdir(tmp_path) == ["model.fastrnn"]  # atomic write: no temporary left over
    with zipfile.ZipFile(path) as z:  # the safe format: JSON and .npy members, no pickle
        assert all(n == "meta.json" or n.endswith(".npy") for n in z.namelist())
    back.partial_fit(X[:10], y[:10])  # a fresh optimiser after loading


def test_save_and_load_regressor_tagger_and_token_models(tmp_path):
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(2, 8), 2) for _ in range(20)]
    Y = rng.randn(20, 2)
    reg = RNNRegressor(max_iter=2, **SMALL).fit(X, Y)
    reg.save(tmp_path / "reg")
    assert_array_equal(fastrnn.load(tmp_path / "reg").predict(X), reg.predict(X))
    Xt, yt = tag_data(20)
    tagger = RNNTagger(embedding_dim=4, max_iter=2, **SMALL).fit(Xt, yt)
    tagger.save(tmp_path / "tag")
    back = RNNTagger.load(tmp_path / "tag")
    assert back.vocab_size_ == tagger.vocab_size_
    for a, b in zip(back.predict_proba(Xt), tagger.predict_proba(Xt)):
        assert_array_equal(a, b)
    with pytest.raises(ValueError, match="holds a RNNTagger, not a RNNRegressor"):
        RNNRegressor.load(tmp_path / "tag")
    docs, y = _strings(30)
    pipe = make_pipeline(SequenceVectorizer(), RNNClassifier(embedding_dim=4, max_iter=2, **SMALL))
    pipe.fit(docs, y)
    pipe[-1].save(tmp_path / "tok")
    assert_array_equal(fastrnn.load(tmp_path / "tok").predict_proba(pipe[0].transform(docs)),
                       pipe.predict_proba(docs))


def test_save_refuses_what_the_safe_format_cannot_hold(tmp_path):
    X, y = seq_data(n=20)
    with pytest.raises(NotFittedError):
        RNNClassifier().save(tmp_path / "m")
    from fastrnn.optim import Adam

    no_lr = {k: v for k, v in SMALL.items() if k != "learning_rate"}
    clf = RNNClassifier(optimizer=Adam(lr=0.01), max_iter=1, **no_lr)
    with pytest.raises(ValueError, match="optimizer by name"):
        clf.fit(X, y).save(tmp_path / "m")
    tuples = RNNClassifier(max_iter=1, **SMALL).fit(X, [("a", i % 2) for i in range(20)])
    with pytest.raises(ValueError, match=r"labels of type tuple.*pickle the estimator"):
        tuples.save(tmp_path / "m")
    assert not os.path.exists(tmp_path / "m")
    assert pickle.loads(pickle.dumps(tuples)).predict(X[:2]).tolist() == tuples.predict(
        X[:2]).tolist()


def test_labels_of_any_hashable_type():
    X, y = seq_data(n=40, n_classes=3)
    for labels in ([("b", 1), ("a", 2), ("a", 1)], [None, "x", 3], [frozenset({1}), 2.5, "z"]):
        yl = [labels[i] for i in y]
        clf = RNNClassifier(max_iter=20, class_weight={labels[0]: 1.5}, **SMALL).fit(X, yl)
        assert clf.classes_.dtype == object and len(clf.classes_) == 3
        pred = clf.predict(X)
        assert all(p in labels for p in pred.tolist())
        assert np.mean([p == t for p, t in zip(pred.tolist(), yl)]) > 0.85
    assert clf.score(X, yl) > 0.85
    with pytest.raises(ValueError, match=r"not among the classes"):
        clf.set_params(warm_start=True).fit(X[:2], [("new",), "z"])
    with pytest.raises(ValueError, match="not a class"):
        RNNClassifier(class_weight={"nope": 2}).fit(X, y)


def test_a_newer_estimator_format_is_refused(tmp_path):
    from fastrnn._persist import read_model, save_model

    X, y = seq_data(n=20)
    RNNClassifier(max_iter=1, **SMALL).fit(X, y).save(tmp_path / "m")
    meta, arrays = read_model(tmp_path / "m")
    container = ("format", "format_version", "class", "fastrnn_version")
    meta = {k: v for k, v in meta.items() if k not in container}
    meta["estimator_format_version"] = _base.ESTIMATOR_FORMAT_VERSION + 1
    save_model(tmp_path / "m2", "RNNClassifier", meta, arrays)
    with pytest.raises(ValueError, match="upgrade fastrnn"):
        fastrnn.load(tmp_path / "m2")


# ---------------------------------------------------------------------------------------------
# clear errors: what is wrong, the value received, the fix
# ---------------------------------------------------------------------------------------------

X_OK, Y_OK = seq_data(n=12, seed=9)


@pytest.mark.parametrize("X,y,exc,match", [
    ([np.array([[0.0, np.nan, 1.0]] * 4)] + X_OK[1:], Y_OK, ValueError,
     r"contains NaN \(nan\) at sequence 0, step 0, feature 1.*not a padding marker"),
    (np.full((12, 4, 3), np.inf), Y_OK, ValueError, r"contains inf \(inf\) at sequence 0, step 0"),
    (np.empty((0, 5)), [], ValueError, r"empty \(shape \(0, 5\)\).*at least one sequence"),
    ([], [], ValueError, r"empty"),
    (X_OK[:3] + [np.empty((0, 3))] + X_OK[4:], Y_OK, ValueError,
     r"Sequence 3 of X has zero length.*Drop empty sequences"),
    (X_OK[:5] + [np.ones((4, 2))] + X_OK[6:], Y_OK, ValueError,
     r"different feature counts: sequence 0 of X has 3 feature\(s\).*sequence 5 has 2"),
    (X_OK, Y_OK[:-1], ValueError, r"X has 12 sequences but y has 11 labels"),
    (X_OK, np.zeros(12), ValueError, r"at least 2 classes, but y has 1 class \(\[0\.0\]\)"),
    (np.zeros((12, 4, 3, 2)), Y_OK, ValueError, r"4 dimensions \(shape \(12, 4, 3, 2\)\).*reshape"),
    (["the cat sat"] * 12, Y_OK, TypeError,
     r"holds strings \(e\.g\. 'the cat sat'\).*SequenceVectorizer"),
    (np.array(["a b", "c d"] * 6), Y_OK, TypeError, r"strings.*SequenceVectorizer"),
    ("just one string", Y_OK, TypeError, r"strings.*SequenceVectorizer"),
    (np.ones(12), Y_OK, ValueError, r"1-D array of shape \(12,\).*Reshape your data"),
    (np.ones((12, 4)) + 1j, Y_OK, ValueError, r"Complex data not supported"),
    (None, Y_OK, ValueError, r"X is None"),
    (X_OK, None, ValueError, r"requires y to be passed, but the target y is None"),
    (X_OK, np.linspace(0, 1, 12), ValueError, r"Unknown label type"),
])
def test_bad_input_to_fit(X, y, exc, match):
    with pytest.raises(exc, match=match):
        RNNClassifier(max_iter=1, **SMALL).fit(X, y)


def test_sparse_input_is_refused_clearly():
    from scipy import sparse

    with pytest.raises(TypeError, match=r"Sparse input is not supported.*toarray"):
        RNNClassifier().fit(sparse.csr_matrix(np.ones((12, 3))), Y_OK)


def test_classifier_y_with_nan_names_its_position():
    y = Y_OK.astype(float)
    y[5] = np.nan
    with pytest.raises(ValueError, match=r"y\[5\] is nan.*every sequence needs a label"):
        RNNClassifier(max_iter=1, **SMALL).fit(X_OK, y)
    labels = ["a", "b"] * 6
    labels[7] = float("nan")
    with pytest.raises(ValueError, match=r"y\[7\] is nan"):
        RNNClassifier(max_iter=1, **SMALL).fit(X_OK, labels)


@pytest.mark.parametrize("y2", [np.stack([Y_OK, 1 - Y_OK], axis=1),
                                np.stack([Y_OK, 1 - Y_OK], axis=1).tolist()])
def test_classifier_2d_y_says_multilabel_is_not_supported(y2):
    with pytest.raises(ValueError, match=r"y has shape \(12, 2\).*one label per sequence.*"
                                         r"multilabel.*multi-output.*not supported.*1-D"):
        RNNClassifier(max_iter=1, **SMALL).fit(X_OK, y2)


def test_regressor_refuses_targets_it_cannot_standardise_or_hold():
    y = np.linspace(1.0, 2.0, 12) * 1e200
    with pytest.raises(ValueError, match=r"y holds values too large to standardise.*largest "
                                         r"\|value\| 2e\+200.*Rescale y"):
        RNNRegressor(max_iter=1, **SMALL).fit(X_OK, y)
    with pytest.raises(ValueError, match=r"y holds 1e\+200 \(sample 0, output 0\).*overflows "
                                         r"float32.*standardize=True.*dtype='float64'"):
        RNNRegressor(max_iter=1, standardize=False, **SMALL).fit(X_OK, y)
    reg = RNNRegressor(max_iter=1, **SMALL).fit(X_OK, np.linspace(0.0, 1.0, 12))
    big = np.zeros(12)
    big[3] = 1e39
    with pytest.raises(ValueError, match=r"y holds 1e\+39 \(sample 3, output 0\).*standard "
                                         r"deviations.*overflows float32"):
        reg.partial_fit(X_OK, big)
    assert np.isfinite(reg.target_scale_).all() and np.isfinite(reg.predict(X_OK)).all()


def test_a_failed_refit_does_not_leave_a_half_updated_model():
    clf = RNNClassifier(max_iter=1, **SMALL).fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="1 class"):
        clf.fit([x[:, :2] for x in X_OK], np.zeros(12))  # new features per step, one class
    with pytest.raises(NotFittedError):
        clf.predict(X_OK)


def test_bad_input_to_predict():
    clf = RNNClassifier(max_iter=1, **SMALL).fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match=r"X has 2 features per step, but RNNClassifier is "
                                         r"expecting 3 features per step"):
        clf.predict([np.ones((4, 2))])
    with pytest.raises(ValueError, match=r"NaN"):
        clf.predict_proba([np.full((3, 3), np.nan)])
    with pytest.raises(ValueError, match=r"NaN"):
        clf.transform([np.full((3, 3), np.nan)])
    with pytest.raises(ValueError, match="Reshape your data"):
        clf.decision_function(np.ones(3))
    with pytest.raises(NotFittedError):
        RNNClassifier().predict(X_OK)
    with pytest.raises(ValueError,
                       match=r"holds 1e\+300, which is .* standard deviations.*float32"):
        clf.predict([np.full((2, 3), 1e300)])


def test_casting_to_the_model_dtype_names_the_value_that_overflows():
    from fastrnn.estimators._inputs import as_model_dtype, cast_finite

    a = np.zeros((2, 3))
    a[1, 2] = -1e300
    with pytest.raises(ValueError, match=r"Input X\[1\] holds -1e\+300, which overflows float32 "
                                         r"\(the model's dtype\).*dtype='float64'"):
        as_model_dtype(a, np.float32, "X[1]")
    ok = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    assert as_model_dtype(ok, np.float64) is ok
    assert_array_equal(as_model_dtype(ok, np.float32), ok.astype(np.float32))
    with pytest.raises(ValueError, match=r"^at \(1, 2\): -1e\+300$"):
        cast_finite(a, np.float16, lambda bad: f"at {bad}: {a[bad].item()!r}")
    a[0, 0] = 7e4  # overflows float16 too, and comes first in C order: it is the one named
    with pytest.raises(ValueError, match=r"^at \(0, 0\)"):
        cast_finite(a, np.float16, lambda bad: f"at {bad}: {a[bad].item()!r}")


def test_bad_token_ids():
    X, y = token_data(n=20)
    clf = RNNClassifier(embedding_dim=4, max_iter=1, **SMALL).fit(X, y)
    V = clf.vocab_size_
    with pytest.raises(ValueError, match=rf"token id {V + 3}, out of range.*vocab_size_={V}.*UNK"):
        clf.predict([np.array([5, V + 3])])
    with pytest.raises(ValueError, match=r"non-negative, but X holds -2 at sequence 1, step 1"):
        clf.predict([np.array([5]), np.array([4, -2])])
    with pytest.raises(ValueError, match=r"non-negative"):
        RNNClassifier(embedding_dim=4).fit([np.array([5, -1])] + X[1:], y)
    with pytest.raises(TypeError, match=r"integer dtype, got float64.*astype"):
        clf.predict([np.array([5.0, 6.0])])
    with pytest.raises(ValueError, match=r"must be integers, got 5.5"):
        clf.predict([np.array([5.5, 6.0])])
    with pytest.raises(ValueError, match=r"Sequence 1 of X holds only PAD \(0\) ids"):
        clf.predict(np.array([[5, 6], [0, 0]]))
    with pytest.raises(ValueError, match=r"token id \d+, but vocab_size=5"):
        RNNClassifier(embedding_dim=4, vocab_size=5).fit(X, y)
    with pytest.raises(ValueError, match=r"2 token id\(s\) per step, but RNNClassifier was "
                                         r"fitted with 1"):
        clf.predict([np.ones((3, 2), dtype=int)])
    with pytest.raises(ValueError, match=r"token-id sequences must be 1-D .* or 2-D"):
        clf.predict([np.ones((3, 2, 2), dtype=int)])
    with pytest.raises(ValueError, match=r"same number of ids per step"):
        clf.predict([np.ones((3, 2), dtype=int), np.ones((3, 3), dtype=int)])
    with pytest.raises(ValueError, match=r"inferred vocabulary would have 1000000001 ids"):
        RNNClassifier(embedding_dim=4).fit([np.array([5, 10 ** 9])] + X[1:], y)
    with pytest.raises(ValueError, match=r"too large for an id"):
        RNNClassifier(embedding_dim=4).fit([np.array([5, 2 ** 64 - 1], dtype=np.uint64)] + X[1:], y)
    big = RNNClassifier(embedding_dim=4, vocab_size=100, max_iter=1, **SMALL).fit(X, y)
    assert big.vocab_size_ == 100 and big.predict([np.array([99])]).shape == (1,)


def test_bad_targets_for_regressor_and_tagger():
    with pytest.raises(ValueError, match=r"Input y contains NaN at sample 2"):
        RNNRegressor().fit(X_OK, np.r_[0.0, 1.0, np.nan, np.ones(9)])
    with pytest.raises(ValueError, match=r"y has 3 output\(s\), but this RNNRegressor was fitted "
                                         r"with 2"):
        reg = RNNRegressor(max_iter=1, warm_start=True, **SMALL).fit(X_OK, np.ones((12, 2)))
        reg.fit(X_OK, np.ones((12, 3)))
    X, y = tag_data(6)
    with pytest.raises(ValueError,
                       match=r"y\[2\] has \d+ labels but sequence 2 of X has \d+ steps"):
        RNNTagger(embedding_dim=4).fit(X, y[:2] + [y[2][:-1]] + y[3:])
    with pytest.raises(ValueError, match=r"X has 6 sequences but y has 5 label sequences"):
        RNNTagger(embedding_dim=4).fit(X, y[:5])
    with pytest.raises(ValueError, match=r"y\[0\] is a single string"):
        RNNTagger(embedding_dim=4).fit(X, ["NN"] * 6)
    with pytest.raises(ValueError, match=r"only 1 class with positive weight"):
        RNNClassifier().fit(X_OK, Y_OK, sample_weight=(Y_OK == 1).astype(float))
    with pytest.raises(ValueError, match=r"weight.*zero"):
        RNNClassifier().fit(X_OK, Y_OK, sample_weight=np.zeros(12))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\), but there are 12"):
        RNNClassifier().fit(X_OK, Y_OK, sample_weight=np.ones(3))


# ---------------------------------------------------------------------------------------------
# property-based: random shapes, lengths and dtypes
# ---------------------------------------------------------------------------------------------

_FLOAT_DTYPES = [np.float32, np.float64, np.int8, np.int64, np.uint8, bool]
_CORRUPTIONS = [None, "nan", "inf", "zero_length", "feature_mismatch", "y_length", "one_class",
                "four_d", "strings", "complex", "negative_token", "float_token", "empty"]


@st.composite
def problems(draw, corruption):
    """A fit problem, corrupted as named (``None``: valid), and whether it is valid."""
    if corruption in ("negative_token", "float_token"):
        tokens = True
    elif corruption in ("nan", "inf", "complex", "feature_mismatch"):
        tokens = False
    else:
        tokens = draw(st.booleans())
    n = draw(st.integers(2, 7))
    form = draw(st.sampled_from(["2d", "ragged"] if tokens else ["2d", "3d", "ragged", "lists"]))
    F = 1 if form == "2d" else draw(st.integers(1, 3))
    rng = np.random.RandomState(draw(st.integers(0, 2 ** 16)))
    if form in ("ragged", "lists"):
        lengths = rng.randint(1, 6, size=n)
    else:
        lengths = np.full(n, rng.randint(1, 6))
    if tokens:
        dtype = draw(st.sampled_from([np.int32, np.int64, np.uint16]))
        seqs = [rng.randint(1, 9, size=L).astype(dtype) for L in lengths]
    else:
        kinds = [np.float32, np.float64] if corruption in ("nan", "inf") else _FLOAT_DTYPES
        dtype = draw(st.sampled_from(kinds))
        seqs = [(rng.randn(L, F) * 3).astype(dtype) for L in lengths]
    y = np.arange(n) % draw(st.integers(2, 3))
    i = draw(st.integers(0, n - 1))
    if corruption == "nan":
        seqs[i] = seqs[i].copy()
        seqs[i].flat[0] = np.nan
    elif corruption == "inf":
        seqs[i] = seqs[i].copy()
        seqs[i].flat[-1] = -np.inf
    elif corruption == "zero_length":
        seqs[i] = seqs[i][:0]
        form = "ragged"
    elif corruption == "feature_mismatch":
        seqs[i] = np.ones((lengths[i], F + 1))
        form = "ragged"
    elif corruption == "y_length":
        y = y[:-1]
    elif corruption == "one_class":
        y = np.zeros(n, dtype=int)
    elif corruption == "strings":
        seqs = [np.array(["word"] * int(L)) for L in lengths]
    elif corruption == "complex":
        seqs = [s + 1j for s in seqs]
    elif corruption == "negative_token":
        seqs[i] = seqs[i].astype(np.int64)
        seqs[i][0] = -1
    elif corruption == "float_token":
        seqs[i] = seqs[i] + 0.5
    elif corruption == "empty":
        seqs, y, form = [], y[:0], "ragged"
    if form == "2d":
        X = np.stack([s.reshape(len(s), -1)[:, 0] if not tokens else s for s in seqs])
    elif form == "3d":
        X = np.stack(seqs)
    elif form == "lists":
        X = [s.tolist() for s in seqs]
    else:
        X = seqs
    if corruption == "four_d":
        X = np.zeros((n, 2, 2, 2))
    return dict(X=X, y=y, tokens=tokens, valid=corruption is None, corruption=corruption, n=n,
                F=F, form=form)


@pytest.mark.parametrize("corruption", _CORRUPTIONS)
@settings(max_examples=15 * SOAK, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(["clf", "reg", "tag"]), data=st.data())
def test_random_inputs_give_clear_errors_or_right_shapes(corruption, kind, data):
    p = data.draw(problems(corruption))
    event(f"{kind}, tokens={p['tokens']}, form={p['form']}")
    kw = dict(hidden_size=2, max_iter=1, batch_size=3, random_state=0,
              embedding_dim=3 if p["tokens"] else None)
    y = p["y"]
    if kind == "reg":
        est = RNNRegressor(**kw)
        if p["corruption"] == "one_class":
            p["valid"] = True  # a constant target is a valid regression problem
    elif kind == "tag":
        est = RNNTagger(**kw)
        X_list = p["X"] if isinstance(p["X"], list) else list(p["X"]) if np.ndim(p["X"]) < 4 else []
        lens = [len(x) for x in X_list][:len(y)]
        y = [np.full(L, label) for L, label in zip(lens, y)]
        if p["corruption"] == "one_class":
            y = [np.zeros(L, dtype=int) for L in lens]
    else:
        est = RNNClassifier(**kw)
    if not p["valid"]:
        with pytest.raises((ValueError, TypeError)) as info:
            est.fit(p["X"], y)
        assert len(str(info.value)) > 30  # a message that explains, not a bare failure
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(p["X"], y)
    # predict on other random input: right shapes, or a clear error for a feature mismatch
    m = data.draw(st.integers(1, 4))
    rng = np.random.RandomState(data.draw(st.integers(0, 999)))
    lengths = rng.randint(1, 7, size=m)
    if p["tokens"]:
        hi = data.draw(st.sampled_from([est.vocab_size_, est.vocab_size_ + 2]))
        Xp = [rng.randint(1, hi, size=L) for L in lengths]
        ok = max(x.max() for x in Xp) < est.vocab_size_
    else:
        F = data.draw(st.sampled_from([p["F"], p["F"], p["F"] + 1]))
        Xp = [rng.randn(L, F) for L in lengths]
        ok = F == est.n_features_in_
    if not ok:
        with pytest.raises(ValueError, match="features per step|out of range"):
            est.predict(Xp)
        return
    pred = est.predict(Xp)
    if kind == "tag":
        assert [len(q) for q in pred] == list(lengths)
    elif kind == "reg":
        assert pred.shape == (m,) and np.isfinite(pred).all()
    else:
        assert pred.shape == (m,) and set(pred) <= set(est.classes_)
        assert est.predict_proba(Xp).shape == (m, len(est.classes_))
        assert est.transform(Xp).shape == (m, 2 * 2)  # bidirectional by default


# ---------------------------------------------------------------------------------------------
# package plumbing
# ---------------------------------------------------------------------------------------------


def test_language_model_is_exported_lazily_from_its_module():
    import fastrnn.estimators as est

    assert "RNNLanguageModel" in est.__all__
    if importlib.util.find_spec("fastrnn.estimators.language_model") is None:
        with pytest.raises(ModuleNotFoundError, match="language_model"):
            est.RNNLanguageModel
    else:
        from fastrnn.estimators.language_model import RNNLanguageModel

        assert est.RNNLanguageModel is RNNLanguageModel
    with pytest.raises(AttributeError, match="no attribute 'RNNTransformer'"):
        est.RNNTransformer


@pytest.mark.parametrize("module", ["classifier", "regressor", "tagger", "_inputs", "_base"])
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"fastrnn.estimators.{module}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 report=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {module} failed"
    assert module in ("_base",) or result.attempted > 0


def test_inputs_module_needs_only_numpy():
    src = io.open(_inputs.__file__, encoding="utf-8").read()
    assert "sklearn" not in re.sub(r'"""[\s\S]*?"""', "", src)


# ---------------------------------------------------------------------------------------------
# training controls: epoch budget, schedules, weight decay, time budget
# ---------------------------------------------------------------------------------------------


def test_max_iter_auto_adapts_the_epochs_to_the_data_size():
    from fastrnn.estimators._base import AUTO_EPOCHS, AUTO_STEPS

    clf = RNNClassifier(max_iter="auto", batch_size=10)
    assert clf._n_epochs(20) == min(AUTO_EPOCHS[1], AUTO_STEPS // 2)  # 2 batches an epoch
    assert clf._n_epochs(10 ** 6) == AUTO_EPOCHS[0]  # 100,000 batches: the minimum
    assert clf._n_epochs(10 * AUTO_STEPS // 50) == 50
    X, y = seq_data(n=20)
    fit = RNNClassifier(**{**SMALL, "max_iter": "auto", "batch_size": 10, "tol": 0.0,
                           "n_iter_no_change": 10 ** 6}).fit(X, y)
    assert fit.n_iter_ == AUTO_EPOCHS[1]


def test_max_iter_auto_reads_long_sequences_for_fewer_epochs(monkeypatch):
    from fastrnn.estimators._base import AUTO_EPOCHS, AUTO_MIN_EPOCHS

    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", 800)
    clf = RNNClassifier(max_iter="auto", batch_size=10)
    # 2 batches an epoch: the step rule alone gives the most epochs, unless the steps read cap it
    assert clf._n_epochs(20, n_time_steps=2) == AUTO_EPOCHS[1]
    assert clf._n_epochs(20, n_time_steps=100) == 8
    assert clf._n_epochs(20, n_time_steps=99) == 9  # rounded up
    assert clf._n_epochs(20, n_time_steps=800 * 100) == AUTO_MIN_EPOCHS
    assert clf._n_epochs(10 ** 6, n_time_steps=2) == AUTO_EPOCHS[0]
    assert RNNClassifier(max_iter=40)._n_epochs(20, n_time_steps=800 * 100) == 40
    # a fit counts the real steps of its training sequences: 10 of 20 steps, 4 epochs of 200
    X = [np.zeros((20, 1)) + i % 2 for i in range(10)]
    fit = RNNClassifier(**{**SMALL, "tol": 0.0, "n_iter_no_change": 10 ** 6,
                           "early_stopping": False}).fit(X, np.arange(10) % 2)
    assert fit.n_iter_ == 4


def test_batch_size_auto_gives_small_data_more_steps(monkeypatch):
    from fastrnn.estimators import _base

    clf = RNNClassifier(batch_size="auto")
    assert [clf._batch_size(n) for n in (1, 36, 300, 700, 10 ** 6)] == [8, 8, 9, 21, 32]
    assert clf._batch_size(_base.AUTO_BATCHES_PER_EPOCH * 20) == 20
    assert RNNClassifier(batch_size=5)._batch_size(10 ** 6) == 5
    sizes = []
    real = _base.length_buckets

    def spy(lengths, batch_size, **kw):
        sizes.append(batch_size)
        return real(lengths, batch_size, **kw)

    monkeypatch.setattr(_base, "length_buckets", spy)
    X, y = seq_data(n=40)
    RNNClassifier(**{**SMALL, "batch_size": "auto", "max_iter": 1}).fit(X, y)
    assert sizes[0] == 8  # training batches (inference batches follow)


@pytest.mark.parametrize("input_kind, cell, rd", [
    ("channels", "gru", 0.2),   # float series of several channels
    ("univariate", "lstm", 0.0),
    ("tokens", "lstm", 0.0),
])
def test_cell_auto_picks_the_cell_and_recurrent_dropout_from_the_input(input_kind, cell, rd):
    from fastrnn.estimators import classifier

    if input_kind == "tokens":
        X, y = token_data(30)
    else:
        X, y = seq_data(n=30, n_features=3 if input_kind == "channels" else 1)
    fit = RNNClassifier(max_iter=1, **SMALL).fit(X, y)
    assert (fit.network_.config["cell"], fit.network_.config["recurrent_dropout"]) == (cell, rd)
    assert fit.get_params()["cell"] == fit.get_params()["recurrent_dropout"] == "auto"
    if input_kind == "channels":
        assert (cell, rd) == (classifier.MULTICHANNEL_CELL,
                              classifier.MULTICHANNEL_RECURRENT_DROPOUT)
        # the resolved GRU is the network an explicit cell="gru" builds: same predictions
        same = RNNClassifier(max_iter=1, cell="gru", recurrent_dropout=0.2, **SMALL).fit(X, y)
        assert_allclose(fit.predict_proba(X), same.predict_proba(X), rtol=0, atol=0)


@pytest.mark.parametrize("kw, cell, rd", [
    (dict(cell="lstm"), "lstm", 0.2),
    (dict(recurrent_dropout=0.0), "gru", 0.0),
    (dict(cell="mingru"), "mingru", 0.0),  # no recurrent weight: nothing to drop
    (dict(cell="rnn", recurrent_dropout=0.1), "rnn", 0.1),
])
def test_cell_auto_keeps_what_the_user_set(kw, cell, rd):
    X, y = seq_data(n=30, n_features=2)
    net = RNNClassifier(max_iter=1, **SMALL, **kw).fit(X, y).network_
    assert (net.config["cell"], net.config["recurrent_dropout"]) == (cell, rd)


def test_cell_and_recurrent_dropout_reject_unknown_values():
    X, y = seq_data(n=20)
    with pytest.raises(ValueError, match="'cell' parameter of RNNClassifier must be"):
        RNNClassifier(cell="lstmm").fit(X, y)
    with pytest.raises(ValueError, match="'recurrent_dropout' parameter of RNNClassifier"):
        RNNClassifier(recurrent_dropout="automatic").fit(X, y)
    with pytest.raises(ValueError, match="'cell' parameter of RNNRegressor must be"):
        RNNRegressor(cell="auto").fit(X, y.astype(float))  # "auto" is the classifier's


def test_early_stopping_auto_splits_only_data_large_enough(learning_rates):
    from fastrnn.estimators._base import AUTO_MIN_VALIDATION

    # 60 sequences: a 6-sequence split is too small; no split, no stopping, no warning, all
    # the epochs of the cosine schedule
    X, y = seq_data(n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        small = RNNClassifier(**{**SMALL, "max_iter": 8, "tol": 100.0, "n_iter_no_change": 1,
                                 "lr_schedule": "cosine"}).fit(X, y)
    assert small.n_iter_ == 8 and small.stop_reason_ == "max_iter"
    assert small.t_ == 8 * 60 and small.validation_scores_ is None
    assert learning_rates[-1] < 0.1 * learning_rates[0]  # annealed over the 8 epochs
    # large enough: a validation split, early stopping on it and the best epoch kept
    n = int(np.ceil(AUTO_MIN_VALIDATION / 0.1))
    X, y = seq_data(n=n, min_length=2, max_length=4)
    big = RNNClassifier(**{**SMALL, "hidden_size": 4, "max_iter": 3, "batch_size": 256,
                           "n_iter_no_change": 100}).fit(X, y)
    assert len(big.validation_scores_) == 3 and big.t_ == 3 * (n - AUTO_MIN_VALIDATION)
    assert big.best_validation_score_ == max(big.validation_scores_)
    assert big.best_loss_ is None
    # ten sequences fewer: a 99-sequence split would be too small
    X, y = X[:n - 10], y[:n - 10]
    fewer = RNNClassifier(**{**SMALL, "hidden_size": 4, "max_iter": 1, "batch_size": 256})
    assert fewer.fit(X, y).validation_scores_ is None


def test_partial_fit_with_the_defaults_keeps_the_learning_rate(learning_rates):
    X, y = seq_data(n=40)
    clf = RNNClassifier(hidden_size=4, random_state=0)
    for _ in range(2):
        clf.partial_fit(X, y, classes=[0, 1])
    assert clf.learning_rate == "auto"  # partial_fit reads it as the default rate
    from fastrnn.estimators.classifier import AUTO_LEARNING_RATE

    assert clf.n_iter_ == 2 and set(learning_rates) == {AUTO_LEARNING_RATE["default"]}
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        RNNClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1])


@pytest.mark.parametrize("schedule", ["linear", "cosine", "plateau"])
def test_learning_rate_schedules_of_the_estimators(schedule, learning_rates):
    seen = learning_rates
    X, y = seq_data(n=40)
    RNNClassifier(**{**SMALL, "max_iter": 6, "batch_size": 10, "lr_schedule": schedule,
                     "learning_rate": 0.01, "tol": 0.0, "n_iter_no_change": 100}).fit(X, y)
    assert seen[0] == pytest.approx(0.01)
    n = len(seen)
    if schedule == "plateau":  # only ever halved, never raised
        ratios = np.array(seen[1:]) / np.array(seen[:-1])
        assert set(np.round(ratios, 12)) <= {1.0, 0.5}
    else:
        for k, lr in enumerate(seen):
            p = k / n
            shape = 0.5 * (1 + np.cos(np.pi * p)) if schedule == "cosine" else 1 - p
            assert lr == pytest.approx(0.01 * shape, rel=1e-9, abs=1e-15)


def test_weight_decay_shrinks_the_weights_and_time_budget_stops_early():
    X, y = seq_data(n=40)
    plain = RNNClassifier(**{**SMALL, "max_iter": 5}).fit(X, y)
    decayed = RNNClassifier(**{**SMALL, "max_iter": 5, "weight_decay": 0.5}).fit(X, y)
    assert decayed._trainer.optimizer.weight_decay == 0.5
    norm = lambda m: sum(float(np.sum(v ** 2)) for v in m.network_.params.values())  # noqa: E731
    assert norm(decayed) < norm(plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopping on the budget: no warning
        quick = RNNClassifier(**{**SMALL, "max_iter": 1000, "time_budget": 1e-6}).fit(X, y)
    assert quick.n_iter_ == 0 and quick._trainer.grad_norms_  # one step, then the budget


@pytest.mark.parametrize("cls", [RNNClassifier, RNNRegressor])
def test_set_output_pandas_is_honoured_by_transform(cls):
    pd = pytest.importorskip("pandas")
    X, y = seq_data(n=20)
    target = y if cls is RNNClassifier else np.arange(20.0)
    est = cls(**{**SMALL, "max_iter": 2}).set_output(transform="pandas").fit(X, target)
    Z = est.transform(X)
    assert isinstance(Z, pd.DataFrame) and list(Z.columns) == list(est.get_feature_names_out())
    assert_array_equal(Z.to_numpy(), est.set_output(transform="default").transform(X))
    Zf = est.set_output(transform="pandas").fit_transform(X, target)
    assert isinstance(Zf, pd.DataFrame) and Zf.shape == (20, Z.shape[1])


# ---------------------------------------------------------------------------------------------
# the bag of embeddings of the classifier
# ---------------------------------------------------------------------------------------------


def test_bag_of_embeddings_auto_is_on_for_long_documents(tmp_path, monkeypatch):
    X, y = token_data(40)
    steps = sum(len(x) for x in X)
    assert not RNNClassifier(max_iter=2, **SMALL).fit(X, y).network_.bag_of_embeddings
    # more time steps than max_iter="auto" reads in 10 epochs: long documents
    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", 10 * steps - 1)
    clf = RNNClassifier(max_iter=2, **SMALL).fit(X, y)
    net = clf.network_
    assert net.bag_of_embeddings and net.config["bag_of_embeddings"] is True
    Z = clf.transform(X)
    assert Z.shape == (40, 2 * 8 + clf.embedding_dim_)
    assert clf.get_feature_names_out().shape == (Z.shape[1],)
    # the last embedding_dim columns: the token vectors summed over each sequence, / sqrt(length)
    W = net.embedding.params["weight"]
    ref = np.stack([W[x].sum(axis=0) / np.sqrt(len(x)) for x in X])
    assert_allclose(Z[:, -clf.embedding_dim_:], ref, rtol=1e-5, atol=1e-6)
    off = RNNClassifier(max_iter=2, bag_of_embeddings=False, **SMALL).fit(X, y)
    assert not off.network_.bag_of_embeddings and "bag_of_embeddings" not in off.network_.config
    assert off.transform(X).shape == (40, 16)
    clf.save(tmp_path / "bag")
    assert_array_equal(fastrnn.load(tmp_path / "bag").predict_proba(X), clf.predict_proba(X))
    # on short documents only when asked; never for float features, nor in partial_fit
    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", 10 * steps)
    assert not RNNClassifier(max_iter=2, **SMALL).fit(X, y).network_.bag_of_embeddings
    forced = RNNClassifier(max_iter=2, bag_of_embeddings=True, **SMALL).fit(X, y)
    assert forced.network_.bag_of_embeddings
    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", 1)
    Xf, yf = seq_data(n=20)
    assert not RNNClassifier(max_iter=1, **SMALL).fit(Xf, yf).network_.bag_of_embeddings
    part = RNNClassifier(**SMALL).partial_fit(X, y, classes=[0, 1])
    assert not part.network_.bag_of_embeddings


def test_bag_of_embeddings_errors_name_the_problem():
    Xf, yf = seq_data(n=20)
    with pytest.raises(ValueError, match="bag_of_embeddings=True .*float features"):
        RNNClassifier(bag_of_embeddings=True, max_iter=1, **SMALL).fit(Xf, yf)
    with pytest.raises(ValueError, match="'bag_of_embeddings' parameter"):
        RNNClassifier(bag_of_embeddings="yes", max_iter=1, **SMALL).fit(Xf, yf)


def test_bag_of_embeddings_streams_like_predict_proba():
    X, y = token_data(40)
    clf = RNNClassifier(max_iter=2, bidirectional=False, bag_of_embeddings=True, **SMALL)
    clf.fit(X, y)
    assert clf.network_.bag_of_embeddings
    x = X[1]
    state = clf.init_state()
    for t in range(1, len(x) + 1):
        out, state = clf.step(int(x[t - 1]), state)
        assert_allclose(out[0], clf.predict_proba([x[:t]])[0], rtol=1e-5, atol=1e-6)


def test_long_documents_get_a_higher_rate_and_no_validation_split(monkeypatch):
    from fastrnn.estimators.classifier import AUTO_LEARNING_RATE

    rates = AUTO_LEARNING_RATE["default"], AUTO_LEARNING_RATE["long_tokens"]
    assert rates[1] > rates[0]
    no_lr = {k: v for k, v in SMALL.items() if k != "learning_rate"}

    def same_fit(X, y, fixed, **kw):
        auto = RNNClassifier(**no_lr, **kw).fit(X, y)
        assert auto.learning_rate == "auto" and auto.early_stopping == "auto"
        other = RNNClassifier(**{**no_lr, **kw, **fixed}).fit(X, y)
        return np.array_equal(auto.predict_proba(X), other.predict_proba(X)), auto

    X, y = token_data(30)
    steps = sum(len(x) for x in X)
    # more time steps than max_iter="auto" reads in 10 epochs: the higher rate
    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", 10 * steps - 1)
    assert same_fit(X, y, dict(learning_rate=rates[1]))[0]
    assert not same_fit(X, y, dict(learning_rate=rates[0]))[0]
    assert same_fit(X, y, dict(learning_rate=rates[0]), max_iter=3)[0]  # max_iter given
    Xf, yf = seq_data(n=30)  # float features keep the default rate, however long
    assert same_fit(Xf, yf, dict(learning_rate=rates[0]))[0]
    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", 10 * steps)  # exactly 10 epochs: not long
    assert same_fit(X, y, dict(learning_rate=rates[0]))[0]
    # early_stopping="auto" holds no validation split out of long documents
    X, y = token_data(1000)
    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", 10 * sum(len(x) for x in X) - 1)
    long = same_fit(X, y, dict(learning_rate=rates[1], early_stopping=False), max_iter="auto",
                    n_iter_no_change=10 ** 6, tol=0.0, linear=False)  # (3 epochs with it)
    assert long[0] and long[1].validation_scores_ is None and long[1].n_iter_ == 10
    monkeypatch.setattr(_base, "AUTO_TIME_STEPS", 10 ** 9)
    short = RNNClassifier(max_iter=2, **no_lr).fit(X, y)
    assert len(short.validation_scores_) == 2  # 100 sequences held out, as before
    with pytest.raises(ValueError, match="'learning_rate' parameter"):
        RNNClassifier(learning_rate="fast", max_iter=1, **no_lr).fit(Xf, yf)
