"""The training loop of every estimator: epochs (or a time budget) of optimisation steps, evaluation
on held-out data, early stopping with one rule, the best parameters restored, learning-rate
schedules, checkpoints a run can be resumed from exactly, Ctrl-C, and one progress bar per fit.

An estimator describes its data with a :class:`Task` and configures a :class:`TrainingLoop`; the
loop owns everything else. The optimisation step itself is :meth:`fastrnn.train.Trainer.step`.
"""

import math
import signal
import sys
import threading
import time
import warnings
from collections import namedtuple

import numpy as np

from .._backend import numba_cache_is_warm, route

__all__ = ["Batch", "Task", "TrainingLoop", "StoppingRule", "TrainingInterrupted", "STOP_REASONS"]

#: why a run ended (``stop_reason_`` of the estimators)
STOP_REASONS = ("max_iter", "early_stopping", "time_budget", "callback", "interrupted")

#: One optimisation step's data: the network input, the lengths, ``loss_fn(out) -> (loss, dout)``,
#: the initial recurrent state (or None), the weight of the batch loss in the epoch's mean, and its
#: size in the progress unit of the task (sequences, tokens).
Batch = namedtuple("Batch", ["X", "lengths", "loss_fn", "state", "weight", "size"])


class TrainingInterrupted(UserWarning):
    """Training stopped early on Ctrl-C; the estimator keeps the best parameters so far."""


class Task:
    """What an estimator gives the :class:`TrainingLoop` (a protocol; subclasses fill it in).

    Attributes
    ----------
    unit : str
        The progress unit (``"seq"``, ``"tok"``).
    items_name : str
        The name of the progress count in the history (``"sequences"``, ``"tokens"``).
    has_validation : bool
        Whether :meth:`evaluate` has held-out data to evaluate.
    """

    unit = "seq"
    items_name = "sequences"
    has_validation = False

    def items_per_epoch(self):
        """Progress units in one epoch (for the progress bar)."""
        raise NotImplementedError

    def start_epoch(self, rng):
        """Draw the order of a new epoch from ``rng``; return its number of steps."""
        raise NotImplementedError

    def batch(self, j):
        """The :class:`Batch` of step ``j`` of the current epoch, or ``None`` to skip it."""
        raise NotImplementedError

    def step_done(self, j, loss, h_n):
        """Called after step ``j`` with its loss (NaN if it failed) and final recurrent state."""

    def evaluate(self):
        """Metrics on the held-out data (dict of name -> float), or ``None`` without any."""
        return None

    def state_dict(self):
        """``(meta, arrays)``: the position in the current epoch, for a checkpoint."""
        return {}, {}

    def load_state_dict(self, meta, arrays):
        """Restore :meth:`state_dict`'s output (a resumed run continues the same epoch)."""

    def loss_display(self, loss):
        """``(value, label)`` of a mean training loss as the progress shows it."""
        return loss, "loss"


class StoppingRule:
    """The stopping rule of scikit-learn's MLP, on any monitored value.

    An evaluation improves when the value beats the best so far by more than ``tol`` (higher for
    ``mode="max"``, lower for ``"min"``); training stops when more than ``n_iter_no_change``
    evaluations in a row did not improve.

    Parameters
    ----------
    monitor : str
        The monitored value: ``"loss"`` (the epoch's training loss) or a metric of
        :meth:`Task.evaluate`.
    mode : {"min", "max"}
    tol : float
    n_iter_no_change : int
    active : bool, default True
        ``False`` keeps the bookkeeping (best value, best parameters) without ever stopping.

    Examples
    --------
    >>> from fastrnn.train import StoppingRule
    >>> c = StoppingRule("loss", "min", tol=0.1, n_iter_no_change=1)
    >>> [c.update(v)[0] for v in (1.0, 0.95, 0.94)]
    [False, False, True]
    """

    def __init__(self, monitor, mode, tol, n_iter_no_change, active=True):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        self.monitor = monitor
        self.mode = mode
        self.tol = float(tol)
        self.n_iter_no_change = int(n_iter_no_change)
        self.active = bool(active)
        self.best = math.inf if mode == "min" else -math.inf
        self.count = 0

    def update(self, value):
        """Record one evaluation; returns ``(stop, improved)``. NaN never improves."""
        sign = 1.0 if self.mode == "max" else -1.0
        if not (sign * value >= sign * self.best + self.tol):
            self.count += 1
        else:
            self.count = 0
        improved = bool(sign * value > sign * self.best)
        if improved:
            self.best = float(value)
        return self.active and self.count > self.n_iter_no_change, improved

    def state_dict(self):
        return {"best": _json_float(self.best), "count": self.count}

    def load_state_dict(self, state):
        best = state["best"]
        self.best = (math.inf if self.mode == "min" else -math.inf) if best is None else best
        self.count = int(state["count"])


class _StopFlag:
    """Turns the first Ctrl-C during training into a request to stop after the current step.

    A second Ctrl-C raises ``KeyboardInterrupt`` at once. Outside the main thread (where signal
    handlers cannot be installed) Ctrl-C raises at once, and the fit still keeps the best model.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                self._previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class _Progress:
    """One tqdm bar for a whole fit (nothing when ``verbose`` is 0)."""

    def __init__(self, verbose, total, initial, unit, desc="fit"):
        self.bar = None
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=min(initial, total), unit=unit,
                            unit_scale=unit == "tok",
                            desc=desc, dynamic_ncols=True, mininterval=0.5, smoothing=0.1,
                            file=sys.stderr)

    def update(self, n, post):
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(post, refresh=False)

    def write(self, message):
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _json_float(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _rng_state(rng):
    name, keys, pos, has_gauss, cached = rng.get_state()
    return np.asarray(keys, np.uint32), [str(name), int(pos), int(has_gauss), float(cached)]


def _set_rng_state(rng, keys, meta):
    rng.set_state((meta[0], np.asarray(keys, np.uint32), int(meta[1]), int(meta[2]),
                   float(meta[3])))


class TrainingLoop:
    """Epochs of optimisation steps with evaluation, stopping, schedules and checkpoints.

    Parameters
    ----------
    trainer : fastrnn.train.Trainer
        Its network's ``params`` are the parameters trained.
    task : Task
    rng : numpy RandomState
        Draws the order of every epoch.
    max_epochs : int
    max_items : int, optional
        Also stop (as at ``max_epochs``) once this many progress units (the task's ``unit``:
        sequences, tokens) were processed, inside an epoch if need be.
    time_budget : float, optional
        Stop after this many seconds (checked after every step).
    eval_interval : int, optional
        Also evaluate every this many steps inside an epoch (besides the end of each epoch).
    stopping : StoppingRule, optional
        The stopping rule (its ``monitor`` is ``"loss"`` or a metric of the task). With a metric,
        the parameters of the best evaluation are restored at the end (``restore_best``).
    restore_best : bool, default True
    plateau : fastrnn.optim.ReduceLROnPlateau, optional
        Stepped with ``plateau_monitor`` after every evaluation (``"loss"``: with the epoch's
        training loss at the end of every epoch).
    plateau_monitor : str, optional
    annealing : fastrnn.optim.AnnealingLR, optional
        Set before every step from the run's progress: the largest of the share of ``max_epochs``
        done, with ``max_items`` the share of those items processed, and with ``time_budget``
        the share of the budget spent.
    checkpoint : callable, optional
        ``checkpoint(meta, arrays)`` writes a checkpoint (the loop's state, from
        :meth:`state_dict`); called at the end of every epoch and when the run stops early.
    checkpoint_path : str, optional
        Where ``checkpoint`` writes (for messages).
    verbose : int, default 0
        1: one progress bar; ``log_level`` and above: also a line per evaluation.
    log_level : int, default 1
    incremental : bool, default False
        One pass of ``partial_fit``: the stopping rule is updated but never stops the run.
    seconds : float, default 0.0
        Training time spent before this run (warm starts): counted in the history and the
        schedules' time, not in the budget.
    callbacks : list of fastrnn.callbacks.Callback, optional
        Called at the start, at the start and end of every epoch, and at the end; a callback
        stops the run by setting ``stop_training``.
    estimator : object, optional
        What is being fitted (passed to the callbacks).

    Attributes
    ----------
    epoch : int
        Epochs completed.
    step : int
        Steps taken.
    items : int
        Progress units processed (sequences, tokens).
    loss_curve : list of float
        Mean training loss of each completed epoch.
    grad_norm_curve : list of float
        Mean gradient norm (before clipping) of each completed epoch.
    evaluations : list of dict
        The metrics of every evaluation.
    history : list of dict
        One entry per evaluation point (every epoch end, and every ``eval_interval`` steps):
        ``epoch`` (fractional), ``step``, the progress count (``sequences`` or ``tokens``: the
        task's ``items_name``), ``seconds``, ``loss`` (mean since the previous entry),
        ``grad_norm``, ``lr`` and the task's metrics.
    best_params : dict or None
        The parameters at the best evaluation of the monitored metric.
    stop_reason : str
        One of :data:`STOP_REASONS`.
    """

    def __init__(self, trainer, task, rng, max_epochs, time_budget=None, eval_interval=None,
                 stopping=None, restore_best=True, plateau=None, plateau_monitor=None,
                 annealing=None, checkpoint=None, checkpoint_path=None, verbose=0, log_level=1,
                 incremental=False, seconds=0.0, callbacks=None, estimator=None, max_items=None):
        self.trainer = trainer
        self.task = task
        self.rng = rng
        self.max_epochs = int(max_epochs)
        self.max_items = None if max_items is None else int(max_items)
        self.time_budget = time_budget
        self.eval_interval = eval_interval
        self.stopping = stopping
        self.restore_best = restore_best
        self.plateau, self.plateau_monitor = plateau, plateau_monitor
        self.annealing = annealing
        self.checkpoint = checkpoint
        self.checkpoint_path = None if checkpoint_path is None else str(checkpoint_path)
        self.verbose = verbose
        self.log_level = log_level
        self.incremental = incremental
        self.callbacks = list(callbacks or [])
        self.estimator = estimator
        self.stop_training = False
        self.net = trainer.network
        self.epoch = 0
        self.position = 0        # steps done in the current epoch
        self.n_steps_epoch = 0   # steps of the current epoch
        self.step = 0
        self.items = 0
        self.seconds = float(seconds)
        self.loss_curve = []
        self.grad_norm_curve = []
        self.evaluations = []
        self.history = []
        self.best_params = None
        self.stop_reason = None
        self._sums = dict(epoch=0.0, epoch_w=0.0, recent=0.0, recent_w=0.0)
        self._norm_marks = dict(epoch=len(trainer.grad_norms_), recent=len(trainer.grad_norms_))
        self._in_epoch = False
        self._t0 = None
        self._saved_at = None  # (epoch, step, inside an epoch) of the checkpoint on disk

    # -------------------------------------------------------------- time and progress
    def elapsed(self):
        """Seconds of training so far (earlier runs included)."""
        return self.seconds + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    def progress(self):
        """The run's progress in [0, 1] for the schedules."""
        done = self.epoch + (self.position / self.n_steps_epoch if self.n_steps_epoch else 0.0)
        p = done / self.max_epochs
        if self.max_items:
            p = max(p, self.items / self.max_items)
        if self.time_budget:
            p = max(p, self.elapsed() / float(self.time_budget))
        return p

    def _items_done(self):
        return self.max_items is not None and self.items >= self.max_items

    def _over_budget(self):
        return bool(self.time_budget) and time.perf_counter() - self._t0 >= self.time_budget

    def _mean_norm(self, since):
        norms = np.asarray(self.trainer.grad_norms_[since:], dtype=np.float64)
        norms = norms[np.isfinite(norms)]
        return float(norms.mean()) if norms.size else math.nan

    # -------------------------------------------------------------- evaluation
    def _evaluate(self):
        """Evaluate, record the history entry, update best parameters, schedule and stopping rule;
        returns whether the stopping rule says stop."""
        self.trainer.sync_parameters()
        metrics = self.task.evaluate()
        stop = False
        if metrics is not None:
            metrics = {k: float(v) for k, v in metrics.items()}
            self.evaluations.append(metrics)
            rule = self.stopping
            if rule is not None and rule.monitor in metrics:
                stop, improved = rule.update(metrics[rule.monitor])
                if improved and self.restore_best:
                    self.best_params = {k: v.copy() for k, v in self.net.params.items()}
            if self.plateau is not None and self.plateau_monitor in metrics:
                self.plateau.step(metrics[self.plateau_monitor])
        self._record(metrics)
        return stop and not self.incremental

    def _record(self, metrics):
        s = self._sums
        entry = dict(
            epoch=round(self.epoch + (self.position / self.n_steps_epoch
                                      if self.n_steps_epoch and self._in_epoch else 0.0), 4),
            step=self.step, **{self.task.items_name: self.items},
            seconds=round(self.elapsed(), 2),
            loss=_json_float(s["recent"] / s["recent_w"]) if s["recent_w"] else None,
            grad_norm=_json_float(self._mean_norm(self._norm_marks["recent"])),
            lr=float(self.trainer.optimizer.lr))
        entry.update(metrics or {})
        self.history.append(entry)
        s["recent"] = s["recent_w"] = 0.0
        self._norm_marks["recent"] = len(self.trainer.grad_norms_)
        if self.verbose >= self.log_level:
            self._bar.write(self._describe(entry))

    def _describe(self, entry):
        value, label = self.task.loss_display(entry["loss"]) if entry["loss"] is not None \
            else (math.nan, "loss")
        items = self.task.items_name
        extra = "".join(f" {k} {v:.4f}" for k, v in entry.items()
                        if k not in ("epoch", "step", items, "seconds", "loss", "grad_norm", "lr")
                        and v is not None)
        return (f"epoch {entry['epoch']:.2f} step {entry['step']} {entry[items]} "
                f"{self.task.unit} {entry['seconds']:.0f}s {label} {value:.4f}{extra} "
                f"lr {entry['lr']:.3g}")

    def _end_epoch(self):
        """Close an epoch; returns why the run stops now, or None."""
        s = self._sums
        epoch_loss = s["epoch"] / s["epoch_w"] if s["epoch_w"] else math.nan
        self.loss_curve.append(epoch_loss)
        self.grad_norm_curve.append(self._mean_norm(self._norm_marks["epoch"]))
        self._norm_marks["epoch"] = len(self.trainer.grad_norms_)
        s["epoch"] = s["epoch_w"] = 0.0
        self.epoch += 1
        self.position = 0
        self._in_epoch = False
        stop = self._evaluate()
        rule = self.stopping
        if rule is not None and rule.monitor == "loss":
            loss_stop, _ = rule.update(epoch_loss)
            stop = stop or (loss_stop and not self.incremental)
        if self.plateau is not None and self.plateau_monitor == "loss":
            self.plateau.step(epoch_loss)
        self.trainer.sync_parameters()
        for cb in self.callbacks:
            cb.on_epoch_end(self.estimator, self, dict(self.history[-1]))
        self.trainer.push_parameters()
        if stop:
            return "early_stopping"
        return "callback" if self.stop_training else None

    # -------------------------------------------------------------- the loop
    def run(self):
        """Train until ``max_epochs``, the stopping rule, the time budget or Ctrl-C.

        Returns
        -------
        stop_reason : str
        """
        self._t0 = time.perf_counter()
        task, trainer = self.task, self.trainer
        self.net.train()
        per_epoch = task.items_per_epoch()
        total = per_epoch * self.max_epochs
        self._bar = _Progress(self.verbose, total if self.max_items is None
                              else min(total, self.max_items), self.items, task.unit)
        self.stop_training = False
        if self.verbose:
            self._say_when_compiling()
        for cb in self.callbacks:
            cb.on_fit_begin(self.estimator, self)
        # with backend="cuda", the parameters stay on the device until the end of the run; the
        # host copies are brought up to date before every evaluation, callback and checkpoint
        # (and changes a callback makes to them are handed back)
        trainer.start_device()
        reason = "max_iter"
        interrupted = in_step = False
        with _StopFlag() as flag:
            try:
                while (self.epoch < self.max_epochs and reason == "max_iter"
                       and not self._items_done()):
                    if not self._in_epoch:
                        trainer.sync_parameters()
                        for cb in self.callbacks:
                            cb.on_epoch_begin(self.estimator, self, self.epoch)
                        trainer.push_parameters()
                        self.n_steps_epoch = task.start_epoch(self.rng)
                        self.position = 0
                        self._in_epoch = True
                    for j in range(self.position, self.n_steps_epoch):
                        batch = task.batch(j)
                        if batch is None:
                            self.position = j + 1
                            continue
                        if self.annealing is not None:
                            self.annealing.set_progress(self.progress())
                        in_step = True
                        loss, h_n = trainer.step(batch.X, batch.lengths, batch.loss_fn,
                                                 batch.state)
                        in_step = False
                        task.step_done(j, loss, h_n)
                        self.position = j + 1
                        self.step += 1
                        self.items += batch.size
                        if math.isfinite(loss) and batch.weight > 0:
                            for k in ("epoch", "recent"):
                                self._sums[k] += loss * batch.weight
                                self._sums[k + "_w"] += batch.weight
                        if self._bar.bar is not None:  # the postfix only where it is shown
                            s = self._sums
                            shown, label = task.loss_display(s["epoch"] / s["epoch_w"]) \
                                if s["epoch_w"] else (math.nan, "loss")
                            post = {label: f"{shown:.4g}"}
                            if self.evaluations:
                                post.update({k: f"{v:.4g}"
                                             for k, v in self.evaluations[-1].items()})
                            self._bar.update(batch.size, post)
                        if flag.requested:
                            interrupted = True
                            break
                        if (self.eval_interval and task.has_validation
                                and j + 1 < self.n_steps_epoch
                                and self.step % int(self.eval_interval) == 0):
                            if self._evaluate():
                                reason = "early_stopping"
                                break
                        if self._over_budget():
                            reason = "time_budget"
                            break
                        if self._items_done():
                            break
                    if interrupted:
                        break
                    if self._in_epoch and self.position >= self.n_steps_epoch:
                        reason = self._end_epoch() or reason
                        if self.checkpoint is not None:
                            self._write_checkpoint()
            except KeyboardInterrupt:
                interrupted = True
                if in_step:
                    # Interrupted inside an update (a second Ctrl-C, or not in the main thread):
                    # the parameters may be half-updated, so go back to the trainer's last good
                    # snapshot. The position in the epoch no longer matches them, so no checkpoint
                    # is written (the one of the last epoch stays valid).
                    trainer.restore_snapshot()
            finally:
                trainer.stop_device()
        if interrupted:
            reason = "interrupted"
        self._bar.close()
        cut = self._in_epoch and self.position < self.n_steps_epoch  # stopped inside an epoch
        if (reason != "max_iter" or cut) and self.checkpoint is not None and not in_step:
            self._write_checkpoint()
        if (reason == "time_budget" or (reason == "max_iter" and cut)) and self._sums["recent_w"] \
                and task.has_validation:
            # the steps since the last evaluation count too (after the checkpoint, so that a
            # resumed run takes exactly the steps of an uninterrupted one)
            self._evaluate()
        self.stop_reason = reason
        self.seconds = self.elapsed()
        self._t0 = None
        self.net.eval()
        self.net.release()
        trainer.finish()
        if self.best_params is not None:
            self.net.load_state_dict(self.best_params)
        for cb in self.callbacks:
            cb.on_fit_end(self.estimator, self)
        if interrupted:
            warnings.warn(
                f"training interrupted after {self.step} steps ({self.items} "
                f"{self.task.unit}); the model keeps "
                + ("the parameters of the best evaluation so far" if self.best_params is not None
                   else "the latest parameters") + self._resume_note(in_step) + ".",
                TrainingInterrupted, stacklevel=3)
        return reason

    def _say_when_compiling(self):
        rnn = getattr(self.net, "rnn", None)
        if rnn is not None and route(rnn.backend) == "numba" and not numba_cache_is_warm():
            self._bar.write("fastrnn: compiling the kernels for this machine, once (about 10-30 s;"
                            " later runs load them from Numba's cache) ...")

    # -------------------------------------------------------------- checkpoints
    def _rngs(self):
        out = {"loop": self.rng}
        for name, obj in (("net", self.net), ("rnn", getattr(self.net, "rnn", None))):
            rng = getattr(obj, "rng_", None)
            if rng is not None:
                out[name] = rng
        return out

    def state_dict(self):
        """``(meta, arrays)`` of everything needed to continue the run exactly: the loop's position
        and history, the parameters (current and best), the optimiser, the schedules, the random
        states and the task's position in its epoch."""
        opt = self.trainer.optimizer
        opt_state = opt.state_dict()
        arrays = {f"param/{k}": v for k, v in self.net.params.items()}
        if self.best_params is not None:
            arrays.update({f"best/{k}": v for k, v in self.best_params.items()})
        opt_scalars = {}
        for pname, st in opt_state["state"].items():
            for key, val in st.items():
                if isinstance(val, np.ndarray):
                    arrays[f"opt/{pname}/{key}"] = val
                else:
                    opt_scalars.setdefault(pname, {})[key] = val
        rngs = {}
        for name, rng in self._rngs().items():
            arrays[f"rng/{name}"], rngs[name] = _rng_state(rng)
        arrays["grad_norms"] = np.asarray(self.trainer.grad_norms_, np.float64)
        task_meta, task_arrays = self.task.state_dict() if self._in_epoch else ({}, {})
        arrays.update({f"task/{k}": v for k, v in task_arrays.items()})
        meta = dict(
            epoch=self.epoch, position=self.position if self._in_epoch else 0,
            in_epoch=self._in_epoch, step=self.step, items=self.items, seconds=self.elapsed(),
            loss_curve=[_json_float(x) for x in self.loss_curve],
            grad_norm_curve=[_json_float(x) for x in self.grad_norm_curve],
            evaluations=self.evaluations, history=self.history,
            sums={k: float(v) for k, v in self._sums.items()},
            norm_marks=self._norm_marks,
            stopping=None if self.stopping is None else self.stopping.state_dict(),
            plateau=(None if self.plateau is None else
                     {k: (_json_float(v) if isinstance(v, float) else v)
                      for k, v in self.plateau.state_dict().items()}),
            annealing=(None if self.annealing is None else
                       {k: _json_float(v) if isinstance(v, float) else v
                        for k, v in self.annealing.state_dict().items()}),
            optimizer=dict(name=opt_state["optimizer"], lr=opt_state["lr"],
                           step_count=opt_state["step_count"], scalars=opt_scalars),
            trainer=dict(n_failures=self.trainer.n_failures_,
                         lr_backed_off=self.trainer.lr_backed_off_,
                         initial_loss=self.trainer.initial_loss_),
            rngs=rngs, task=task_meta, has_best=self.best_params is not None)
        return meta, arrays

    def _write_checkpoint(self):
        self.trainer.sync_parameters()
        self.checkpoint(*self.state_dict())
        self._saved_at = (self.epoch, self.step, self._in_epoch)

    def _resume_note(self, in_step):
        """How an interrupted run can be resumed: only from a checkpoint that exists."""
        if self.checkpoint is None:
            return ""
        if self._saved_at is None:
            return ("; no checkpoint was written (the run was interrupted inside a step, before "
                    "its first checkpoint), so it cannot be resumed")
        where = f" {self.checkpoint_path!r}" if self.checkpoint_path else " its checkpoint"
        note = f" and the run can be resumed from{where} with fit(..., resume=True)"
        if in_step:  # interrupted inside an update: the checkpoint on disk is an older one
            epoch, step, inside = self._saved_at
            where = f"step {step}" if inside else f"the end of epoch {epoch}"
            note += f", from its checkpoint at {where} (the steps since then are lost)"
        return note

    def load_state_dict(self, meta, arrays):
        """Continue the run saved by :meth:`state_dict` (same network, optimiser and task)."""
        net, trainer = self.net, self.trainer
        net.load_state_dict({k: arrays[f"param/{k}"] for k in net.params})
        if meta["has_best"]:
            self.best_params = {k: arrays[f"best/{k}"].copy() for k in net.params}
        opt = trainer.optimizer
        o = meta["optimizer"]
        if o["name"] != type(opt).__name__:
            raise ValueError(f"the checkpoint was trained with {o['name']}, not "
                             f"{type(opt).__name__}; use the same optimizer to resume.")
        state = {}
        for key, val in arrays.items():
            if key.startswith("opt/"):
                pname, _, sub = key[len("opt/"):].rpartition("/")
                state.setdefault(pname, {})[sub] = val
        for pname, scalars in o["scalars"].items():
            state.setdefault(pname, {}).update(scalars)
        opt.load_state_dict(dict(optimizer=o["name"], lr=o["lr"], step_count=o["step_count"],
                                 state=state))
        if self.stopping is not None and meta["stopping"] is not None:
            self.stopping.load_state_dict(meta["stopping"])
        if self.plateau is not None and meta["plateau"] is not None:
            st = dict(meta["plateau"])
            if st.get("best") is None:
                st["best"] = math.inf
            self.plateau.load_state_dict(st)
        if self.annealing is not None and meta["annealing"] is not None:
            self.annealing.load_state_dict(meta["annealing"])
        for name, rng in self._rngs().items():
            _set_rng_state(rng, arrays[f"rng/{name}"], meta["rngs"][name])
        trainer.grad_norms_ = list(arrays["grad_norms"])
        trainer.n_failures_ = int(meta["trainer"]["n_failures"])
        trainer.lr_backed_off_ = float(meta["trainer"].get("lr_backed_off", 1.0))
        trainer.initial_loss_ = meta["trainer"]["initial_loss"]
        trainer.take_snapshot()
        self.epoch, self.step, self.items = int(meta["epoch"]), int(meta["step"]), int(meta["items"])
        self.position = int(meta["position"])
        self._in_epoch = bool(meta["in_epoch"])
        self.seconds = float(meta["seconds"])
        self.loss_curve = [math.nan if x is None else x for x in meta["loss_curve"]]
        self.grad_norm_curve = [math.nan if x is None else x for x in meta["grad_norm_curve"]]
        self.evaluations = [dict(e) for e in meta["evaluations"]]
        self.history = [dict(h) for h in meta["history"]]
        self._sums = {k: float(v) for k, v in meta["sums"].items()}
        self._norm_marks = {k: int(v) for k, v in meta["norm_marks"].items()}
        self._saved_at = (self.epoch, self.step, self._in_epoch)
        if self._in_epoch:
            prefix = "task/"
            self.n_steps_epoch = self.task.load_state_dict(
                meta["task"], {k[len(prefix):]: v for k, v in arrays.items()
                               if k.startswith(prefix)})
