"""Never silently wrong: diverging training is an error, and inference is safe from many threads.

Divergence: every estimator and the command line, trained with an absurd learning rate, must fail
with a clear error (after rolling back and lowering the rate a few times) instead of returning a
diverged model. Threads: every inference method of every estimator, called from several threads
at once on one fitted model, must give exactly what serial calls give.
"""

import math
import threading
import warnings

import numpy as np
import pytest

from fastrnn import RNNClassifier, RNNLanguageModel, RNNRegressor, RNNTagger
from fastrnn.nn import SequenceNetwork
from fastrnn.train import NonFiniteWarning, Trainer, TrainingDivergedError

from conftest import SOAK


def series(n=40, seed=0):
    rng = np.random.RandomState(seed)
    X = [rng.standard_normal((rng.randint(5, 12), 3)) + (i % 2) for i in range(n)]
    y = np.array(["a" if i % 2 else "b" for i in range(n)])
    return X, y


TEXTS = ["the cat sat on the mat. ", "a dog ran far away. ", "the mat is red. "] * 6
SMALL = dict(hidden_size=8, random_state=0)


# ------------------------------------------------------------------------------------ divergence
def test_trainer_rolls_back_a_diverging_step_and_then_fails():
    net = SequenceNetwork(2, n_features=3, hidden_size=4, dtype=np.float64, random_state=0)
    trainer = Trainer(net, optimizer="sgd", learning_rate=0.1, reference_loss=math.log(2),
                      max_failures=2)
    X = np.random.RandomState(1).standard_normal((4, 5, 3))
    loss_at = [1.0]
    before = {k: v.copy() for k, v in net.params.items()}

    def loss_fn(out):
        return loss_at[0], np.ones_like(out)

    assert trainer.step(X, [5] * 4, loss_fn)[0] == 1.0  # the first loss anchors the check
    good = {k: v.copy() for k, v in net.params.items()}
    assert any(not np.array_equal(good[k], before[k]) for k in good)
    trainer.take_snapshot()
    loss_at[0] = 1e3  # 1000 times the start: diverged
    with pytest.warns(NonFiniteWarning, match="training diverged"):
        loss, _ = trainer.step(X, [5] * 4, loss_fn)
    assert math.isnan(loss) and trainer.optimizer.lr == pytest.approx(0.05)
    for k, v in good.items():  # rolled back to the snapshot
        np.testing.assert_array_equal(net.params[k], v)
    loss_at[0] = 50.0  # 50 times the start: a bad step, not divergence
    assert trainer.step(X, [5] * 4, loss_fn)[0] == 50.0
    loss_at[0] = 1e6
    with pytest.warns(NonFiniteWarning), pytest.raises(TrainingDivergedError,
                                                       match="lower learning_rate"):
        for _ in range(3):
            trainer.step(X, [5] * 4, loss_fn)


def test_failures_that_keep_coming_back_raise_once_the_learning_rate_is_spent():
    # each failure is followed by sound steps, so no streak reaches max_failures; the run must
    # still stop once the roll-backs have lowered the learning rate below min_lr_fraction
    net = SequenceNetwork(2, n_features=3, hidden_size=4, dtype=np.float64, random_state=0)
    trainer = Trainer(net, optimizer="sgd", learning_rate=0.1, min_lr_fraction=0.1)
    X = np.random.RandomState(1).standard_normal((4, 5, 3))
    loss_at = [1.0]

    def loss_fn(out):
        return loss_at[0], np.ones_like(out)

    trainer.step(X, [5] * 4, loss_fn)
    for k in range(1, 4):
        loss_at[0] = 1e3
        with pytest.warns(NonFiniteWarning, match="training diverged"):
            assert math.isnan(trainer.step(X, [5] * 4, loss_fn)[0])
        assert trainer.lr_backed_off_ == 0.5 ** k
        assert trainer.optimizer.lr == pytest.approx(0.1 * 0.5 ** k)
        loss_at[0] = 1.0
        for _ in range(2):  # an update after the roll-back, then its sound loss: streak over
            trainer.step(X, [5] * 4, loss_fn)
        assert trainer._consecutive == 0
        trainer.take_snapshot()  # (every snapshot_every sound steps) keeps the lowered rate
    loss_at[0] = 1e3
    with pytest.raises(TrainingDivergedError, match=r"0\.0625 times .*min_lr_fraction=0\.1"):
        trainer.step(X, [5] * 4, loss_fn)
    assert trainer.n_failures_ == 4


@pytest.mark.parametrize("make", [
    lambda: (RNNClassifier(learning_rate=1e6, max_iter=5, **SMALL), *series()),
    lambda: (RNNRegressor(learning_rate=1e6, max_iter=5, **SMALL),
             series()[0], np.arange(40.0)),
    lambda: (RNNTagger(learning_rate=1e6, max_iter=5, **SMALL), series()[0],
             [np.where(x[:, 0] > 0, "p", "n") for x in series()[0]]),
], ids=["classifier", "regressor", "tagger"])
def test_estimators_refuse_to_return_a_diverged_model(make):
    est, X, y = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteWarning)
        with pytest.raises(TrainingDivergedError, match="learning_rate"):
            est.fit(X, y)


def test_language_model_refuses_to_return_a_diverged_model():
    lm = RNNLanguageModel(hidden_size=16, embedding_dim=8, bptt=8, batch_size=2, max_iter=3,
                          learning_rate=1e6, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteWarning)
        with pytest.raises(TrainingDivergedError, match="learning_rate"):
            lm.fit(TEXTS)


def test_scoring_names_a_state_that_overflows_over_a_long_text():
    lm = RNNLanguageModel(cell="indrnn", hidden_size=8, embedding_dim=4, bptt=8, batch_size=2,
                          max_iter=1, random_state=0).fit(TEXTS)
    text = "".join(TEXTS) * 40
    assert np.isfinite(lm.bits_per_token([text]))
    rnn = lm.network_.rnn
    rnn.params["weight_hh_l0"][...] = 3.0  # every unit triples its state at each step
    rnn.params["bias_hh_l0"][...] = 1.0
    with pytest.raises(FloatingPointError, match="grows without bound.*Score shorter"):
        lm.bits_per_token([text])


def test_cli_exits_non_zero_on_divergence(tmp_path, capsys):
    from fastrnn.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(TEXTS) * 3)
    out = tmp_path / "m.fastrnn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteWarning)
        rc = main(["train-lm", str(corpus), "--out", str(out), "--learning-rate", "1e6",
                   "--epochs", "3", "--hidden-size", "16", "--batch-size", "2", "--bptt", "8",
                   "--quiet"])
    assert rc != 0
    assert "diverged" in capsys.readouterr().err
    assert not out.exists()


def test_a_sane_learning_rate_never_trips_the_divergence_check():
    X, y = series()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWarning)
        clf = RNNClassifier(learning_rate=3e-2, max_iter=20, **SMALL).fit(X, y)
    assert clf._trainer.n_failures_ == 0


# ------------------------------------------------------------------------------------ threads
def _in_threads(fn, n_threads=4, repeats=6):
    """Call ``fn(i)`` for i in range(n_threads * repeats) from ``n_threads`` threads at once;
    return the results in call order."""
    jobs = list(range(n_threads * repeats))
    results = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(n_threads)

    def worker(k):
        barrier.wait()
        for i in jobs[k::n_threads]:
            try:
                results[i] = fn(i)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def _same(a, b):
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.shape == np.shape(b) and np.array_equal(a, b)
    return a == b


def _check_threads(calls):
    serial = [c() for c in calls]
    got = _in_threads(lambda i: calls[i % len(calls)]())
    for i, g in enumerate(got):
        assert _same(g, serial[i % len(calls)]), f"call {i % len(calls)} differs in a thread"


@pytest.fixture(scope="module")
def fitted():
    X, y = series()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # one direction: the stream tests read it step by step
        clf = RNNClassifier(dropout=0.3, recurrent_dropout=0.2, max_iter=2, bidirectional=False,
                            **SMALL).fit(X, y)
        reg = RNNRegressor(dropout=0.3, max_iter=2, **SMALL).fit(X, np.arange(40.0))
        tag = RNNTagger(dropout=0.3, max_iter=2, **SMALL).fit(
            X, [np.where(x[:, 0] > 0, "p", "n") for x in X])
        lm = RNNLanguageModel(hidden_size=16, embedding_dim=8, bptt=8, batch_size=2, max_iter=1,
                              dropout=0.3, random_state=0).fit(TEXTS)
    return X, y, clf, reg, tag, lm


def test_classifier_inference_is_thread_safe(fitted):
    X, y, clf, *_ = fitted
    parts = [X[i::3] for i in range(3)]
    _check_threads([lambda p=p: clf.predict_proba(p) for p in parts]
                   + [lambda: clf.predict(X), lambda: clf.transform(X),
                      lambda: clf.decision_function(X), lambda: clf.predict_log_proba(X),
                      lambda: clf.score(X, y)])


def test_regressor_and_tagger_inference_is_thread_safe(fitted):
    X, y, _, reg, tag, _ = fitted
    _check_threads([lambda: reg.predict(X), lambda: reg.transform(X[:7]),
                    lambda: reg.score(X, np.arange(40.0)), lambda: tag.predict(X),
                    lambda: tag.predict_proba(X[:9])])


def test_language_model_inference_is_thread_safe(fitted):
    lm = fitted[-1]
    _check_threads([lambda: lm.perplexity(TEXTS[:3]), lambda: lm.score(TEXTS[1:4]),
                    lambda: lm.predict_next("the c", k=5), lambda: lm.bits_per_token(TEXTS[:2]),
                    lambda: lm.generate("the ", max_length=20, random_state=3)])


def test_streams_are_independent_across_threads(fitted):
    X, _, clf, *_ = fitted
    lm = fitted[-1]

    def classify(i):
        x = X[i % len(X)]
        state = clf.init_state(1)
        return [clf.step(x[t], state)[0].copy() for t in range(len(x))]

    def read(i):
        state = lm.init_state(1)
        return [lm.step(c, state)[0].copy() for c in "the cat"[: 3 + i % 4]]

    _check_threads([lambda i=i: classify(i) for i in range(4)]
                   + [lambda i=i: read(i) for i in range(4)])


# ------------------------------------------------------------------ kill -9 during training
_TRAIN = """
import sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {tests!r})
from test_reliability import kill_fit
kill_fit({kind!r}, sys.argv[1], resume=True)
print("finished")
"""


def kill_texts():
    rng = np.random.RandomState(5)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "red"]
    return [" ".join(rng.choice(words, size=12)) + ". " for _ in range(360)]


def kill_lm(checkpoint):
    return RNNLanguageModel(hidden_size=16, embedding_dim=8, bptt=16, batch_size=4, max_iter=6,
                            dropout=0.1, dtype="float64", random_state=0,
                            checkpoint_path=checkpoint)


def kill_fit(kind, checkpoint, resume=False):
    """The fit the kill -9 test interrupts: a language model, or a classifier (with dropout, the
    cosine schedule and early stopping on a validation split)."""
    if kind == "lm":
        return kill_lm(checkpoint).fit(kill_texts(), validation_texts=kill_texts()[:2],
                                       resume=resume)
    from fastrnn.datasets import make_sequence_classification

    X, y = make_sequence_classification(n_samples=1200, random_state=5)
    clf = RNNClassifier(hidden_size=16, max_iter=12, dtype="float64", early_stopping=True,
                        n_iter_no_change=100, random_state=0, checkpoint_path=checkpoint)
    return clf.fit(X, y, resume=resume)


@pytest.mark.parametrize("kind", ["lm", "classifier"])
def test_training_survives_kill_9_and_resumes_exactly(tmp_path, kind):
    """Training processes killed with SIGKILL at random moments, each resumed from the checkpoint
    on disk, end with the very parameters of an uninterrupted run: the checkpoint is never half
    written, and a resumed run takes exactly the steps of an uninterrupted one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import fastrnn

    ref = kill_fit(kind, str(tmp_path / "ref.ckpt"))
    ckpt = str(tmp_path / "run.ckpt")
    script = _TRAIN.format(tests=os.path.dirname(__file__), kind=kind)
    # the kills land at random fractions of an uninterrupted run of this machine (a fixed number
    # of seconds would let a fast machine finish before the first kill)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "timing.ckpt")], check=True,
                   capture_output=True, timeout=300)
    full = time.monotonic() - t0
    rng = np.random.RandomState(0)
    kills = 0
    deadline = time.monotonic() + 60 * SOAK
    while True:
        proc = subprocess.Popen([sys.executable, "-c", script, ckpt], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if kills < 4 * SOAK and time.monotonic() < deadline:
            try:
                out, err = proc.communicate(timeout=rng.uniform(0.3, 0.8) * full)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                kills += 1
                if os.path.exists(ckpt):
                    fastrnn.load(ckpt)  # whatever is on disk is a whole checkpoint
                continue
        else:
            out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "finished" in out
        break
    resumed = fastrnn.load(ckpt)  # the checkpoint of the finished run holds its best model
    assert kills >= 1
    got = kill_fit(kind, ckpt, resume=True)  # nothing left to do
    assert got.n_iter_ == ref.n_iter_ and got.loss_curve_ == ref.loss_curve_
    if kind == "lm":
        assert got.n_steps_ == ref.n_steps_
    else:
        assert got.t_ == ref.t_ and got.validation_scores_ == ref.validation_scores_
    for k, v in ref.network_.params.items():
        np.testing.assert_array_equal(got.network_.params[k], v, err_msg=k)
        np.testing.assert_array_equal(resumed.network_.params[k], v, err_msg=k)


# ------------------------------------------------------------------ the language model on any text
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=12 * SOAK, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(st.text(max_size=40), min_size=1, max_size=5),
       level=st.sampled_from(["char", "word"]), data=st.data())
def test_language_model_on_random_texts_fits_or_says_why(texts, level, data):
    lm = RNNLanguageModel(level=level, hidden_size=4, embedding_dim=3, bptt=4, batch_size=2,
                          max_iter=1, random_state=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            lm.fit(texts)
    except ValueError as exc:  # an empty corpus, too few tokens, no regular token
        assert len(str(exc)) > 30
        return
    other = data.draw(st.lists(st.text(max_size=20), min_size=1, max_size=3))
    try:
        ppl = lm.perplexity(other)
    except ValueError as exc:
        assert "empty" in str(exc) or "no tokens" in str(exc)
    else:
        assert ppl > 1.0 or math.isinf(ppl)
    out = lm.generate(data.draw(st.text(max_size=8)), max_length=5, random_state=0)
    assert isinstance(out, str)
    top = lm.predict_next("", k=3)
    assert len(top) <= 3 and all(0.0 <= p <= 1.0 for _, p in top)
