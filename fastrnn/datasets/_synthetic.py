"""Synthetic sequence tasks: no download, reproducible with ``random_state``."""

import numpy as np



def _rng(random_state):
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.RandomState(random_state)
    raise ValueError(
        f"random_state must be None, an int or a numpy.random.RandomState, got "
        f"{random_state!r}"
    )


def _check_positive_int(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def make_sequence_classification(
    n_samples=200,
    min_length=5,
    max_length=20,
    n_features=3,
    n_classes=2,
    random_state=None,
    *,
    class_sep=1.0,
    noise=1.0,
):
    """Generate variable-length sequences whose class shifts one channel's mean.

    Each sequence is Gaussian noise with standard deviation ``noise``; class
    ``k`` adds ``class_sep * (1 + k // n_features)`` to channel
    ``k % n_features`` at every step (class 0 therefore shifts channel 0).
    The class is recovered from the per-channel means over the sequence, so
    a model has to integrate over time; with the defaults the Bayes accuracy
    is close to 100 %. When ``n_classes <= n_features`` the rule is: the
    class is the channel with the largest mean.

    Parameters
    ----------
    n_samples : int, default=200
    min_length, max_length : int, default=5, 20
        Lengths are drawn uniformly from ``[min_length, max_length]``.
    n_features : int, default=3
    n_classes : int, default=2
        Classes are balanced (counts differ by at most one).
    random_state : None, int or numpy.random.RandomState, default=None
    class_sep : float, default=1.0
    noise : float, default=1.0

    Returns
    -------
    X : list of ndarray of shape (T_i, n_features), dtype float64
    y : ndarray of shape (n_samples,), dtype int64
        Labels ``0 .. n_classes - 1``.

    Examples
    --------
    >>> from fastrnn.datasets import make_sequence_classification
    >>> X, y = make_sequence_classification(n_samples=4, random_state=0)
    >>> len(X), X[0].shape[1], y.shape
    (4, 3, (4,))
    """
    _check_positive_int("n_samples", n_samples)
    _check_positive_int("min_length", min_length)
    _check_positive_int("n_features", n_features)
    _check_positive_int("n_classes", n_classes, minimum=2)
    if not isinstance(max_length, (int, np.integer)) or max_length < min_length:
        raise ValueError(
            f"max_length must be an integer >= min_length={min_length}, got {max_length!r}"
        )
    rng = _rng(random_state)
    y = np.arange(n_samples, dtype=np.int64) % n_classes
    rng.shuffle(y)
    lengths = rng.randint(min_length, max_length + 1, size=n_samples)
    X = []
    for label, length in zip(y, lengths):
        x = noise * rng.standard_normal((length, n_features))
        x[:, label % n_features] += class_sep * (1 + label // n_features)
        X.append(x)
    return X, y


def make_copy_task(n_samples=100, seq_length=10, n_symbols=8, delay=5, random_state=None):
    """Generate the copy-memory task: remember a sequence, reproduce it later.

    Input: ``seq_length`` random symbols from ``1 .. n_symbols``, then
    ``delay - 1`` blanks (``0``), then a recall marker ``n_symbols + 1``, then
    ``seq_length`` blanks. Target: blanks for the first
    ``seq_length + delay`` steps, then the symbols in their original order.

    Parameters
    ----------
    n_samples : int, default=100
    seq_length : int, default=10
    n_symbols : int, default=8
    delay : int, default=5
        Steps between the end of the symbols and the start of the recall
        (at least 1: the marker).
    random_state : None, int or numpy.random.RandomState, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, 2 * seq_length + delay), dtype int64
        Token ids in ``0 .. n_symbols + 1`` (vocabulary size ``n_symbols + 2``).
    Y : ndarray of shape (n_samples, 2 * seq_length + delay), dtype int64
        Target token ids per step in ``0 .. n_symbols``.
    """
    _check_positive_int("n_samples", n_samples)
    _check_positive_int("seq_length", seq_length)
    _check_positive_int("n_symbols", n_symbols)
    _check_positive_int("delay", delay)
    rng = _rng(random_state)
    total = 2 * seq_length + delay
    symbols = rng.randint(1, n_symbols + 1, size=(n_samples, seq_length))
    X = np.zeros((n_samples, total), dtype=np.int64)
    Y = np.zeros((n_samples, total), dtype=np.int64)
    X[:, :seq_length] = symbols
    X[:, seq_length + delay - 1] = n_symbols + 1
    Y[:, seq_length + delay:] = symbols
    return X, Y


def make_adding_task(n_samples=100, seq_length=50, random_state=None):
    """Generate the adding problem: sum the two marked values of a sequence.

    Parameters
    ----------
    n_samples : int, default=100
    seq_length : int, default=50
        At least 2.
    random_state : None, int or numpy.random.RandomState, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, seq_length, 2), dtype float64
        Channel 0: values uniform in ``[0, 1)``; channel 1: ``1`` at exactly two
        steps (one in each half of the sequence), ``0`` elsewhere.
    y : ndarray of shape (n_samples,), dtype float64
        Sum of the two marked values. Predicting 1.0 always gives a mean
        squared error of about 0.167.
    """
    _check_positive_int("n_samples", n_samples)
    _check_positive_int("seq_length", seq_length, minimum=2)
    rng = _rng(random_state)
    X = np.zeros((n_samples, seq_length, 2))
    X[:, :, 0] = rng.uniform(size=(n_samples, seq_length))
    half = seq_length // 2
    rows = np.arange(n_samples)
    first = rng.randint(0, half, size=n_samples)
    second = rng.randint(half, seq_length, size=n_samples)
    X[rows, first, 1] = 1.0
    X[rows, second, 1] = 1.0
    y = X[rows, first, 0] + X[rows, second, 0]
    return X, y
