"""Truncated back-propagation through time over parallel token streams."""

import numpy as np

from ..text import BOS, PAD

__all__ = ["truncated_bptt_batches", "reset_streams", "split_at_documents"]


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


def split_at_documents(X, Y):
    """Cut the stream rows of a chunk at every ``<bos>`` after the first step.

    Documents are independent: each starts from a zero state, in training as in scoring. A stream
    row that crosses a document border is split into one row per piece (right-padded, with its own
    length), so that the kernel starts the new document from zero without any special support.

    Parameters
    ----------
    X, Y : integer ndarray of shape (B, T)
        Inputs and targets of a chunk of ``B`` streams.

    Returns
    -------
    Xr, Yr : integer ndarray of shape (R, T)
        The rows (``R >= B``), padded with ``<pad>``.
    lengths : ndarray of shape (R,)
    stream : ndarray of shape (R,)
        The stream each row comes from (rows of one stream are consecutive and in order).
    fresh : bool ndarray of shape (R,)
        Rows that start a document (input ``<bos>`` first): their initial state is zero; the others
        continue their stream's carried state.
    last : ndarray of shape (B,)
        The last row of each stream, whose final state is carried into the next chunk.
    """
    X = np.asarray(X)
    Y = np.asarray(Y)
    B, T = X.shape
    cut_b, cut_t = np.nonzero(X[:, 1:] == BOS)
    if cut_b.size == 0:
        return (X, Y, np.full(B, T, np.int64), np.arange(B), X[:, 0] == BOS, np.arange(B))
    cut_t = cut_t + 1
    n_rows = B + cut_b.size
    Xr = np.full((n_rows, T), PAD, X.dtype)
    Yr = np.full((n_rows, T), PAD, Y.dtype)
    lengths = np.empty(n_rows, np.int64)
    stream = np.empty(n_rows, np.int64)
    last = np.empty(B, np.int64)
    r = 0
    per_stream = np.split(cut_t, np.searchsorted(cut_b, np.arange(1, B)))
    for b in range(B):
        edges = [0, *per_stream[b].tolist(), T]
        for t0, t1 in zip(edges[:-1], edges[1:]):
            Xr[r, :t1 - t0] = X[b, t0:t1]
            Yr[r, :t1 - t0] = Y[b, t0:t1]
            lengths[r] = t1 - t0
            stream[r] = b
            r += 1
        last[b] = r - 1
    return Xr, Yr, lengths, stream, Xr[:, 0] == BOS, last
