"""Time-series classification data sets from the UCR / UEA archives.

The ``.ts`` files come from the sktime wheel, Trace from the tslearn wheel.
Every loader returns the same kind of value: a list of float64 arrays of
shape ``(T_i, n_channels)`` and an array of string labels.
"""

import io

import numpy as np

from ._fetch import _SKTIME, _TSLEARN, DatasetError, read_member
from ._ts import parse_ts

# classification problems stored as <name>/<name>_{TRAIN,TEST}.ts in the sktime wheel
_SKTIME_PROBLEMS = (
    "ACSF1",
    "ArrowHead",
    "BasicMotions",
    "GunPoint",
    "ItalyPowerDemand",
    "JapaneseVowels",
    "OSULeaf",
    "PLAID",
)


def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split.upper()


def load_ucr(name, split="train", *, data_home=None):
    """Load a classification problem of the UCR / UEA archives shipped with sktime.

    ================  ============  ========  ===========  =======  ============================
    name              train / test  channels  length       classes  what the series are
    ================  ============  ========  ===========  =======  ============================
    ACSF1             100 / 100     1         1460         10       power use of home appliances
    ArrowHead         36 / 175      1         251          3        outlines of arrowheads
    BasicMotions      40 / 40       6         100          4        motion sensors, 4 activities
    GunPoint          50 / 150      1         150          2        hand position over time
    ItalyPowerDemand  67 / 1029     1         24           2        daily electricity demand
    JapaneseVowels    270 / 370     12        7 to 29      9        speakers uttering a vowel
    OSULeaf           200 / 242     1         427          6        outlines of leaves
    PLAID             537 / 537     1         100 to 1344  11       current drawn by appliances
    ================  ============  ========  ===========  =======  ============================

    Parameters
    ----------
    name : str
        One of the names above (case does not matter).
    split : {"train", "test"}, default="train"
        The archive's official split.
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    X : list of ndarray of shape (T_i, n_channels), dtype float64
        One array per series.
    y : ndarray of shape (n_samples,), dtype str
        Class labels as written in the file.

    Raises
    ------
    ValueError
        Unknown ``name`` or ``split`` (checked before any download).
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Read from ``sktime/datasets/data/<name>/<name>_{TRAIN,TEST}.ts`` inside
    the wheel ``sktime-1.2.0-py3-none-any.whl`` (BSD-3-Clause). The wheel's
    regression problems (Covid3Month, Tecator) and its unit-test stub are not
    offered. :func:`load_japanese_vowels`, :func:`load_gunpoint`,
    :func:`load_arrowhead` and :func:`load_osuleaf` document their problems
    in more detail.
    """
    by_lower = {problem.lower(): problem for problem in _SKTIME_PROBLEMS}
    problem = by_lower.get(name.lower()) if isinstance(name, str) else None
    if problem is None:
        raise ValueError(
            f"name must be one of {list(_SKTIME_PROBLEMS)} (the classification problems in "
            f"{_SKTIME.filename}), got {name!r}"
        )
    part = _check_split(split)
    member = f"sktime/datasets/data/{problem}/{problem}_{part}.ts"
    return parse_ts(read_member(_SKTIME, member, data_home).decode("utf-8"))


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
    return load_ucr("JapaneseVowels", split, data_home=data_home)


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
    return load_ucr("GunPoint", split, data_home=data_home)


def load_arrowhead(split="train", *, data_home=None):
    """Load the ArrowHead data set (univariate shape classification).

    Outlines of projectile points (arrowheads) turned into series of 251
    angles. The three classes, labelled ``'0'``, ``'1'`` and ``'2'``, are
    types of point told apart by notches and shape (the file's comments name
    them Avonlea, Clovis and Mix).

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        36 training series (12 per class) or 175 test series.
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    X : list of ndarray of shape (251, 1), dtype float64
        One z-normalised array per series.
    y : ndarray of shape (n_samples,), dtype str
        Labels ``'0'``, ``'1'`` or ``'2'``.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: UCR time series archive (Ye and Keogh, "Time series shapelets",
    KDD 2009), read from ``sktime/datasets/data/ArrowHead/ArrowHead_{TRAIN,TEST}.ts``
    inside the wheel ``sktime-1.2.0-py3-none-any.whl`` (BSD-3-Clause).
    Reference accuracies: 1-NN Euclidean 80.0 %, FCN 84.3 %. With only 36
    training series, this is a small-data test.
    """
    return load_ucr("ArrowHead", split, data_home=data_home)


def load_osuleaf(split="train", *, data_home=None):
    """Load the OSULeaf data set (univariate shape classification).

    One-dimensional outlines of leaf images (427 points, traced
    anti-clockwise), six species of maple and oak (classes ``'1'`` to
    ``'6'``).

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        200 training series or 242 test series; the classes are not balanced
        (15 to 53 training series per class).
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    X : list of ndarray of shape (427, 1), dtype float64
        One z-normalised array per series.
    y : ndarray of shape (n_samples,), dtype str
        Labels ``'1'`` to ``'6'``.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: UCR time series archive (leaf images segmented by A. Grandhi,
    Oregon State University), read from
    ``sktime/datasets/data/OSULeaf/OSULeaf_{TRAIN,TEST}.ts`` inside the wheel
    ``sktime-1.2.0-py3-none-any.whl`` (BSD-3-Clause). Reference accuracies:
    1-NN Euclidean 52.1 %, FCN 97.7 %: a large gap between a distance on raw
    values and a learned model.
    """
    return load_ucr("OSULeaf", split, data_home=data_home)


_TRACE_MEMBER = "tslearn/.cached_datasets/Trace.npz"


def load_trace(split="train", *, data_home=None):
    """Load the Trace data set (univariate classification of transients).

    Synthetic signals of an instrument in a nuclear power plant, each 275
    steps long, showing one of four kinds of transient (classes ``'1'`` to
    ``'4'``).

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        100 training series or 100 test series.
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    X : list of ndarray of shape (275, 1), dtype float64
        One z-normalised array per series.
    y : ndarray of shape (n_samples,), dtype str
        Labels ``'1'`` to ``'4'``.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.
    DatasetError
        The file in the archive does not hold the expected arrays.

    Notes
    -----
    Source: UCR time series archive (a subset of the transient
    classification benchmark of Roverso, 2000), read from the arrays
    ``X_train``, ``y_train``, ``X_test`` and ``y_test`` of
    ``tslearn/.cached_datasets/Trace.npz`` inside the wheel
    ``tslearn-0.10.0-py3-none-any.whl`` (BSD-2-Clause); the file is loaded
    with ``allow_pickle=False``. Reference accuracies: 1-NN Euclidean 76.0 %,
    MLP 80.7 %, FCN 100 %.
    """
    part = _check_split(split).lower()
    data = read_member(_TSLEARN, _TRACE_MEMBER, data_home)
    where = f"{_TRACE_MEMBER} in {_TSLEARN.filename}"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            X, y = arrays[f"X_{part}"], arrays[f"y_{part}"]
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"cannot read the {split} arrays of {where}: {exc}") from exc
    if X.ndim != 3 or X.dtype.kind != "f" or y.shape != (X.shape[0],):
        raise DatasetError(
            f"{where} holds X_{part} of shape {X.shape} (dtype {X.dtype}) and y_{part} of "
            f"shape {y.shape}; expected float series of shape (n, T, 1) and n labels"
        )
    X = np.ascontiguousarray(X, dtype=np.float64)
    return list(X), np.array([str(label) for label in y.tolist()])
