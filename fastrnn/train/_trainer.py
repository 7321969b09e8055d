"""The training step: forward, loss, backward, clipping, optimiser, and recovery from NaN/Inf and
from divergence.

:class:`Trainer` is the engine under the estimators and the language model, and can be used on its own
with any network that has ``params``, ``grads``, ``forward`` and ``backward`` (for example
:class:`fastrnn.nn.SequenceNetwork`).
"""

import math
import warnings

from .._backend import one_blas_thread, route
from ..optim import clip_grad_norm, get_optimizer

__all__ = ["Trainer", "NonFiniteWarning", "TrainingDivergedError"]


class NonFiniteWarning(RuntimeWarning):
    """A training step produced a NaN/Inf loss or gradient, or a diverging loss; the update was
    skipped and rolled back."""


class TrainingDivergedError(FloatingPointError):
    """Training kept failing (non-finite or diverging loss) even after rolling back and lowering
    the learning rate; the parameters are those of the last good snapshot."""


class Trainer:
    """Optimisation steps with gradient clipping and recovery from non-finite values and from
    divergence.

    A step whose loss or gradient norm is NaN or infinite, or whose loss is more than
    ``divergence_factor`` times the loss at the start (or ``reference_loss``, if larger), is not
    applied: the parameters and the optimiser go back to the last good snapshot and the learning
    rate is lowered. More than ``max_failures`` such steps in a row raise
    :class:`TrainingDivergedError`, and so does a failed step once the roll-backs of the run
    have lowered the learning rate below ``min_lr_fraction`` of its value (separate failures,
    each followed by a sound step, that keep coming back).

    Parameters
    ----------
    network : object
        Has ``params`` and ``grads`` dicts and ``forward(X, lengths, state)`` /
        ``backward(dout, dh_n)``.
    optimizer : str or fastrnn.optim.Optimizer, default "adam"
        A name accepted by :func:`fastrnn.optim.get_optimizer` or an instance.
    learning_rate : float, default 1e-3
        Used when ``optimizer`` is a name.
    clip_norm : float or None, default 5.0
        Global-norm clipping threshold (``None`` disables clipping).
    max_failures : int, default 5
        Consecutive non-finite steps tolerated; one more raises ``FloatingPointError``.
    lr_backoff : float, default 0.5
        Factor applied to the learning rate after each non-finite step.
    snapshot_every : int, default 20
        Successful steps between snapshots of the parameters and optimiser state; a failed step
        restores the latest snapshot ("the last good parameters").
    reference_loss : float, optional
        The loss of an uninformed prediction (``log K`` for a softmax over ``K`` classes, 1 for
        standardised regression targets): the loss a model should never exceed far.
    divergence_factor : float or None, default 100
        A loss above ``divergence_factor * max(reference_loss, first loss)`` counts as divergence;
        ``None`` switches the check off (only non-finite values are caught).
    min_lr_fraction : float, default 1e-6
        The lowest product of back-off factors: a failed step that takes the learning rate
        below this fraction of what it would be without roll-backs raises. At a
        millionth of a usual learning rate the updates of float32 weights round to nothing, so
        a run that only goes on by lowering it further has stopped learning.

    Attributes
    ----------
    grad_norms_ : list of float
        Pre-clip global gradient norm of every step (NaN/Inf show explosions).
    n_failures_ : int
        Failed steps so far (non-finite or diverging).
    lr_backed_off_ : float
        Product of the back-off factors in the current learning rate (1 without failures; a
        roll-back also restores the learning rate of its snapshot).
    """

    def __init__(self, network, optimizer="adam", learning_rate=1e-3, clip_norm=5.0, max_failures=5,
                 lr_backoff=0.5, snapshot_every=20, reference_loss=None, divergence_factor=100.0,
                 min_lr_fraction=1e-6):
        self.network = network
        if isinstance(optimizer, str):
            self.optimizer = get_optimizer(optimizer, lr=learning_rate)
        else:
            self.optimizer = get_optimizer(optimizer)
        self.clip_norm = clip_norm
        self.max_failures = int(max_failures)
        self.lr_backoff = float(lr_backoff)
        self.snapshot_every = int(snapshot_every)
        self.reference_loss = None if reference_loss is None else float(reference_loss)
        self.divergence_factor = None if divergence_factor is None else float(divergence_factor)
        self.min_lr_fraction = float(min_lr_fraction)
        self.initial_loss_ = None
        self.grad_norms_ = []
        self.n_failures_ = 0
        self.lr_backed_off_ = 1.0
        self._consecutive = 0
        self._unverified = False
        self._good_steps = 0
        self._snapshot = None
        self._device = None
        self.take_snapshot()

    def take_snapshot(self):
        """Remember the current parameters and optimiser state as the last good ones."""
        self._snapshot_backed_off = self.lr_backed_off_
        if self._device is not None:
            self._device.snapshot()
            return
        self._snapshot = ({k: v.copy() for k, v in self.network.params.items()},
                          self.optimizer.state_dict())

    def restore_snapshot(self):
        """Put the last good parameters and optimiser state back (e.g. after an interrupted
        update)."""
        self.lr_backed_off_ = self._snapshot_backed_off
        if self._device is not None:
            self._device.restore()
            return
        params, opt_state = self._snapshot
        for k, v in params.items():
            self.network.params[k][...] = v
        self.optimizer.load_state_dict(opt_state)

    # ------------------------------------------------------------------ training on the device
    @property
    def on_device(self):
        """Whether the steps run in a device session (see :meth:`start_device`)."""
        return self._device is not None

    def start_device(self):
        """Keep the parameters, gradients and optimiser state on the GPU until
        :meth:`stop_device`, when the network's layers use ``backend="cuda"`` and the network and
        optimiser are ones the device session supports
        (``fastrnn.kernels.cuda._train.unsupported`` says why not); otherwise nothing changes.

        A step then copies its batch to the device once and the loss and gradient norm back
        once. The host parameters are stale until :meth:`sync_parameters`; the rolled-back
        snapshot is kept on the device, taken afresh when the session starts.

        Returns
        -------
        reason : str or None
            Why the steps stay on the host (``None`` when they run on the device, or when the
            layers do not use the CUDA backend at all).
        """
        if self._device is not None:
            return None
        rnn = getattr(self.network, "rnn", None)
        spec = getattr(rnn, "_spec", None)
        if spec is None or route(rnn.backend, None, spec.kind) != "cuda":
            return None
        from ..kernels.cuda._train import DeviceSession, unsupported

        why = unsupported(self.network, self.optimizer)
        if why is None:
            try:
                self._device = DeviceSession(self.network, self.optimizer, self.clip_norm)
            except ValueError as exc:  # an optimiser state the device cannot continue
                return str(exc)
            self._device.snapshot()
        return why

    def sync_parameters(self):
        """Bring the host copies of the parameters, gradients and optimiser state up to date
        with the device's (nothing to do outside a device session, or when no step ran since
        the last call). The training loop calls it before anything else reads them."""
        if self._device is not None:
            self._device.pull()

    def push_parameters(self):
        """After :meth:`sync_parameters`: hand changes made to the host parameters since (a
        callback writing into them) to the device; nothing when they are unchanged or outside a
        device session."""
        if self._device is not None:
            self._device.push()

    def stop_device(self):
        """End the device session: the host gets the parameters, gradients, optimiser state and
        the snapshot to roll back to; later steps run on the host."""
        session, self._device = self._device, None
        if session is not None:
            session.pull()
            snap = session.host_snapshot()
            if snap is not None:
                self._snapshot = snap

    def divergence_limit(self):
        """The loss above which a step counts as diverging (``inf`` before the first step or
        without the check)."""
        if self.divergence_factor is None or self.initial_loss_ is None:
            return math.inf
        anchor = self.initial_loss_
        if self.reference_loss is not None:
            anchor = max(anchor, self.reference_loss)
        return self.divergence_factor * max(anchor, 1e-12)

    def _recover(self, what, value):
        self.restore_snapshot()
        self._unverified = False  # the update in question is undone
        self._consecutive += 1
        self.n_failures_ += 1
        factor = self.lr_backoff ** self._consecutive
        lr = self.optimizer.lr * factor
        self.optimizer.lr = lr
        self.lr_backed_off_ *= factor
        if what == "diverging loss":
            problem = (f"the loss was {value:.4g}, more than {self.divergence_factor:g} times the "
                       f"loss at the start of training or of an uninformed prediction "
                       f"({self.divergence_limit() / self.divergence_factor:.4g})")
        else:
            problem = f"the {what} was non-finite ({value})"
        self._last_problem = problem
        if self._consecutive > self.max_failures:
            raise TrainingDivergedError(
                f"training diverged: {problem} in {self._consecutive} consecutive steps, even "
                "after rolling back to the last good parameters and lowering the learning rate "
                f"to {lr:.3g}. Use a lower learning_rate (or a smaller clip_norm, float64, "
                "standardised inputs)."
            )
        if self.lr_backed_off_ < self.min_lr_fraction:
            raise TrainingDivergedError(
                f"training diverged: {problem}, after {self.n_failures_} failed steps in this "
                f"run; rolling back and lowering the learning rate each time has taken it to "
                f"{self.lr_backed_off_:.3g} times its value (now {lr:.3g}), below "
                f"min_lr_fraction={self.min_lr_fraction:g}, where training no longer learns. "
                "Use a lower learning_rate (or a smaller clip_norm, float64, standardised "
                "inputs); a model whose state grows without bound over a long carried stream "
                "needs its recurrent weights bounded (IndRNN's recurrent_max) or another cell."
            )
        warnings.warn(
            f"training diverged: {problem}; update skipped, parameters rolled back to the last "
            f"good snapshot, learning rate lowered to {lr:.3g}.", NonFiniteWarning, stacklevel=4)

    def step(self, X, lengths, loss_fn, state=None, dh_n=None):
        """One optimisation step on a batch.

        Parameters
        ----------
        X, lengths, state
            Passed to ``network.forward``. ``state`` may also describe the rows of a window of
            a carried state (an object with ``device_rows = True`` and ``host()``, as the
            language model's task gives): ``host()`` gives the arrays for a step on the host,
            and a step on the GPU gathers them there, returning the state carried on there.
        loss_fn : callable
            ``loss_fn(out) -> (loss, dout)``: the loss of the network's output and its gradient.
        dh_n : optional
            Gradient with respect to the final state, passed to ``network.backward``.

        Returns
        -------
        loss : float
            The batch loss (NaN/Inf if the step failed and was rolled back).
        h_n : the network's final state (to carry into the next chunk in truncated BPTT).

        Notes
        -----
        The whole step runs with BLAS on one thread (``fastrnn._backend.one_blas_thread``), not
        only the recurrent layers: the worker threads of a multithreaded BLAS product in the loss
        (a language model's softmax) keep spinning for a while after it and slow the layers' own
        threads in the next step (measured: a char LSTM language model at 2 threads trained at
        38,000 tokens/s that way against 59,000 with one BLAS thread).
        """
        with one_blas_thread():
            return self._step(X, lengths, loss_fn, state, dh_n)

    def _step(self, X, lengths, loss_fn, state, dh_n):
        rows = getattr(state, "device_rows", False)  # a window's rows of a carried state
        if self._device is not None:
            spec = getattr(loss_fn, "device_loss", None)
            if spec is not None and (state is None or rows) and dh_n is None:
                return self._device_step(X, lengths, spec, state)
            self.stop_device()  # a step the device cannot take: the rest on the host
        if rows:
            state = state.host()
        net = self.network
        out, h_n = net.forward(X, lengths, state)
        loss, dout = loss_fn(out)
        loss = float(loss)
        failed = self._failed_loss(loss, self.divergence_limit())
        if failed is not None:
            return failed, h_n
        net.backward(dout, dh_n)
        norm = clip_grad_norm(net.grads, self.clip_norm)
        self.grad_norms_.append(norm)
        if not math.isfinite(norm):
            self._recover("gradient norm", norm)
            return loss, h_n
        self.optimizer.step(net.params, net.grads)
        constrain = getattr(net, "constrain", None)
        if constrain is not None:  # bounds on parameters (IndRNN's recurrent_max)
            constrain()
        self._updated()
        return loss, h_n

    def _failed_loss(self, loss, limit):
        """Check a step's loss: when it is not finite or exceeds ``limit`` (the divergence
        limit), record the failed step, roll back and return what the step returns (the loss, or
        NaN for a diverging one); else ``None``, after ending a streak of failures."""
        if not math.isfinite(loss):
            self.grad_norms_.append(math.nan)
            self._recover("loss", loss)
            return loss
        if self.initial_loss_ is None:
            self.initial_loss_ = loss
        elif loss > limit:
            self.grad_norms_.append(math.nan)
            self._recover("diverging loss", loss)
            return math.nan
        if self._unverified:
            # the update made after the last failure led to a sound loss: the streak is over
            # (a loss computed right after a roll-back says nothing: it is the snapshot's)
            self._consecutive = 0
            self._unverified = False
        return None

    def _updated(self):
        """Count an update made: inside a streak of failures it is unverified until the next
        sound loss; a snapshot every ``snapshot_every`` good steps."""
        if self._consecutive:
            self._unverified = True
        self._good_steps += 1
        if self._good_steps % self.snapshot_every == 0 and not self._unverified:
            self.take_snapshot()

    def _device_step(self, X, lengths, spec, state):
        """:meth:`_step` in the device session: ``spec`` is the loss function's
        ``device_loss``, ``(loss, targets, coef)`` as :meth:`DeviceSession.step` takes them, and
        ``state`` ``None`` or a window's rows of a carried state (``device_rows``); the final
        state returned is then the carried state of the next window, on the device
        (``fastrnn.kernels.cuda._train.DeviceCarry``). The device skips the update itself when
        the loss or the norm is not finite or the loss exceeds :meth:`divergence_limit`, the
        cases in which the host step rolls back."""
        kind, targets, coef = spec
        limit = self.divergence_limit()
        loss, norm, h_n = self._device.step(X, lengths, kind, targets, coef, limit, state)
        failed = self._failed_loss(loss, limit)
        if failed is not None:
            return failed, h_n
        self.grad_norms_.append(norm)
        if not math.isfinite(norm):
            self._recover("gradient norm", norm)
            return loss, h_n
        self._device.advance()
        self._updated()
        return loss, h_n

    def finish(self):
        """End a run. A run must not end on an update that may have diverged again: when it ends
        inside a streak of failed steps (no update since the last failure was followed by a sound
        loss), the parameters go back to the last good snapshot, and a streak of more than one
        failure (training kept diverging) raises :class:`TrainingDivergedError`."""
        n, lr = self._consecutive, self.optimizer.lr
        if n:
            self.restore_snapshot()
            self._consecutive = 0
            self._unverified = False
        if n > 1:
            raise TrainingDivergedError(
                f"training diverged: {self._last_problem}, and the last {n} step(s) of the "
                "run failed in a row, even after rolling back to the last good parameters and "
                f"lowering the learning rate to {lr:.3g}. Use a lower "
                "learning_rate (or a smaller clip_norm, float64, standardised inputs)."
            )
