"""The layout of a padded batch for the backends: sorted by length, longest first."""

import numpy as np

__all__ = ["Plan", "padded_plan", "unpadded_plan"]


class Plan:
    """How a padded batch is laid out for the kernels: sorted by length, longest first.

    A plan is never changed after it is built, so one plan may serve many calls, from several
    threads: :func:`unpadded_plan` and :func:`padded_plan` hand out the same plan (its arrays that
    no kernel receives made read-only) for every small call of the same lengths.

    Parameters
    ----------
    lengths : ndarray of shape (B,), int64
        Real steps of each sequence (``1 <= lengths[b] <= T``).
    T : int
        Steps of the padded batch.

    Attributes
    ----------
    order : ndarray of shape (B,)
        Sequence at each sorted position (a stable sort, so equal lengths keep their order).
    Ls : ndarray of shape (B,)
        Sorted lengths.
    Tm : int
        Longest length.
    batch_sizes : ndarray of shape (Tm,), int64
        Sequences still running at each step.
    real : bool ndarray of shape (Tm, B)
        Real (unpadded) steps of the sorted, time-major batch.
    rev : ndarray of shape (Tm, B)
        Each sorted sequence's time reversal within its own length (its own inverse); padded steps
        map to themselves.
    unpadded : bool
        Whether every sequence has all ``T`` steps: then ``order`` is the identity and every step
        is real.
    memo : dict
        Tables a backend derives from the plan alone, kept for the next call with the same plan
        (filled on first use; an entry is never changed once stored).
    """

    def __init__(self, lengths, T):
        self.B = int(len(lengths))
        self.T = int(T)
        self.order = np.argsort(-lengths, kind="stable")
        self.Ls = lengths[self.order]
        self.Tm = int(self.Ls[0])
        self.unpadded = bool(self.Ls[-1] == self.T)
        steps = np.arange(self.Tm)
        self.batch_sizes = (self.Ls[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)
        self.real = steps[:, None] < self.Ls[None, :]
        self.rev = np.where(self.real, self.Ls[None, :] - 1 - steps[:, None], steps[:, None])
        self.cols = np.arange(self.B)[None, :]
        self.memo = {}


#: plans of unpadded batches by (B, T); cleared when it reaches _MAX_UNPADDED entries
_unpadded = {}
_MAX_UNPADDED = 32
#: plans of padded batches by (T, lengths); cleared when it reaches _MAX_PADDED entries (the
#: length buckets of an estimator give the same lengths every epoch: a few dozen batches)
_padded = {}
_MAX_PADDED = 64
#: largest B * T whose plan is kept: building a plan costs about 10 microseconds, which only
#: small calls notice, and a kept plan holds a few arrays of B * T values (and the backends' tables)
_MAX_KEPT_STEPS = 4096


def unpadded_plan(B, T):
    """The plan of a batch of ``B`` sequences of ``T`` steps each, built once per small shape.

    Parameters
    ----------
    B, T : int

    Returns
    -------
    Plan
        For ``B * T <= 4096``, shared by every call of that shape (plans never change, see
        :class:`Plan`); else a new plan.
    """
    if B * T > _MAX_KEPT_STEPS:
        return Plan(np.full(B, T, dtype=np.int64), T)
    key = (B, T)
    plan = _unpadded.get(key)
    if plan is None:
        if len(_unpadded) >= _MAX_UNPADDED:
            _unpadded.clear()
        plan = _unpadded[key] = _shared(Plan(np.full(B, T, dtype=np.int64), T))
    return plan


def padded_plan(lengths, T):
    """The plan of a batch of sequences of ``lengths`` (int64, each in ``[1, T]``) padded to
    ``T`` steps: for ``B * T <= 4096`` the same plan for every call with these lengths in this
    order (as :func:`unpadded_plan` shares its plans), else a new plan."""
    if len(lengths) * T > _MAX_KEPT_STEPS:
        return Plan(lengths, T)
    key = (T, lengths.tobytes())
    plan = _padded.get(key)
    if plan is None:
        if len(_padded) >= _MAX_PADDED:
            _padded.clear()
        plan = _padded[key] = _shared(Plan(lengths, T))  # a plan keeps no view of lengths
    return plan


def _shared(plan):
    """``plan`` with its arrays made read-only, to be shared from now on (batch_sizes stays
    writeable: the Numba kernels take it, and a read-only array is another type to them, one
    more compilation)."""
    for a in (plan.order, plan.Ls, plan.real, plan.rev, plan.cols):
        a.flags.writeable = False
    return plan
