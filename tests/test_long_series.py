"""Long univariate series: read in frames (``frame_size``) with their first difference beside
them (``difference``) and trained on random windows (``crop_fraction``); the rule triggers where
it should, and every way of predicting agrees."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone

import fastrnn
from fastrnn import RNNClassifier
from conftest import COMPILED_BACKENDS
from fastrnn.callbacks import Callback
from fastrnn.estimators._inference import framed, series_input, with_difference
from fastrnn.estimators._inputs import check_sequences
from fastrnn.estimators.classifier import (AUTO_CROP_FRACTION, CROPS_PER_EPOCH, _WindowTask)


def _series(n=16, T=210, features=None, seed=0):
    """Two classes of noisy univariate series; class 1 has a bump at steps 50-59."""
    rng = np.random.default_rng(seed)
    shape = (n, T) if features is None else (n, T, features)
    X = rng.normal(size=shape).astype(np.float32)
    y = np.arange(n) % 2
    X[y == 1, 50:60] += 3.0
    return X, y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few epochs: only the rule and the paths matter here
        return est.fit(X, y)


def _same_fit(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def _reference_frames(x, k):
    """Frame ``j`` of a (T, F) series: steps ``j*k .. j*k+k-1``, past the end the last step."""
    T = x.shape[0]
    n = -(-T // k)
    return np.stack([np.concatenate([x[min(j * k + i, T - 1)] for i in range(k)])
                     for j in range(n)])


@pytest.mark.parametrize("T, k", [(12, 3), (13, 3), (14, 5), (5, 7)])
def test_framed_matches_the_definition(T, k):
    rng = np.random.default_rng(T)
    rect = rng.normal(size=(3, T, 2))
    ragged = [rng.normal(size=(L, 2)) for L in (T, T + 4, 1)]
    for X in (rect, ragged):
        data = check_sequences(X, tokens=False, dtype=np.float64)
        out = framed(data, k)
        for x, got, L in zip(X, out.seqs, out.lengths):
            want = _reference_frames(np.asarray(x), k)
            np.testing.assert_array_equal(got[:L], want)
            assert L == want.shape[0]
        if out.array is not None:
            np.testing.assert_array_equal(np.stack(out.seqs), out.array)
    assert framed(data, 1) is data


def _reference_difference(x):
    """``x`` (T, F) and beside it its first difference (0 at step 0), each column divided by its
    standard deviation over the steps (sqrt of the mean squared deviation), or 1 if that is 0."""
    x = np.asarray(x, np.float64)
    d = np.vstack([np.zeros((1, x.shape[1])), x[1:] - x[:-1]])
    sd = np.sqrt(((d - d.mean(axis=0)) ** 2).mean(axis=0))
    sd[sd == 0] = 1.0
    return np.hstack([x, d / sd])


def test_difference_matches_the_definition():
    rng = np.random.default_rng(1)
    rect = rng.normal(size=(3, 9, 2)).cumsum(axis=1)
    rect[1, :, 1] = 4.0  # a constant channel: its difference stays 0
    ragged = [rng.normal(size=(L, 2)) for L in (9, 4, 1)]
    for X in (rect, ragged):
        data = check_sequences(X, tokens=False, dtype=np.float64)
        out = with_difference(data)
        assert out.n_features == 4
        for x, got in zip(X, out.seqs):
            np.testing.assert_allclose(got, _reference_difference(x), rtol=1e-12, atol=1e-12)
        if out.array is not None:
            np.testing.assert_array_equal(np.stack(out.seqs), out.array)
        # a series gets the same values alone as among others
        alone = [with_difference(check_sequences([x], tokens=False, dtype=np.float64)).seqs[0]
                 for x in X]
        for a, b in zip(alone, out.seqs):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out.seqs[2], np.zeros((1, 4)) + [[ragged[2][0, 0],
                                                                     ragged[2][0, 1], 0, 0]])
    # frames come after the difference: frame j holds steps jk..jk+k-1, each with its difference
    framed_out = series_input(check_sequences(rect, tokens=False, dtype=np.float64), 3, True)
    np.testing.assert_allclose(framed_out.seqs[0], _reference_frames(
        _reference_difference(rect[0]), 3), rtol=1e-12, atol=1e-12)


def test_auto_rule_on_long_univariate_series():
    X, y = _series(T=210)
    clf = _fit(RNNClassifier(max_iter=2, random_state=0), X, y)
    assert clf.frame_size_ == round(210 / 50) == 4
    assert clf.difference_ is True
    assert clf.network_.n_features == 4 * 2  # frames of 4 steps of the series and its difference
    # window slicing: an epoch holds each series ceil(512 / 16) times
    copies = -(-CROPS_PER_EPOCH // len(X))
    assert clf.t_ == clf.n_iter_ * len(X) * copies


def _auto_epochs(monkeypatch, X, y, **kw):
    """The epochs ``max_iter="auto"`` gives a fit on ``(X, y)`` (the fit stops before them)."""
    seen = []

    def record(est, train, val, n_epochs, **rest):
        seen.append(n_epochs)
        return est

    monkeypatch.setattr(RNNClassifier, "_run_epochs", record)
    RNNClassifier(hidden_size=4, random_state=0, **kw).fit(X, y)
    return seen[0]


def test_auto_epochs_count_the_windows(monkeypatch):
    """``max_iter="auto"`` aims at about 3,000 optimisation steps (10 to 200 epochs). With
    window slicing an epoch holds every one of 16 series 32 times, 512 windows in batches of
    16: 32 batches, 94 epochs; read whole, 16 series in batches of 8 would get 200."""
    X, y = _series(n=16, T=210)
    assert _auto_epochs(monkeypatch, X, y) == -(-3000 // (512 // 16)) == 94
    assert _auto_epochs(monkeypatch, X, y, crop_fraction=1.0) == 200


@pytest.mark.parametrize("case", ["short", "multivariate", "tokens", "explicit"])
def test_auto_rule_leaves_other_data_alone(case):
    """Where the rule does not apply, ``"auto"`` fits bit for bit as frame_size=1 and
    crop_fraction=1 do."""
    kw = dict(hidden_size=6, max_iter=2, random_state=0)
    if case == "short":
        X, y = _series(T=199)
    elif case == "multivariate":
        X, y = _series(T=210, features=2)
    elif case == "tokens":
        rng = np.random.default_rng(0)
        X, y = rng.integers(1, 20, size=(16, 210)), np.arange(16) % 2
    else:
        X, y = _series(T=210)
    off_kw = dict(frame_size=1, crop_fraction=1.0, difference=False)
    if case == "explicit":  # a user's explicit choice wins over the rule
        auto = _fit(RNNClassifier(**off_kw, **kw), X, y)
    else:
        auto = _fit(RNNClassifier(**kw), X, y)
    off = _fit(RNNClassifier(**off_kw, **kw), X, y)
    assert auto.frame_size_ == 1 and auto.difference_ is False
    assert auto.t_ == auto.n_iter_ * len(X)  # no windows: each series once per epoch
    _same_fit(auto, off, X)


def test_partial_fit_reads_step_by_step():
    X, y = _series(T=210)
    clf = RNNClassifier(hidden_size=6, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X, y, classes=[0, 1])
    assert clf.frame_size_ == 1 and clf.difference_ is False
    assert clf.network_.n_features == 1


def test_windows_are_cut_from_the_series():
    """Every row of a training batch is a window of ``round(0.9 * T)`` consecutive standardised
    steps of the series it stands for, each with the series' difference beside it, read in
    frames."""
    X, y = _series(n=8, T=226)
    clf = _fit(RNNClassifier(hidden_size=4, max_iter=1, random_state=0), X, y)
    k = clf.frame_size_
    assert k == 5 and clf.difference_
    steps = (X.astype(np.float64) - clf.feature_mean_[0]) / clf.feature_scale_[0]
    steps = np.stack([_reference_difference(s[:, None].astype(np.float32))
                      for s in steps]).astype(np.float32)
    data = clf._validate_X(X, reset=False)
    clf.set_params(crop_fraction=AUTO_CROP_FRACTION)  # what "auto" is during such a fit
    task = _WindowTask(clf, (data, y, None), None)
    n_batches = task.start_epoch(np.random.RandomState(0))
    seen = np.zeros(len(X), int)
    crop = round(AUTO_CROP_FRACTION * (226 + 4))  # the framed series holds 230 steps
    for j in range(n_batches):
        batch = task.batch(j)
        for b, i in enumerate(task.items[task.batches[j]]):
            seen[i] += 1
            L = batch.lengths[b]
            assert L == -(-crop // k)
            window = batch.X[b, :L].reshape(-1, 2)[:crop]
            padded = np.concatenate([steps[i], np.repeat(steps[i, -1:], 4, axis=0)])
            starts = [s for s in range(len(padded) - crop + 1)
                      if np.allclose(padded[s:s + crop], window, rtol=1e-5, atol=1e-6)]
            assert starts, f"row {b} of batch {j} is no window of series {i}"
    assert (seen == -(-CROPS_PER_EPOCH // len(X))).all()


@pytest.fixture(scope="module")
def framed_model(tmp_path_factory):
    X, y = _series(n=16, T=253)
    clf = _fit(RNNClassifier(hidden_size=6, max_iter=2, random_state=0), X, y)
    assert clf.frame_size_ == 5
    path = tmp_path_factory.mktemp("long") / "model.frnn"
    clf.save(path)
    return clf, path, X


def test_every_path_predicts_as_predict(framed_model):
    clf, path, X = framed_model
    proba = clf.predict_proba(X)
    ragged = [x[:L] for x, L in zip(X, np.linspace(200, 253, len(X)).astype(int))]
    proba_ragged = clf.predict_proba(ragged)
    # one at a time: no batch of a longer series changes a shorter one's frames
    alone = np.vstack([clf.predict_proba([x]) for x in ragged])
    np.testing.assert_allclose(proba_ragged, alone, rtol=1e-5, atol=1e-6)
    for served in (fastrnn.load(path), fastrnn.load_predictor(path)):
        np.testing.assert_array_equal(served.predict_proba(X), proba)
        np.testing.assert_array_equal(served.predict(X), clf.predict(X))
        np.testing.assert_array_equal(served.predict_proba(ragged), proba_ragged)
    assert fastrnn.load(path).frame_size_ == 5 and fastrnn.load(path).difference_


@pytest.mark.skipif("cython" not in COMPILED_BACKENDS, reason="needs the Cython kernels")
def test_a_quantised_model_in_frames_serves_as_it_predicts(framed_model, tmp_path):
    _, path, X = framed_model
    clf = fastrnn.load(path).quantize("int8")
    proba = clf.predict_proba(X)
    clf.save(tmp_path / "int8.frnn")
    for served in (fastrnn.load(tmp_path / "int8.frnn"),
                   fastrnn.load_predictor(tmp_path / "int8.frnn")):
        np.testing.assert_array_equal(served.predict_proba(X), proba)


def test_the_onnx_graph_of_a_model_in_frames_predicts_as_predict(framed_model):
    """The default model of a long series (frames of 5 steps and the first difference) through
    ONNX Runtime, on ragged series whose lengths are and are not multiples of 5."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import fastrnn.onnx

    clf, _, X = framed_model
    ragged = [x[:L] for x, L in zip(X, np.linspace(200, 253, len(X)).astype(int))]
    L = np.array([len(x) for x in ragged])
    Xp = np.full((len(X), 253, 1), 1e3, np.float32)
    for b, x in enumerate(ragged):
        Xp[b, :len(x)] = x.reshape(len(x), -1)
    sess = ort.InferenceSession(fastrnn.onnx.export(clf).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    label, proba = sess.run(None, {"X": Xp, "lengths": L})
    np.testing.assert_allclose(proba, clf.predict_proba(ragged), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(label, clf.predict(ragged))


def test_streaming_refuses_frames_and_differences(framed_model):
    clf, _, X = framed_model
    uni = _fit(RNNClassifier(hidden_size=4, max_iter=1, bidirectional=False, random_state=0),
               X, np.arange(len(X)) % 2)
    assert uni.frame_size_ == 5
    with pytest.raises(ValueError, match="frame_size=1"):
        uni.init_state()
    # the difference alone, step by step
    diff = _fit(RNNClassifier(hidden_size=4, max_iter=1, bidirectional=False, frame_size=1,
                              random_state=0), X, np.arange(len(X)) % 2)
    assert diff.frame_size_ == 1 and diff.difference_
    with pytest.raises(ValueError, match="difference_=True.*difference=False"):
        diff.init_state()


def test_bad_settings_are_named():
    rng = np.random.default_rng(0)
    ids, y = rng.integers(1, 20, size=(8, 12)), np.arange(8) % 2
    with pytest.raises(ValueError, match="frame_size=2 .* token ids"):
        RNNClassifier(frame_size=2, max_iter=1).fit(ids, y)
    with pytest.raises(ValueError, match="crop_fraction=0.5 .* token ids"):
        RNNClassifier(crop_fraction=0.5, max_iter=1).fit(ids, y)
    with pytest.raises(ValueError, match="difference=True .* token ids"):
        RNNClassifier(difference=True, max_iter=1).fit(ids, y)
    X, y = _series(n=8, T=20)
    for bad in ({"frame_size": 0}, {"crop_fraction": 0.0}, {"crop_fraction": 1.5},
                {"difference": "yes"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RNNClassifier(max_iter=1, **bad).fit(X, y)


@pytest.mark.parametrize("name, value, message", [
    ("frame_size_", 2, "frame_size_ 2"),
    ("difference_", False, "difference_ False"),
    ("difference_", 1, "difference_ must be true or false"),
    ("difference_", None, "difference_ must be true or false"),
])
def test_saved_frames_are_checked(framed_model, tmp_path, name, value, message):
    """A file whose frame size or difference does not fit its network is refused when
    loaded; a file without ``difference_`` (written before it existed) reads the series alone."""
    import json
    import zipfile

    _, path, _ = framed_model

    def rewrite(change):
        bad = tmp_path / "bad.frnn"
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename.endswith("meta.json"):
                    meta = json.loads(data)
                    assert meta["fitted"]["frame_size_"] == 5
                    assert meta["fitted"]["difference_"] is True
                    change(meta["fitted"])
                    data = json.dumps(meta).encode()
                dst.writestr(item, data)
        return bad

    bad = rewrite(lambda fitted: fitted.__setitem__(name, value))
    for load in (fastrnn.load, fastrnn.load_predictor):
        with pytest.raises(fastrnn.ModelFileError, match=message):
            load(bad)
    # without the attribute the network's input size gives the file away too
    with pytest.raises(fastrnn.ModelFileError, match="difference_ False"):
        fastrnn.load(rewrite(lambda fitted: fitted.pop("difference_")))


class _StopAfter(Callback):
    """Stops a fit at the end of epoch ``k``."""

    def __init__(self, k):
        self.k = k

    def on_epoch_end(self, estimator, loop, logs):
        if loop.epoch >= self.k:
            loop.stop_training = True


def test_a_fit_on_windows_resumes_to_the_uninterrupted_model(tmp_path):
    X, y = _series(n=12, T=210)
    est = RNNClassifier(hidden_size=4, max_iter=3, random_state=0)
    full = _fit(clone(est), X, y)
    ckpt = tmp_path / "run.ckpt"
    _fit(clone(est).set_params(checkpoint_path=ckpt, callbacks=[_StopAfter(1)]), X, y)
    resumed = clone(est).set_params(checkpoint_path=ckpt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed.fit(X, y, resume=True)
    assert resumed.frame_size_ == full.frame_size_ == 4
    assert resumed.n_iter_ == full.n_iter_ == 3 and resumed.t_ == full.t_
    assert resumed.loss_curve_ == full.loss_curve_
    _same_fit(resumed, full, X)
