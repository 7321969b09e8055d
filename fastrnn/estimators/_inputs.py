"""Input validation and conversion for the recurrent estimators.

Everything the user passes to ``fit`` / ``predict`` goes through :func:`check_sequences` first. It
accepts the three input forms (see the user guide, "Input formats") and turns each into one internal form,
:class:`SequenceData`: a list of per-sequence arrays and their lengths. Batches are cut from it by
length (:func:`fastrnn.text.length_buckets`) and padded per batch, so what reaches the network never
depends on how the user padded.

Input forms
-----------
* 2-D array ``(n_samples, T)``: one value per step (float input), or one token id per step when the
  estimator embeds tokens (integer input, or ``embedding_dim`` set). For token ids, trailing ``PAD``
  (0) ids are padding: a row ``[5, 9, 0, 0]`` is the sequence ``[5, 9]``.
* 3-D array ``(n_samples, T, n_features)``: float input; every sequence has length ``T``. With
  token input, ``(n_samples, T, K)`` integer ids: ``K`` ids per step (a word and its subword
  features, see :class:`fastrnn.text.SequenceVectorizer`), whose embeddings are summed.
* A list (or 1-D object array, tuple, pandas Series) of arrays of different lengths: items of shape
  ``(T_i,)`` (one value or one token id per step) or ``(T_i, n_features)`` (``(T_i, K)`` ids for
  token input). For token ids, trailing ``PAD`` steps (all ids 0) are stripped here too, so a
  ragged list and its padded form are the same input.

NaN is never a padding marker: a non-finite value anywhere in float input is an error. Variable
lengths are given as a ragged list.

Every error says what is wrong, the value received and how to fix it. This module needs only
numpy, so helpers can be shared by every estimator (the language model included).
"""

from numbers import Integral

import numpy as np

__all__ = [
    "SequenceData",
    "check_sequences",
    "is_integer_input",
    "scaled_column_by_column",
    "check_sample_weight",
    "check_label_sequences",
    "as_model_dtype",
    "cast_finite",
]

_VECTORIZER_HINT = (
    "Turn text into token ids first, e.g. make_pipeline(SequenceVectorizer(), "
    "RNNClassifier(embedding_dim=64))."
)


class SequenceData:
    """Validated sequences: one array per sequence, and their lengths.

    Parameters
    ----------
    seqs : list of ndarray
        Float input: arrays of shape ``(T_i, n_features)``; token input: int64 arrays of shape
        ``(T_i,)``, or ``(T_i, K)`` for ``K`` ids per step. Every ``T_i >= 1``.
    lengths : ndarray of shape (n_samples,), dtype int64
    tokens : bool
        Whether the sequences hold token ids.
    array : ndarray, optional
        The same sequences as one padded array ``(n, T, n_features)`` (float) or ``(n, T)`` /
        ``(n, T, K)`` (token ids, padded with 0), when the input was rectangular; batches are then
        cut from it by fancy indexing instead of copying sequence by sequence.

    Attributes
    ----------
    n_features : int
        Values per step: features of float input, token ids per step (``K``) of token input.
    """

    __slots__ = ("seqs", "lengths", "tokens", "array", "n_features")

    def __init__(self, seqs, lengths, tokens, array=None):
        self.seqs = seqs
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.tokens = bool(tokens)
        self.array = array
        self.n_features = 1 if seqs[0].ndim == 1 else int(seqs[0].shape[1])

    def __len__(self):
        return len(self.seqs)

    @property
    def max_id(self):
        """Largest token id (token input only)."""
        if self.array is not None:
            return int(self.array.max())
        return int(max(int(s.max()) for s in self.seqs))

    def subset(self, idx):
        """The sequences at positions ``idx`` (an index array), as a new :class:`SequenceData`."""
        idx = np.asarray(idx, dtype=np.int64)
        array = None if self.array is None else self.array[idx]
        return SequenceData([self.seqs[i] for i in idx], self.lengths[idx], self.tokens, array)

    def map(self, fn):
        """Apply ``fn`` to every sequence (and to the padded array, if any); returns a new object.

        ``fn`` must act step by step (e.g. standardisation), so that padding stays padding.
        """
        if self.array is not None:
            array = fn(self.array)
            return SequenceData(list(array), self.lengths, self.tokens, array)
        return SequenceData([fn(s) for s in self.seqs], self.lengths, self.tokens)

    def padded(self, max_ratio=2.0):
        """These sequences with a padded array to cut batches from (see ``array``): ``self`` when
        it has one already, or when padding every sequence to the longest would take more than
        ``max_ratio`` times the memory of the sequences themselves (a few long ones among many
        short). A batch then costs one fancy indexing instead of a copy per sequence, with the
        same values."""
        if self.array is not None or len(self.seqs) == 0:
            return self
        T = int(self.lengths.max())
        if T * len(self.seqs) > max_ratio * int(self.lengths.sum()):
            return self
        first = self.seqs[0]
        array = np.zeros((len(self.seqs), T) + first.shape[1:], dtype=first.dtype)
        for b, s in enumerate(self.seqs):
            array[b, : s.shape[0]] = s
        return SequenceData(self.seqs, self.lengths, self.tokens, array)

    def concatenated(self):
        """All real steps stacked: ``(sum T_i, n_features)`` (float input)."""
        if self.array is not None:
            return self.array.reshape(-1, self.array.shape[-1])
        return np.concatenate(self.seqs, axis=0)

    def batch(self, idx):
        """Pad the sequences at ``idx`` into one batch.

        Returns
        -------
        X : ndarray of shape (B, T_max, n_features) (float) or (B, T_max) / (B, T_max, K)
            (token ids)
            Padded with zeros (``PAD`` for token ids) up to the longest sequence of the batch.
        lengths : ndarray of shape (B,), dtype int64
        """
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        T = int(lengths.max())
        if self.array is not None:
            return np.ascontiguousarray(self.array[idx, :T]), lengths
        first = self.seqs[idx[0]]
        X = np.zeros((len(idx), T) + first.shape[1:], dtype=first.dtype)
        for b, i in enumerate(idx):
            s = self.seqs[i]
            X[b, : s.shape[0]] = s
        return X, lengths


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "nnz") and hasattr(X, "shape")


def _string_error(name, example, where=""):
    return TypeError(
        f"{name}{where} holds strings (e.g. {example!r:.60}), but the recurrent estimators need "
        f"numbers. {_VECTORIZER_HINT}"
    )


def _first_str(a):
    """The first str/bytes element of an object array, or None."""
    for v in a.reshape(-1):
        if isinstance(v, (str, bytes)):
            return v
    return None


def _to_numeric(a, name, where=""):
    """Convert an array that may be of dtype object/str to a numeric array, or raise clearly."""
    if a.dtype.kind in "US":
        ex = a.reshape(-1)[0] if a.size else ""
        raise _string_error(name, ex, where)
    if a.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name}{where} has dtype {a.dtype}. Pass real numbers, "
            "e.g. split real and imaginary parts into two features."
        )
    if a.dtype.kind == "V" or a.dtype.kind == "M" or a.dtype.kind == "m":
        raise TypeError(
            f"{name}{where} has dtype {a.dtype}, which is not numeric. Pass float or integer "
            "arrays."
        )
    if a.dtype == object:
        s = _first_str(a)
        if s is not None:
            raise _string_error(name, s, where)
        try:
            a = a.astype(np.float64)
        except TypeError as exc:
            raise TypeError(
                f"{name}{where} has dtype object and an element could not be converted to a "
                f"number ({exc}). Pass numeric arrays."
            ) from None
        except ValueError as exc:
            raise ValueError(
                f"{name}{where} has dtype object and could not be converted to numbers ({exc}). "
                "Pass numeric arrays; give sequences of different lengths as a list of arrays."
            ) from None
        if a.dtype.kind == "c":  # pragma: no cover - astype(float) refuses complex objects
            raise ValueError(f"Complex data not supported in {name}{where}.")
    return a


def _check_finite(a, name, describe):
    """Raise if float array ``a`` holds NaN or Inf; ``describe(index)`` names the position."""
    if a.dtype.kind != "f":
        return
    if np.isfinite(a).all():
        return
    bad = np.argwhere(~np.isfinite(a))[0]
    value = a[tuple(bad)]
    kind = "NaN" if np.isnan(value) else "inf"
    raise ValueError(
        f"Input {name} contains {kind} ({value}) at {describe(tuple(int(i) for i in bad))}. "
        "NaN/inf are not allowed and NaN is not a padding marker: impute or drop missing "
        "values, and give sequences of different lengths as a list of arrays."
    )


def cast_finite(values, dtype, explain):
    """Cast float data to ``dtype``, raising where a value does not fit (e.g. 1e300 to float32).

    Parameters
    ----------
    values : ndarray
    dtype : numpy dtype
    explain : callable
        ``explain(index) -> str``: the error message for the first value that overflowed,
        ``index`` its position in ``values`` (a tuple of int).

    Returns
    -------
    ndarray of ``dtype`` and the shape of ``values``

    Raises
    ------
    ValueError
        With ``explain``'s message, when a finite value becomes inf (or NaN) in ``dtype``.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = values.astype(dtype)
    if not np.isfinite(out).all():
        raise ValueError(explain(tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])))
    return out


def as_model_dtype(a, dtype, name="X"):
    """Cast float data to the model's dtype, raising if values overflow it (e.g. 1e300 to float32).

    Parameters
    ----------
    a : ndarray
    dtype : numpy dtype
    name : str
        Used in the error message.

    Returns
    -------
    ndarray of ``dtype`` (``a`` itself when it already has that dtype)
    """
    if a.dtype == dtype:
        return a
    return cast_finite(a, dtype, lambda bad: (
        f"Input {name} holds {a[bad].item()!r}, which overflows {np.dtype(dtype).name} (the "
        f"model's dtype). Rescale the input, or use dtype='float64'."
    ))


def _reject_bad_container(X, name):
    if X is None:
        raise ValueError(
            f"{name} is None; pass sequences: a 2-D array (n_samples, T), a 3-D array "
            "(n_samples, T, n_features) or a list of arrays."
        )
    if isinstance(X, (str, bytes)):
        raise _string_error(name, X)
    if _is_sparse(X):
        raise TypeError(
            f"Sparse input is not supported: {name} is a {type(X).__name__}. Convert it with "
            f"{name}.toarray(), or pass a list of dense arrays."
        )
    if isinstance(X, dict):
        raise TypeError(f"{name} must be an array or a list of arrays, got a dict.")


# ---------------------------------------------------------------------------------------------
# the main entry point
# ---------------------------------------------------------------------------------------------


def check_sequences(X, *, tokens=False, dtype=np.float32, name="X"):
    """Validate ``X`` and convert it to :class:`SequenceData`.

    Parameters
    ----------
    X : array-like of shape (n_samples, T) or (n_samples, T, n_features), or list of array-like
        The sequences, in one of the forms described in the module docstring.
    tokens : bool, default False
        Whether ``X`` holds token ids (the estimator has an embedding).
    dtype : {np.float32, np.float64}
        The model's float dtype (float input is cast to it).
    name : str
        Name of the argument in error messages.

    Returns
    -------
    data : SequenceData
        Float input: arrays of shape ``(T_i, n_features)`` in ``dtype``; token input: int64
        arrays of shape ``(T_i,)`` with trailing ``PAD`` ids removed.

    Raises
    ------
    ValueError
        Empty input, a zero-length sequence, NaN/Inf, complex numbers, a 1-D or 4-D (or more)
        array, ragged items with different feature counts, negative or non-integer token ids.
    TypeError
        Strings (pass them through a vectorizer), sparse matrices, non-numeric objects.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.estimators._inputs import check_sequences
    >>> d = check_sequences([np.zeros((3, 2)), np.ones((5, 2))])
    >>> d.lengths, d.n_features
    (array([3, 5]), 2)
    >>> check_sequences(np.array([[5, 9, 0], [7, 0, 0]]), tokens=True).lengths
    array([2, 1])
    """
    _reject_bad_container(X, name)
    dtype = np.dtype(dtype)
    if isinstance(X, np.ndarray) and X.dtype != object:
        return _from_array(X, tokens, dtype, name)
    if hasattr(X, "__array__") and not isinstance(X, np.ndarray) and not _is_list_like_of_arrays(X):
        # pandas DataFrame, array-likes of other libraries: rectangular
        arr = np.asarray(X)
        if arr.dtype != object:
            return _from_array(arr, tokens, dtype, name)
        X = arr
    if isinstance(X, np.ndarray) and X.dtype == object and X.ndim != 1:
        return _from_array(X, tokens, dtype, name)
    try:
        items = list(X)
    except TypeError:
        raise TypeError(
            f"{name} must be an array or a list of arrays, got {type(X).__name__} {X!r:.60}."
        ) from None
    return _from_items(items, tokens, dtype, name)


def is_integer_input(X):
    """Whether ``X`` holds integers only: an array of an integer dtype, or a collection of
    sequences that are all integer arrays (or lists of ints). Such input is read as token ids
    when an estimator's ``embedding_dim`` is ``"auto"``.
    """
    if X is None or isinstance(X, (str, bytes)) or _is_sparse(X) or isinstance(X, dict):
        return False
    if isinstance(X, np.ndarray) and X.dtype != object:
        return X.dtype.kind in "iu"
    if hasattr(X, "__array__") and not isinstance(X, np.ndarray) and not _is_list_like_of_arrays(X):
        try:
            arr = np.asarray(X)
        except (TypeError, ValueError):
            return False
        if arr.dtype != object:
            return arr.dtype.kind in "iu"
    try:
        items = list(X)
    except TypeError:
        return False
    if not items:
        return False
    for item in items:
        if isinstance(item, (str, bytes)):
            return False
        try:
            if np.asarray(item).dtype.kind not in "iu":
                return False
        except (TypeError, ValueError):
            return False
    return True


def scaled_column_by_column(X):
    """Whether a 2-D float ``X`` ``(n_samples, T)`` has the signature of a scikit-learn scaler
    applied to it: every column (time step) with mean 0 and standard deviation 1, or with
    minimum 0 and maximum 1. Read as sequences, that scaled every time step on its own."""
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f"
            and X.shape[0] >= 10 and X.shape[1] >= 3 and np.isfinite(X).all()):
        return False
    with np.errstate(all="ignore"):
        standard = (np.abs(X.mean(axis=0)).max() < 1e-6
                    and np.abs(X.std(axis=0) - 1.0).max() < 1e-6)
        unit = (np.abs(X.min(axis=0)).max() < 1e-9 and np.abs(X.max(axis=0) - 1.0).max() < 1e-9)
    return bool(standard or unit)


def _is_list_like_of_arrays(X):
    # a pandas Series of arrays has __array__ but is a 1-D collection of sequences
    return getattr(X, "ndim", None) == 1 and getattr(X, "dtype", None) == object


def _empty_error(name, shape):
    return ValueError(
        f"{name} is empty (shape {shape}): it holds no sequences. Pass at least one sequence "
        "with at least one step."
    )


def _from_array(X, tokens, dtype, name):
    X = np.asarray(X)
    if X.dtype.kind in "US" or (X.dtype == object and _first_str(X) is not None):
        X = _to_numeric(X, name)  # raises the error about strings
    if X.ndim <= 1:
        n = X.shape[0] if X.ndim == 1 else 1
        raise ValueError(
            f"Expected a 2-D array (n_samples, T), a 3-D array (n_samples, T, n_features) or a "
            f"list of sequences, got a {X.ndim}-D array of shape {X.shape} instead. Reshape your "
            f"data: X[None] (or [X]) if it is one sequence of {n} steps, or X.reshape(-1, 1) if it "
            f"is {n} sequences of one step each."
        )
    if X.ndim > 3:
        what = ("2-D (n_samples, T) or 3-D (n_samples, T, K)" if tokens
                else "2-D (n_samples, T) or 3-D (n_samples, T, n_features)")
        raise ValueError(
            f"{name} has {X.ndim} dimensions (shape {X.shape}), but {'token-id' if tokens else ''}"
            f"{' ' if tokens else ''}input must be {what}, or a list of per-sequence arrays. "
            + ("For token input give one id per step, or K ids per step on the last axis."
               if tokens else
               "Flatten the extra axes into the features, e.g. X.reshape(n_samples, T, -1).")
        )
    X = _to_numeric(X, name)
    if X.shape[0] == 0:
        raise _empty_error(name, X.shape)
    if X.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required: its "
            "second axis is the time axis, so every sequence would have zero steps. Pass "
            "sequences with at least one step."
        )
    if tokens:
        return _tokens_from_array(X, name)
    if X.ndim == 3 and X.shape[2] == 0:
        raise ValueError(
            f"{name} has 0 feature(s) per step (shape={X.shape}) while a minimum of 1 is required."
        )
    _check_finite(X, name, lambda i: f"sequence {i[0]}, step {i[1]}"
                  + (f", feature {i[2]}" if len(i) == 3 else ""))
    if X.ndim == 2:
        X = X[:, :, None]
    X = as_model_dtype(X, dtype, name)
    n, T = X.shape[:2]
    return SequenceData(list(X), np.full(n, T, dtype=np.int64), False, X)


def _check_token_dtype(a, name, where=""):
    if a.dtype.kind in "iu":
        if a.dtype.kind == "u" and a.dtype.itemsize == 8 and a.size and (
                a.max() > np.iinfo(np.int64).max):
            raise ValueError(
                f"Token ids in {name}{where} go up to {int(a.max())}, too large for an id. Map "
                "tokens to consecutive ids with a vocabulary (e.g. SequenceVectorizer)."
            )
        return a
    if a.dtype.kind == "b":
        raise TypeError(f"Token ids in {name}{where} must be integers, got booleans.")
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if finite.all() and np.all(a == np.round(a)):
            raise TypeError(
                f"Token ids in {name}{where} must have an integer dtype, got {a.dtype}. Convert "
                f"them with {name}.astype(np.int64) (or pass the output of SequenceVectorizer)."
            )
        bad = a[~(finite & (a == np.round(np.where(finite, a, 0))))][0].item()
        raise ValueError(
            f"Token ids in {name}{where} must be integers, got {bad!r} (dtype {a.dtype}). The "
            "estimator has embedding_dim set, so it reads token ids; for float features per step "
            "set embedding_dim=None."
        )
    raise TypeError(f"Token ids in {name}{where} must be integers, got dtype {a.dtype}.")


def _check_nonnegative(a, name, describe):
    if a.size and a.min() < 0:
        bad = tuple(int(i) for i in np.argwhere(a < 0)[0])
        raise ValueError(
            f"Token ids must be non-negative, but {name} holds {int(a[bad])} at {describe(bad)}. "
            "Ids come from a vocabulary: 0 is PAD, 1 UNK, 2 BOS, 3 EOS, regular tokens from 4."
        )


def _tokens_from_array(X, name):
    X = _check_token_dtype(X, name)
    _check_nonnegative(X, name, lambda i: f"sequence {i[0]}, step {i[1]}")
    X = X.astype(np.int64, copy=False)
    n, T = X.shape[:2]
    if X.ndim == 3 and X.shape[2] == 0:
        raise ValueError(f"{name} has 0 token ids per step (shape {X.shape}); pass at least one.")
    nonzero = X != 0 if X.ndim == 2 else (X != 0).any(axis=2)
    has_token = nonzero.any(axis=1)
    if not has_token.all():
        i = int(np.flatnonzero(~has_token)[0])
        raise ValueError(
            f"Sequence {i} of {name} holds only PAD (0) ids, so it has zero length after the "
            "trailing padding is removed. Drop empty sequences (a sequence needs at least one "
            "token)."
        )
    lengths = T - np.argmax(nonzero[:, ::-1], axis=1)
    lengths = lengths.astype(np.int64)
    T = int(lengths.max())
    X = np.ascontiguousarray(X[:, :T])
    # zero the (already PAD) tail so the padded array equals the per-row sequences
    seqs = [X[i, : lengths[i]] for i in range(n)]
    return SequenceData(seqs, lengths, True, X)


def _from_items(items, tokens, dtype, name):
    if not items:
        raise _empty_error(name, (0,))
    arrays = []
    for i, s in enumerate(items):
        where = f"[{i}]"
        if isinstance(s, (str, bytes)):
            raise _string_error(name, s, where)
        if _is_sparse(s):
            raise TypeError(f"Sparse input is not supported: {name}{where} is sparse; convert it "
                            "with .toarray().")
        try:
            a = np.asarray(s)
        except ValueError as exc:
            raise ValueError(
                f"{name}{where} could not be converted to an array ({exc}). Each sequence must be "
                "rectangular: shape (T_i,) or (T_i, n_features)."
            ) from None
        if a.ndim == 0:
            raise ValueError(
                f"{name}{where} is a scalar ({a!r:.40}), so {name} looks like a 1-D array. "
                f"Reshape your data: [{name}] if it is one sequence, or a list of arrays of shape "
                "(T_i,) or (T_i, n_features)."
            )
        a = _to_numeric(a, name, where)
        if tokens:
            if a.ndim not in (1, 2) or (a.ndim == 2 and a.shape[1] == 0):
                raise ValueError(
                    f"{name}{where} has shape {a.shape}, but token-id sequences must be 1-D (one "
                    "id per step) or 2-D (K ids per step). The estimator reads token ids "
                    "(integer input, or embedding_dim set); for float features pass floats with "
                    "embedding_dim=None."
                )
            if arrays and a.shape[1:] != arrays[0].shape[1:]:
                raise ValueError(
                    f"Sequence {i} of {name} has shape {a.shape}, but sequence 0 has "
                    f"{arrays[0].shape}: every sequence needs the same number of ids per step."
                )
            a = _check_token_dtype(a, name, where)
            _check_nonnegative(a, name, lambda j, i=i: f"sequence {i}, step {j[0]}")
            a = a.astype(np.int64, copy=False)
            nz = np.flatnonzero(a if a.ndim == 1 else (a != 0).any(axis=1))
            if nz.size == 0:
                raise ValueError(
                    f"Sequence {i} of {name} has zero length"
                    + (" (it holds only PAD (0) ids, which are padding)" if a.size else "")
                    + ". Drop empty sequences: a sequence needs at least one step."
                )
            arrays.append(a[: nz[-1] + 1])
            continue
        if a.ndim == 1:
            a = a[:, None]
        elif a.ndim != 2:
            raise ValueError(
                f"{name}{where} has {a.ndim} dimensions (shape {a.shape}); each sequence must be "
                "(T_i,) or (T_i, n_features)."
            )
        if a.shape[0] == 0:
            raise ValueError(
                f"Sequence {i} of {name} has zero length (shape {a.shape}). Drop empty sequences: "
                "a sequence needs at least one step."
            )
        if a.shape[1] == 0:
            raise ValueError(
                f"Sequence {i} of {name} has 0 feature(s) per step (shape {a.shape}) while a "
                "minimum of 1 is required."
            )
        if arrays and a.shape[1] != arrays[0].shape[1]:
            raise ValueError(
                f"Ragged items have different feature counts: sequence 0 of {name} has "
                f"{arrays[0].shape[1]} feature(s) per step, sequence {i} has {a.shape[1]} (shape "
                f"{a.shape}). Every sequence needs the same features (only the length may differ)."
            )
        _check_finite(a, name, lambda j, i=i: f"sequence {i}, step {j[0]}, feature {j[1]}")
        arrays.append(as_model_dtype(a, dtype, f"{name}{where}"))
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    return SequenceData(arrays, lengths, tokens)


# ---------------------------------------------------------------------------------------------
# weights and per-step labels
# ---------------------------------------------------------------------------------------------


def check_sample_weight(sample_weight, n_samples):
    """Validate ``sample_weight``: ``None`` or ``n_samples`` finite, non-negative numbers.

    Parameters
    ----------
    sample_weight : None, scalar or array-like of shape (n_samples,)
    n_samples : int

    Returns
    -------
    None or ndarray of shape (n_samples,), dtype float64

    Raises
    ------
    ValueError
        Wrong shape, negative or non-finite weights, or all weights zero.
    """
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.ndim == 0:
        sw = np.full(n_samples, sw)
    if sw.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numeric, got dtype {sw.dtype}.")
    if sw.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {sw.shape}, but there are {n_samples} sequences: pass one "
            f"weight per sequence, shape ({n_samples},)."
        )
    sw = sw.astype(np.float64)
    if not np.isfinite(sw).all() or (sw < 0).any():
        i = int(np.flatnonzero(~np.isfinite(sw) | (sw < 0))[0])
        raise ValueError(
            f"sample_weight must be finite and non-negative, got {sw[i].item()!r} at index {i}; "
            "use 0 to ignore a sequence."
        )
    if not (sw > 0).any():
        raise ValueError(
            "Sample weights must contain at least one non-zero number: all sample_weight values "
            "are zero, so there is nothing to learn from."
        )
    return sw


def check_label_sequences(y, lengths, name="y"):
    """Validate per-step labels: one label sequence per input sequence, of matching length.

    Parameters
    ----------
    y : list of array-like, or array-like of shape (n_samples, T)
        Label sequence ``i`` has ``lengths[i]`` labels. A rectangular ``y`` may be wider than a
        sequence whose trailing ``PAD`` ids were removed: its extra labels are then ignored.
    lengths : ndarray of shape (n_samples,)

    Returns
    -------
    labels : list of ndarray of shape (T_i,)
    """
    if y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None. Pass one label "
            "sequence per input sequence."
        )
    if isinstance(y, (str, bytes)):
        raise ValueError(
            f"{name} must be a list of label sequences, got a single string {y!r:.40}."
        )
    rectangular = isinstance(y, np.ndarray) and y.ndim == 2 and y.dtype != object
    try:
        items = list(y)
    except TypeError:
        raise ValueError(
            f"{name} must be a list of label sequences, got {type(y).__name__}."
        ) from None
    n = len(lengths)
    if len(items) != n:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: X has {n} sequences but "
            f"{name} has {len(items)} label sequences. Pass one label sequence per sequence."
        )
    out = []
    for i, (s, L) in enumerate(zip(items, lengths)):
        if isinstance(s, (str, bytes)):
            raise ValueError(
                f"{name}[{i}] is a single string {s!r:.40}; each item of {name} must be a sequence "
                "of labels, one per step (e.g. a list of tags)."
            )
        a = np.asarray(s)
        if a.ndim != 1:
            raise ValueError(
                f"{name}[{i}] has shape {a.shape}; each label sequence must be 1-D, one label per "
                "step."
            )
        if a.shape[0] != L:
            if rectangular and a.shape[0] > L:
                a = a[:L]
            else:
                raise ValueError(
                    f"{name}[{i}] has {a.shape[0]} labels but sequence {i} of X has {L} steps; "
                    "give exactly one label per step."
                )
        out.append(a)
    return out


def check_positive_int(value, name):
    """Return ``value`` as int if it is a positive integer, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
