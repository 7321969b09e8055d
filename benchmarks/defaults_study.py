#!/usr/bin/env python
"""The study behind fastrnn's estimator defaults: every default estimator, typed as a new user
would type it, against classical baselines and a small search, on the real data sets of
:mod:`fastrnn.datasets`.

Sets (``--sets``, default all; the group names ``series``, ``text``, ``tagging`` and ``lm`` select
a whole kind):

``japanese_vowels``, ``gunpoint``, ``arrowhead``, ``trace``, ``osuleaf``
    series classification on the archives' own train / test splits (OSULeaf is reported, not
    used to choose defaults: 427-step outlines that no small recurrent model handles well);
``uncertainty``, ``movie_reviews``
    text classification on raw strings; no fixed split exists, so the evaluation is stratified
    5-fold cross-validation (``StratifiedKFold(5, shuffle=True, random_state=0)``) or its first
    fold alone, a stratified 80/20 split (``--text-eval``; ``auto``: 5 folds for the short
    sentences, the single split for the 1,500 long reviews, whose character sequences make a
    recurrent fit slow);
``oanc``, ``oanc_800``
    part-of-speech tagging: the first 16,000 (or 800) sentences for training, the last 2,000 for
    the test, the 2,000 in between for the search's validation;
``shakespeare``
    character language model: 39 texts for training, Hamlet for validation, Macbeth and The
    Tempest for the test, bits per character.

For every set, in the same run:

1. the default estimator exactly as typed by a new user (``RNNClassifier(random_state=seed)``,
   ``make_pipeline(SequenceVectorizer(), RNNClassifier(random_state=seed))``, the tagger behind
   a vectorizer that keeps the given tokens, ``RNNLanguageModel(random_state=seed)``, with a
   time budget only if ``--time-budget`` gives one), over ``--seeds`` seeds: test score, mean, standard deviation, min and max, and the
   wall time of each fit;
2. classical baselines (scikit-learn): 1-NN Euclidean and summary features with logistic
   regression for series; TF-IDF with logistic regression and word counts with multinomial naive
   Bayes for text; the most frequent tag per word and a linear SVM on window features for
   tagging; a 7-gram modified Kneser-Ney model for the language model (the model's own n-gram
   part, :class:`fastrnn.text.KneserNeyModel`, fitted alone);
3. with ``--search``, a small grid (:data:`SEARCH_SPACES`) on the first seed, chosen on validation
   data, never on the test.

Fits run one after the other, never two at once. The thread counts are set before numpy is
imported: ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and
``NUMBA_NUM_THREADS`` get ``--threads`` if given, else keep a value already in the environment,
else 2; the run prints and records what is in force.

Output: a printed table, a JSON file with every number (``--json``, default
``benchmarks/.asv/defaults_study.json``, which git ignores) and, with ``--update-doc``, the
results of ``docs/defaults_study.rst`` (between ``.. results-start`` and ``.. results-end``)
rewritten with the date, the commit and the machine. ``--from-json A.json B.json`` renders (and
with ``--update-doc`` writes) earlier runs, merged set by set, without running anything.
``--smoke`` runs tiny subsets, one seed and two epochs: a few seconds a set, for tests.

    python benchmarks/defaults_study.py --sets gunpoint uncertainty --smoke
    python benchmarks/defaults_study.py --baselines-only
    python benchmarks/defaults_study.py --search --update-doc
"""

import argparse
import os
import sys

#: the thread-count variables set before numpy is imported
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
DEFAULT_THREADS = 2


def apply_threads(threads=None):
    """Set every variable of :data:`THREAD_VARS`: to ``threads`` if given, else keep a value
    already in the environment, else :data:`DEFAULT_THREADS`. Return ``{variable: (value,
    where it came from)}``. It only works when called before numpy and numba are imported."""
    out = {}
    for var in THREAD_VARS:
        if threads is not None:
            os.environ[var] = str(threads)
            out[var] = (str(threads), "--threads")
        elif os.environ.get(var):
            out[var] = (os.environ[var], "environment")
        else:
            os.environ[var] = str(DEFAULT_THREADS)
            out[var] = (str(DEFAULT_THREADS), "study default")
    return out


def _threads_from_argv(argv):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", type=int)
    return pre.parse_known_args(argv)[0].threads


if __name__ == "__main__":  # before numpy, scipy, numba or scikit-learn are imported
    THREADS_SET = apply_threads(_threads_from_argv(sys.argv[1:]))
else:
    THREADS_SET = None

import datetime  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the package _compare next to this script

# importing _compare puts this checkout first on the path
from _compare.harness import cpu_model, json_default  # noqa: E402
from _compare.report import table, update_doc  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.feature_extraction import FeatureHasher  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit  # noqa: E402
from sklearn.naive_bayes import MultinomialNB  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn import RNNClassifier, RNNLanguageModel, RNNTagger  # noqa: E402
from fastrnn import datasets as fds  # noqa: E402
from fastrnn.text import KneserNeyModel, SequenceVectorizer, Vocabulary  # noqa: E402

ROOT = HERE.parent
DEFAULT_JSON = HERE / ".asv" / "defaults_study.json"
DOC = ROOT / "docs" / "defaults_study.rst"

SERIES_SETS = ("japanese_vowels", "gunpoint", "arrowhead", "trace", "osuleaf")
TEXT_SETS = ("uncertainty", "movie_reviews")
TAGGING_SETS = ("oanc", "oanc_800")
LM_SETS = ("shakespeare",)
ALL_SETS = SERIES_SETS + TEXT_SETS + TAGGING_SETS + LM_SETS
GROUPS = {"series": SERIES_SETS, "text": TEXT_SETS, "tagging": TAGGING_SETS, "lm": LM_SETS,
          "all": ALL_SETS}
#: sets whose results are reported but do not decide a default
REPORT_ONLY = ("osuleaf",)
KIND = {**{s: "series" for s in SERIES_SETS}, **{s: "text" for s in TEXT_SETS},
        **{s: "tagging" for s in TAGGING_SETS}, **{s: "lm" for s in LM_SETS}}
SERIES_LOADERS = {"japanese_vowels": "load_japanese_vowels", "gunpoint": "load_gunpoint",
                  "arrowhead": "load_arrowhead", "trace": "load_trace", "osuleaf": "load_osuleaf"}
TITLES = {"japanese_vowels": "JapaneseVowels", "gunpoint": "GunPoint", "arrowhead": "ArrowHead",
          "trace": "Trace", "osuleaf": "OSULeaf", "uncertainty": "CoNLL-2010 uncertainty",
          "movie_reviews": "Movie reviews", "oanc": "OANC POS (16,000)",
          "oanc_800": "OANC POS (800)", "shakespeare": "Shakespeare"}

#: the default estimators, as written in the results
DEFAULT_CODE = {
    "series": "RNNClassifier(random_state=seed)",
    "text": "make_pipeline(SequenceVectorizer(), RNNClassifier(random_state=seed))",
    "tagging": {
        "vectorizer": "make_pipeline(SequenceVectorizer(analyzer=str.split), "
                      "RNNTagger(random_state=seed)) on the tokens joined by spaces",
        "vocabulary": "RNNTagger(random_state=seed) on ids of Vocabulary.build(train_tokens)",
    },
    "lm": "RNNLanguageModel(random_state=seed).fit(train, validation_texts=[hamlet])",
}

#: the grids of ``--search``: a ``vectorizer__`` key sets the SequenceVectorizer of a pipeline,
#: any other key the estimator. The first setting of each list is the estimator's default, so a
#: tie goes to the default.
SEARCH_SPACES = {
    "series": {"bidirectional": [True, False], "learning_rate": ["auto", 5e-3],
               "dropout": [0.2, 0.0]},
    "text": {"bidirectional": [True, False], "learning_rate": ["auto", 5e-3]},
    "tagging": {"hidden_size": [64, 128], "learning_rate": [3e-3, 1e-3], "dropout": [0.3, 0.0]},
    "lm": {"hidden_size": [256, 512], "dropout": [0.2, 0.0]},
}
SEARCH_SELECTION = {
    "series": "stratified 25 % of the training series held out; the setting with the best "
              "validation accuracy is refitted on all of them",
    "text": "stratified 20 % of the first split's training part held out; the setting with the "
            "best validation accuracy is refitted and scored on every evaluation split",
    "tagging": "validation accuracy on sentences 16,001-18,000 (between the training part and "
               "the test set)",
    "lm": "the model's bits per character on Hamlet (the validation text) after the fit; each "
          "setting fitted under the default's mean fit time of the same run (or --time-budget)",
}

#: published reference figures (proportions, or bits per character for the language model)
REFERENCES = {
    "japanese_vowels": {"1-NN DTW": 0.949, "FCN": 0.993},
    "gunpoint": {"1-NN Euclidean": 0.913, "FCN": 1.0},
    "arrowhead": {"1-NN Euclidean": 0.800, "FCN": 0.843},
    "trace": {"1-NN Euclidean": 0.760, "FCN": 1.0},
    "osuleaf": {"1-NN Euclidean": 0.521, "FCN": 0.977},
    "uncertainty": {"TF-IDF + LR (10-fold)": 0.757},
    "movie_reviews": {"TF-IDF + LR (10-fold)": 0.859, "MNB (10-fold)": 0.853},
    "oanc": {"most frequent tag": 0.895, "window SVM": 0.965},
    "shakespeare": {"7-gram Kneser-Ney": 2.28},
}

SMOKE = dict(series_train=24, series_test=48, text_docs=200, text_chars=2000, tag_train=200,
             tag_eval=100, lm_docs=3, lm_chars=20000, lm_eval_chars=5000, lm_budget=3.0, max_iter=2,
             search_settings=2)


# ================================================================================ small helpers
def _spread(values):
    v = np.asarray(values, dtype=float)
    return dict(mean=float(v.mean()), std=float(v.std()), min=float(v.min()), max=float(v.max()))


def _first_per_class(y, n):
    """Indices of the first ``ceil(n / n_classes)`` items of every class, in order."""
    y = np.asarray(y)
    classes = np.unique(y)
    k = max(1, math.ceil(n / len(classes)))
    keep = np.concatenate([np.flatnonzero(y == c)[:k] for c in classes])
    return np.sort(keep)


def _take(items, idx):
    return [items[i] for i in idx]


def _grid(space, limit=None):
    keys = list(space)
    settings = [dict(zip(keys, vals)) for vals in itertools.product(*(space[k] for k in keys))]
    return settings[:limit] if limit else settings


def apply_params(est, params):
    """Set ``params`` on ``est``: keys starting with ``vectorizer__`` on the first step of a
    pipeline, the others on its last step (or on ``est`` itself)."""
    final = est.steps[-1][1] if isinstance(est, Pipeline) else est
    for key, value in params.items():
        if key.startswith("vectorizer__"):
            if not isinstance(est, Pipeline):
                raise ValueError(f"the setting {key}={value!r} needs a pipeline with a "
                                 f"vectorizer, got {type(est).__name__}")
            est.steps[0][1].set_params(**{key[len("vectorizer__"):]: value})
        else:
            final.set_params(**{key: value})
    return est


def _final(est):
    return est.steps[-1][1] if isinstance(est, Pipeline) else est


def _timed_fit(est, X, y=None, **fit_kw):
    """Fit, and return ``(seconds, warnings)``: the wall time of the fit alone and the distinct
    warning messages it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        if y is None:
            est.fit(X, **fit_kw)
        else:
            est.fit(X, y, **fit_kw)
        seconds = time.perf_counter() - t0
    msgs = list(dict.fromkeys(f"{w.category.__name__}: {' '.join(str(w.message).split())[:200]}"
                              for w in caught))
    return seconds, msgs


# ===================================================================================== the data
def load_set(name, smoke=False, text_eval="auto"):
    """The data of one set, ready for the runners.

    Returns a dict with ``kind`` and, for the classifiers (series and text), ``splits``: a list of
    ``(X_train, y_train, X_test, y_test)``, one per evaluation split; for tagging, ``train``,
    ``validation`` and ``test`` (lists of sentences, each a list of ``(word, tag)``); for the
    language model, ``train``, ``validation`` and ``test`` (lists of texts). ``info`` describes
    the evaluation.
    """
    kind = KIND[name]
    if kind == "series":
        loader = getattr(fds, SERIES_LOADERS[name])
        X_tr, y_tr = loader("train")
        X_te, y_te = loader("test")
        if smoke:
            i, j = _first_per_class(y_tr, SMOKE["series_train"]), _first_per_class(
                y_te, SMOKE["series_test"])
            X_tr, y_tr, X_te, y_te = _take(X_tr, i), y_tr[i], _take(X_te, j), y_te[j]
        lengths = sorted({len(x) for x in X_tr + X_te})
        info = dict(evaluation="the archive's train / test split", n_train=len(X_tr),
                    n_test=len(X_te), n_classes=int(len(np.unique(y_tr))),
                    n_channels=int(X_tr[0].shape[1]), length=[lengths[0], lengths[-1]])
        return dict(kind=kind, splits=[(X_tr, y_tr, X_te, y_te)], info=info)
    if kind == "text":
        loader = fds.load_uncertainty_sentences if name == "uncertainty" else fds.load_movie_reviews
        docs, y = loader()
        if smoke:
            keep = _first_per_class(y, SMOKE["text_docs"])
            docs, y = [docs[i][:SMOKE["text_chars"]] for i in keep], y[keep]
        mode = text_eval
        if mode == "auto":
            mode = "cv" if name == "uncertainty" else "holdout"
        if smoke:
            mode = "holdout"
        folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
        if mode == "holdout":
            folds = folds[:1]
        splits = [(_take(docs, a), y[a], _take(docs, b), y[b]) for a, b in folds]
        what = ("stratified 5-fold cross-validation" if mode == "cv" else
                "stratified 80/20 split (the first fold of the 5-fold cross-validation)")
        words = [len(d.split()) for d in docs]
        info = dict(evaluation=what, text_eval=mode, n_docs=len(docs), n_splits=len(splits),
                    n_train=len(splits[0][0]), n_test=len(splits[0][2]),
                    median_words=float(np.median(words)))
        return dict(kind=kind, splits=splits, info=info)
    if kind == "tagging":
        sentences = fds.load_oanc_pos()
        n_train = 800 if name == "oanc_800" else 16000
        train, test = fds.oanc_pos_splits(n_train=n_train)
        validation = sentences[16000:18000]
        if smoke:
            train = train[:SMOKE["tag_train"]]
            validation = validation[:SMOKE["tag_eval"]]
            test = test[:SMOKE["tag_eval"]]
        info = dict(evaluation="first sentences for training, the last 2,000 for the test",
                    n_train=len(train), n_validation=len(validation), n_test=len(test),
                    train_tokens=sum(map(len, train)), test_tokens=sum(map(len, test)))
        return dict(kind=kind, train=train, validation=validation, test=test, info=info)
    splits = fds.shakespeare_splits()
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    if smoke:
        train = [t[:SMOKE["lm_chars"]] for t in train[:SMOKE["lm_docs"]]]
        validation = [t[:SMOKE["lm_eval_chars"]] for t in validation]
        test = [t[:SMOKE["lm_eval_chars"]] for t in test]
    info = dict(evaluation="39 texts for training, hamlet for validation, macbeth + tempest for "
                           "the test", train_chars=sum(map(len, train)),
                test_chars=sum(map(len, test)))
    return dict(kind="lm", train=train, validation=validation, test=test, info=info)


def tagging_inputs(sentences, how):
    """Words and tags of tagged sentences; ``how="vectorizer"`` gives each sentence as one string
    of its tokens joined by spaces (for a SequenceVectorizer that splits on spaces),
    ``"vocabulary"`` as a list of tokens."""
    words = [[w for w, _ in s] for s in sentences]
    tags = [[t for _, t in s] for s in sentences]
    if how == "vectorizer":
        words = [" ".join(ws) for ws in words]
    return words, tags


class VocabularyTagger:
    """An RNNTagger fed with the ids of a :class:`fastrnn.text.Vocabulary` of the training
    tokens (unknown tokens get ``<unk>``): the way to tag pre-tokenised sentences when the
    vectorizer is not used. ``fit``, ``score`` and ``set_params`` as an estimator's."""

    def __init__(self, tagger):
        self.tagger = tagger

    def fit(self, X, y):
        self.vocab_ = Vocabulary.build(X)
        self.tagger.fit([self.vocab_.encode(s) for s in X], y)
        return self

    def score(self, X, y):
        return self.tagger.score([self.vocab_.encode(s) for s in X], y)


# ============================================================================ default estimators
def default_estimator(kind, seed, tagger_input="vectorizer", time_budget=None):
    """The default estimator of ``kind``, exactly as a new user would write it."""
    if kind == "series":
        return RNNClassifier(random_state=seed)
    if kind == "text":
        return make_pipeline(SequenceVectorizer(), RNNClassifier(random_state=seed))
    if kind == "tagging":
        if tagger_input == "vectorizer":
            # str.split keeps the corpus's tokens: one id per tagged token
            return make_pipeline(SequenceVectorizer(analyzer=str.split),
                                 RNNTagger(random_state=seed))
        return VocabularyTagger(RNNTagger(random_state=seed))
    return RNNLanguageModel(random_state=seed, time_budget=time_budget)  # budget: None unless set


def _estimator(kind, seed, opts, params=None):
    est = default_estimator(kind, seed, opts.tagger_input, opts.time_budget)
    final = est.tagger if isinstance(est, VocabularyTagger) else _final(est)
    if params:
        if isinstance(est, VocabularyTagger):
            final.set_params(**params)
        else:
            apply_params(est, params)
    if opts.smoke:  # a few seconds per set
        if kind == "lm":
            final.set_params(max_iter=1, time_budget=SMOKE["lm_budget"])
        else:
            final.set_params(max_iter=SMOKE["max_iter"])
    return est


def _fit_record(est, seconds, msgs):
    final = est.tagger if isinstance(est, VocabularyTagger) else _final(est)
    rec = dict(fit_seconds=seconds, warnings=msgs)
    for attr in ("n_iter_", "stop_reason_", "n_tokens_seen_", "best_validation_bits_per_token_"):
        if getattr(final, attr, None) is not None:
            rec[attr.rstrip("_")] = getattr(final, attr)
    return rec


def _classify_splits(kind, seed, opts, splits, params=None):
    """Fit on every split's training part, score its test part: ``(score, per-split records)``."""
    records = []
    for X_tr, y_tr, X_te, y_te in splits:
        est = _estimator(kind, seed, opts, params)
        seconds, msgs = _timed_fit(est, X_tr, y_tr)
        rec = _fit_record(est, seconds, msgs)
        rec["score"] = float(est.score(X_te, y_te))
        records.append(rec)
    return float(np.mean([r["score"] for r in records])), records


def run_default(name, data, opts, seeds):
    """The default estimator over ``seeds``: scores, spread and fit times."""
    kind = data["kind"]
    per_seed = []
    for seed in seeds:
        if kind in ("series", "text"):
            score, records = _classify_splits(kind, seed, opts, data["splits"])
        elif kind == "tagging":
            X_tr, y_tr = tagging_inputs(data["train"], opts.tagger_input)
            X_te, y_te = tagging_inputs(data["test"], opts.tagger_input)
            est = _estimator(kind, seed, opts)
            seconds, msgs = _timed_fit(est, X_tr, y_tr)
            rec = _fit_record(est, seconds, msgs)
            score = rec["score"] = float(est.score(X_te, y_te))
            records = [rec]
        else:
            est = _estimator(kind, seed, opts)
            seconds, msgs = _timed_fit(est, data["train"], validation_texts=data["validation"])
            rec = _fit_record(est, seconds, msgs)
            score = rec["score"] = est.bits_per_token(data["test"])
            records = [rec]
        per_seed.append(dict(seed=seed, score=score, fits=records,
                             fit_seconds=float(np.mean([r["fit_seconds"] for r in records]))))
        _progress(f"  default, seed {seed}: {_fmt_score(kind, score)} "
                  f"({per_seed[-1]['fit_seconds']:.1f} s per fit)")
    code = DEFAULT_CODE[kind]
    if kind == "tagging":
        code = code[opts.tagger_input]
    return dict(code=code, seeds=per_seed, score=_spread([s["score"] for s in per_seed]),
                fit_seconds=_spread([s["fit_seconds"] for s in per_seed]))


# ============================================================================== search
def run_search(name, data, opts, seed, default=None):
    """The grid of :data:`SEARCH_SPACES` on one seed, chosen on validation data.

    A language model's settings differ in cost (512 units cost three times 256 per token), so
    each is fitted under a time budget: ``--time-budget`` if given, else the mean fit time of the
    default estimator in this run (``default``), so that every setting gets what the default got.
    """
    kind = data["kind"]
    space = SEARCH_SPACES[kind]
    settings = _grid(space, SMOKE["search_settings"] if opts.smoke else None)
    trials = []
    if kind in ("series", "text"):
        X_tr, y_tr = data["splits"][0][:2]
        n_classes = len(np.unique(y_tr))
        share = 0.25 if kind == "series" else 0.2
        n_val = min(max(int(round(share * len(y_tr))), n_classes), len(y_tr) - n_classes)
        a, b = next(StratifiedShuffleSplit(1, test_size=n_val, random_state=0)
                    .split(np.zeros(len(y_tr)), y_tr))
        inner = [(_take(X_tr, a), y_tr[a], _take(X_tr, b), y_tr[b])]
        for params in settings:
            val, records = _classify_splits(kind, seed, opts, inner, params)
            trials.append(dict(params=params, validation=val,
                               fit_seconds=records[0]["fit_seconds"]))
            _progress(f"  search {params}: validation {_fmt_score(kind, val)}")
        best = max(trials, key=lambda t: t["validation"])
        score, records = _classify_splits(kind, seed, opts, data["splits"], best["params"])
    elif kind == "tagging":
        X_tr, y_tr = tagging_inputs(data["train"], opts.tagger_input)
        X_va, y_va = tagging_inputs(data["validation"], opts.tagger_input)
        X_te, y_te = tagging_inputs(data["test"], opts.tagger_input)
        for params in settings:
            est = _estimator(kind, seed, opts, params)
            seconds, msgs = _timed_fit(est, X_tr, y_tr)
            rec = _fit_record(est, seconds, msgs)
            rec.update(params=params, validation=float(est.score(X_va, y_va)),
                       test=float(est.score(X_te, y_te)))
            trials.append(rec)
            _progress(f"  search {params}: validation {_fmt_score(kind, rec['validation'])}")
        best = max(trials, key=lambda t: t["validation"])
        score, records = best["test"], [best]
    else:
        budget = opts.time_budget
        if budget is None and default and "fit_seconds" in default:
            budget = default["fit_seconds"]["mean"]
        for params in settings:
            est = _estimator(kind, seed, opts, params)
            if budget is not None and not opts.smoke:
                _final(est).set_params(time_budget=budget)
            seconds, msgs = _timed_fit(est, data["train"], validation_texts=data["validation"])
            rec = _fit_record(est, seconds, msgs)
            rec.update(params=params, validation=est.bits_per_token(data["validation"]),
                       test=est.bits_per_token(data["test"]))
            trials.append(rec)
            _progress(f"  search {params}: validation {rec['validation']:.4f} bits/char")
        best = min(trials, key=lambda t: t["validation"])
        score, records = best["test"], [best]
    return dict(space=space, n_settings=len(settings), selection=SEARCH_SELECTION[kind], seed=seed,
                time_budget=budget if kind == "lm" else None, trials=trials, best_params=best["params"], score=score,
                fit_seconds=float(np.mean([r["fit_seconds"] for r in records])), fits=records)


# ============================================================================== baselines
def resample(x, length):
    """A series of shape ``(T, C)`` linearly interpolated, channel by channel, to ``length``
    equally spaced points from its first step to its last."""
    x = np.asarray(x, dtype=float)
    if len(x) == 1:
        return np.repeat(x, length, axis=0)
    old = np.linspace(0.0, 1.0, len(x))
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, x[:, c]) for c in range(x.shape[1])], axis=1)


def summary_features(X):
    """Mean, standard deviation, first, last, minimum and maximum of every channel:
    ``(n_series, 6 * n_channels)``."""
    return np.array([np.concatenate([x.mean(0), x.std(0), x[0], x[-1], x.min(0), x.max(0)])
                     for x in X])


def series_baselines(X_tr, y_tr, X_te, y_te):
    """1-NN Euclidean (series of unequal length resampled to the longest training length) and
    summary features with standardised logistic regression."""
    out = {}
    lengths = {len(x) for x in X_tr + X_te}
    length = max(len(x) for x in X_tr)
    if len(lengths) == 1:
        flat_tr = np.array([x.ravel() for x in X_tr])
        flat_te = np.array([x.ravel() for x in X_te])
        how = "raw series"
    else:
        flat_tr = np.array([resample(x, length).ravel() for x in X_tr])
        flat_te = np.array([resample(x, length).ravel() for x in X_te])
        how = f"each channel linearly resampled to {length} steps (the longest training series)"
    knn = KNeighborsClassifier(n_neighbors=1, algorithm="brute")
    seconds, msgs = _timed_fit(knn, flat_tr, y_tr)
    out["1nn_euclidean"] = dict(score=float(knn.score(flat_te, y_te)), fit_seconds=seconds,
                                how=how)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    F_tr, F_te = summary_features(X_tr), summary_features(X_te)
    seconds, msgs = _timed_fit(lr, F_tr, y_tr)
    out["summary_lr"] = dict(score=float(lr.score(F_te, y_te)), fit_seconds=seconds,
                             warnings=msgs, how="mean/std/first/last/min/max per channel, "
                                                "StandardScaler, LogisticRegression(max_iter=5000)")
    return out


def text_baselines(X_tr, y_tr, X_te, y_te):
    """TF-IDF with logistic regression, word counts with multinomial naive Bayes."""
    out = {}
    for key, est, how in (
            ("tfidf_lr", make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=5000)),
             "TfidfVectorizer(), LogisticRegression(max_iter=5000)"),
            ("counts_mnb", make_pipeline(CountVectorizer(), MultinomialNB()),
             "CountVectorizer(), MultinomialNB()")):
        seconds, msgs = _timed_fit(est, X_tr, y_tr)
        out[key] = dict(score=float(est.score(X_te, y_te)), fit_seconds=seconds, warnings=msgs,
                        how=how)
    return out


def most_frequent_tag(train, test):
    """Token accuracy of tagging each word with its most frequent training tag (words as
    written); unseen words get the most frequent tag overall. Returns ``(accuracy, share of
    test tokens unseen)``."""
    counts = defaultdict(Counter)
    overall = Counter()
    for sentence in train:
        for word, tag in sentence:
            counts[word][tag] += 1
            overall[tag] += 1
    fallback = overall.most_common(1)[0][0]
    best = {w: c.most_common(1)[0][0] for w, c in counts.items()}
    hits = unseen = n = 0
    for sentence in test:
        for word, tag in sentence:
            guess = best.get(word)
            unseen += guess is None
            hits += (fallback if guess is None else guess) == tag
            n += 1
    return hits / n, unseen / n


def _shape(word):
    feats = []
    if word[:1].isupper():
        feats.append("cap")
    if word.isupper() and len(word) > 1:
        feats.append("caps")
    if any(c.isdigit() for c in word):
        feats.append("digit")
    if "-" in word:
        feats.append("hyphen")
    return feats


def window_features(words, i):
    """Features of the word at ``i`` from the words at ``i-2 .. i+2``: each lower-cased, its
    prefixes and suffixes of length 1 to 3 and its shape (capitalised, all capitals, digits,
    hyphen); ``<s>`` / ``</s>`` beyond the sentence."""
    feats = ["bias"]
    for k in range(-2, 3):
        j = i + k
        if j < 0 or j >= len(words):
            feats.append(f"{k}:w={'<s>' if j < 0 else '</s>'}")
            continue
        w = words[j]
        lw = w.lower()
        feats.append(f"{k}:w={lw}")
        for n in (1, 2, 3):
            feats += [f"{k}:p{n}={lw[:n]}", f"{k}:s{n}={lw[-n:]}"]
        feats += [f"{k}:{s}" for s in _shape(w)]
    return feats


def _window_matrix(sentences, hasher):
    words = [[w for w, _ in s] for s in sentences]
    X = hasher.transform(window_features(ws, i) for ws in words for i in range(len(ws)))
    y = np.array([t for s in sentences for _, t in s])
    return X, y


def tagging_baselines(train, test):
    out = {}
    t0 = time.perf_counter()
    acc, unseen = most_frequent_tag(train, test)
    out["most_frequent_tag"] = dict(score=acc, fit_seconds=time.perf_counter() - t0,
                                    unseen_share=unseen,
                                    how="most frequent training tag of the word as written; "
                                        "unseen words: the most frequent tag overall")
    hasher = FeatureHasher(n_features=2 ** 20, input_type="string", alternate_sign=False)
    X_tr, y_tr = _window_matrix(train, hasher)
    X_te, y_te = _window_matrix(test, hasher)
    # C=0.1: at the default C=1 liblinear stops at its 1,000-iteration limit on the 290,000
    # training tokens without converging; at 0.1 it converges, with the same test accuracy
    svm = LinearSVC(C=0.1)
    seconds, msgs = _timed_fit(svm, X_tr, y_tr)
    out["window_svm"] = dict(score=float(svm.score(X_te, y_te)), fit_seconds=seconds,
                             warnings=msgs,
                             how="words -2..+2: lower-cased word, prefixes and suffixes of "
                                 "length 1-3, shape; FeatureHasher(2**20), LinearSVC(C=0.1)")
    return out


def lm_baselines(train, test, order=7):
    """A character n-gram model of ``train`` (:class:`fastrnn.text.KneserNeyModel`, the language
    model's own n-gram part, fitted alone) and its bits per character on ``test``."""
    t0 = time.perf_counter()
    vocab = Vocabulary.build([list(d) for d in train])
    encode = lambda docs: [vocab.encode(list(d), add_bos=True, add_eos=True)  # noqa: E731
                           for d in docs]
    kn = KneserNeyModel(order).fit(encode(train), len(vocab))
    seconds = time.perf_counter() - t0
    bits = float(-np.mean(np.log2(kn.token_proba(encode(test)))))
    return {"kneser_ney": dict(score=bits, fit_seconds=seconds, order=order,
                               discounts={n: kn.discounts_[n - 1].tolist()
                                          for n in range(1, order + 1)},
                               how=f"{order}-gram interpolated modified Kneser-Ney, computed here"),
            "kneser_ney_reference": dict(score=REFERENCES["shakespeare"]["7-gram Kneser-Ney"],
                                         how="7-gram Kneser-Ney, reference figure")}


def run_baselines(data):
    kind = data["kind"]
    if kind in ("series", "text"):
        fn = series_baselines if kind == "series" else text_baselines
        per_split = [fn(*split) for split in data["splits"]]
        out = {}
        for key in per_split[0]:
            scores = [r[key]["score"] for r in per_split]
            out[key] = {**per_split[0][key], "score": float(np.mean(scores)),
                        "split_scores": scores,
                        "fit_seconds": float(np.mean([r[key]["fit_seconds"] for r in per_split]))}
        return out
    if kind == "tagging":
        return tagging_baselines(data["train"], data["test"])
    return lm_baselines(data["train"], data["test"])


# ============================================================================== the run
def _progress(msg):
    print(msg, file=sys.stderr, flush=True)


def git_describe():
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=ROOT,
                              text=True, capture_output=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001 - no git
        return None


def thread_info(threads_set=None):
    """The thread settings in force: the variables, Numba's count and the BLAS pools."""
    info = {"variables": {v: os.environ.get(v) for v in THREAD_VARS}}
    if threads_set:
        info["set_by"] = {v: src for v, (_, src) in threads_set.items()}
    try:
        import numba
        info["numba_threads"] = numba.get_num_threads()
    except Exception as exc:  # noqa: BLE001
        info["numba_threads"] = f"unknown ({exc})"
    try:
        import threadpoolctl
        info["blas"] = [f"{d.get('internal_api')} x{d.get('num_threads')}"
                        for d in threadpoolctl.threadpool_info()]
    except ImportError:
        info["blas"] = ["threadpoolctl not installed"]
    return info


def machine():
    info = dict(cores=os.cpu_count(), platform=platform.platform(),
                python=platform.python_version())
    cpu = cpu_model()
    if cpu is not None:
        info["cpu"] = cpu
    return info


def _guarded(what, fn, *args):
    """``fn(*args)``, or ``{"error": ...}`` when it raises: one failing model does not lose the
    rest of a long run (the error is printed and kept in the results)."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - recorded, shown in the table
        msg = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
        _progress(f"  {what} FAILED: {msg}")
        return {"error": msg}


def run_study(opts, save=None):
    """Run the sets of ``opts.sets``; return the results (what the JSON file holds).

    ``save``, if given, is called with the results after every set, so that an interrupted run
    keeps what it finished. A data set that cannot be loaded stops the run; an error of a model
    is recorded under its part (``"error"``) and the run goes on.
    """
    seeds = list(opts.seeds)[:1] if opts.smoke else list(opts.seeds)
    results = dict(meta=dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        git=git_describe(), fastrnn=fastrnn.__version__, machine=machine(),
        threads=thread_info(THREADS_SET), seeds=seeds, smoke=opts.smoke, search=opts.search,
        baselines_only=opts.baselines_only,
        time_budget=SMOKE["lm_budget"] if opts.smoke else opts.time_budget,
        text_eval=opts.text_eval, tagger_input=opts.tagger_input, sets=list(opts.sets),
        smoke_sizes=SMOKE if opts.smoke else None), sets={})
    for name in opts.sets:
        _progress(f"{name}: loading")
        data = load_set(name, opts.smoke, opts.text_eval)
        kind = data["kind"]
        res = dict(kind=kind, title=TITLES[name], info=data["info"],
                   metric="bits per character" if kind == "lm" else "accuracy",
                   decides_defaults=name not in REPORT_ONLY,
                   references=REFERENCES.get(name, {}))
        _progress(f"{name}: baselines")
        res["baselines"] = _guarded("baselines", run_baselines, data)
        for key, b in res["baselines"].items():
            if isinstance(b, dict):
                _progress(f"  {key}: {_fmt_score(kind, b['score'])}")
        if not opts.baselines_only:
            _progress(f"{name}: default estimator, seeds {seeds}")
            res["default"] = _guarded("default", run_default, name, data, opts, seeds)
            if opts.search:
                _progress(f"{name}: search")
                res["search"] = _guarded("search", run_search, name, data, opts, seeds[0],
                                         res.get("default"))
        results["sets"][name] = res
        if save is not None:
            save(results)
    return results


# ============================================================================== report
BASELINE_COLUMNS = {
    "series": [("1-NN Euclidean", "1nn_euclidean"), ("summary + LR", "summary_lr")],
    "text": [("TF-IDF + LR", "tfidf_lr"), ("counts + MNB", "counts_mnb")],
    "tagging": [("most frequent tag", "most_frequent_tag"), ("window SVM", "window_svm")],
    "lm": [("7-gram KN", "kneser_ney"), ("KN reference", "kneser_ney_reference")],
}
KIND_TITLES = {"series": "Series classification (test accuracy, %)",
               "text": "Text classification (accuracy, %)",
               "tagging": "Part-of-speech tagging (token accuracy on the test set, %)",
               "lm": "Character language model (test bits per character, lower is better)"}


def _fmt_score(kind, x):
    if x is None:
        return "-"
    return f"{x:.3f}" if kind == "lm" else f"{100 * x:.1f}"


def _fmt_spread(kind, s):
    if s is None:
        return "-"
    mean = _fmt_score(kind, s["mean"])
    if s["max"] == s["min"]:
        return mean
    scale = 1 if kind == "lm" else 100
    digits = 3 if kind == "lm" else 1
    return (f"{mean} ± {scale * s['std']:.{digits}f} "
            f"({_fmt_score(kind, s['min'])}-{_fmt_score(kind, s['max'])})")


def _search_cell(kind, res):
    s = res.get("search")
    if not s:
        return "-"
    if "error" in s:
        return "error"
    params = ", ".join(f"{k.replace('vectorizer__', '')}={v}" for k, v in s["best_params"].items())
    return f"{_fmt_score(kind, s['score'])} [{params}]"


def _rows(kind, sets):
    rows = []
    for name, res in sets.items():
        d = res.get("default")
        failed = bool(d and "error" in d)
        d = None if failed else d
        title = res["title"] + ("" if res.get("decides_defaults", True) else " (report only)")
        row = [title]
        if kind == "text":
            row.append("5-fold" if res["info"].get("text_eval") == "cv" else "80/20")
        row += ["error" if failed else _fmt_spread(kind, d["score"] if d else None),
                "-" if not d else f"{d['fit_seconds']['mean']:.1f}"]
        base = res["baselines"]
        row += ["error" if "error" in base else _fmt_score(kind, base.get(key, {}).get("score"))
                for _, key in BASELINE_COLUMNS[kind]]
        row.append(_search_cell(kind, res))
        rows.append(row)
    return rows


def _metas(results):
    meta = results["meta"]
    return meta if isinstance(meta, list) else [meta]


def _run_line(meta):
    th = meta.get("threads", {})
    var = th.get("variables", {})
    same = len(set(var.values())) == 1
    threads = (f"{'/'.join(v.split('_')[0] for v in var)}_NUM_THREADS={next(iter(var.values()))}"
               if same and var else ", ".join(f"{k}={v}" for k, v in var.items()))
    m = meta.get("machine", {})
    what = []
    if meta.get("smoke"):
        what.append("SMOKE RUN (tiny subsets, 2 epochs: not results)")
    if meta.get("baselines_only"):
        what.append("baselines only")
    elif meta.get("search"):
        what.append("with the search")
    if not meta.get("baselines_only"):
        what.insert(0, f"seeds {meta.get('seeds')}")
        if "shakespeare" in meta.get("sets", []) and meta.get("time_budget"):
            what.insert(1, f"language-model time budget {meta.get('time_budget'):g} s")
    return (f"{meta.get('date')}, fastrnn {meta.get('fastrnn')} ({meta.get('git')}), "
            f"{m.get('cpu', 'unknown CPU')}, {m.get('cores')} cores; {threads}, numba threads "
            f"{th.get('numba_threads')}; sets: {', '.join(meta.get('sets', []))}"
            + (f"; {'; '.join(what)}" if what else ""))


def render(results, rst=False):
    """The results as text: one line per run, then one table per kind of task."""
    out = []
    for meta in _metas(results):
        out += [_run_line(meta), ""]
    for kind in ("series", "text", "tagging", "lm"):
        sets = {n: r for n, r in results["sets"].items() if r["kind"] == kind}
        if not sets:
            continue
        metric = "bits/char" if kind == "lm" else "default"
        hdr = ["set"] + (["evaluation"] if kind == "text" else [])
        hdr += [metric if kind == "lm" else "default", "fit s"]
        hdr += [h for h, _ in BASELINE_COLUMNS[kind]] + ["search: best [setting]"]
        # the first column (the set) and the last (the search's setting) are words
        out += [KIND_TITLES[kind], "", table(hdr, _rows(kind, sets), rst, left={0, len(hdr) - 1}),
                ""]
    text = "\n".join(out).rstrip() + "\n"
    if rst:  # every run line a paragraph of its own, tables as they are
        text = text.replace("\n\n\n", "\n\n")
    return text


def merge(results_list):
    """Results of several runs in one: the later run wins a set run twice."""
    metas, sets = [], {}
    for res in results_list:
        for meta in _metas(res):
            metas.append(meta)
        for name, r in res["sets"].items():
            sets.pop(name, None)
            sets[name] = r
    order = [n for n in ALL_SETS if n in sets] + [n for n in sets if n not in ALL_SETS]
    return dict(meta=metas if len(metas) > 1 else metas[0], sets={n: sets[n] for n in order})


# ============================================================================== command line
def parse_sets(names):
    out = []
    for raw in names:
        for name in raw.replace(",", " ").split():
            key = name.lower().replace("-", "_")
            picked = GROUPS.get(key, (key,) if key in ALL_SETS else None)
            if picked is None:
                raise ValueError(f"unknown set {name!r}: choose among {list(ALL_SETS)} or the "
                                 f"groups {list(GROUPS)}")
            out += [s for s in picked if s not in out]
    return [s for s in ALL_SETS if s in out]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["all"],
                    help=f"sets or groups to run (default all): {', '.join(ALL_SETS)}; "
                         f"{', '.join(GROUPS)}")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                    help="random_state of the default estimators (default 0 1 2; the search "
                         "uses the first)")
    ap.add_argument("--search", action="store_true", help="also run the small search")
    ap.add_argument("--baselines-only", action="store_true",
                    help="run the baselines alone (no recurrent model)")
    ap.add_argument("--time-budget", type=float, metavar="SECONDS",
                    help="a time budget for each language-model fit (default: none, the "
                         "estimator's own length of training)")
    ap.add_argument("--text-eval", choices=["auto", "cv", "holdout"], default="auto",
                    help="text sets: 5-fold cross-validation, its first fold alone, or auto "
                         "(cv for the sentences, holdout for the long reviews; default)")
    ap.add_argument("--tagger-input", choices=["vectorizer", "vocabulary"], default="vectorizer",
                    help="how the default tagger gets token ids: a SequenceVectorizer in a "
                         "pipeline (default) or a fastrnn.text.Vocabulary")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny subsets, one seed, two epochs (a few seconds a set; for tests)")
    ap.add_argument("--threads", type=int,
                    help=f"threads of every pool (default: the environment's, else "
                         f"{DEFAULT_THREADS})")
    ap.add_argument("--json", default=str(DEFAULT_JSON), help=f"default {DEFAULT_JSON}")
    ap.add_argument("--from-json", nargs="+", metavar="JSON",
                    help="render (and with --update-doc write) these results; run nothing")
    ap.add_argument("--update-doc", action="store_true",
                    help=f"rewrite the results of {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    try:
        args.sets = parse_sets(args.sets)
    except ValueError as exc:
        ap.error(str(exc))
    if args.time_budget is not None and args.time_budget <= 0:
        ap.error(f"--time-budget must be a positive number of seconds, got {args.time_budget}")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    if args.update_doc and args.smoke:
        ap.error("--update-doc with --smoke would put smoke-run figures in the documentation; "
                 "drop one of them")
    if args.search and args.baselines_only:
        ap.error("--search needs the recurrent models; drop --baselines-only")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        results = merge([json.loads(Path(p).read_text()) for p in args.from_json])
        if args.update_doc and any(m.get("smoke") for m in _metas(results)):
            raise SystemExit("refusing to write smoke-run figures into the documentation")
    else:
        th = thread_info(THREADS_SET)
        _progress("threads: " + ", ".join(f"{k}={v}" for k, v in th["variables"].items())
                  + f" ({'set by this script' if THREADS_SET else 'as found'}); numba threads "
                    f"{th['numba_threads']}; BLAS pools: {', '.join(th['blas'])}")
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)

        def save(res):
            path.write_text(json.dumps(res, indent=1, default=json_default))

        results = run_study(args, save)
        save(results)
        _progress(f"wrote {path}")
    print(render(results))
    if args.update_doc:
        update_doc(DOC, render(results, rst=True))
    return results


if __name__ == "__main__":
    main()
