"""Padding ragged sequences into dense batches, and length bucketing."""

from numbers import Integral

import numpy as np
from ..nn.init import check_random_state

__all__ = ["pad_sequences", "length_buckets", "padding_waste"]


def pad_sequences(seqs, dtype=None, value=0, max_length=None):
    """Stack sequences of different lengths into one padded array.

    Sequence ``i`` fills ``padded[i, :lengths[i]]``; the rest is ``value``.
    Sequences are **never truncated**.

    Parameters
    ----------
    seqs : iterable of array-like
        ``n`` sequences; item ``i`` has shape ``(T_i,)`` or ``(T_i, *feature_shape)``
        with the same ``feature_shape`` (and number of dimensions) for all items.
        ``T_i`` may be 0.
    dtype : dtype, default=None
        Output dtype; ``None`` uses the common dtype of the items
        (:func:`numpy.result_type`), so int32 ids stay int32.
    value : scalar, default=0
        Fill value for the padded cells (``0`` is ``PAD``). Must be
        representable in ``dtype``.
    max_length : int, default=None
        Length ``T`` of the output time axis. ``None``: the longest sequence.
        When given, shorter sequences are padded up to it.

    Returns
    -------
    padded : ndarray of shape (n, T) or (n, T) + feature_shape
    lengths : ndarray of shape (n,), dtype int64
        ``T_i`` of each sequence.

    Raises
    ------
    ValueError
        If a sequence is longer than ``max_length`` (the message names its
        index and length), shapes disagree, or ``seqs`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.text import pad_sequences
    >>> ids = [np.array([5, 6, 7], dtype=np.int32), np.array([8], dtype=np.int32)]
    >>> X, lengths = pad_sequences(ids)
    >>> X
    array([[5, 6, 7],
           [8, 0, 0]], dtype=int32)
    >>> lengths
    array([3, 1])
    >>> pad_sequences([np.ones((2, 3)), np.ones((1, 3))], max_length=4)[0].shape
    (2, 4, 3)
    """
    if isinstance(seqs, (str, bytes)):
        raise TypeError(
            f"seqs must be an iterable of sequences, got a single {type(seqs).__name__} "
            f"{seqs!r:.60}. Encode text to id arrays first (e.g. with SequenceVectorizer)."
        )
    try:
        items = list(seqs)
    except TypeError:
        raise TypeError(
            f"seqs must be an iterable of array-like sequences, got {type(seqs).__name__}. "
            "Pass a list of arrays."
        ) from None
    if not items:
        raise ValueError("pad_sequences needs at least one sequence, got an empty collection.")

    arrays = []
    for i, s in enumerate(items):
        if isinstance(s, (str, bytes)):
            raise TypeError(
                f"Sequence {i} is a {type(s).__name__} {s!r:.60}, not an array of numbers. "
                "Encode text to ids first (e.g. with SequenceVectorizer)."
            )
        try:
            a = np.asarray(s)
        except ValueError as exc:
            raise ValueError(
                f"Sequence {i} could not be converted to an array ({exc}). Each sequence "
                "must be rectangular: shape (T_i,) or (T_i, *feature_shape)."
            ) from None
        if a.ndim == 0:
            raise ValueError(
                f"Sequence {i} is a scalar ({a!r}); each sequence must be at least 1-D, "
                "shape (T_i,) or (T_i, *feature_shape). Wrap scalars in a list."
            )
        if a.dtype == object:
            raise ValueError(
                f"Sequence {i} has dtype object (mixed or ragged content). Each sequence "
                "must be a numeric array of shape (T_i,) or (T_i, *feature_shape)."
            )
        arrays.append(a)

    feat_shape = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.shape[1:] != feat_shape:
            raise ValueError(
                f"Sequence {i} has shape {a.shape} but sequence 0 has shape {arrays[0].shape}; "
                f"all sequences must share the per-step shape {feat_shape} (only the first "
                "axis, the length, may differ)."
            )

    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    longest = int(lengths.max())
    if max_length is None:
        T = longest
    else:
        if isinstance(max_length, bool) or not isinstance(max_length, Integral) or max_length < 0:
            raise ValueError(
                f"max_length must be None or a non-negative int, got {max_length!r}."
            )
        T = int(max_length)
        if longest > T:
            i = int(np.argmax(lengths))
            too_long = np.flatnonzero(lengths > T)
            raise ValueError(
                f"Sequence {i} has length {longest}, longer than max_length={T} "
                f"({too_long.size} sequence(s) too long, first indices "
                f"{too_long[:5].tolist()}). "
                "pad_sequences never truncates: raise max_length, pass max_length=None, or "
                "split/truncate the sequences explicitly beforehand."
            )

    if dtype is None:
        dtype = np.result_type(*arrays)
    dtype = np.dtype(dtype)
    fill = _check_fill(value, dtype)

    padded = np.full((len(arrays), T) + feat_shape, fill, dtype=dtype)
    for i, a in enumerate(arrays):
        padded[i, : a.shape[0]] = a
    return padded, lengths


def _check_fill(value, dtype):
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            fill = np.asarray(value).astype(dtype)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"Padding value {value!r} cannot be stored in dtype {dtype}. Pick a value of that type."
        ) from None
    if fill.ndim != 0:
        raise ValueError(f"Padding value must be a scalar, got {value!r}.")
    v = np.asarray(value)
    if dtype.kind in "iub":
        if v.dtype.kind == "f" and not (np.isfinite(v) and v == np.round(v)):
            raise ValueError(
                f"Padding value {value!r} cannot be stored exactly in integer dtype {dtype}. "
                "Use an integer value (0 is PAD) or a float dtype."
            )
        if v.dtype.kind in "iuf" and fill != v:
            raise ValueError(
                f"Padding value {value!r} overflows dtype {dtype}. Pick a value in range."
            )
    return fill[()]


def _check_lengths(lengths):
    arr = np.asarray(lengths)
    if arr.ndim != 1:
        raise ValueError(
            f"lengths must be 1-D, got an array of shape {arr.shape}. Pass one length per sequence."
        )
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"lengths must be integers, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"lengths must be non-negative, got minimum {arr.min()}.")
    return arr


def length_buckets(lengths, batch_size, random_state=None, shuffle=True):
    """Group sequence indices into batches of similar length.

    The indices are sorted by length and cut into consecutive chunks of
    ``batch_size``, so each batch holds sequences of nearly equal length and
    padding them wastes little (see :func:`padding_waste`).

    Parameters
    ----------
    lengths : array-like of int of shape (n_samples,)
        Length of each sequence.
    batch_size : int
        Sequences per batch; the last batch (the longest sequences) may be smaller.
    random_state : int, RandomState instance or None, default=None
        Randomness for tie-breaking and batch order when ``shuffle=True``.
    shuffle : bool, default=True
        If True, sequences of equal length are ordered randomly before
        chunking (so batches differ between epochs) and the order of the
        batches is shuffled. If False the result is deterministic: a stable
        sort by length (ties by index) and batches in increasing length.

    Returns
    -------
    batches : list of ndarray of int64
        ``ceil(n_samples / batch_size)`` index arrays; every index in
        ``range(n_samples)`` appears in exactly one batch.

    Examples
    --------
    >>> from fastrnn.text import length_buckets
    >>> length_buckets([5, 1, 4, 2, 3], batch_size=2, shuffle=False)
    [array([1, 3]), array([4, 2]), array([0])]
    """
    lengths = _check_lengths(lengths)
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    n = lengths.shape[0]
    if n == 0:
        return []
    if shuffle:
        rng = check_random_state(random_state)
        order = np.lexsort((rng.random_sample(n), lengths))
    else:
        order = np.argsort(lengths, kind="stable")
    order = order.astype(np.int64)
    batches = [order[s : s + batch_size] for s in range(0, n, batch_size)]
    if shuffle:
        perm = rng.permutation(len(batches))
        batches = [batches[j] for j in perm]
    return batches


def padding_waste(lengths, batches):
    """Fraction of padded cells when ``batches`` are each padded to their longest sequence.

    Parameters
    ----------
    lengths : array-like of int of shape (n_samples,)
    batches : iterable of array-like of int
        Index arrays, e.g. from :func:`length_buckets`.

    Returns
    -------
    waste : float
        ``sum(padded cells) / sum(batch_size_b * max_length_b)`` over the
        batches, in ``[0, 1)``; 0.0 when there are no cells.

    Examples
    --------
    >>> from fastrnn.text import padding_waste
    >>> padding_waste([4, 1, 4, 1], [[0, 1], [2, 3]])
    0.375
    >>> padding_waste([4, 1, 4, 1], [[0, 2], [1, 3]])
    0.0
    """
    lengths = _check_lengths(lengths)
    n = lengths.shape[0]
    total = 0
    real = 0
    for b, idx in enumerate(batches):
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            continue
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(
                f"Batch {b} holds index {idx.max() if idx.max() >= n else idx.min()}, "
                f"out of range for {n} lengths."
            )
        lb = lengths[idx]
        total += int(idx.size) * int(lb.max())
        real += int(lb.sum())
    if total == 0:
        return 0.0
    return float(total - real) / float(total)
