"""The training step: forward, loss, backward, clipping, optimiser, and recovery from NaN/Inf.

:class:`Trainer` is the engine under the estimators and the language model, and can be used on its own
with any network that has ``params``, ``grads``, ``forward`` and ``backward`` (for example
:class:`fastrnn.nn.SequenceNetwork`).
"""

import math
import warnings

import numpy as np

from ._backend import one_blas_thread
from .optim import clip_grad_norm, get_optimizer

__all__ = ["Trainer", "NonFiniteWarning", "truncated_bptt_batches", "reset_streams"]


class NonFiniteWarning(RuntimeWarning):
    """A training step produced a NaN/Inf loss or gradient; the update was skipped and rolled back."""


class Trainer:
    """Optimisation steps with gradient clipping and recovery from non-finite values (SPEC §3).

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
        Successful steps between snapshots of the parameters and optimiser state; a non-finite step
        restores the latest snapshot ("the last good parameters").

    Attributes
    ----------
    grad_norms_ : list of float
        Pre-clip global gradient norm of every step (NaN/Inf show explosions).
    n_failures_ : int
        Non-finite steps so far.
    """

    def __init__(self, network, optimizer="adam", learning_rate=1e-3, clip_norm=5.0, max_failures=5,
                 lr_backoff=0.5, snapshot_every=20):
        self.network = network
        if isinstance(optimizer, str):
            self.optimizer = get_optimizer(optimizer, lr=learning_rate)
        else:
            self.optimizer = get_optimizer(optimizer)
        self.clip_norm = clip_norm
        self.max_failures = int(max_failures)
        self.lr_backoff = float(lr_backoff)
        self.snapshot_every = int(snapshot_every)
        self.grad_norms_ = []
        self.n_failures_ = 0
        self._consecutive = 0
        self._good_steps = 0
        self._snapshot = None
        self.take_snapshot()

    def take_snapshot(self):
        """Remember the current parameters and optimiser state as the last good ones."""
        self._snapshot = ({k: v.copy() for k, v in self.network.params.items()},
                          self.optimizer.state_dict())

    def _recover(self, what, value):
        params, opt_state = self._snapshot
        for k, v in params.items():
            self.network.params[k][...] = v
        self.optimizer.load_state_dict(opt_state)
        self._consecutive += 1
        self.n_failures_ += 1
        lr = self.optimizer.lr * self.lr_backoff ** self._consecutive
        self.optimizer.lr = lr
        if self._consecutive > self.max_failures:
            raise FloatingPointError(
                f"the {what} was non-finite ({value}) in {self._consecutive} consecutive steps, even "
                f"after rolling back to the last good parameters and lowering the learning rate to "
                f"{lr:.3g}. Try a lower learning_rate, a smaller clip_norm, float64, or standardise "
                "the inputs."
            )
        warnings.warn(
            f"non-finite {what} ({value}): update skipped, parameters rolled back to the last good "
            f"snapshot, learning rate lowered to {lr:.3g}.", NonFiniteWarning, stacklevel=3)

    def step(self, X, lengths, loss_fn, state=None, dh_n=None):
        """One optimisation step on a batch.

        Parameters
        ----------
        X, lengths, state
            Passed to ``network.forward``.
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
        The whole step runs with BLAS on one thread (:func:`fastrnn._backend.one_blas_thread`), not
        only the recurrent layers: the worker threads of a multithreaded BLAS product in the loss
        (a language model's softmax) keep spinning for a while after it and slow the layers' own
        threads in the next step (measured: a char LSTM language model at 2 threads trained at
        38,000 tokens/s that way against 59,000 with one BLAS thread).
        """
        with one_blas_thread():
            return self._step(X, lengths, loss_fn, state, dh_n)

    def _step(self, X, lengths, loss_fn, state, dh_n):
        net = self.network
        out, h_n = net.forward(X, lengths, state)
        loss, dout = loss_fn(out)
        loss = float(loss)
        if not math.isfinite(loss):
            self.grad_norms_.append(math.nan)
            self._recover("loss", loss)
            return loss, h_n
        net.backward(dout, dh_n)
        norm = clip_grad_norm(net.grads, self.clip_norm)
        self.grad_norms_.append(norm)
        if not math.isfinite(norm):
            self._recover("gradient norm", norm)
            return loss, h_n
        self.optimizer.step(net.params, net.grads)
        if self._consecutive:
            # Success after failures: keep the lowered learning rate, reset the streak.
            self._consecutive = 0
        self._good_steps += 1
        if self._good_steps % self.snapshot_every == 0:
            self.take_snapshot()
        return loss, h_n


def truncated_bptt_batches(streams, bptt):
    """Cut parallel token streams into chunks for truncated back-propagation through time.

    Parameters
    ----------
    streams : ndarray of shape (B, N)
        ``B`` parallel streams of ``N`` token ids (a long text split into ``B`` equal parts).
    bptt : int
        Truncation length ``k``: the gradient flows back at most ``k`` steps.

    Yields
    ------
    inputs : ndarray of shape (B, k')
        Tokens ``t .. t+k'-1`` (``k' <= k``; the last chunk may be shorter).
    targets : ndarray of shape (B, k')
        The next tokens ``t+1 .. t+k'`` (teacher forcing).

    Notes
    -----
    The caller carries the final state of one chunk into the next as its initial state, without
    back-propagating through it: that is the truncation.
    """
    streams = np.asarray(streams)
    if streams.ndim != 2:
        raise ValueError(f"streams must be 2-D (n_streams, n_tokens), got shape {streams.shape}.")
    if int(bptt) < 1:
        raise ValueError(f"bptt must be a positive integer, got {bptt!r}.")
    N = streams.shape[1]
    for start in range(0, N - 1, int(bptt)):
        stop = min(start + int(bptt), N - 1)
        yield streams[:, start:stop], streams[:, start + 1:stop + 1]


def reset_streams(state, streams):
    """Zero the carried state of some streams (e.g. where a new document starts), in place.

    Parameters
    ----------
    state : ndarray of shape (num_layers * num_directions, B, H), or a tuple of them (LSTM ``(h, c)``)
        The final state of the previous chunk, about to be carried into the next.
    streams : array-like of int or bool mask of shape (B,)
        The streams to reset.

    Returns
    -------
    state : the same object, with those streams' states set to zero.
    """
    for s in (state if isinstance(state, tuple) else (state,)):
        s[:, np.asarray(streams)] = 0.0
    return state
