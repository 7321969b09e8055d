"""``benchmarks/defaults_study.py``: its baselines checked against independent computations, its
options, and a smoke run on real data (one series set, one text set; marked ``slow``, as every
test that reads a real data set) whose JSON must have the
expected structure and sane baseline scores. Nothing here asserts a timing."""

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import fastrnn.text as fastrnn_text

from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "defaults_study.py"


study = load_script(SCRIPT, "fastrnn_defaults_study")


# ------------------------------------------------------------------ Kneser-Ney
# (the model is fastrnn.text.KneserNeyModel, checked in tests/test_lm_ngram.py)
def test_lm_baseline_scores_the_test_text_with_the_library_model():
    train = ["the cat sat on the mat.", "a cat and a hat"] * 5
    test = ["the cat sat.", "a zebra"]
    res = study.lm_baselines(train, test, order=3)["kneser_ney"]
    vocab = fastrnn_text.Vocabulary.build([list(d) for d in train])
    enc = lambda docs: [vocab.encode(list(d), add_bos=True, add_eos=True) for d in docs]  # noqa
    kn = fastrnn_text.KneserNeyModel(3).fit(enc(train), len(vocab))
    assert res["score"] == -np.mean(np.log2(kn.token_proba(enc(test))))
    assert res["order"] == 3 and len(res["discounts"]) == 3


# ------------------------------------------------------------------ the other baselines
def test_most_frequent_tag():
    train = [[("the", "DT"), ("run", "NN")], [("run", "VB"), ("run", "VB"), ("fast", "RB")],
             [("the", "DT"), ("dog", "NN"), ("dog", "NN")]]
    test = [[("the", "DT"), ("run", "VB"), ("cat", "NN"), ("fast", "JJ")]]
    acc, unseen = study.most_frequent_tag(train, test)
    # the -> DT (hit), run -> VB (hit), cat unseen -> the commonest tag overall NN (hit),
    # fast -> RB (miss)
    assert acc == pytest.approx(3 / 4)
    assert unseen == pytest.approx(1 / 4)


def test_window_features_cover_five_words_and_the_sentence_edges():
    words = ["The", "U.S.", "co-op", "sold", "42"]
    first = study.window_features(words, 0)
    assert {"-2:w=<s>", "-1:w=<s>", "0:w=the", "0:cap", "1:w=u.s.", "1:caps", "2:w=co-op",
            "2:hyphen"} <= set(first)
    assert {"0:p1=t", "0:p3=the", "0:s2=he", "2:s3=-op", "2:p2=co"} <= set(first)
    assert "0:caps" not in first and "1:hyphen" not in first
    last = study.window_features(words, 4)
    assert {"0:w=42", "0:digit", "1:w=</s>", "2:w=</s>", "-2:w=co-op"} <= set(last)
    assert "0:cap" not in last and "1:p1=<" not in last  # nothing but the word past the end
    # bias, 5 x (word, 3 prefixes, 3 suffixes), shapes: cap; cap, caps; hyphen; digit
    assert len(study.window_features(words, 2)) == 1 + 5 * 7 + 5


def test_resample_and_summary_features():
    x = np.column_stack([np.linspace(0, 6, 7), np.arange(7.0) ** 2])
    r = study.resample(x, 13)
    assert r.shape == (13, 2)
    np.testing.assert_allclose(r[[0, -1]], x[[0, -1]])
    np.testing.assert_allclose(r[:, 0], np.linspace(0, 6, 13))  # a straight line stays one
    np.testing.assert_allclose(r[::2], x)  # the old points are among the new ones
    f = study.summary_features([x])[0]
    expected = [x[:, c] for c in range(2)]
    for k, stat in enumerate((np.mean, np.std, lambda v: v[0], lambda v: v[-1], np.min, np.max)):
        np.testing.assert_allclose(f[2 * k:2 * k + 2], [stat(v) for v in expected])


def test_one_nn_on_ragged_series_resamples_and_matches_a_direct_computation():
    rng = np.random.RandomState(0)
    X_tr = [rng.randn(rng.randint(5, 12), 3) for _ in range(20)]
    y_tr = np.array(["a", "b"] * 10)
    X_te = [rng.randn(rng.randint(5, 12), 3) for _ in range(15)]
    y_te = np.array(["a", "b", "b"] * 5)
    out = study.series_baselines(X_tr, y_tr, X_te, y_te)
    L = max(len(x) for x in X_tr)
    A = np.array([study.resample(x, L).ravel() for x in X_tr])
    B = np.array([study.resample(x, L).ravel() for x in X_te])
    nearest = ((B[:, None, :] - A[None, :, :]) ** 2).sum(-1).argmin(1)
    assert out["1nn_euclidean"]["score"] == pytest.approx(np.mean(y_tr[nearest] == y_te))
    assert "resampled" in out["1nn_euclidean"]["how"]


# ------------------------------------------------------------------ estimators and options
def test_default_estimators_are_the_plain_defaults():
    from fastrnn import RNNClassifier, RNNLanguageModel, RNNTagger
    from fastrnn.text import SequenceVectorizer

    assert study.default_estimator("series", 3).get_params() == \
        RNNClassifier(random_state=3).get_params()
    text = study.default_estimator("text", 4)
    assert text[0].get_params() == SequenceVectorizer().get_params()
    assert text[-1].get_params() == RNNClassifier(random_state=4).get_params()
    tag = study.default_estimator("tagging", 5)
    assert tag[-1].get_params() == RNNTagger(random_state=5).get_params()
    vocab_tag = study.default_estimator("tagging", 5, tagger_input="vocabulary")
    assert vocab_tag.tagger.get_params() == RNNTagger(random_state=5).get_params()
    lm = study.default_estimator("lm", 6, time_budget=30.0)
    assert lm.get_params() == RNNLanguageModel(random_state=6, time_budget=30.0).get_params()


def test_tagging_vectorizer_keeps_one_id_per_token():
    from fastrnn.text import SequenceVectorizer

    sentences = [[("Don't", "VB"), ("U.S.", "NNP"), ("co-op", "NN"), ("!", ".")],
                 [("e-mail", "NN"), ("$", "$"), ("3.5", "CD")]]
    X, y = study.tagging_inputs(sentences, "vectorizer")
    ids = study.default_estimator("tagging", 0)[0].fit_transform(X)
    assert [len(i) for i in ids] == [len(t) for t in y] == [4, 3]
    assert isinstance(SequenceVectorizer(analyzer=str.split).fit(X), SequenceVectorizer)
    words, _ = study.tagging_inputs(sentences, "vocabulary")
    assert words[0] == ["Don't", "U.S.", "co-op", "!"]


def test_apply_params_reaches_the_vectorizer_and_the_estimator():
    est = study.apply_params(study.default_estimator("text", 0),
                             {"vectorizer__analyzer": "word", "embedding_dim": 32})
    assert est[0].analyzer == "word" and est[-1].embedding_dim == 32
    with pytest.raises(ValueError, match="needs a pipeline"):
        study.apply_params(study.default_estimator("series", 0), {"vectorizer__analyzer": "word"})


def test_search_grid_starts_at_the_defaults():
    from fastrnn import RNNClassifier, RNNLanguageModel, RNNTagger
    from fastrnn.text import SequenceVectorizer

    defaults = {"series": RNNClassifier(), "text": RNNClassifier(), "tagging": RNNTagger(),
                "lm": RNNLanguageModel()}
    for kind, space in study.SEARCH_SPACES.items():
        first = study._grid(space)[0]
        assert len(study._grid(space)) == math.prod(len(v) for v in space.values())
        for key, value in first.items():
            if key == "vectorizer__analyzer":
                assert value == SequenceVectorizer().get_params()["analyzer"]
            else:
                assert defaults[kind].get_params()[key] == value, (kind, key)


def test_sets_and_options():
    assert study.parse_sets(["series"]) == list(study.SERIES_SETS)
    assert study.parse_sets(["Movie-Reviews", "gunpoint,oanc_800"]) == [
        "gunpoint", "movie_reviews", "oanc_800"]
    assert study.parse_sets(["all"]) == list(study.ALL_SETS)
    with pytest.raises(ValueError, match="unknown set 'imdb'"):
        study.parse_sets(["imdb"])
    args = study.parse_args(["--sets", "text", "lm", "--seeds", "1", "2", "--time-budget", "30"])
    assert args.sets == ["uncertainty", "movie_reviews", "shakespeare"]
    assert args.seeds == [1, 2] and args.time_budget == 30.0 and not args.search
    for bad in (["--smoke", "--update-doc"], ["--sets", "imdb"], ["--time-budget", "0"],
                ["--search", "--baselines-only"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            study.parse_args(bad)


def test_apply_threads_order_of_precedence(monkeypatch):
    for var in study.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    got = study.apply_threads()
    assert got["MKL_NUM_THREADS"] == ("3", "environment")
    assert got["OMP_NUM_THREADS"] == (str(study.DEFAULT_THREADS), "study default")
    got = study.apply_threads(1)
    assert all(v == ("1", "--threads") for v in got.values())
    import os
    assert all(os.environ[v] == "1" for v in study.THREAD_VARS)


def test_merge_keeps_the_later_run_of_a_set():
    a = {"meta": {"date": "a"}, "sets": {"trace": {"x": 1}, "gunpoint": {"x": 1}}}
    b = {"meta": {"date": "b"}, "sets": {"trace": {"x": 2}}}
    m = study.merge([a, b])
    assert [x["date"] for x in m["meta"]] == ["a", "b"]
    assert list(m["sets"]) == ["gunpoint", "trace"]  # the study's order
    assert m["sets"]["trace"] == {"x": 2}


# ------------------------------------------------------------------ a smoke run on real data
@pytest.mark.slow
def test_smoke_run_on_a_series_set_and_a_text_set(tmp_path):
    from fastrnn.datasets import DatasetUnavailableError, load_gunpoint

    out = tmp_path / "study.json"
    try:
        study.main(["--sets", "gunpoint", "uncertainty", "--smoke", "--json", str(out)])
    except DatasetUnavailableError as exc:
        pytest.skip(f"data set unavailable (package registry unreachable): {exc}")
    res = json.loads(out.read_text())
    meta = res["meta"]
    assert meta["smoke"] is True and meta["seeds"] == [0]
    assert set(meta["threads"]["variables"]) == set(study.THREAD_VARS)
    assert meta["machine"]["cores"] >= 1 and "git" in meta
    assert list(res["sets"]) == ["gunpoint", "uncertainty"]

    for name, kind, baselines in (("gunpoint", "series", {"1nn_euclidean", "summary_lr"}),
                                  ("uncertainty", "text", {"tfidf_lr", "counts_mnb"})):
        r = res["sets"][name]
        assert r["kind"] == kind and r["metric"] == "accuracy"
        assert set(r["baselines"]) == baselines
        d = r["default"]
        assert "error" not in d, d
        assert d["code"] == study.DEFAULT_CODE[kind]
        assert [s["seed"] for s in d["seeds"]] == [0]
        for s in d["seeds"]:
            assert 0.0 <= s["score"] <= 1.0 and s["fit_seconds"] > 0
            assert all(f["n_iter"] == study.SMOKE["max_iter"] for f in s["fits"])
        assert d["score"]["min"] <= d["score"]["mean"] <= d["score"]["max"]
        assert "search" not in r

    # 1-NN on the GunPoint subset: recomputed here from the loader, and better than chance
    g = res["sets"]["gunpoint"]
    X_tr, y_tr = load_gunpoint("train")
    X_te, y_te = load_gunpoint("test")
    i = study._first_per_class(y_tr, study.SMOKE["series_train"])
    j = study._first_per_class(y_te, study.SMOKE["series_test"])
    assert g["info"]["n_train"] == len(i) and g["info"]["n_test"] == len(j)
    A = np.array([X_tr[k].ravel() for k in i])
    B = np.array([X_te[k].ravel() for k in j])
    nearest = ((B[:, None, :] - A[None, :, :]) ** 2).sum(-1).argmin(1)
    direct = np.mean(y_tr[i][nearest] == y_te[j])
    assert g["baselines"]["1nn_euclidean"]["score"] == pytest.approx(direct)
    assert direct > 0.6  # two classes

    u = res["sets"]["uncertainty"]
    assert u["info"]["text_eval"] == "holdout" and u["info"]["n_splits"] == 1
    assert u["info"]["n_train"] + u["info"]["n_test"] == u["info"]["n_docs"]
    for key in ("tfidf_lr", "counts_mnb"):  # hedge cues are words: far better than chance
        assert u["baselines"][key]["score"] > 0.6, (key, u["baselines"][key])

    # the page's results rewritten from this run (in a copy) stay valid reStructuredText
    docutils = pytest.importorskip("docutils.core")
    page = tmp_path / "defaults_study.rst"
    shutil.copy(study.DOC, page)
    study.update_doc(page, study.render(res, rst=True))
    text = page.read_text()
    assert "SMOKE RUN" in text and "GunPoint" in text and "CoNLL-2010 uncertainty" in text
    docutils.publish_doctree(text.split(".. results-start")[1].split(".. results-end")[0],
                             settings_overrides={"halt_level": 2, "report_level": 2})


def _fake_results():
    meta = dict(date="2026-01-01T00:00:00+00:00", git="abc1234", fastrnn="0.1.0",
                machine=dict(cores=2, cpu="Test CPU"), seeds=[0, 1], smoke=False, search=True,
                baselines_only=False, time_budget=60.0, sets=["gunpoint", "shakespeare"],
                threads=dict(variables={v: "2" for v in study.THREAD_VARS}, numba_threads=2))
    spread = dict(mean=0.9, std=0.05, min=0.85, max=0.95)
    return dict(meta=meta, sets=dict(
        gunpoint=dict(kind="series", title="GunPoint", info={}, decides_defaults=True,
                      baselines=dict(summary_lr=dict(score=0.64), **{"1nn_euclidean": dict(
                          score=0.913)}),
                      default=dict(score=spread, fit_seconds=dict(mean=12.0)),
                      search=dict(best_params={"hidden_size": 128}, score=0.97)),
        shakespeare=dict(kind="lm", title="Shakespeare", info={}, decides_defaults=True,
                         baselines=dict(kneser_ney=dict(score=2.2376)),
                         default={"error": "ValueError: broken"}, search={"error": "x"})))


def test_render_shows_scores_spread_settings_and_errors(tmp_path, capsys):
    text = study.render(_fake_results())
    assert "Test CPU, 2 cores" in text and "abc1234" in text
    assert "seeds [0, 1]" in text and "time budget 60 s" in text
    row = next(line for line in text.splitlines() if line.startswith("GunPoint"))
    assert "90.0 ± 5.0 (85.0-95.0)" in row and "12.0" in row and "91.3" in row
    assert "64.0" in row and "97.0 [hidden_size=128]" in row
    lm = next(line for line in text.splitlines() if line.startswith("Shakespeare"))
    assert lm.split()[1] == "error" and "2.238" in lm and lm.rstrip().endswith("error")
    # --from-json renders a saved run without running anything
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_fake_results()))
    study.main(["--from-json", str(path)])
    assert "97.0 [hidden_size=128]" in capsys.readouterr().out


def test_grid_product_is_complete():
    space = {"a": [1, 2], "b": [3, 4, 5]}
    assert study._grid(space) == [dict(a=a, b=b) for a, b in itertools.product([1, 2], [3, 4, 5])]
    assert study._grid(space, 2) == [dict(a=1, b=3), dict(a=1, b=4)]
