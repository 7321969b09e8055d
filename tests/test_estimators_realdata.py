"""The estimators on real data: JapaneseVowels and GunPoint classification, OANC POS tagging.

These tests are ``slow`` (``make test-fast`` leaves them out). They skip only when the package
registry that serves the data cannot be reached (``DatasetUnavailableError``); any other failure,
an accuracy below its threshold included, fails.
"""

import pathlib
import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastrnn import RNNClassifier
from fastrnn.datasets import DatasetUnavailableError, load_gunpoint, load_japanese_vowels

from _scripts import load_script

pytestmark = pytest.mark.slow

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(loader):
    try:
        return loader("train"), loader("test")
    except DatasetUnavailableError as exc:
        pytest.skip(f"data set unavailable (package registry unreachable): {exc}")


def _example(name):
    return load_script(EXAMPLES / f"{name}.py", f"_example_{name}")


def _accuracies(settings, train, test, seeds=(0, 1, 2)):
    (X, y), (X_test, y_test) = train, test
    out = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = RNNClassifier(random_state=seed, **settings).fit(X, y)
        out.append(clf.score(X_test, y_test))
    return out


def test_japanese_vowels_accuracy_of_the_defaults_in_the_demo(capsys):
    train, test = _load(load_japanese_vowels)
    demo = _example("demo")
    # seed 0 runs the demo itself: its report must agree with the accuracy it prints
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert demo.main(seed=0) == 0
    out = capsys.readouterr().out
    printed = re.search(r"test accuracy: ([0-9.]+) \((\d+)/(\d+)\)", out)
    assert printed is not None, out
    assert int(printed.group(3)) == len(test[1])
    assert float(printed.group(1)) == pytest.approx(int(printed.group(2)) / len(test[1]), abs=1e-4)
    assert "confusion matrix" in out and "macro avg" in out, out
    assert demo.SETTINGS == {}  # the demo shows the defaults
    acc = [float(printed.group(1))] + _accuracies({}, train, test, seeds=(1, 2))
    print(f"JapaneseVowels test accuracy per seed: {np.round(acc, 4).tolist()}")
    assert np.mean(acc) >= 0.98, acc


def test_gunpoint_accuracy_of_the_defaults():
    train, test = _load(load_gunpoint)
    acc = _accuracies({}, train, test)
    print(f"GunPoint test accuracy per seed: {np.round(acc, 4).tolist()}")
    assert np.mean(acc) >= 0.95, acc


def test_oanc_part_of_speech_tagging():
    pos = _example("pos_tagging")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = pos.run(max_iter=2, verbose=0)
    except DatasetUnavailableError as exc:
        pytest.skip(f"data set unavailable (package registry unreachable): {exc}")
    print(f"OANC tagging: {result}")
    assert result["accuracy"] >= 0.95, result
    assert result["acc_unknown"] > 0.7, result  # the signatures do help unknown words
