"""Time-series classification data sets: series from the UCR / UEA archives."""

import zipfile

from ._fetch import _SKTIME, fetch
from ._ts import parse_ts

def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split.upper()


def _load_sktime_ts(problem, split, data_home):
    part = _check_split(split)
    path = fetch(*_SKTIME, data_home=data_home)
    member = f"sktime/datasets/data/{problem}/{problem}_{part}.ts"
    with zipfile.ZipFile(path) as archive:
        text = archive.read(member).decode("utf-8")
    return parse_ts(text)


def load_japanese_vowels(split="train", *, data_home=None):
    """Load the JapaneseVowels data set (speaker recognition from vowels).

    Nine male speakers uttered the Japanese vowels /ae/; each utterance is a
    series of 12 LPC cepstrum coefficients, 7 to 29 frames long. The task is
    to predict the speaker.

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        The official split: 270 training series (30 per speaker), 370 test
        series (24 to 88 per speaker).
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    X : list of ndarray of shape (T_i, 12), dtype float64
        One array per utterance, ``7 <= T_i <= 29``.
    y : ndarray of shape (n_samples,), dtype str
        Speaker labels ``'1'`` to ``'9'``.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: UCI Machine Learning Repository / UEA multivariate time series
    archive (Kudo, Toyama and Shimbo, "Multidimensional curve classification
    using passing-through regions", Pattern Recognition Letters 20, 1999),
    read from ``sktime/datasets/data/JapaneseVowels/JapaneseVowels_{TRAIN,TEST}.ts``
    inside the wheel ``sktime-1.2.0-py3-none-any.whl`` (BSD-3-Clause).
    Reference accuracies: FCN 99.3 %, echo-state network 96.5 %, 1-NN DTW
    94.9 %.
    """
    return _load_sktime_ts("JapaneseVowels", split, data_home)


def load_gunpoint(split="train", *, data_home=None):
    """Load the GunPoint data set (univariate motion classification).

    The x coordinate of an actor's right hand, 150 frames, while drawing a
    replica gun from a holster (class ``'1'``) or pointing a finger
    (class ``'2'``).

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        50 training series or 150 test series.
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    X : list of ndarray of shape (150, 1), dtype float64
        One array per series.
    y : ndarray of shape (n_samples,), dtype str
        Labels ``'1'`` or ``'2'``.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: UCR time series archive, read from
    ``sktime/datasets/data/GunPoint/GunPoint_{TRAIN,TEST}.ts`` inside the wheel
    ``sktime-1.2.0-py3-none-any.whl`` (BSD-3-Clause). Reference accuracies:
    1-NN Euclidean 91.3 %, FCN 100 %.
    """
    return _load_sktime_ts("GunPoint", split, data_home)


