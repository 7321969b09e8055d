"""Callbacks, validation data and the per-epoch history of every estimator."""

import csv
import json
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastrnn
from fastrnn import RNNClassifier, RNNLanguageModel, RNNRegressor, RNNTagger
from fastrnn.callbacks import (Callback, EarlyStopping, HistoryLogger, LearningRateScheduler,
                               ModelCheckpoint, TimeBudget)

SMALL = dict(hidden_size=8, learning_rate=0.03, batch_size=10, random_state=0)


def data(n=40, seed=0):
    rng = np.random.RandomState(seed)
    X = [rng.randn(rng.randint(4, 9), 2) + (i % 2) * 0.8 for i in range(n)]
    return X, np.array([i % 2 for i in range(n)])


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_begin(self, estimator, loop):
        self.calls.append(("begin", None))

    def on_epoch_begin(self, estimator, loop, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, estimator, loop, logs):
        self.calls.append(("epoch_end", dict(logs)))
        self.params = {k: v.copy() for k, v in estimator.network_.params.items()}

    def on_fit_end(self, estimator, loop):
        self.calls.append(("end", None))


@pytest.mark.parametrize("make", [
    lambda: (RNNClassifier(max_iter=3, **SMALL), *data()),
    lambda: (RNNRegressor(max_iter=3, **SMALL), data()[0], np.arange(40.0)),
    lambda: (RNNTagger(max_iter=3, **SMALL), data()[0],
             [np.where(x[:, 0] > 0, "p", "n") for x in data()[0]]),
], ids=["classifier", "regressor", "tagger"])
def test_hooks_are_called_in_order_and_history_matches(make):
    est, X, y = make()
    rec = Recorder()
    est.set_params(callbacks=[rec]).fit(X, y)
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["begin"] + ["epoch_begin", "epoch_end"] * 3 + ["end"]
    assert [c[1] for c in rec.calls if c[0] == "epoch_begin"] == [0, 1, 2]
    assert len(est.history_) == 3 == est.n_iter_ and est.stop_reason_ == "max_iter"
    for i, (h, (_, logs)) in enumerate(zip(est.history_, [c for c in rec.calls
                                                           if c[0] == "epoch_end"])):
        assert h["epoch"] == i + 1 and h["loss"] == pytest.approx(est.loss_curve_[i])
        assert h["sequences"] == 40 * (i + 1) and h["loss"] == logs["loss"]
        assert {"lr", "grad_norm", "seconds", "step"} <= set(h)
    assert [h["seconds"] for h in est.history_] == sorted(h["seconds"] for h in est.history_)
    # the estimator was consistent when the callback ran (a checkpoint could have saved it)
    for k, v in rec.params.items():
        assert_array_equal(est.network_.params[k], v)


def test_a_callback_stops_the_fit():
    class Stop(Callback):
        def on_epoch_end(self, estimator, loop, logs):
            if loop.epoch == 2:
                loop.stop_training = True

    clf = RNNClassifier(max_iter=50, callbacks=[Stop()], **SMALL).fit(*data())
    assert clf.n_iter_ == 2 and clf.stop_reason_ == "callback"


def test_early_stopping_callback_restores_the_best_epoch():
    X, y = data(60)
    Xv, yv = data(30, seed=1)
    rec = Recorder()
    snaps = []

    class Snap(Callback):
        def on_epoch_end(self, estimator, loop, logs):
            snaps.append((logs["val_score"], {k: v.copy() for k, v in loop.net.params.items()}))

    es = EarlyStopping(monitor="val_score", patience=2)
    clf = RNNClassifier(max_iter=100, learning_rate=0.1, callbacks=[rec, Snap(), es],
                        **{k: v for k, v in SMALL.items() if k != "learning_rate"})
    clf.fit(X, y, validation_data=(Xv, yv))
    assert clf.stop_reason_ == "callback" and es.stopped_epoch_ == clf.n_iter_
    assert clf.n_iter_ == es.best_epoch_ + 2
    scores = [s for s, _ in snaps]
    assert es.best_ == max(scores) and len(clf.validation_scores_) == clf.n_iter_
    best = snaps[int(np.argmax(scores))][1]
    for k, v in best.items():
        assert_array_equal(clf.network_.params[k], v)
    with pytest.raises(ValueError, match="monitors 'val_score'.*validation data"):
        RNNClassifier(max_iter=2, callbacks=[EarlyStopping()], **SMALL).fit(X, y)


def test_validation_data_replaces_the_split_for_early_stopping():
    X, y = data(40)
    Xv, yv = data(20, seed=3)
    clf = RNNClassifier(max_iter=4, early_stopping=True, n_iter_no_change=100, **SMALL)
    clf.fit(X, y, validation_data=(Xv, yv))
    assert clf.t_ == 4 * 40  # all the training data trains
    assert clf.validation_scores_ == pytest.approx(
        [h["val_score"] for h in clf.history_])
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.score(Xv, yv) == pytest.approx(clf.best_validation_score_)  # the best is kept
    # early_stopping="auto" (the default) watches given validation data as True does
    auto = RNNClassifier(max_iter=4, n_iter_no_change=100, **SMALL)
    auto.fit(X, y, validation_data=(Xv, yv))
    assert auto.best_validation_score_ == clf.best_validation_score_
    assert_array_equal(auto.predict_proba(Xv), clf.predict_proba(Xv))
    # without early stopping the validation data is only recorded
    plain = RNNClassifier(max_iter=3, early_stopping=False, **SMALL)
    plain.fit(X, y, validation_data=(Xv, yv))
    assert len(plain.validation_scores_) == 3 and plain.best_validation_score_ is None
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        RNNClassifier(**SMALL).fit(X, y, validation_data=Xv)
    with pytest.raises(ValueError, match="not among the classes"):
        RNNClassifier(**SMALL).fit(X, y, validation_data=(Xv, np.full(20, 7)))


def test_validation_data_of_token_ids_is_read_as_token_ids():
    rng = np.random.RandomState(0)
    X = [rng.randint(4, 10, size=rng.randint(2, 9)) for _ in range(40)]
    y = np.array([int(7 in x) for x in X])
    clf = RNNClassifier(max_iter=2, **SMALL).fit(X[:30], y[:30], validation_data=(X[30:], y[30:]))
    assert clf.embedding_dim_ is not None
    assert clf.score(X[30:], y[30:]) == clf.best_validation_score_ == max(clf.validation_scores_)
    tags = [np.where(x % 2 == 0, "even", "odd") for x in X]
    tagger = RNNTagger(max_iter=2, early_stopping=False, **SMALL)
    tagger.fit(X[:30], tags[:30], validation_data=(X[30:], tags[30:]))
    assert tagger.validation_scores_[-1] == tagger.score(X[30:], tags[30:])


def test_regressor_takes_validation_data_on_its_first_fit():
    X, _ = data(40)
    y = np.array([x[:, 0].mean() for x in X])
    reg = RNNRegressor(max_iter=2, **SMALL).fit(X[:30], y[:30], validation_data=(X[30:], y[30:]))
    assert len(reg.validation_scores_) == 2
    assert reg.validation_scores_[-1] == pytest.approx(reg.score(X[30:], y[30:]))


def test_checkpoint_logger_scheduler_and_time_budget(tmp_path):
    X, y = data(40)
    Xv, yv = data(20, seed=2)
    lrs = LearningRateScheduler(lambda epoch, lr: 0.05 / (epoch + 1))
    ckpt = ModelCheckpoint(tmp_path / "m-{epoch}.fastrnn")
    best = ModelCheckpoint(tmp_path / "best.fastrnn", monitor="val_score", save_best_only=True)
    logs = [HistoryLogger(tmp_path / "h.csv"), HistoryLogger(tmp_path / "h.jsonl")]
    # no early stopping: the model after the fit is that of the last epoch
    clf = RNNClassifier(max_iter=3, early_stopping=False, callbacks=[lrs, ckpt, best, *logs],
                        **SMALL)
    clf.fit(X, y, validation_data=(Xv, yv))
    assert [h["lr"] for h in clf.history_] == pytest.approx([0.05, 0.025, 0.05 / 3])
    for epoch in (1, 2, 3):
        assert (tmp_path / f"m-{epoch}.fastrnn").exists()
    last = fastrnn.load(tmp_path / "m-3.fastrnn")
    assert_array_equal(last.predict_proba(X), clf.predict_proba(X))
    assert last.n_iter_ == 3 and len(last.loss_curve_) == 3
    with open(tmp_path / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in rows] == pytest.approx(clf.loss_curve_)
    lines = [json.loads(line) for line in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert [d["val_score"] for d in lines] == pytest.approx(clf.validation_scores_)
    assert (tmp_path / "best.fastrnn").exists()
    # with early stopping (the default "auto", given validation data) the best epoch is kept:
    # the same model as the best checkpoint
    kept = RNNClassifier(max_iter=4, n_iter_no_change=100, callbacks=[best], **SMALL)
    kept.fit(X, y, validation_data=(Xv, yv))
    assert_array_equal(fastrnn.load(tmp_path / "best.fastrnn").predict_proba(X),
                       kept.predict_proba(X))
    quick = RNNClassifier(max_iter=100, callbacks=[TimeBudget(0.0)], **SMALL).fit(X, y)
    assert quick.n_iter_ == 1 and quick.stop_reason_ == "callback"
    with pytest.raises(ValueError, match="finite number > 0"):
        RNNClassifier(max_iter=2, callbacks=[LearningRateScheduler(lambda e, lr: -1.0)],
                      **SMALL).fit(X, y)
    # callbacks are code, not part of a saved model
    clf.save(tmp_path / "c.fastrnn")
    assert fastrnn.load(tmp_path / "c.fastrnn").callbacks is None


def test_language_model_callbacks():
    texts = ["the cat sat on the mat. ", "a dog ran far. "] * 6
    rec = Recorder()
    lm = RNNLanguageModel(hidden_size=16, embedding_dim=8, bptt=8, batch_size=2, max_iter=60,
                          learning_rate=0.05, lr_decay=1.0, random_state=0,
                          callbacks=[rec, EarlyStopping("val_bits", patience=1)])
    lm.fit(texts, validation_texts=["zzz qqq xxx. "])
    ends = [c[1] for c in rec.calls if c[0] == "epoch_end"]
    assert len(ends) == lm.n_iter_ < 60 and lm.stop_reason_ == "callback"
    assert [e["val_bits"] for e in ends] == pytest.approx(lm.validation_bits_per_token_)
    assert {"tokens", "loss", "lr", "val_loss"} <= set(ends[0])


def test_a_verbose_first_fit_says_it_compiles_the_kernels(monkeypatch, capsys):
    import fastrnn.train._loop as loop_mod

    X, y = data(20)
    for warm in (False, True):
        monkeypatch.setattr(loop_mod, "numba_cache_is_warm", lambda: warm)
        RNNClassifier(max_iter=1, verbose=1, backend="numba", **SMALL).fit(X, y)
        err = capsys.readouterr().err
        assert ("compiling the kernels for this machine, once" in err) is (not warm)
    monkeypatch.setattr(loop_mod, "numba_cache_is_warm", lambda: False)
    RNNClassifier(max_iter=1, verbose=0, **SMALL).fit(X, y)  # quiet fits stay quiet
    assert capsys.readouterr().err == ""
