"""Training checkpoints of RNNClassifier, RNNRegressor and RNNTagger: a fit interrupted (by a
callback, Ctrl-C, the time budget or a failed write) and resumed from its checkpoint ends with
the very model of an uninterrupted fit; what cannot be resumed is refused with a clear error.

Every comparison is with an uninterrupted fit of the same estimator and seed, run in the test."""

import os
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone

import fastrnn
from fastrnn import RNNClassifier, RNNRegressor, RNNTagger
from fastrnn.callbacks import Callback
from fastrnn.datasets import make_sequence_classification
from fastrnn.optim import Adam
from fastrnn.train import TrainingInterrupted

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TINY = dict(hidden_size=8, max_iter=5, dtype="float64", backend="numpy", random_state=0)


def tag_data(n=40, seed=1):
    rng = np.random.RandomState(seed)
    X = [rng.randint(4, 10, size=rng.randint(2, 9)) for _ in range(n)]
    y = [np.where(x % 2 == 0, "even", "odd") for x in X]
    return X, y


def reg_data(n=50, seed=2):
    rng = np.random.RandomState(seed)
    X = [rng.randn(rng.randint(3, 10), 2) for _ in range(n)]
    y = np.array([[x[:, 0].mean(), x[:, 1].max()] for x in X])
    return X, y


def make(kind, **kw):
    """A small estimator of each kind and its data: the classifier with the default schedule
    (cosine) and early stopping on a validation split of its data, the tagger on token ids with
    early stopping on validation_data, the regressor with plateau decay on its training loss;
    all with dropout, so the random generators of dropout matter too."""
    if kind == "classifier":
        X, y = make_sequence_classification(n_samples=60, random_state=0)
        est = RNNClassifier(**{**TINY, "early_stopping": True, "validation_fraction": 0.2,
                               "n_iter_no_change": 50, **kw})
        return est, X, y, {}
    if kind == "tagger":
        X, y = tag_data()
        est = RNNTagger(**{**TINY, "embedding_dim": 4, "early_stopping": True, **kw})
        return est, X[:30], y[:30], {"validation_data": (X[30:], y[30:])}
    X, y = reg_data()
    est = RNNRegressor(**{**TINY, "dropout": 0.2, "recurrent_dropout": 0.1,
                          "lr_schedule": "plateau", "learning_rate": 0.01, **kw})
    return est, X, y, {}


KINDS = ["classifier", "tagger", "regressor"]


class StopAfter(Callback):
    """Stops the fit at the end of epoch ``k`` (of this fit)."""

    def __init__(self, k):
        self.k = k

    def on_epoch_end(self, estimator, loop, logs):
        if loop.epoch >= self.k:
            loop.stop_training = True


def assert_same_fit(got, want):
    """The same model and the same training record (bit for bit; the wall-clock seconds of the
    history aside)."""
    assert got.n_iter_ == want.n_iter_ and got.t_ == want.t_
    assert got.loss_curve_ == want.loss_curve_
    assert got.grad_norm_curve_ == want.grad_norm_curve_
    assert got.validation_scores_ == want.validation_scores_
    assert got.best_loss_ == want.best_loss_
    assert got.best_validation_score_ == want.best_validation_score_

    def strip(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert strip(got.history_) == strip(want.history_)
    assert sorted(got.network_.params) == sorted(want.network_.params)
    for k, v in want.network_.params.items():
        assert_array_equal(got.network_.params[k], v, err_msg=k)


@pytest.mark.parametrize("kind", KINDS)
def test_a_fit_stopped_after_an_epoch_resumes_to_the_uninterrupted_model(kind, tmp_path):
    est, X, y, fit_kw = make(kind)
    full = clone(est).fit(X, y, **fit_kw)
    assert full.n_iter_ == TINY["max_iter"]
    ckpt = tmp_path / "run.ckpt"
    stopped = clone(est).set_params(checkpoint_path=ckpt, callbacks=[StopAfter(2)])
    stopped.fit(X, y, **fit_kw)
    assert stopped.stop_reason_ == "callback" and stopped.n_iter_ == 2
    resumed = clone(est).set_params(checkpoint_path=ckpt).fit(X, y, resume=True, **fit_kw)
    assert resumed.stop_reason_ == "max_iter"
    assert_same_fit(resumed, full)


def test_a_fit_with_the_default_settings_resumes_to_the_uninterrupted_model(tmp_path):
    # 1000 sequences: early_stopping="auto" holds out a validation split, batch_size="auto" makes
    # batches of 28; the default backend, float32, dropout and the cosine schedule
    X, y = make_sequence_classification(n_samples=1000, min_length=2, max_length=4,
                                        random_state=0)
    est = RNNClassifier(hidden_size=4, max_iter=3, random_state=0)
    full = clone(est).fit(X, y)
    assert full.validation_scores_ is not None and len(full.validation_scores_) == 3
    ckpt = tmp_path / "run.ckpt"
    clone(est).set_params(checkpoint_path=ckpt, callbacks=[StopAfter(1)]).fit(X, y)
    resumed = clone(est).set_params(checkpoint_path=ckpt).fit(X, y, resume=True)
    assert_same_fit(resumed, full)


@pytest.mark.parametrize("inside", [False, True], ids=["after-a-step", "inside-a-step"])
def test_ctrl_c_inside_an_epoch_resumes_to_the_uninterrupted_model(inside, tmp_path,
                                                                   ctrl_c_at_step):
    est, X, y, _ = make("classifier")
    full = clone(est).fit(X, y)
    per_epoch = full.history_[0]["step"]
    ckpt = tmp_path / "run.ckpt"
    ctrl_c_at_step(per_epoch + per_epoch // 2, inside=inside)  # in the second epoch
    interrupted = clone(est).set_params(checkpoint_path=ckpt)
    # a first Ctrl-C writes a checkpoint at that step; a second one, inside the step, leaves
    # that of the end of epoch 1
    match = "end of epoch 1.*steps since then are lost" if inside else "can be resumed from"
    with pytest.warns(TrainingInterrupted, match=match):
        interrupted.fit(X, y)
    assert interrupted.stop_reason_ == "interrupted" and interrupted.n_iter_ == 1
    assert interrupted.predict(X).shape == (len(X),)  # usable meanwhile
    resumed = clone(est).set_params(checkpoint_path=ckpt).fit(X, y, resume=True)
    assert_same_fit(resumed, full)


def test_a_time_budget_stop_inside_an_epoch_resumes_to_the_uninterrupted_model(tmp_path):
    # a constant learning rate: an annealed one follows the share of the time budget spent
    est, X, y, _ = make("regressor", lr_schedule="constant")
    Xv, yv = reg_data(12, seed=3)
    full = clone(est).fit(X, y, validation_data=(Xv, yv))
    ckpt = tmp_path / "run.ckpt"
    stopped = clone(est).set_params(checkpoint_path=ckpt, time_budget=1e-9)
    stopped.fit(X, y, validation_data=(Xv, yv))  # stops after its first step
    assert stopped.stop_reason_ == "time_budget" and stopped.n_iter_ == 0
    resumed = clone(est).set_params(checkpoint_path=ckpt).fit(
        X, y, validation_data=(Xv, yv), resume=True)
    assert_same_fit(resumed, full)


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    est, X, y, _ = make("classifier")
    full = clone(est).fit(X, y)
    ckpt = tmp_path / "run.ckpt"
    real_write = np.lib.format.write_array
    written = {"n": 0}

    def disk_full_after_a_checkpoint(*args, **kwargs):
        if ckpt.exists():
            written["n"] += 1
            if written["n"] > 3:  # inside the second checkpoint
                raise OSError("no space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", disk_full_after_a_checkpoint)
    with pytest.raises(OSError, match="no space left"):
        clone(est).set_params(checkpoint_path=ckpt).fit(X, y)
    monkeypatch.setattr(np.lib.format, "write_array", real_write)
    assert os.listdir(tmp_path) == ["run.ckpt"]  # no temporary file left behind
    assert fastrnn.load(ckpt).n_iter_ == 1  # the whole checkpoint of epoch 1
    resumed = clone(est).set_params(checkpoint_path=ckpt).fit(X, y, resume=True)
    assert_same_fit(resumed, full)


def test_resume_without_a_checkpoint_starts_afresh_and_the_checkpoint_loads(tmp_path):
    est, X, y, _ = make("classifier")
    plain = clone(est).fit(X, y)
    ckpt = tmp_path / "run.ckpt"
    first = clone(est).set_params(checkpoint_path=str(ckpt)).fit(X, y, resume=True)
    assert_same_fit(first, plain)  # writing checkpoints changes nothing of the fit
    loaded = fastrnn.load(ckpt)  # the checkpoint of the finished run is its (best) model
    assert isinstance(loaded, RNNClassifier) and loaded.n_iter_ == plain.n_iter_
    assert_array_equal(loaded.predict_proba(X), plain.predict_proba(X))
    assert loaded.loss_curve_ == plain.loss_curve_
    # resuming a finished run has nothing left to do
    again = clone(est).set_params(checkpoint_path=ckpt).fit(X, y, resume=True)
    assert_same_fit(again, plain)


def test_a_checkpoint_mid_run_loads_as_the_best_model_so_far(tmp_path):
    est, X, y, _ = make("classifier", n_iter_no_change=1, max_iter=8)
    ckpt = tmp_path / "run.ckpt"
    stopped = clone(est).set_params(checkpoint_path=ckpt, callbacks=[StopAfter(4)]).fit(X, y)
    loaded = fastrnn.load(ckpt)
    # the stopped fit restored the best parameters of its validation split; so does the file
    assert_array_equal(loaded.predict_proba(X), stopped.predict_proba(X))
    assert loaded.validation_scores_ == stopped.validation_scores_
    assert loaded.best_validation_score_ == stopped.best_validation_score_ == max(
        stopped.validation_scores_)


def test_a_warm_started_fit_resumes_in_a_fresh_estimator(tmp_path):
    est, X, y, _ = make("regressor", max_iter=3)
    full = clone(est).fit(X, y)
    full.set_params(warm_start=True).fit(X, y)
    first = clone(est).fit(X, y)
    ckpt = tmp_path / "run.ckpt"
    first.set_params(warm_start=True, checkpoint_path=ckpt, callbacks=[StopAfter(1)]).fit(X, y)
    assert first.n_iter_ == 4
    # the checkpoint holds everything: a new estimator (not warm-started) continues the run
    resumed = clone(est).set_params(checkpoint_path=ckpt).fit(X, y, resume=True)
    assert resumed.n_iter_ == 6
    assert_same_fit(resumed, full)


def test_partial_fit_writes_no_checkpoint(tmp_path):
    X, y = make_sequence_classification(n_samples=20, random_state=0)
    ckpt = tmp_path / "run.ckpt"
    clf = RNNClassifier(**{**TINY, "checkpoint_path": ckpt})
    clf.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y)
    assert clf.n_iter_ == 2 and not ckpt.exists()


# ---------------------------------------------------------------------------------------------
# what cannot be resumed, and what a checkpoint must never overwrite
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_checkpoint(tmp_path_factory):
    """A classifier's checkpoint after 2 epochs, with the estimator and its data."""
    est, X, y, _ = make("classifier")
    ckpt = tmp_path_factory.mktemp("ckpt") / "clf.ckpt"
    clone(est).set_params(checkpoint_path=ckpt, callbacks=[StopAfter(2)]).fit(X, y)
    return est.set_params(checkpoint_path=ckpt), X, y, ckpt.read_bytes()


def test_resume_needs_a_checkpoint_path():
    est, X, y, _ = make("classifier")
    with pytest.raises(ValueError, match="resume=True needs checkpoint_path, got None"):
        est.fit(X, y, resume=True)


def _refusal(classifier_checkpoint, match, X=None, y=None, **params):
    est, X0, y0, raw = classifier_checkpoint
    est = clone(est).set_params(**params)
    with pytest.raises(ValueError, match=match):
        est.fit(X0 if X is None else X, y0 if y is None else y, resume=True)
    assert est.checkpoint_path.read_bytes() == raw  # the checkpoint is left as it was


def test_resume_with_other_data_names_what_differs(classifier_checkpoint):
    _, X, y, _ = classifier_checkpoint
    fix = "pass the same X, y, sample_weight and validation_data to resume, or resume=False"
    _refusal(classifier_checkpoint, rf"other training data \(X differs\); {fix}",
             X=[x + 0.5 for x in X])
    _refusal(classifier_checkpoint, r"other training data \(y differs\)", y=1 - y)
    _refusal(classifier_checkpoint, r"other training data \(X, y differ\)", X=X[:-1], y=y[:-1])
    _refusal(classifier_checkpoint, r"cannot resume the fit .* with this data: X has 2 features",
             X=[x[:, :2] for x in X])
    _refusal(classifier_checkpoint, r"watched validation data.*this one does not; pass the "
                                    "same early_stopping and validation_data",
             early_stopping=False)


def test_resume_with_another_architecture_names_what_differs(classifier_checkpoint):
    _refusal(classifier_checkpoint, r"other parameters \(hidden_size=8 there, 16 here, "
                                    r"pooling='max' there, 'mean' here\).*pass the same "
                                    "parameters to resume, or resume=False",
             hidden_size=16, pooling="mean")
    _refusal(classifier_checkpoint, r"other parameters \(standardize=True there, False here\)",
             standardize=False)
    _refusal(classifier_checkpoint, r"other parameters \(linear='auto' there, False here\)",
             linear=False)


def test_a_checkpoint_of_another_kind_is_refused(classifier_checkpoint, tmp_path):
    est, X, y, _ = classifier_checkpoint
    reg = RNNRegressor(**{**TINY, "checkpoint_path": est.checkpoint_path})
    with pytest.raises(ValueError, match=r"not a training checkpoint of an RNNRegressor \(it "
                                         r"holds a RNNClassifier checkpoint\)"):
        reg.fit(X, y.astype(float), resume=True)
    # nor does a fit without resume overwrite it
    with pytest.raises(ValueError, match="not a training checkpoint of an RNNRegressor; "
                                         "training would overwrite it"):
        reg.fit(X, y.astype(float))


def test_a_saved_model_is_never_overwritten_by_checkpoints(tmp_path):
    est, X, y, _ = make("classifier", max_iter=1)
    model = tmp_path / "model.fastrnn"
    clone(est).fit(X, y).save(model)
    before = model.read_bytes()
    for resume in (False, True):
        with pytest.raises(ValueError, match="not a training checkpoint of an RNNClassifier"):
            clone(est).set_params(checkpoint_path=model).fit(X, y, resume=resume)
    assert model.read_bytes() == before
    with pytest.raises(ValueError, match=r"checkpoint_path .* is a directory.*file path"):
        clone(est).set_params(checkpoint_path=tmp_path).fit(X, y)


def test_what_a_checkpoint_cannot_hold_is_refused_before_training(tmp_path):
    X, y = make_sequence_classification(n_samples=20, random_state=0)
    with pytest.raises(ValueError, match="checkpoint_path needs the optimizer by name"):
        RNNClassifier(**TINY, optimizer=Adam(lr=0.01),
                      checkpoint_path=tmp_path / "a.ckpt").fit(X, y)
    labels = np.empty(len(y), dtype=object)
    labels[:] = [("a", 1) if v else ("b", 2) for v in y]
    clf = RNNClassifier(**TINY, checkpoint_path=tmp_path / "b.ckpt")
    with pytest.raises(ValueError, match="a checkpoint cannot hold this model: classes_ holds "
                                         "labels of type tuple"):
        clf.fit(X, labels)
    assert os.listdir(tmp_path) == []


def test_checkpoint_path_is_a_saved_parameter(tmp_path):
    est, X, y, _ = make("classifier", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = clone(est).set_params(checkpoint_path=tmp_path / "run.ckpt").fit(X, y)
    clf.save(tmp_path / "model.fastrnn")
    assert fastrnn.load(tmp_path / "model.fastrnn").checkpoint_path == str(tmp_path / "run.ckpt")
