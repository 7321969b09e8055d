"""Callbacks: code run by every estimator's ``fit`` at the start, at the start and end of every
epoch, and at the end, able to stop training.

Pass a list of them as the ``callbacks`` parameter of an estimator. A callback receives the
estimator being fitted, the :class:`fastrnn.train.TrainingLoop` that trains it, and, at the end of
an epoch, that epoch's entry of the history (``loss``, ``lr``, ``grad_norm``, ``seconds``, and the
validation figures: ``val_score`` for the classifier, regressor and tagger, ``val_loss`` /
``val_bits`` for the language model). Setting ``loop.stop_training = True`` ends the fit after the
current epoch (``stop_reason_`` is then ``"callback"``).

Examples
--------
>>> import numpy as np
>>> from fastrnn import RNNClassifier
>>> from fastrnn.callbacks import Callback
>>> class StopAt(Callback):
...     def __init__(self, loss):
...         self.loss = loss
...     def on_epoch_end(self, estimator, loop, logs):
...         if logs["loss"] < self.loss:
...             loop.stop_training = True
>>> X = [np.random.RandomState(i).randn(6, 2) + i % 2 for i in range(20)]
>>> clf = RNNClassifier(hidden_size=8, max_iter=50, learning_rate=0.03, random_state=0,
...                     callbacks=[StopAt(0.3)]).fit(X, [i % 2 for i in range(20)])
>>> clf.stop_reason_, clf.history_[-1]["loss"] < 0.3
('callback', True)
"""

import csv
import json
import math
import os

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "HistoryLogger",
           "LearningRateScheduler", "TimeBudget"]


class Callback:
    """Base class of the callbacks: every hook does nothing; override those you need."""

    def on_fit_begin(self, estimator, loop):
        """Called once, before the first step."""

    def on_epoch_begin(self, estimator, loop, epoch):
        """Called before the first step of epoch ``epoch`` (0-based, counted over resumed
        runs)."""

    def on_epoch_end(self, estimator, loop, logs):
        """Called after every epoch (after its evaluation), with its history entry ``logs``."""

    def on_fit_end(self, estimator, loop):
        """Called once, after the last step (after the best parameters were restored)."""


def _better(mode, monitor):
    if mode == "auto":
        mode = "min" if "loss" in monitor or "bits" in monitor else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}.")
    return mode


def _value(logs, monitor, who):
    if monitor not in logs or logs[monitor] is None:
        raise ValueError(
            f"{who} monitors {monitor!r}, which this fit does not record (it records "
            f"{sorted(k for k, v in logs.items() if v is not None)}). Validation figures need "
            "validation data: early_stopping=True, validation_data=(X, y), or validation_texts.")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when a monitored figure has not improved for ``patience`` epochs (Keras' rule), and
    optionally restore the parameters of its best epoch.

    Parameters
    ----------
    monitor : str, default "val_score"
        A key of the history entries (``"loss"``, ``"val_score"``, ``"val_loss"``, ...).
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"``: lower is better for losses and bits, higher for scores.
    patience : int, default 10
        Epochs without improvement before stopping.
    min_delta : float, default 0.0
        Smallest change that counts as an improvement.
    restore_best_weights : bool, default True
        At the end of the fit, load the parameters of the best epoch.

    Attributes
    ----------
    best_ : float
        Best value seen.
    best_epoch_ : int
        Its epoch (1-based).
    stopped_epoch_ : int or None
        The epoch after which it stopped the fit.
    """

    def __init__(self, monitor="val_score", mode="auto", patience=10, min_delta=0.0,
                 restore_best_weights=True):
        self.monitor = monitor
        self.mode = _better(mode, monitor)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best_weights = restore_best_weights

    def on_fit_begin(self, estimator, loop):
        self.best_ = math.inf if self.mode == "min" else -math.inf
        self.best_epoch_ = 0
        self.stopped_epoch_ = None
        self._wait = 0
        self._params = None

    def on_epoch_end(self, estimator, loop, logs):
        value = _value(logs, self.monitor, "EarlyStopping")
        sign = 1.0 if self.mode == "max" else -1.0
        if sign * value > sign * self.best_ + self.min_delta:
            self.best_, self.best_epoch_, self._wait = value, loop.epoch, 0
            if self.restore_best_weights:
                self._params = {k: v.copy() for k, v in loop.net.params.items()}
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch_ = loop.epoch
            loop.stop_training = True

    def on_fit_end(self, estimator, loop):
        if self.restore_best_weights and self._params is not None:
            loop.net.load_state_dict(self._params)


class ModelCheckpoint(Callback):
    """Save the estimator (``estimator.save(path)``, atomically) after every epoch, or only when a
    monitored figure improved.

    Parameters
    ----------
    path : str or path-like
        The file; ``"{epoch}"`` in it is replaced by the epoch number (1-based).
    monitor : str, optional
        With ``save_best_only``, the figure that decides.
    mode : {"auto", "min", "max"}, default "auto"
    save_best_only : bool, default False
    """

    def __init__(self, path, monitor="val_score", mode="auto", save_best_only=False):
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = _better(mode, monitor)
        self.save_best_only = save_best_only

    def on_fit_begin(self, estimator, loop):
        self.best_ = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, estimator, loop, logs):
        if self.save_best_only:
            value = _value(logs, self.monitor, "ModelCheckpoint")
            sign = 1.0 if self.mode == "max" else -1.0
            if not sign * value > sign * self.best_:
                return
            self.best_ = value
        estimator.save(self.path.replace("{epoch}", str(loop.epoch)))


class HistoryLogger(Callback):
    """Write every epoch's history entry to a file as it ends: CSV (``.csv``) or one JSON object a
    line (any other suffix, e.g. ``.jsonl``). The file is rewritten at the start of each fit.

    Parameters
    ----------
    path : str or path-like
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def on_fit_begin(self, estimator, loop):
        self._fields = None
        with open(self.path, "w", encoding="utf-8"):
            pass

    def on_epoch_end(self, estimator, loop, logs):
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            if not self.path.endswith(".csv"):
                f.write(json.dumps(logs) + "\n")
                return
            if self._fields is None:
                self._fields = list(logs)
                csv.writer(f).writerow(self._fields)
            csv.writer(f).writerow(["" if logs.get(k) is None else logs.get(k)
                                    for k in self._fields])


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch: ``lr = schedule(epoch, lr)``.

    Parameters
    ----------
    schedule : callable
        ``(epoch, lr) -> new lr``; ``epoch`` is 0-based.
    """

    def __init__(self, schedule):
        if not callable(schedule):
            raise ValueError(f"schedule must be callable (epoch, lr) -> lr, got {schedule!r}.")
        self.schedule = schedule

    def on_epoch_begin(self, estimator, loop, epoch):
        opt = loop.trainer.optimizer
        lr = float(self.schedule(epoch, float(opt.lr)))
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"the learning-rate schedule returned {lr!r} for epoch {epoch}; a "
                             "learning rate must be a finite number > 0.")
        opt.lr = lr


class TimeBudget(Callback):
    """Stop after the first epoch that ends past ``seconds`` of training (the estimators'
    ``time_budget`` parameter stops after any step instead).

    Parameters
    ----------
    seconds : float
    """

    def __init__(self, seconds):
        self.seconds = float(seconds)

    def on_epoch_end(self, estimator, loop, logs):
        if loop.elapsed() >= self.seconds:
            loop.stop_training = True
