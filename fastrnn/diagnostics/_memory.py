"""Memory length: the longest lag over which a small model of a given cell learns to carry
information, with a fixed training budget."""

import warnings
from numbers import Integral, Real

import numpy as np

__all__ = ["MemoryLength", "memory_length", "make_recall_task"]

TASKS = ("adding", "copy")


def make_recall_task(n_samples, lag, n_symbols=4, random_state=None):
    """The one-symbol copy task: remember the symbol of the first step over ``lag`` steps of
    distracting symbols.

    Parameters
    ----------
    n_samples : int
    lag : int
        Steps between the symbol and the end of the sequence (sequences have ``lag + 1`` steps).
    n_symbols : int, default 4
    random_state : int, RandomState or None

    Returns
    -------
    X : ndarray of shape (n_samples, lag + 1, n_symbols + 1)
        Every step holds the one-hot code of a random symbol in the first ``n_symbols`` channels;
        the last channel marks step 0, whose symbol is the one to recall (1 there, 0 elsewhere).
    y : ndarray of shape (n_samples,), int64
        The symbol of step 0, in ``0 .. n_symbols - 1``; always predicting one class scores
        ``1 / n_symbols``.
    """
    rng = np.random.RandomState(random_state) if not isinstance(
        random_state, np.random.RandomState) else random_state
    symbols = rng.randint(0, n_symbols, size=(n_samples, lag + 1))
    X = np.zeros((n_samples, lag + 1, n_symbols + 1))
    X[np.arange(n_samples)[:, None], np.arange(lag + 1)[None, :], symbols] = 1.0
    X[:, 0, n_symbols] = 1.0
    return X, symbols[:, 0].astype(np.int64)


class MemoryLength:
    """The result of :func:`memory_length`.

    Attributes
    ----------
    cell : str
    task : {"adding", "copy"}
    lags : ndarray of shape (n_lags,), int64
        The lags, in increasing order.
    scores : ndarray of shape (n_lags,)
        Held-out score at each lag (accuracy for ``"copy"``, R² for ``"adding"``); NaN for lags
        not tried (after the first failure, with ``stop_at_failure``).
    solved : bool ndarray of shape (n_lags,)
        ``scores >= threshold``.
    threshold : float
    chance : float
        The score of an uninformed prediction (``1 / n_symbols`` for ``"copy"``, 0 for
        ``"adding"``).
    memory_length : int
        The longest lag such that it and every shorter lag tried were solved; 0 if the shortest
        was not.
    """

    def __init__(self, cell, task, lags, scores, threshold, chance):
        self.cell, self.task = cell, task
        self.lags = np.asarray(lags, np.int64)
        self.scores = np.asarray(scores, np.float64)
        self.threshold, self.chance = float(threshold), float(chance)
        self.solved = self.scores >= self.threshold
        failed = np.flatnonzero(~self.solved)
        n_ok = failed[0] if len(failed) else len(self.lags)
        self.memory_length = int(self.lags[n_ok - 1]) if n_ok else 0

    def __repr__(self):
        return (f"MemoryLength(cell={self.cell!r}, task={self.task!r}, "
                f"memory_length={self.memory_length})")

    def to_text(self):
        """One line per lag: the score and whether it counts as solved."""
        what = "accuracy" if self.task == "copy" else "R^2"
        lines = [f"{self.cell}: {self.task} task, solved = held-out {what} >= {self.threshold:g} "
                 f"(chance {self.chance:.3g})", f"{'lag':>6} {what:>9}  solved"]
        for lag, s, ok in zip(self.lags, self.scores, self.solved):
            lines.append(f"{lag:>6} {'-' if np.isnan(s) else format(s, '.3f'):>9}  "
                         f"{'yes' if ok else ('-' if np.isnan(s) else 'no')}")
        lines.append(f"memory length: {self.memory_length}")
        return "\n".join(lines)


def _check(name, value, kind, low):
    if isinstance(value, bool) or not isinstance(value, kind) or value < low:
        raise ValueError(f"{name} must be a number >= {low}, got {value!r}.")


def memory_length(cell="lstm", lags=(10, 20, 40, 80, 160), task="adding", hidden_size=32,
                  n_samples=512, max_iter=30, learning_rate=1e-2, threshold=0.9, n_symbols=4,
                  stop_at_failure=True, random_state=0, **params):
    """Train a small model of ``cell`` on a memory task at increasing lags, with a fixed budget,
    and report the longest lag it solves.

    At every lag a fresh estimator (:class:`~fastrnn.estimators.RNNClassifier` for ``"copy"``,
    :class:`~fastrnn.estimators.RNNRegressor` for ``"adding"``; pooling ``"last"``) trains for
    ``max_iter`` epochs over ``n_samples`` sequences (no early stopping), then is scored on
    ``n_samples // 2`` new sequences. A lag is *solved* when the held-out score reaches
    ``threshold``; the memory length is the longest lag such that it and every shorter lag are
    solved.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru", "mingru", "minlstm", "indrnn"}, default "lstm"
    lags : sequence of int, default (10, 20, 40, 80, 160)
        Each at least 2 (``"copy"``: at least 1); tried in increasing order.
    task : {"adding", "copy"}, default "adding"
        ``"adding"``: the adding problem of Hochreiter & Schmidhuber (1997) on sequences of
        ``lag`` steps (:func:`fastrnn.datasets.make_adding_task`; score: R², of the sum of two
        values marked anywhere in the two halves). ``"copy"``: recall the symbol of the first
        step after ``lag`` distracting symbols (:func:`make_recall_task`; score: accuracy), a
        task that the default recurrent initialisation (orthogonal) makes easy for every cell.
    hidden_size : int, default 32
    n_samples : int, default 512
        Training sequences per lag.
    max_iter : int, default 30
        Epochs per lag: the budget.
    learning_rate : float, default 1e-2
    threshold : float, default 0.9
        Held-out score that counts as solved.
    n_symbols : int, default 4
        Symbols of the copy task.
    stop_at_failure : bool, default True
        Stop after the first lag not solved (the longer ones are reported as NaN).
    random_state : int, default 0
        Seeds the data and the models.
    **params
        Other parameters of the estimator (``batch_size``, ``num_layers``, ``backend``, ...).

    Returns
    -------
    MemoryLength
        ``lags``, ``scores``, ``solved`` (arrays of shape (n_lags,)) and ``memory_length``.

    Examples
    --------
    >>> from fastrnn.diagnostics import memory_length
    >>> res = memory_length("lstm", lags=(5, 10), n_samples=64, max_iter=2)
    >>> res.lags.tolist(), res.scores.shape, res.memory_length in (0, 5, 10)
    ([5, 10], (2,), True)
    """
    from ..estimators import RNNClassifier, RNNRegressor

    from ..nn.network import CELLS

    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    low = 1 if task == "copy" else 2
    vals = list(lags) if isinstance(lags, (list, tuple, np.ndarray, range)) else []
    if not vals or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= low
                           for v in vals):
        raise ValueError(f"lags must be a non-empty sequence of integers >= {low} for the "
                         f"{task!r} task, got {lags!r}.")
    lags = sorted(int(v) for v in vals)
    for name, v in (("hidden_size", hidden_size), ("n_samples", n_samples),
                    ("max_iter", max_iter), ("n_symbols", n_symbols)):
        _check(name, v, Integral, 2 if name in ("n_samples", "n_symbols") else 1)
    _check("learning_rate", learning_rate, Real, 0)
    if not isinstance(threshold, Real) or isinstance(threshold, bool):
        raise ValueError(f"threshold must be a number, got {threshold!r}.")
    scores = np.full(len(lags), np.nan)
    for i, lag in enumerate(lags):
        seed = int(random_state) + 1000 * i
        if task == "copy":
            X, y = make_recall_task(n_samples + n_samples // 2, lag, n_symbols, seed)
            est = RNNClassifier
        else:
            from ..datasets import make_adding_task

            X, y = make_adding_task(n_samples + n_samples // 2, lag, random_state=seed)
            est = RNNRegressor
        kw = dict(cell=cell, hidden_size=hidden_size, pooling="last", learning_rate=learning_rate,
                  max_iter=max_iter, n_iter_no_change=max_iter, early_stopping=False,
                  random_state=seed)
        kw.update(params)
        model = est(**kw)
        with warnings.catch_warnings():  # a fixed budget: stopping at max_iter is the point
            warnings.simplefilter("ignore")
            model.fit(X[:n_samples], y[:n_samples])
        scores[i] = model.score(X[n_samples:], y[n_samples:])
        if stop_at_failure and scores[i] < threshold:
            break
    chance = 1.0 / n_symbols if task == "copy" else 0.0
    return MemoryLength(cell, task, lags, scores, threshold, chance)
