"""fastrnn.load_predictor: a saved estimator served without scikit-learn, giving the estimator's
results to the bit."""

import json
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import fastrnn
from conftest import COMPILED_BACKENDS
from fastrnn import RNNClassifier, RNNRegressor, RNNTagger


def _ragged(rng, n, features, lo=2, hi=9):
    return [rng.normal(size=(rng.randint(lo, hi), features)) for _ in range(n)]


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few epochs: only the saved weights matter here
        return est.fit(X, y)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One saved model of each kind the predictor serves, with an input to predict on."""
    folder = tmp_path_factory.mktemp("predictor")
    rng = np.random.RandomState(0)
    X = _ragged(rng, 24, 3)
    tokens = [rng.randint(0, 12, size=rng.randint(2, 7)) for _ in range(24)]
    models = {
        "binary": (RNNClassifier(hidden_size=5, max_iter=2, random_state=0),
                   X, np.array(["no", "yes"])[rng.randint(0, 2, 24)]),
        "multiclass": (RNNClassifier(hidden_size=5, max_iter=2, cell="gru", pooling="mean",
                                     dtype="float64", random_state=0),
                       X, rng.randint(0, 3, 24) * 10),
        "tokens": (RNNClassifier(hidden_size=4, embedding_dim=3, max_iter=2, random_state=0),
                   tokens, rng.randint(0, 2, 24)),
        "bag": (RNNClassifier(hidden_size=4, embedding_dim=3, max_iter=2, random_state=0,
                              bag_of_embeddings=True), tokens, rng.randint(0, 2, 24)),
        "regressor_1d": (RNNRegressor(hidden_size=5, max_iter=2, random_state=0),
                         X, rng.normal(size=24) * 5 + 3),
        "regressor_2d": (RNNRegressor(hidden_size=5, max_iter=2, cell="rnn", random_state=0),
                         X, rng.normal(size=(24, 2))),
        "tagger": (RNNTagger(hidden_size=5, max_iter=2, random_state=0),
                   X, [rng.randint(0, 3, len(x)) for x in X]),
    }
    out = {}
    for name, (est, Xf, y) in models.items():
        _fit(est, Xf, y)
        path = folder / f"{name}.fastrnn"
        est.save(path)
        out[name] = (path, Xf)
    return out


@pytest.mark.parametrize("name", ["binary", "multiclass", "tokens", "bag", "regressor_1d",
                                  "regressor_2d", "tagger"])
def test_predictor_gives_the_estimators_results_to_the_bit(saved, name):
    path, X = saved[name]
    est, pred = fastrnn.load(path), fastrnn.load_predictor(path)
    assert pred.estimator_class == type(est).__name__
    assert pred.n_features_in_ == est.n_features_in_
    methods = ["predict"]
    if hasattr(est, "classes_"):
        np.testing.assert_array_equal(pred.classes_, est.classes_)
        assert pred.classes_.dtype == est.classes_.dtype
        methods += ["predict_proba", "predict_log_proba", "decision_function"]
    for method in methods:
        want, got = getattr(est, method)(X), getattr(pred, method)(X)
        if isinstance(want, list):  # the tagger: one array per sequence
            assert len(got) == len(want)
            for w, g in zip(want, got):
                np.testing.assert_array_equal(g, w)
                assert g.dtype == w.dtype
        else:
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype and got.shape == want.shape


def test_predictor_refuses_bad_input_as_the_estimator_does(saved):
    path, X = saved["binary"]
    est, pred = fastrnn.load(path), fastrnn.load_predictor(path)
    bad = [x[:, :2] for x in X]
    with pytest.raises(ValueError) as want:
        est.predict(bad)
    with pytest.raises(ValueError) as got:
        pred.predict(bad)
    assert "2 features per step" in str(got.value) and "expecting 3" in str(got.value)
    assert str(got.value) == str(want.value)
    path, tokens = saved["tokens"]
    with pytest.raises(ValueError, match="token id 99, out of range"):
        fastrnn.load_predictor(path).predict([np.array([1, 99])])


def test_class_methods_of_a_regressor_predictor_say_what_to_use(saved):
    pred = fastrnn.load_predictor(saved["regressor_1d"][0])
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(AttributeError, match="RNNRegressor: use predict"):
            getattr(pred, method)(saved["regressor_1d"][1])
    assert "RNNRegressor" in repr(pred)


def test_load_predictor_refuses_a_language_model_and_a_damaged_file(tmp_path, saved):
    from fastrnn.estimators.language_model import RNNLanguageModel

    lm = RNNLanguageModel(hidden_size=4, embedding_dim=3, bptt=4, batch_size=2, max_iter=1,
                          random_state=0, backend="numpy")
    lm.fit(["the cat sat", "a dog ran"])
    lm.save(tmp_path / "lm.fastrnn")
    with pytest.raises(fastrnn.ModelFileError,
                       match=r"lm\.fastrnn.*RNNLanguageModel.*fastrnn\.load"):
        fastrnn.load_predictor(tmp_path / "lm.fastrnn")
    (tmp_path / "junk.fastrnn").write_bytes(saved["binary"][0].read_bytes()[:200])
    with pytest.raises(fastrnn.ModelFileError, match=r"junk\.fastrnn"):
        fastrnn.load_predictor(tmp_path / "junk.fastrnn")


def test_load_predictor_refuses_a_file_from_a_newer_fastrnn(tmp_path, saved):
    with zipfile.ZipFile(saved["binary"][0]) as z:
        members = {name: z.read(name) for name in z.namelist()}
    meta = json.loads(members.pop("meta.json"))
    meta["estimator_format_version"] = 99
    with zipfile.ZipFile(tmp_path / "new.fastrnn", "w") as z:
        z.writestr("meta.json", json.dumps(meta))
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(fastrnn.ModelFileError, match=r"new\.fastrnn.*version 99"):
        fastrnn.load_predictor(tmp_path / "new.fastrnn")


def _run(code, *args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


SERVE = """
import sys
import numpy as np
import fastrnn
model = fastrnn.load_predictor(sys.argv[1])
model.predict(np.load(sys.argv[2]))
print(*(m in sys.modules for m in ("sklearn", "numba", "scipy.linalg")))
"""


def test_serving_a_model_imports_neither_scikit_learn_nor_numba(saved, tmp_path):
    path, X = saved["binary"]
    np.save(tmp_path / "x.npy", X[0][None])
    sklearn, numba, linalg = (v == "True" for v in _run(SERVE, path, tmp_path / "x.npy"))
    assert not sklearn
    # with the Cython kernels built, a one-sequence prediction runs on them: no Numba, and
    # SciPy's BLAS table is loaded without the rest of scipy.linalg
    assert numba is ("cython" not in COMPILED_BACKENDS)
    if "cython" in COMPILED_BACKENDS:
        assert not linalg


@pytest.mark.skipif("cython" not in COMPILED_BACKENDS, reason="needs the Cython kernels")
def test_scipy_linalg_imported_after_serving_is_whole(saved, tmp_path):
    """The BLAS table loaded on its own becomes scipy.linalg's attribute when the package is
    imported later, and scikit-learn and training work in the same process."""
    path, X = saved["binary"]
    code = """
import sys
import numpy as np
import fastrnn
model = fastrnn.load_predictor(sys.argv[1])
X = [np.asarray(x) for x in np.load(sys.argv[2], allow_pickle=False)]
before = model.predict(X)
import scipy.linalg
print(scipy.linalg.cython_blas is sys.modules["scipy.linalg.cython_blas"])
print(np.allclose(scipy.linalg.solve(np.eye(2) * 2, np.ones(2)), 0.5))
est = fastrnn.load(sys.argv[1])
print(np.array_equal(est.predict(X), before))
est.set_params(max_iter=1, backend="cython").fit(X, before)
print(est.n_iter_ == 1)
"""
    X3 = np.stack([x[:2] for x in X])
    np.save(tmp_path / "x3.npy", X3)
    assert _run(code, path, tmp_path / "x3.npy") == ["True"] * 4


@pytest.mark.skipif("cython" not in COMPILED_BACKENDS, reason="needs the Cython kernels")
def test_auto_runs_on_the_cython_kernels_where_numba_is_not_installed(monkeypatch):
    from fastrnn import _backend
    from fastrnn.nn import LSTM

    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    layer = LSTM(3, 4, random_state=0)
    X = np.random.RandomState(0).normal(size=(5, 6, 3)).astype(np.float32)
    layer.forward(X)
    assert layer.last_backend_ == _backend.DEFAULT == "numba"
    monkeypatch.setitem(_backend._installed, "numba", False)
    assert _backend.resolve_name("auto") == "cython"
    layer.forward(X)
    assert layer.last_backend_ == "cython"
    assert _backend.resolve_name("numba") == "numba"  # a backend asked for by name stays
