"""A linear model on the TF-IDF bag of a sequence's token ids, added to a network's logits."""

import numpy as np

__all__ = ["TokenLinear", "tfidf_rows"]


def _word_ids(ids):
    """The first id of every step: ``(B, T)`` from ids of shape ``(B, T)`` or ``(B, T, K)``."""
    ids = np.asarray(ids)
    return ids[:, :, 0] if ids.ndim == 3 else ids


def tfidf_rows(ids, lengths, idf):
    """The non-zero TF-IDF values of a batch of sequences, L2-normalised per sequence.

    Parameters
    ----------
    ids : integer ndarray of shape (B, T) or (B, T, K)
        Token ids; with ``K`` ids per step only the first (the token's own id) counts.
    lengths : ndarray of shape (B,)
        Real steps of each sequence; steps past them are padding.
    idf : ndarray of shape (V,)
        Inverse document frequency of every id; ids with ``idf == 0`` (never seen when it was
        computed, the padding and unknown tokens) are left out.

    Returns
    -------
    rows, cols : int ndarrays of shape (N,)
        Sequence and token id of every non-zero value.
    values : float64 ndarray of shape (N,)
        ``(1 + log(count)) * idf / norm``, the norm being that of the sequence's vector of
        ``(1 + log(count)) * idf`` (as :class:`sklearn.feature_extraction.text.TfidfTransformer`
        with ``sublinear_tf=True`` and ``norm="l2"``).
    """
    word = _word_ids(ids)
    B, T = word.shape
    V = len(idf)
    real = np.arange(T)[None, :] < np.asarray(lengths)[:, None]
    b = np.broadcast_to(np.arange(B)[:, None], (B, T))[real]
    v = word[real].astype(np.int64)
    keep = idf[v] > 0
    keys, counts = np.unique(b[keep] * V + v[keep], return_counts=True)
    rows, cols = keys // V, keys % V
    values = (1.0 + np.log(counts)) * idf[cols].astype(np.float64)
    norm = np.sqrt(np.bincount(rows, weights=values * values, minlength=B))
    return rows, cols, values / norm[rows]


class TokenLinear:
    """Logits of a linear model on the TF-IDF bag of each sequence's tokens (a "wide" part).

    For a sequence whose token ``v`` occurs :math:`c_v > 0` times, with
    :math:`u_v = (1 + \\log c_v)\\,\\mathrm{idf}_v`, the features are
    :math:`x_v = u_v / \\lVert u \\rVert_2` and the logits :math:`x^\\top W + b`: the decision
    function of a logistic regression on (sublinear) TF-IDF features, as a table with one row per
    token id.

    Parameters
    ----------
    vocab_size : int
        ``V``, the number of token ids.
    n_outputs : int
        ``C``, the number of logits.
    dtype : numpy dtype
        Of the logits returned.

    Attributes
    ----------
    params : dict
        ``"idf"`` of shape (V,), ``"weight"`` of shape (V, C) and ``"bias"`` of shape (C,), all
        zero until set (a zero ``idf`` leaves an id out).
    """

    def __init__(self, vocab_size, n_outputs, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        V, C = int(vocab_size), int(n_outputs)
        self.params = {"idf": np.zeros(V, self.dtype), "weight": np.zeros((V, C), self.dtype),
                       "bias": np.zeros(C, self.dtype)}

    def apply(self, ids, lengths):
        """The logits of a batch: ids of shape (B, T) or (B, T, K) and lengths of shape (B,) ->
        (B, C) in the block's dtype (computed in float64)."""
        p = self.params
        rows, cols, values = tfidf_rows(ids, lengths, p["idf"])
        W = p["weight"].astype(np.float64)
        out = np.tile(p["bias"].astype(np.float64), (len(lengths), 1))
        for c in range(W.shape[1]):
            out[:, c] += np.bincount(rows, weights=values * W[cols, c], minlength=len(lengths))
        return out.astype(self.dtype)


class TokenLinearStream:
    """Running TF-IDF sums of a :class:`TokenLinear` over sequences read step by step."""

    def __init__(self, linear, n_streams):
        self.linear = linear
        B, V = int(n_streams), len(linear.params["idf"])
        C = linear.params["bias"].shape[0]
        self.counts = np.zeros((B, V), np.int64)
        self.dot = np.zeros((B, C))  # sum over the ids of u * weight
        self.square = np.zeros(B)    # squared norm of u

    def reset(self):
        self.counts[...] = 0
        self.dot[...] = 0.0
        self.square[...] = 0.0

    def step(self, x):
        """Read one step of ids (``(B,)`` or ``(B, K)``); return the logits (B, C), float64."""
        p = self.linear.params
        v = np.asarray(x)
        v = (v[:, 0] if v.ndim == 2 else v).astype(np.int64)
        idf = p["idf"][v].astype(np.float64)
        b = np.arange(len(v))
        c = self.counts[b, v]
        self.counts[b, v] = c + (idf > 0)
        # the step moves u_v from (1 + log c) idf (0 when c = 0) to (1 + log(c + 1)) idf
        old = np.where(c > 0, 1.0 + np.log(np.maximum(c, 1)), 0.0)
        change = 1.0 + np.log(c + 1.0) - old
        self.square += idf * idf * change * (change + 2 * old)
        self.dot += (change * idf)[:, None] * p["weight"][v].astype(np.float64)
        norm = np.sqrt(self.square)
        scaled = np.divide(self.dot, norm[:, None], out=np.zeros_like(self.dot),
                           where=norm[:, None] > 0)
        return scaled + p["bias"].astype(np.float64)
