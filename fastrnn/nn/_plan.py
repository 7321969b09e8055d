"""The layout of a padded batch for the backends: sorted by length, longest first."""

import numpy as np

__all__ = ["Plan"]


class Plan:
    """How a padded batch is laid out for the kernels: sorted by length, longest first.

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
    """

    def __init__(self, lengths, T):
        self.B = int(len(lengths))
        self.T = int(T)
        self.order = np.argsort(-lengths, kind="stable")
        self.Ls = lengths[self.order]
        self.Tm = int(self.Ls[0])
        steps = np.arange(self.Tm)
        self.batch_sizes = (self.Ls[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)
        self.real = steps[:, None] < self.Ls[None, :]
        self.rev = np.where(self.real, self.Ls[None, :] - 1 - steps[:, None], steps[:, None])
        self.cols = np.arange(self.B)[None, :]
