"""Prediction with a fitted model, without scikit-learn: the input checked against what the model
was fitted on, and the network run over it in length buckets.

The estimators' ``predict`` methods and :class:`fastrnn.inference.Predictor` (a saved model
loaded for prediction only) both go through these functions, so the two give the same results;
this module imports nothing of scikit-learn, so that a process serving a saved model starts fast.
"""

import numpy as np

from ..text import length_buckets
from ._inputs import SequenceData, cast_finite, check_sequences

__all__ = ["PREDICT_BATCH_SIZE", "check_fitted_input", "frame_steps", "framed",
           "network_outputs", "series_input", "standardized", "to_targets", "with_difference"]

#: Sequences per batch at inference (batches are formed by length, so padding stays small).
PREDICT_BATCH_SIZE = 256


def check_fitted_input(X, *, tokens, n_features_in, vocab_size, feature_mean, feature_scale,
                       dtype, name):
    """Validate ``X`` against what a model was fitted on, and standardise it as at fit.

    Parameters
    ----------
    X : array-like of shape (n_samples, T) or (n_samples, T, n_features), or list of arrays
    tokens : bool
        Whether the model reads token ids.
    n_features_in : int
        Features (or token ids) per step at fit.
    vocab_size : int or None
        Number of token ids of a model that reads tokens.
    feature_mean, feature_scale : ndarray of shape (n_features_in,) or None
        The standardisation of float input (``None``: none).
    dtype : numpy dtype
        The model's dtype.
    name : str
        The model's class name, for messages.

    Returns
    -------
    data : SequenceData
        Validated, standardised input in ``dtype``.
    """
    standardize = feature_mean is not None
    data = check_sequences(X, tokens=tokens, dtype=np.float64 if standardize else dtype)
    if tokens:
        max_id = data.max_id
        if max_id >= vocab_size:
            raise ValueError(
                f"X holds token id {max_id}, out of range for this {name}: it was "
                f"fitted with vocab_size_={vocab_size} "
                f"(ids 0..{vocab_size - 1}). "
                "Encode the sequences with the vocabulary used at fit (a fitted "
                "SequenceVectorizer maps unseen tokens to UNK=1), or pass vocab_size= "
                "large enough when fitting."
            )
        if data.n_features != n_features_in:
            raise ValueError(
                f"X has {data.n_features} token id(s) per step, but {name} was "
                f"fitted with {n_features_in}. Encode the sequences as at fit."
            )
    elif data.n_features != n_features_in:
        raise ValueError(
            f"X has {data.n_features} features per step, but {name} is expecting "
            f"{n_features_in} features per step as input (as at fit). Pass "
            "sequences with the same channels as at fit."
        )
    if standardize:
        data = standardized(data, feature_mean, feature_scale, dtype)
    return data


def standardized(data, mean, scale, dtype):
    """``data`` (a :class:`~._inputs.SequenceData` in float64) standardised, in ``dtype``."""
    return data.map(lambda a: _standardize(a, mean, scale, dtype))


def frame_steps(steps, frame_size):
    """One sequence read in frames: ``frame_size`` consecutive steps become one step.

    Parameters
    ----------
    steps : ndarray of shape (T, n_features)
    frame_size : int

    Returns
    -------
    frames : ndarray of shape (ceil(T / frame_size), frame_size * n_features)
        Frame ``j`` holds steps ``j * frame_size`` to ``(j + 1) * frame_size - 1``, step after
        step; the last frame is filled up by repeating the last step.
    """
    T, f = steps.shape
    n = -(-T // frame_size)
    if n * frame_size != T:
        steps = np.concatenate([steps, np.repeat(steps[-1:], n * frame_size - T, axis=0)])
    return steps.reshape(n, frame_size * f)


def framed(data, frame_size):
    """Float sequences (a :class:`~._inputs.SequenceData`) read in frames (see
    :func:`frame_steps`); ``frame_size=1`` returns ``data`` itself."""
    if frame_size == 1:
        return data
    lengths = -(-data.lengths // frame_size)
    a = data.array
    if a is not None and (data.lengths == a.shape[1]).all():
        n, T, f = a.shape
        if T % frame_size:
            a = np.concatenate([a, np.repeat(a[:, -1:], frame_size - T % frame_size, axis=1)],
                               axis=1)
        a = a.reshape(n, -1, frame_size * f)
        return SequenceData(list(a), lengths, False, a)
    return SequenceData([frame_steps(s, frame_size) for s in data.seqs], lengths, False)


def difference_steps(steps):
    """The first difference of one float sequence, each channel divided by its own standard
    deviation over the sequence.

    Parameters
    ----------
    steps : ndarray of shape (T, n_features)

    Returns
    -------
    diff : ndarray of shape (T, n_features), dtype of ``steps``
        Row 0 is 0; row ``t`` is ``steps[t] - steps[t - 1]``; each column is then divided by its
        standard deviation over the ``T`` rows (a constant column stays 0). Computed in float64.
    """
    d = np.zeros(steps.shape, np.float64)
    d[1:] = np.diff(steps.astype(np.float64), axis=0)
    sd = d.std(axis=0)
    d /= np.where(sd > 0, sd, 1.0)
    return d.astype(steps.dtype)


def with_difference(data):
    """Float sequences (a :class:`~._inputs.SequenceData`) with their first difference beside
    them: ``n_features`` channels become ``2 * n_features``, the sequence's own channels first,
    then :func:`difference_steps` of them. Sequence by sequence, so that a series gets the same
    values alone, in a list or in a rectangular array."""
    seqs = [np.concatenate([s, difference_steps(s)], axis=1) for s in data.seqs]
    array = None
    if data.array is not None and (data.lengths == data.array.shape[1]).all():
        array = np.stack(seqs)
        seqs = list(array)
    return SequenceData(seqs, data.lengths, False, array)


def series_input(data, frame_size=1, difference=False):
    """What the network of a float-series model reads: the standardised sequences, with their
    first difference beside them if ``difference`` (:func:`with_difference`), in frames of
    ``frame_size`` steps (:func:`framed`). The estimators and
    :class:`fastrnn.inference.Predictor` both call it."""
    if difference:
        data = with_difference(data)
    return framed(data, frame_size)


def to_targets(out, target_mean, target_scale, y_ndim):
    """A regressor's network outputs (float64, shape (n, n_outputs)) -> its predicted targets: the
    target standardisation undone in place (when ``target_mean`` is not None), 1-D when ``y``
    was 1-D at fit (``y_ndim``)."""
    if target_mean is not None:
        out *= target_scale
        out += target_mean
    return out[:, 0] if y_ndim == 1 else out


def network_outputs(net, data, what="head", batch_size=PREDICT_BATCH_SIZE):
    """Run a network in inference mode over validated sequences, in length buckets.

    Nothing of the network changes (:meth:`fastrnn.nn.SequenceNetwork.infer`), so several threads
    may predict with one fitted model at once.

    Parameters
    ----------
    net : SequenceNetwork
    data : SequenceData
        Validated (and standardised) input.
    what : {"head", "pooled"}
        The output layer's values, or (networks with pooling) the pooled recurrent
        representation that feeds it.
    batch_size : int
        Sequences per inference batch.

    Returns
    -------
    out : ndarray of shape (n_samples, K) for a network with pooling, else list of ndarray of
        shape (T_i, K), in the order of ``data``. ``K`` is the number of outputs, or
        ``num_directions * hidden_size`` for ``"pooled"``.
    """
    n = len(data)
    per_step = net.pooling is None
    result = [None] * n if per_step else None
    for idx in length_buckets(data.lengths, batch_size, shuffle=False):
        X, L = data.batch(idx)
        out, _ = net.infer(X, L, output=what)
        if per_step:
            for b, i in enumerate(idx):
                result[i] = out[b, : L[b]].copy()
            continue
        if result is None:
            result = np.empty((n, out.shape[1]), dtype=out.dtype)
        result[idx] = out
    return result


def _standardize(a, mean, scale, dtype):
    """``(a - mean) / scale`` in ``dtype``; an overflow names the value the user passed."""
    z = (a - mean) / scale
    return cast_finite(z, dtype, lambda bad: (
        f"Input X holds {a[bad].item()!r}, which is {z[bad].item():.3g} standard deviations "
        f"from the training mean of its channel and overflows {np.dtype(dtype).name} (the "
        "model's dtype). Check the input's scale (e.g. a unit error), or use dtype='float64'."))
