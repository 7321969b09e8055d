"""Learning-rate schedules (see :mod:`fastrnn.optim`)."""

import copy
import math

from ._optimizers import _check_int, _check_real

__all__ = ["LRScheduler", "ConstantLR", "StepLR", "ExponentialLR", "ReduceLROnPlateau",
           "AnnealingLR"]


# ---------------------------------------------------------------------------
# learning-rate schedules
# ---------------------------------------------------------------------------

class LRScheduler:
    """Base class of the learning-rate schedules.

    A schedule changes ``optimizer.lr`` when its :meth:`step` is called, once
    per epoch (after the optimiser steps of that epoch).

    Parameters
    ----------
    optimizer : Optimizer
        Any object with a float attribute ``lr``.

    Attributes
    ----------
    base_lr : float
        ``optimizer.lr`` when the schedule was created.
    last_epoch : int
        Number of calls to :meth:`step` so far.
    """

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise ValueError(
                f"{type(self).__name__} needs an optimizer with an 'lr' attribute, got "
                f"{type(optimizer).__name__}; pass a fastrnn.optim.Optimizer."
            )
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0

    def get_last_lr(self):
        """Return the learning rate currently set on the optimiser (float)."""
        return float(self.optimizer.lr)

    def step(self):
        """Advance the schedule by one epoch and update ``optimizer.lr``."""
        self.last_epoch += 1
        self.optimizer.lr = float(self._next_lr(float(self.optimizer.lr)))

    def _next_lr(self, lr):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self):
        """Return the schedule's state as a plain dict (without the optimiser)."""
        return {k: copy.deepcopy(v) for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a state produced by :meth:`state_dict`."""
        for k, v in state_dict.items():
            if k != "optimizer":
                setattr(self, k, copy.deepcopy(v))


class ConstantLR(LRScheduler):
    r"""Constant learning rate, optionally scaled down for the first epochs.

    .. math::

        \eta_e = \begin{cases} \eta_0 \cdot \text{factor} & e < \text{total\_iters} \\
        \eta_0 & e \ge \text{total\_iters} \end{cases}

    With the defaults the learning rate never changes.  With ``factor`` and
    ``total_iters`` set it matches :class:`torch.optim.lr_scheduler.ConstantLR`
    (whose defaults are ``factor=1/3, total_iters=5``).

    Parameters
    ----------
    optimizer : Optimizer
        Optimiser whose ``lr`` is scheduled.
    factor : float, default=1.0
        Multiplier in (0, 1] applied during the first ``total_iters`` epochs.
    total_iters : int, default=0
        Number of epochs at the reduced rate.
    """

    def __init__(self, optimizer, factor=1.0, total_iters=0):
        super().__init__(optimizer)
        self.factor = _check_real("factor", factor, low=0.0, high=1.0, low_open=True)
        self.total_iters = _check_int("total_iters", total_iters, low=0)
        self.optimizer.lr = self._next_lr(self.optimizer.lr)

    def _next_lr(self, lr):
        if self.last_epoch < self.total_iters:
            return self.base_lr * self.factor
        if self.last_epoch == self.total_iters:
            return self.base_lr
        return lr


class StepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    .. math:: \eta_e = \eta_0\, \gamma^{\lfloor e / \text{step\_size} \rfloor}

    (applied multiplicatively to the current rate, as
    :class:`torch.optim.lr_scheduler.StepLR` does).

    Parameters
    ----------
    optimizer : Optimizer
        Optimiser whose ``lr`` is scheduled.
    step_size : int
        Period in epochs, >= 1.
    gamma : float, default=0.1
        Multiplicative factor, > 0.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = _check_int("step_size", step_size, low=1)
        self.gamma = _check_real("gamma", gamma, low=0.0, low_open=True)

    def _next_lr(self, lr):
        if self.last_epoch % self.step_size == 0:
            return lr * self.gamma
        return lr


class ExponentialLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every epoch.

    .. math:: \eta_e = \eta_0\, \gamma^{e}

    Parameters
    ----------
    optimizer : Optimizer
        Optimiser whose ``lr`` is scheduled.
    gamma : float
        Multiplicative factor per epoch, > 0.
    """

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer)
        self.gamma = _check_real("gamma", gamma, low=0.0, low_open=True)

    def _next_lr(self, lr):
        return lr * self.gamma


class ReduceLROnPlateau(LRScheduler):
    r"""Reduce the learning rate when a monitored metric stops improving.

    Semantics of :class:`torch.optim.lr_scheduler.ReduceLROnPlateau`.  A
    metric value :math:`a` improves on the best so far :math:`a^*` when (mode
    ``"min"``, relative threshold)

    .. math:: a < a^* (1 - \text{threshold})

    (``"max"``: :math:`a > a^*(1 + \text{threshold})`; with
    ``threshold_mode="abs"``: :math:`a < a^* - \text{threshold}` resp.
    :math:`a > a^* + \text{threshold}`).  After more than ``patience``
    consecutive epochs without improvement the rate becomes
    :math:`\max(\eta\cdot\text{factor}, \text{min\_lr})` (changes smaller than
    ``eps`` are skipped), the bad-epoch count restarts and ``cooldown``
    epochs pass before bad epochs are counted again.  A NaN metric is never an
    improvement.

    Parameters
    ----------
    optimizer : Optimizer
        Optimiser whose ``lr`` is scheduled.
    mode : {"min", "max"}, default="min"
        Whether the metric should decrease (a loss) or increase (an accuracy).
    factor : float, default=0.1
        Multiplier in (0, 1) applied on a plateau.
    patience : int, default=10
        Epochs without improvement tolerated before reducing.
    threshold : float, default=1e-4
        Minimal (relative or absolute) change that counts as an improvement.
    min_lr : float, default=0.0
        Lower bound on the learning rate.
    threshold_mode : {"rel", "abs"}, default="rel"
        Relative or absolute threshold.
    cooldown : int, default=0
        Epochs to wait after a reduction before counting bad epochs again.
    eps : float, default=1e-8
        Reductions smaller than this are ignored.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 min_lr=0.0, threshold_mode="rel", cooldown=0, eps=1e-8):
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}.")
        self.mode = mode
        self.threshold_mode = threshold_mode
        self.factor = _check_real("factor", factor, low=0.0, high=1.0,
                                  low_open=True, high_open=True)
        self.patience = _check_int("patience", patience, low=0)
        self.threshold = _check_real("threshold", threshold, low=0.0)
        self.min_lr = _check_real("min_lr", min_lr, low=0.0)
        self.cooldown = _check_int("cooldown", cooldown, low=0)
        self.eps = _check_real("eps", eps, low=0.0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _is_better(self, a):
        best = self.best
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (1.0 + self.threshold)
        return a > best + self.threshold

    def step(self, metric):
        """Record this epoch's metric and reduce ``optimizer.lr`` on a plateau.

        Parameters
        ----------
        metric : float
            Value of the monitored quantity (e.g. the validation loss).
        """
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = float(self.optimizer.lr)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0


class AnnealingLR(LRScheduler):
    r"""Cosine or linear annealing over the progress of a run (Loshchilov & Hutter 2017), with an
    optional constant phase first.

    With the progress :math:`p \in [0, 1]` of the run (share of the epochs done, or of a time
    budget spent) and :math:`a` = ``anneal_fraction``, the annealing progress is
    :math:`q = \min(\max(p - (1 - a), 0) / a, 1)` and

    .. math::

        \eta = \eta_{\min} + (\eta_0 - \eta_{\min}) \, s(q), \qquad
        s(q) = \tfrac12 (1 + \cos \pi q) \text{ (cosine)} \quad\text{or}\quad 1 - q
        \text{ (linear)},

    so the rate stays at :math:`\eta_0` for the first :math:`1 - a` of the run ("warmup-stable-
    decay" without the warmup, Hu et al. 2024) and reaches :math:`\eta_{\min}` at its end. When
    something else lowered the rate between two calls (a training step that failed and backed the
    rate off), that factor is kept for the rest of the run.

    Parameters
    ----------
    optimizer : Optimizer
    kind : {"cosine", "linear"}, default "cosine"
    min_lr : float, default 0.0
    anneal_fraction : float in (0, 1], default 1.0

    Examples
    --------
    >>> from fastrnn.optim import SGD, AnnealingLR
    >>> opt = SGD(lr=0.1)
    >>> sched = AnnealingLR(opt, "linear", min_lr=0.0, anneal_fraction=0.5)
    >>> [round(sched.set_progress(p), 3) for p in (0.0, 0.5, 0.75, 1.0)]
    [0.1, 0.1, 0.05, 0.0]
    """

    def __init__(self, optimizer, kind="cosine", min_lr=0.0, anneal_fraction=1.0):
        super().__init__(optimizer)
        if kind not in ("cosine", "linear"):
            raise ValueError(f"kind must be 'cosine' or 'linear', got {kind!r}.")
        self.kind = kind
        self.min_lr = _check_real("min_lr", min_lr, low=0.0)
        self.anneal_fraction = _check_real("anneal_fraction", anneal_fraction, low=0.0, high=1.0,
                                           low_open=True)
        self._last_lr = None
        self._factor = 1.0

    def lr_at(self, progress):
        """The learning rate at ``progress`` (without a backed-off factor)."""
        a = self.anneal_fraction
        q = min(max(progress - (1.0 - a), 0.0) / a, 1.0)
        shape = 0.5 * (1.0 + math.cos(math.pi * q)) if self.kind == "cosine" else 1.0 - q
        return self.min_lr + (self.base_lr - self.min_lr) * shape

    def set_progress(self, progress):
        """Set ``optimizer.lr`` for ``progress`` in [0, 1]; returns it."""
        opt = self.optimizer
        if self._last_lr is not None and opt.lr < self._last_lr:
            self._factor *= opt.lr / self._last_lr
        opt.lr = self._last_lr = self.lr_at(progress) * self._factor
        return opt.lr

    def step(self):
        raise RuntimeError("AnnealingLR follows the progress of a run: call set_progress(p).")
