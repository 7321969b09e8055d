"""Recurrent language models: :class:`RNNLanguageModel`.

A language model reads text as a stream of tokens (characters or words) and learns the
distribution of the next token given the ones before it (SPEC §4). Three pieces live here:

* :func:`blocked_softmax_cross_entropy` and :func:`blocked_log_probs` -- the output softmax fused
  with the cross-entropy and computed a block of rows at a time, so a large vocabulary never needs a
  ``(B*T, V)`` array of probabilities;
* :class:`LMNetwork` -- drives a :class:`fastrnn.nn.SequenceNetwork` (embedding, compiled recurrent
  layers, dense head) up to its hidden states and applies the head itself through the blocked loss;
* :class:`RNNLanguageModel` -- the scikit-learn style estimator: tokenising, vocabulary, training on
  parallel streams with truncated back-propagation through time and carried state, evaluation
  (perplexity, bits per token), next-token prediction, sampling, checkpoints and resuming.
"""

import copy
import hashlib
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._config import check_dtype, num_threads
from .._persist import ModelFileError, check_destination, read_model, save_model
from ..nn import SequenceNetwork
from ..nn.init import check_random_state
from ..optim import ReduceLROnPlateau
from ..text import BOS, EOS, N_SPECIAL, PAD, UNK, Vocabulary, get_tokenizer
from ..train import Trainer, truncated_bptt_batches
from ._saved import check_language_model_file, network_from_saved
from ._streaming import EstimatorStream, advance, softmax_into

__all__ = [
    "RNNLanguageModel",
    "LMNetwork",
    "blocked_softmax_cross_entropy",
    "blocked_log_probs",
    "sample_token",
    "split_at_documents",
    "TrainingInterrupted",
]

#: Elements of one block of logits: 2**20 values (4 MiB in float32). A block has
#: ``max(1, BLOCK_ELEMENTS // vocab_size)`` rows.
BLOCK_ELEMENTS = 2 ** 20

#: Token ids the output softmax never gives probability to: padding and the beginning of a document
#: (both are only ever inputs, never a next token).
EXCLUDED_OUTPUTS = (PAD, BOS)

#: Steps per chunk when scoring held-out text (the state is carried across chunks, so the result
#: does not depend on this number; it bounds memory).
EVAL_CHUNK = 256

#: rows per thread below which the softmax head runs on one thread
PARALLEL_MIN_ROWS = 512

_CLASS_NAME = "RNNLanguageModel"

#: fitted attributes besides the vocabulary and the network, saved with the model
_FITTED = ("n_iter_", "n_steps_", "n_tokens_seen_", "loss_curve_", "validation_bits_per_token_",
           "best_validation_bits_per_token_", "history_", "stop_reason_", "training_time_")


class TrainingInterrupted(UserWarning):
    """Training stopped early on Ctrl-C; the estimator keeps the best parameters so far."""


# ------------------------------------------------------------------------------------------------
# The blocked, fused output softmax and cross-entropy
# --------------------------------------------------------------------------------------------------

def _block_rows(vocab_size, block_rows):
    if block_rows is None:
        return max(1, BLOCK_ELEMENTS // max(1, int(vocab_size)))
    block_rows = int(block_rows)
    if block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer or None, got {block_rows}.")
    return block_rows


def _check_head(hidden, weight, bias, targets):
    hidden = np.asarray(hidden)
    weight = np.asarray(weight)
    bias = np.asarray(bias)
    if hidden.ndim != 2 or weight.ndim != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"hidden must be (N, F) and weight (V, F) with the same F, got hidden {hidden.shape} "
            f"and weight {weight.shape}; flatten the (B, T, F) hidden states to (B*T, F) first."
        )
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}.")
    dt = np.result_type(hidden.dtype, weight.dtype, np.float32)
    targets = np.asarray(targets)
    if targets.shape != (hidden.shape[0],) or (targets.size and targets.dtype.kind not in "iu"):
        raise ValueError(
            f"targets must be integer ids of shape ({hidden.shape[0]},), got {targets.dtype} array "
            f"of shape {targets.shape}."
        )
    V = weight.shape[0]
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        raise ValueError(f"target ids must lie in [0, {V}), got values from {targets.min()} to "
                         f"{targets.max()}; encode them with the model's vocabulary.")
    return (np.ascontiguousarray(hidden, dt), np.ascontiguousarray(weight, dt),
            np.ascontiguousarray(bias, dt), targets.astype(np.intp, copy=False))


def _blocked(hidden, weight, bias, targets, valid, excluded, block_rows, grad_scale,
             dhidden=None):
    """Shared loop of the blocked softmax: per-row negative log-likelihoods and, if
    ``grad_scale`` is given, the gradients of ``sum_i grad_scale * valid_i * nll_i`` (``dhidden``
    written into the given array if one is passed)."""
    N, F = hidden.shape
    V = weight.shape[0]
    dt = hidden.dtype
    rows_per = min(_block_rows(V, block_rows), max(N, 1))
    nll = np.zeros(N, np.float64)
    excluded = [int(e) for e in excluded]
    want_grad = grad_scale is not None
    if want_grad:
        dhidden = np.zeros_like(hidden) if dhidden is None else dhidden
        dweight = np.zeros_like(weight)
        dbias = np.zeros(V, np.float64)
        tmp = np.empty_like(weight)
    z = np.empty((rows_per, V), dt)
    wt = weight.T
    for r0 in range(0, N, rows_per):
        r1 = min(N, r0 + rows_per)
        n = r1 - r0
        zb = z[:n]
        np.dot(hidden[r0:r1], wt, out=zb)
        zb += bias
        if excluded:
            zb[:, excluded] = -np.inf
        zb -= zb.max(axis=1, keepdims=True)
        rows = np.arange(n)
        t = targets[r0:r1]
        z_t = zb[rows, t].astype(np.float64)
        np.exp(zb, out=zb)
        s = zb.sum(axis=1, dtype=np.float64)
        v = valid[r0:r1]
        with np.errstate(invalid="ignore"):
            nll[r0:r1] = np.where(v, np.log(s) - z_t, 0.0)
        if want_grad:
            # d nll_i / d z_ij = p_ij - [j == t_i]; weighted by grad_scale on the valid rows only.
            w = np.where(v, grad_scale / s, 0.0).astype(dt)
            zb *= w[:, None]
            zb[rows[v], t[v]] -= dt.type(grad_scale)
            np.dot(zb, weight, out=dhidden[r0:r1])
            np.dot(zb.T, hidden[r0:r1], out=tmp)
            dweight += tmp
            dbias += zb.sum(axis=0, dtype=np.float64)
    if want_grad:
        return nll, dhidden, dweight, dbias.astype(dt)
    return nll


def blocked_softmax_cross_entropy(hidden, weight, bias, targets, valid=None,
                                  excluded=EXCLUDED_OUTPUTS, block_rows=None):
    r"""Softmax output layer fused with the cross-entropy, computed a block of rows at a time.

    With logits :math:`z_i = W h_i + b` (one row per token position) the loss is the mean negative
    log-likelihood of the targets over the valid rows,

    .. math::

        J = \frac{1}{n}\sum_{i\,\text{valid}}
            \Bigl(\log \sum_{j \notin E} e^{z_{ij}} - z_{i t_i}\Bigr),

    and its gradients follow from :math:`\partial J / \partial z_{ij} = (p_{ij} - [j = t_i]) / n`:
    :math:`\partial J/\partial h_i = (p_i - e_{t_i}) W / n`,
    :math:`\partial J/\partial W = \sum_i (p_i - e_{t_i})^\top h_i / n`, and the column sums for
    the bias. Only ``block_rows`` rows of logits exist at any time (default: ``2**20 // V`` rows,
    4 MiB in float32), so a 10,000-word vocabulary costs a few MiB instead of ``N * V`` values; the
    head gradients are accumulated block by block.

    Parameters
    ----------
    hidden : ndarray of shape (N, F)
        Hidden states entering the head (e.g. ``(B*T, hidden_size)``).
    weight : ndarray of shape (V, F)
        Output weights (the embedding matrix when the weights are tied).
    bias : ndarray of shape (V,)
    targets : integer ndarray of shape (N,)
        The next token of each row.
    valid : bool ndarray of shape (N,), optional
        Rows that count (default all); invalid rows get no loss and no gradient.
    excluded : sequence of int, default (PAD, BOS)
        Output ids that get probability zero (their logits are set to :math:`-\infty`).
    block_rows : int, optional
        Rows per block.

    Returns
    -------
    loss : float
        Mean negative log-likelihood (nats per valid row), accumulated in float64; 0.0 if no row is
        valid.
    dhidden : ndarray of shape (N, F)
    dweight : ndarray of shape (V, F)
    dbias : ndarray of shape (V,)
        Gradients of ``loss``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.estimators.language_model import blocked_softmax_cross_entropy
    >>> h = np.zeros((3, 2)); W = np.zeros((4, 2)); b = np.zeros(4)
    >>> loss, dh, dW, db = blocked_softmax_cross_entropy(h, W, b, [1, 2, 3], excluded=(),
    ...                                                    block_rows=2)
    >>> round(loss, 6)  # log 4: four equally likely tokens
    1.386294
    """
    hidden, weight, bias, targets = _check_head(hidden, weight, bias, targets)
    valid = (np.ones(len(targets), bool) if valid is None
             else np.asarray(valid, bool).reshape(len(targets)))
    n = int(valid.sum())
    scale = 1.0 / n if n else 0.0
    N = len(targets)
    n_parts = min(num_threads(), N // PARALLEL_MIN_ROWS) if N >= 2 * PARALLEL_MIN_ROWS else 1
    if n_parts <= 1:
        nll, dh, dw, db = _blocked(hidden, weight, bias, targets, valid, excluded, block_rows,
                                   scale)
        return float(nll.sum() * scale), dh, dw, db
    # Rows are independent: one part per thread (numpy releases the GIL in its products and
    # element-wise loops), the head gradients summed over the parts in a fixed order.
    from ..kernels._parallel import run_parts

    dh = np.empty_like(hidden)
    bounds = np.linspace(0, N, n_parts + 1).astype(int)
    parts = run_parts(lambda r0, r1: _blocked(
        hidden[r0:r1], weight, bias, targets[r0:r1], valid[r0:r1], excluded, block_rows, scale,
        dhidden=dh[r0:r1]), list(zip(bounds[:-1], bounds[1:])))
    loss = sum(float(p[0].sum()) for p in parts) * scale
    dw = parts[0][2]
    db = parts[0][3]
    for p in parts[1:]:
        dw += p[2]
        db += p[3]
    return float(loss), dh, dw, db


def blocked_log_probs(hidden, weight, bias, targets, excluded=EXCLUDED_OUTPUTS, block_rows=None):
    """Log-probability of each target under the softmax head, computed block by block.

    Parameters
    ----------
    hidden, weight, bias, targets, excluded, block_rows
        As in :func:`blocked_softmax_cross_entropy`.

    Returns
    -------
    log_probs : float64 ndarray of shape (N,)
        :math:`\\log p(t_i \\mid h_i)` (``-inf`` for an excluded target).
    """
    hidden, weight, bias, targets = _check_head(hidden, weight, bias, targets)
    valid = np.ones(len(targets), bool)
    return -_blocked(hidden, weight, bias, targets, valid, excluded, block_rows, None)


# ------------------------------------------------------------------------------------------------
# The network driven up to its hidden states
# --------------------------------------------------------------------------------------------------

class LMNetwork:
    """A :class:`fastrnn.nn.SequenceNetwork` (``pooling=None``) whose dense head is applied
    through the blocked softmax cross-entropy instead of producing a ``(B, T, V)`` array of logits.

    The network owns the parameters (embedding, recurrent layers, head; tied or not) and their
    gradients; this class runs the embedding, the dropout and the compiled recurrent layers exactly
    as the network does, and takes the head's weights from ``network.head``. It follows the protocol
    of :class:`fastrnn.train.Trainer` (``params``, ``grads``, ``forward``, ``backward``):
    ``forward`` returns the hidden states, and the loss function given to ``Trainer.step`` is
    :meth:`loss_fn`, which also computes the head's gradients.

    Parameters
    ----------
    network : SequenceNetwork
        Built with ``vocab_size``, ``embedding_dim``, ``pooling=None`` and
        ``n_outputs=vocab_size``.
    block_rows : int, optional
        Rows per block of the softmax (see :func:`blocked_softmax_cross_entropy`).
    """

    def __init__(self, network, block_rows=None):
        if network.embedding is None or network.pooling is not None:
            raise ValueError("LMNetwork needs a SequenceNetwork built with vocab_size and "
                             f"pooling=None, got {network.config}.")
        self.network = network
        self.block_rows = block_rows
        self.params = network.params
        self.grads = network.grads
        self._masks = None
        self._head_grads = None

    @property
    def head_weight(self):
        """ndarray of shape (V, F): the output weights (the embedding matrix when tied)."""
        return self.network.head.params["weight"]

    @property
    def head_bias(self):
        """ndarray of shape (V,): the output bias."""
        return self.network.head.params["bias"]

    def train(self, mode=True):
        """Switch dropout on (``mode=True``) or off; returns self."""
        self.network.train(mode)
        return self

    def eval(self):
        """Switch dropout off; returns self."""
        return self.train(False)

    def _dropout(self, X):
        net = self.network
        if not (net.training and net.dropout > 0):
            return X, None
        keep = 1.0 - net.dropout
        # One draw of the network's RandomState seeds a PCG64 generator for the mask: float32
        # draws from it cost a quarter of RandomState.random_sample's (the masks of a 64 x 64-step
        # chunk were 10 % of a training step), and the masks still depend on rng_ alone, which
        # the checkpoint saves, so a resumed run draws the same ones.
        gen = np.random.Generator(np.random.PCG64(net.rng_.randint(np.iinfo(np.int32).max)))
        mask = (gen.random(X.shape, dtype=np.float32) < keep).astype(net.dtype)
        mask *= net.dtype.type(1.0 / keep)
        return X * mask, mask

    def forward(self, X, lengths, state=None):
        """Token ids (B, T) -> hidden states (B, T, F) and the final recurrent state.

        Parameters
        ----------
        X : integer ndarray of shape (B, T)
        lengths : ndarray of shape (B,)
        state : optional
            Initial recurrent state (an ``(h, c)`` pair for an LSTM), e.g. the final state of the
            previous chunk.

        Returns
        -------
        hidden : ndarray of shape (B, T, F)
        h_n : the final state (to carry into the next chunk)
        """
        net = self.network
        E = net.embedding.forward(X)
        E, in_mask = self._dropout(E)
        Y, h_n = net.rnn.forward(E, lengths, state)
        Y, out_mask = self._dropout(Y)
        self._masks = (in_mask, out_mask)
        self._head_grads = None
        return Y, h_n

    __call__ = forward

    def loss_fn(self, targets, valid):
        """A loss function for :meth:`fastrnn.train.Trainer.step`: ``hidden -> (loss, dhidden)``.

        Parameters
        ----------
        targets : integer ndarray of shape (B, T)
            The next token at every position (teacher forcing).
        valid : bool ndarray of shape (B, T)
            Positions that count.
        """

        def fn(hidden):
            B, T, F = hidden.shape
            loss, dh, dw, db = blocked_softmax_cross_entropy(
                hidden.reshape(B * T, F), self.head_weight, self.head_bias, targets.reshape(-1),
                valid.reshape(-1), block_rows=self.block_rows)
            self._head_grads = (dw, db)
            return loss, dh.reshape(B, T, F)

        return fn

    def backward(self, dhidden, dh_n=None):
        """Back-propagate the gradient of the hidden states; fills ``grads`` (head included)."""
        net = self.network
        in_mask, out_mask = self._masks
        if out_mask is not None:
            dhidden = dhidden * out_mask
        dX = net.rnn.backward(dhidden, dh_n)
        if in_mask is not None:
            dX = dX * in_mask
        net.embedding.backward(dX)
        dw, db = self._head_grads
        if net.tie_weights:
            g = net.embedding.grads["weight"]
            g += dw
            if net.embedding.padding_idx is not None:
                g[net.embedding.padding_idx] = 0.0
        else:
            self.grads["head.weight"][...] = dw
        self.grads["head.bias"][...] = db

    def release(self):
        """Drop the caches of the last forward/backward (a fitted model need not hold a batch of
        activations); returns self."""
        net = self.network
        for obj, attr in ((net, "_cache"), (net.rnn, "_cache"), (net.head, "_X"),
                          (net.embedding, "_ids")):
            if hasattr(obj, attr):
                setattr(obj, attr, None)
        self._masks = None
        self._head_grads = None
        return self

    def logits(self, hidden):
        """Full logits of a few rows (generation, next-token prediction).

        ``hidden`` of shape (n, F) -> float64 array of shape (n, V), ``-inf`` at the excluded ids.
        """
        W = self.head_weight
        z = (np.asarray(hidden, W.dtype) @ W.T + self.head_bias).astype(np.float64)
        z[:, list(EXCLUDED_OUTPUTS)] = -np.inf
        return z


class _LMStream(EstimatorStream):
    """Streaming state of a language model: it reads ``<bos>`` whenever it (re)starts."""

    def __init__(self, est, n_streams):
        super().__init__(est, n_streams, len(est.vocabulary_))

    def read(self, ids):
        advance(self, ids)
        return softmax_into(self, self.output, EXCLUDED_OUTPUTS)

    def reset(self):
        super().reset()
        self._ids[...] = BOS
        self.read(self._ids)
        self.steps = 0
        return self


# ------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------

def _softmax64(z):
    z = np.asarray(z, np.float64)
    m = np.max(z)
    e = np.exp(z - m)
    return e / e.sum()


def _check_sampling_options(temperature, top_k, top_p):
    """Raise ``ValueError`` naming a sampling option that :func:`sample_token` cannot use."""
    if (isinstance(temperature, bool) or not isinstance(temperature, Real)
            or not (math.isfinite(temperature) and temperature >= 0)):
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got "
                         f"{temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, Integral)
                              or top_k < 1):
        raise ValueError(f"top_k must be None or a positive integer, got {top_k!r}.")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, Real)
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}.")


def sample_token(logits, temperature=1.0, top_k=None, top_p=None, greedy=False, rng=None):
    """Draw the next token id from a vector of logits.

    The logits are divided by ``temperature``, cut to the ``top_k`` largest, then to the smallest
    set whose probability reaches ``top_p`` (nucleus sampling, Holtzman et al. 2020), and one id is
    drawn from the renormalised softmax. ``greedy=True`` or ``temperature=0`` returns the argmax.

    Parameters
    ----------
    logits : ndarray of shape (V,)
        ``-inf`` marks ids that must never be drawn.
    temperature : float, default 1.0
    top_k : int, optional
    top_p : float in (0, 1], optional
    greedy : bool, default False
    rng : numpy RandomState, optional

    Returns
    -------
    token_id : int
    """
    _check_sampling_options(temperature, top_k, top_p)
    z = np.asarray(logits, np.float64).ravel()
    if greedy or temperature == 0:
        return int(np.argmax(z))
    z = z / float(temperature)
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, z.size - top_k)[z.size - top_k]
        z = np.where(z >= kth, z, -np.inf)
        if np.count_nonzero(z > -np.inf) > top_k:
            # ties at the k-th value: keep exactly k, the lowest ids first
            keep = np.argsort(-z, kind="stable")[:top_k]
            mask = np.full(z.size, -np.inf)
            mask[keep] = 0.0
            z = z + mask
    p = _softmax64(z)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        n_keep = int(np.searchsorted(cum, top_p) + 1)
        cut = np.zeros_like(p)
        cut[order[:n_keep]] = p[order[:n_keep]]
        p = cut / cut.sum()
    rng = check_random_state(rng)
    cdf = np.cumsum(p)
    idx = int(np.searchsorted(cdf, rng.random_sample() * cdf[-1], side="right"))
    idx = min(idx, z.size - 1)
    while p[idx] == 0.0 and idx > 0:  # rounding at the end of the cdf
        idx -= 1
    return idx


# ------------------------------------------------------------------------------------------------
# Helpers of the estimator
# --------------------------------------------------------------------------------------------------

def _rng_state(rng):
    name, keys, pos, has_gauss, cached = rng.get_state()
    return np.asarray(keys, np.uint32), [str(name), int(pos), int(has_gauss), float(cached)]


def _set_rng_state(rng, keys, meta):
    rng.set_state((meta[0], np.asarray(keys, np.uint32), int(meta[1]), int(meta[2]),
                   float(meta[3])))


def _state_arrays(state):
    if state is None:
        return []
    return list(state) if isinstance(state, tuple) else [state]


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


def perplexity_of(nll):
    """``exp(nll)`` as a float: ``inf`` where it overflows (a diverged model), never an error."""
    try:
        return float(math.exp(nll))
    except OverflowError:
        return math.inf


def _check_vocabulary(vocab, docs, min_count, max_vocab):
    """Refuse a vocabulary with no regular token; warn when most training tokens are unknown."""
    settings = f"min_count={min_count}" + (f", max_vocab={max_vocab}" if max_vocab else "")
    if len(vocab) <= N_SPECIAL:
        from collections import Counter

        counts = Counter()
        for d in docs:
            counts.update(d)
        top = counts.most_common(1)
        most = (f" (the most frequent one, {top[0][0]!r}, appears {top[0][1]} times)"
                if top else "")
        raise ValueError(
            f"the vocabulary has no regular token: with {settings} every token of the training "
            f"texts becomes <unk>{most}, and the model could only predict <unk>. Lower "
            "min_count (or raise max_vocab)."
        )
    total = sum(len(d) for d in docs)
    known = sum(vocab.counts.values()) if vocab.counts else total
    share = 1.0 - known / total if total else 0.0
    if share > 0.5:
        warnings.warn(
            f"{share:.0%} of the training tokens are unknown (<unk>): {settings} keeps "
            f"{len(vocab) - N_SPECIAL} token type(s). The model will mostly learn to predict "
            "<unk>; lower min_count or raise max_vocab.", UserWarning, stacklevel=4)


def _json_float(x):
    x = float(x)
    return x if math.isfinite(x) else None


class _StopFlag:
    """Turns the first Ctrl-C during training into a request to stop after the current step.

    A second Ctrl-C raises ``KeyboardInterrupt`` at once. Outside the main thread (where
    signal handlers cannot be installed) Ctrl-C raises at once, and ``fit`` still keeps the best
    model.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                self._previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# ------------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------------

class RNNLanguageModel(BaseEstimator):
    r"""Recurrent language model over characters or words (SPEC §4).

    The documents are tokenised, wrapped in ``<bos>`` ... ``<eos>``, concatenated (in a new random
    order every epoch when ``shuffle``) and cut into ``batch_size`` parallel streams. Training runs
    over chunks of ``bptt`` steps of all streams at once with teacher forcing: the input is the true
    token ``t``, the target the true token ``t+1``. The final recurrent state of a chunk is
    the initial state of the next one (truncated back-propagation through time: the state carries
    the context
    forward, the gradient stops at the chunk border). Documents are independent: where a stream
    crosses into a new document the state restarts from zero (:func:`split_at_documents`), exactly
    as when a document is scored or a text generated, so the model never learns to rely on a state
    carried over from an unrelated text. The output softmax and the cross-entropy are fused and
    computed a block of rows at a time (:func:`blocked_softmax_cross_entropy`).

    Parameters
    ----------
    level : {"char", "word"} or callable, default "char"
        How a document string is split into tokens: characters, words and punctuation
        (:func:`fastrnn.text.word_tokenize`), or a callable ``str -> list of str``. Documents
        given as lists of token strings are used as they are (pre-tokenised input).
    max_vocab : int, optional
        Keep at most this many tokens (the most frequent); the others become ``<unk>``.
    min_count : int, default 1
        Tokens seen fewer times in the training texts become ``<unk>``.
    cell : {"lstm", "gru", "rnn"}, default "lstm"
    embedding_dim : int, optional
        Size of the token vectors; default ``hidden_size`` when ``tie_weights`` else 64.
    hidden_size : int, default 256
    num_layers : int, default 1
    dropout : float, default 0.0
        Dropout on the embeddings, between layers and before the softmax (Zaremba et al. 2014).
    recurrent_dropout : float, default 0.0
        Variational dropout on the recurrent connections (Gal & Ghahramani 2016), one mask per
        chunk.
    tie_weights : bool, default False
        Use the embedding matrix as the output weights (Press & Wolf 2017); needs
        ``embedding_dim == hidden_size``.
    bptt : int, default 64
        Truncation length: steps per chunk.
    batch_size : int, default 32
        Number of parallel streams (and of documents scored at once by :meth:`perplexity`).
    optimizer : str or Optimizer, default "adam"
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"momentum"``, ``"nesterov"`` or ``"adagrad"``; an
        optimiser instance is copied, never modified, and its own learning rate is used.
    learning_rate : float, default 2e-3
    clip_norm : float or None, default 5.0
        Global gradient-norm clipping threshold.
    lr_decay : float in (0, 1], default 0.5
        Factor applied to the learning rate when the validation perplexity did not improve for more
        than ``lr_patience`` evaluations in a row (1.0 disables the decay). Needs validation text.
    lr_patience : int, default 0
    lr_schedule : {"plateau", "cosine", "linear"}, default "plateau"
        ``"plateau"``: the ``lr_decay`` / ``lr_patience`` rule above. ``"cosine"`` and
        ``"linear"``: anneal the learning rate from ``learning_rate`` to ``min_learning_rate``
        over the run, following its progress, the larger of the share of ``max_iter`` epochs done
        and, with ``time_budget``, the share of the time budget spent (so a time-limited run ends
        at the low learning rate; Loshchilov & Hutter 2017). The learning rate then depends on
        the wall time when ``time_budget`` is set, and such a run is not exactly reproducible.
    min_learning_rate : float, default 0.0
        Final learning rate of the ``"cosine"`` and ``"linear"`` schedules.
    anneal_fraction : float in (0, 1], default 1.0
        Share of the run, at its end, over which ``"cosine"`` / ``"linear"`` anneal; before it the
        learning rate stays at ``learning_rate`` (a warmup-free "warmup-stable-decay" schedule,
        Hu et al. 2024, when below 1).
    early_stopping : bool, default False
        Stop when the validation perplexity did not improve for ``n_iter_no_change`` evaluations.
        Without ``validation_texts`` in :meth:`fit`, the last ``validation_fraction`` of
        the documents (or of the tokens of a single document) is held out.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 3
    max_iter : int, default 10
        Maximum number of epochs (passes over the training texts).
    eval_interval : int, optional
        Also evaluate the validation text every this many training steps (besides the end of each
        epoch): a finer learning curve and earlier learning-rate decay on a large corpus.
    time_budget : float, optional
        Stop training after this many seconds (checked after every step; the final validation pass
        may run past it). The best model so far is kept.
    shuffle : bool, default True
        Shuffle the order of the documents at the start of every epoch.
    checkpoint_path : str or path-like, optional
        Write a checkpoint there (atomically) at the end of every epoch and when training
        stops early; ``fit(..., resume=True)`` continues from it. The file also loads with
        :func:`fastrnn.load` (giving the best model of the run so far).
    dtype : {"float32", "float64"}, default "float32"
    backend : {"auto", "numba", "cython", "cuda", "numpy"}, default "auto"
    random_state : int, RandomState or None
        Seeds the initialisation, the dropout masks and the document order.
    verbose : int, default 0
        1 or more: a progress bar (tokens/s, loss, validation bits per token) and one line per
        evaluation.

    Attributes
    ----------
    vocabulary_ : fastrnn.text.Vocabulary
    network_ : fastrnn.nn.SequenceNetwork
        The parameters (embedding, recurrent layers, head).
    input_type_ : {"text", "tokens"}
        Whether the model was fitted on strings or on lists of tokens.
    n_iter_ : int
        Epochs completed.
    n_steps_ : int
        Optimisation steps (chunks) taken.
    n_tokens_seen_ : int
        Training tokens processed (targets, summed over the streams).
    loss_curve_ : list of float
        Mean training loss (nats per token) of each completed epoch.
    validation_bits_per_token_ : list of float
        Validation bits per token at each evaluation.
    best_validation_bits_per_token_ : float or None
        The best of them; the fitted parameters are those of that evaluation.
    history_ : list of dict
        One entry per evaluation: ``epoch`` (fractional), ``step``, ``tokens``, ``seconds``,
        ``train_bits`` (mean since the previous entry), ``val_bits``, ``lr``.
    stop_reason_ : str
        ``"max_iter"``, ``"early_stopping"``, ``"time_budget"`` or ``"interrupted"``.
    training_time_ : float
        Seconds spent in :meth:`fit` (summed over resumed runs).

    Notes
    -----
    Perplexity is :math:`\exp` of the mean cross-entropy per predicted token; each document
    contributes its tokens and its ``<eos>`` (the ``<bos>`` that starts it is given, not predicted),
    and is scored from a zero initial state. Bits per token are the mean cross-entropy divided by
    :math:`\ln 2` (bits per character for ``level="char"``).

    References: Mikolov et al. (2010), recurrent neural network language models; Sutskever,
    Martens & Hinton (2011) and Graves (2013), character-level generation; Zaremba, Sutskever &
    Vinyals (2014), dropout for LSTM language models; Press & Wolf (2017), tied input and output
    embeddings; Holtzman et al. (2020), nucleus sampling.

    Examples
    --------
    >>> from fastrnn.estimators.language_model import RNNLanguageModel
    >>> texts = ["the cat sat on the mat. "] * 20
    >>> lm = RNNLanguageModel(hidden_size=32, embedding_dim=16, bptt=16, batch_size=4,
    ...                       max_iter=3, random_state=0).fit(texts)
    >>> lm.perplexity(texts) < len(lm.vocabulary_)
    True
    >>> len(lm.generate("the ", max_length=10, random_state=0)) <= 10
    True
    """

    _parameter_constraints = {
        "level": [StrOptions({"char", "word"}), callable],
        "max_vocab": [Interval(Integral, 1, None, closed="left"), None],
        "min_count": [Interval(Integral, 1, None, closed="left")],
        "cell": [StrOptions({"rnn", "lstm", "gru"})],
        "embedding_dim": [Interval(Integral, 1, None, closed="left"), None],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "recurrent_dropout": [Interval(Real, 0, 1, closed="left")],
        "tie_weights": ["boolean"],
        "bptt": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions({"adam", "adamw", "sgd", "momentum", "nesterov", "adagrad"}),
                      HasMethods(["step", "state_dict", "load_state_dict"])],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
        "lr_decay": [Interval(Real, 0, 1, closed="right")],
        "lr_patience": [Interval(Integral, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"plateau", "cosine", "linear"})],
        "min_learning_rate": [Interval(Real, 0, None, closed="left")],
        "anneal_fraction": [Interval(Real, 0, 1, closed="right")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "eval_interval": [Interval(Integral, 1, None, closed="left"), None],
        "time_budget": [Interval(Real, 0, None, closed="neither"), None],
        "shuffle": ["boolean"],
        "checkpoint_path": [str, os.PathLike, None],
        "dtype": [StrOptions({"float32", "float64"}), type, np.dtype],
        "backend": [StrOptions({"auto", "numba", "cython", "cuda", "numpy"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, level="char", max_vocab=None, min_count=1, cell="lstm", embedding_dim=None,
                 hidden_size=256, num_layers=1, dropout=0.0, recurrent_dropout=0.0,
                 tie_weights=False, bptt=64, batch_size=32, optimizer="adam", learning_rate=2e-3,
                 clip_norm=5.0, lr_decay=0.5, lr_patience=0, lr_schedule="plateau",
                 min_learning_rate=0.0, anneal_fraction=1.0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=3, max_iter=10, eval_interval=None,
                 time_budget=None, shuffle=True, checkpoint_path=None, dtype="float32",
                 backend="auto", random_state=None, verbose=0):
        self.level = level
        self.max_vocab = max_vocab
        self.min_count = min_count
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.tie_weights = tie_weights
        self.bptt = bptt
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.clip_norm = clip_norm
        self.lr_decay = lr_decay
        self.lr_patience = lr_patience
        self.lr_schedule = lr_schedule
        self.min_learning_rate = min_learning_rate
        self.anneal_fraction = anneal_fraction
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.max_iter = max_iter
        self.eval_interval = eval_interval
        self.time_budget = time_budget
        self.shuffle = shuffle
        self.checkpoint_path = checkpoint_path
        self.dtype = dtype
        self.backend = backend
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ input handling
    def _tokenizer(self):
        if self.level is None:
            raise ValueError(
                "this model was trained with a custom tokenizer, which cannot be saved; set it "
                "again with model.set_params(level=your_tokenizer), or pass lists of tokens."
            )
        return get_tokenizer(self.level)

    def _documents(self, texts, name, input_type=None):
        """Token sequences (str for character level, else lists of str) of ``texts``."""
        if isinstance(texts, (str, bytes)):
            raise ValueError(
                f"{name} must be a list of documents, got a single {type(texts).__name__} "
                f"{texts[:40]!r}...; wrap it in a list: [{name}]."
            )
        if not isinstance(texts, Iterable):
            raise ValueError(f"{name} must be a list of documents (str, or lists of tokens), got "
                             f"{type(texts).__name__}.")
        docs = list(texts)
        kinds = set()
        for i, doc in enumerate(docs):
            if isinstance(doc, str):
                kinds.add("text")
            elif (isinstance(doc, (list, tuple, np.ndarray))
                  and all(isinstance(t, str) for t in doc)):
                kinds.add("tokens")
            else:
                raise ValueError(
                    f"{name}[{i}] is a {type(doc).__name__} ({str(doc)[:40]!r}); each document "
                    "must be a str or a list of token strings."
                )
        if len(kinds) > 1:
            raise ValueError(f"{name} mixes strings and token lists; pass only one kind.")
        kind = kinds.pop() if kinds else (input_type or "text")
        if input_type is not None and kind != input_type:
            want = "strings" if input_type == "text" else "lists of tokens"
            raise ValueError(f"this model was fitted on {want}; pass {name} as {want} too.")
        if kind == "tokens":
            return [list(d) for d in docs], kind
        if self.level == "char":
            return docs, kind  # strings are sequences of characters; Vocabulary encodes them fast
        tok = self._tokenizer()
        out = []
        for d in docs:
            toks = tok(d)
            if not isinstance(toks, (list, tuple)) or not all(isinstance(t, str) for t in toks):
                raise ValueError("the tokenizer must return a list of str, got "
                                 f"{type(toks).__name__}; fix the level callable.")
            out.append(list(toks))
        return out, kind

    def _encode(self, docs):
        """Token sequences -> id arrays ``[BOS, ..., EOS]``; special strings inside a document
        become UNK."""
        out = []
        for d in docs:
            ids = self.vocabulary_.encode(d, add_bos=True, add_eos=True)
            inner = ids[1:-1]
            inner[(inner < N_SPECIAL) & (inner != UNK)] = UNK
            out.append(ids)
        return out

    def _prompt_ids(self, prefix, name="prefix"):
        if isinstance(prefix, str):
            if self.input_type_ == "tokens":
                if prefix == "":
                    toks = []
                else:
                    raise ValueError(f"this model was fitted on lists of tokens; pass {name} "
                                     f"as a list of tokens, got the str {prefix!r}.")
            else:
                toks = prefix if self.level == "char" else self._tokenizer()(prefix)
        elif isinstance(prefix, (list, tuple)) and all(isinstance(t, str) for t in prefix):
            toks = list(prefix)
        else:
            raise ValueError(f"{name} must be a str or a list of token strings, got "
                             f"{type(prefix).__name__}.")
        ids = self.vocabulary_.encode(toks, add_bos=True)
        inner = ids[1:]
        inner[(inner < N_SPECIAL) & (inner != UNK)] = UNK
        return ids

    @property
    def _separator(self):
        return "" if (self.input_type_ == "text" and self.level == "char") else " "

    # ------------------------------------------------------------------ network
    def _embedding_dim(self):
        if self.embedding_dim is not None:
            return int(self.embedding_dim)
        return int(self.hidden_size) if self.tie_weights else 64

    def _build_network(self, vocab_size, seed):
        E = self._embedding_dim()
        if self.tie_weights and E != self.hidden_size:
            raise ValueError(
                f"tie_weights=True needs embedding_dim == hidden_size, got embedding_dim={E} and "
                f"hidden_size={self.hidden_size}; set embedding_dim={self.hidden_size} (or None)."
            )
        return SequenceNetwork(
            n_outputs=vocab_size, vocab_size=vocab_size, embedding_dim=E, cell=self.cell,
            hidden_size=self.hidden_size, num_layers=self.num_layers, dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout, pooling=None, tie_weights=self.tie_weights,
            dtype=check_dtype(self.dtype), backend=self.backend, random_state=int(seed))

    def _lm(self):
        lm = getattr(self, "_lm_cache", None)
        if lm is None or lm.network is not self.network_:
            lm = self._lm_cache = LMNetwork(self.network_)
        return lm

    def _zero_state(self, B):
        rnn = self.network_.rnn
        shape = (rnn.num_layers * rnn.num_directions, B, rnn.hidden_size)
        z = np.zeros(shape, self.network_.dtype)
        return (z, z.copy()) if rnn.has_cell else z

    # ------------------------------------------------------------------ scoring
    def _score_ids(self, docs):
        """Sum of log-probabilities (nats) and number of predicted tokens of id documents."""
        lm = self._lm()
        lm.eval()
        try:
            total, count = 0.0, 0
            order = sorted(range(len(docs)), key=lambda i: -len(docs[i]))
            group_size = max(1, int(self.batch_size))
            for g0 in range(0, len(order), group_size):
                group = [docs[i] for i in order[g0:g0 + group_size]]
                steps = np.array([len(d) - 1 for d in group])
                B, Tmax = len(group), int(steps.max())
                ids = np.zeros((B, Tmax + 1), np.int32)
                for b, d in enumerate(group):
                    ids[b, :len(d)] = d
                state = self._zero_state(B)
                for t0 in range(0, Tmax, EVAL_CHUNK):
                    k = int(np.count_nonzero(steps > t0))
                    L = np.minimum(steps[:k] - t0, EVAL_CHUNK)
                    Tc = int(L.max())
                    X = ids[:k, t0:t0 + Tc]
                    Y = ids[:k, t0 + 1:t0 + 1 + Tc]
                    st = (tuple(s[:, :k] for s in state) if isinstance(state, tuple)
                          else state[:, :k])
                    hidden, h_n = lm.forward(X, L, st)
                    real = (np.arange(Tc)[None, :] < L[:, None]).ravel()
                    H = hidden.reshape(k * Tc, -1)[real]
                    logp = blocked_log_probs(H, lm.head_weight, lm.head_bias, Y.reshape(-1)[real])
                    total += float(logp.sum())
                    count += int(real.sum())
                    if isinstance(state, tuple):
                        for s, s_n in zip(state, h_n):
                            s[:, :k] = s_n
                    else:
                        state[:, :k] = h_n
            return total, count
        finally:
            lm.train().release()

    def _mean_nll(self, texts):
        check_is_fitted(self, "network_")
        docs, _ = self._documents(texts, "texts", self.input_type_)
        if not docs:
            raise ValueError("texts is empty; pass at least one document.")
        total, count = self._score_ids(self._encode(docs))
        return -total / count

    def perplexity(self, texts):
        r"""Perplexity of ``texts``: :math:`\exp` of the mean cross-entropy per token (lower is
        better).

        Parameters
        ----------
        texts : list of str, or list of lists of tokens
            Documents, each scored from a zero state; its tokens and its ``<eos>`` are predicted.

        Returns
        -------
        perplexity : float
        """
        return perplexity_of(self._mean_nll(texts))

    def bits_per_token(self, texts):
        r"""Mean cross-entropy in bits per token, :math:`\mathrm{CE}/\ln 2` (bits per character at
        ``level="char"``).

        Parameters
        ----------
        texts : list of str, or list of lists of tokens

        Returns
        -------
        bits : float
        """
        return float(self._mean_nll(texts) / math.log(2.0))

    def score(self, texts, y=None):
        """Mean log-likelihood per token in nats (higher is better): ``-log(perplexity)``.

        Parameters
        ----------
        texts : list of str, or list of lists of tokens
        y : None
            Ignored (scikit-learn API).

        Returns
        -------
        score : float
        """
        return float(-self._mean_nll(texts))

    # ------------------------------------------------------------------ prediction and generation
    def _run_prefix(self, ids):
        """Feed ``ids`` (1-D, starting with BOS); returns the last hidden state (1, F) and the
        recurrent state."""
        lm = self._lm()
        lm.eval()
        try:
            state = self._zero_state(1)
            hidden = None
            for t0 in range(0, len(ids), EVAL_CHUNK):
                X = np.asarray(ids[t0:t0 + EVAL_CHUNK], np.int32)[None, :]
                hidden, state = lm.forward(X, np.array([X.shape[1]]), state)
            return hidden[:, -1].copy(), state
        finally:
            lm.train().release()

    def predict_next(self, prefix="", k=10):
        """The ``k`` most probable next tokens after ``prefix``, with their probabilities.

        Parameters
        ----------
        prefix : str or list of str, default ""
            Text (tokenised like the training texts) or tokens; the model reads ``<bos>`` first.
        k : int, default 10
            Number of tokens returned (at most the vocabulary size). ``<eos>`` and ``<unk>`` are
            candidates like any token; ``<pad>`` and ``<bos>`` never are.

        Returns
        -------
        top : list of (str, float)
            Tokens and probabilities, most probable first.
        """
        check_is_fitted(self, "network_")
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        h, _ = self._run_prefix(self._prompt_ids(prefix))
        p = _softmax64(self._lm().logits(h)[0])
        p[list(EXCLUDED_OUTPUTS)] = -1.0  # sorts them last; never returned
        order = np.argsort(-p, kind="stable")[:min(int(k), len(p) - len(EXCLUDED_OUTPUTS))]
        tokens = self.vocabulary_.tokens
        return [(tokens[i], float(p[i])) for i in order]

    def init_state(self, n_streams=1):
        """Start reading ``n_streams`` texts token by token (see :meth:`step`).

        The model reads ``<bos>`` at once, so ``state.output`` already holds the distribution of
        the first token, as ``predict_next("")`` gives it.

        Parameters
        ----------
        n_streams : int, default 1

        Returns
        -------
        state : fastrnn.estimators.EstimatorStream
            ``state.reset()`` starts new texts (and reads ``<bos>`` again).
        """
        check_is_fitted(self, "network_")
        if isinstance(n_streams, bool) or not isinstance(n_streams, Integral) or n_streams < 1:
            raise ValueError(f"n_streams must be a positive integer, got {n_streams!r}.")
        return _LMStream(self, n_streams)

    def step(self, token, state):
        """Read one more token of every stream; return the next-token distribution.

        After ``<bos>`` and tokens ``t_1 .. t_n`` the result equals the probabilities that
        :meth:`predict_next` gives for the prefix ``t_1 .. t_n``; ``log`` of its entry for the
        true next token is that token's term in :meth:`score`. Nothing is recomputed: the
        recurrent state is carried in ``state``.

        Parameters
        ----------
        token : str, int, or sequence of them
            The next token of each stream: a token string (unknown ones read as ``<unk>``) or a
            token id; a sequence of ``n_streams`` of them.
        state : EstimatorStream
            From :meth:`init_state`; advanced in place.

        Returns
        -------
        proba : ndarray of shape (n_streams, V), dtype float64
            ``V = len(lm.vocabulary_)``; columns follow the vocabulary ids; ``<pad>`` and
            ``<bos>`` have probability 0. A buffer of ``state`` that the next step overwrites:
            copy it to keep it.
        state : EstimatorStream
        """
        if not isinstance(state, _LMStream) or state._net is not getattr(self, "network_", None):
            raise ValueError("state must come from this RNNLanguageModel's init_state(); got "
                             f"{type(state).__name__}.")
        B, V = state.n_streams, len(self.vocabulary_)
        tokens = [token] if isinstance(token, (str, Integral)) else token
        if isinstance(tokens, np.ndarray):
            tokens = tokens.tolist()
        if not isinstance(tokens, (list, tuple)) or len(tokens) != B:
            raise ValueError(f"token must be one token per stream ({B}), got {token!r:.80}.")
        for b, tok in enumerate(tokens):
            if isinstance(tok, str):
                state._ids[b] = self.vocabulary_.token_to_id(tok)
            elif isinstance(tok, Integral) and not isinstance(tok, bool) and 0 <= tok < V:
                state._ids[b] = tok
            else:
                raise ValueError(f"token {tok!r:.40} of stream {b} is neither a token string nor "
                                 f"an id in 0..{V - 1}.")
        return state.read(state._ids), state

    def generate(self, prompt="", max_length=200, temperature=1.0, top_k=None, top_p=None,
                 greedy=False, random_state=None):
        """Sample a continuation of ``prompt`` token by token.

        The model reads ``<bos>`` and the prompt, then repeatedly samples the next token from its
        softmax and feeds it back, until it samples ``<eos>`` or has produced ``max_length`` tokens.

        Parameters
        ----------
        prompt : str or list of str, default ""
        max_length : int, default 200
            Maximum number of generated tokens (the prompt not counted).
        temperature : float, default 1.0
            Divides the logits: below 1 sharper (more conservative), above 1 flatter; 0 is greedy.
        top_k : int, optional
            Sample among the ``top_k`` most probable tokens only.
        top_p : float in (0, 1], optional
            Sample among the smallest set of tokens whose probability reaches ``top_p``.
        greedy : bool, default False
            Always take the most probable token.
        random_state : int, RandomState or None
            Seed of the sampling, for reproducible output.

        Returns
        -------
        text : str or list of str
            The continuation (without the prompt): characters joined for ``level="char"``, tokens
            joined by spaces for word level, a list of tokens for a model fitted on token lists.
            ``<pad>``, ``<bos>`` and ``<unk>`` are never generated.
        """
        check_is_fitted(self, "network_")
        if isinstance(max_length, bool) or not isinstance(max_length, Integral) or max_length < 0:
            raise ValueError(f"max_length must be a non-negative integer, got {max_length!r}.")
        _check_sampling_options(temperature, top_k, top_p)
        rng = check_random_state(random_state)
        state = self.init_state(1)
        # only the logits are needed (sample_token normalises them), not the stream's softmax
        for i in self._prompt_ids(prompt, "prompt")[1:]:  # <bos> is read by init_state
            state._ids[0] = i
            advance(state, state._ids)
        out = []
        z = np.empty(len(self.vocabulary_), np.float64)
        for _ in range(int(max_length)):
            z[...] = state._logits[0]
            z[list(EXCLUDED_OUTPUTS)] = -np.inf
            z[UNK] = -np.inf
            nxt = sample_token(z, temperature, top_k, top_p, greedy, rng)
            if nxt == EOS:
                break
            out.append(nxt)
            state._ids[0] = nxt
            advance(state, state._ids)
        tokens = [self.vocabulary_.tokens[i] for i in out]
        if self.input_type_ == "tokens":
            return tokens
        return self._separator.join(tokens)

    # ------------------------------------------------------------------ fitting
    def _split_validation(self, docs):
        """Hold out the last ``validation_fraction`` of the documents (or of one document)."""
        if len(docs) >= 2:
            n_val = max(1, int(round(self.validation_fraction * len(docs))))
            n_val = min(n_val, len(docs) - 1)
            return docs[:-n_val], docs[-n_val:]
        if not docs:
            return docs, []
        d = docs[0]
        cut = int(round(len(d) * (1.0 - self.validation_fraction)))
        cut = min(max(cut, 1), len(d) - 1)
        if cut < 1:
            raise ValueError("early_stopping needs validation text, but the single training "
                             "document is too short to split; pass validation_texts.")
        return [d[:cut]], [d[cut:]]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, texts, validation_texts=None, resume=False):
        """Train on ``texts``.

        Parameters
        ----------
        texts : list of str, or list of lists of str
            Training documents (strings are tokenised according to ``level``).
        validation_texts : list, optional
            Held-out documents: evaluated at the end of every epoch (and every ``eval_interval``
            steps) to decay the learning rate, stop early and keep the best parameters.
        resume : bool, default False
            Continue the run saved at ``checkpoint_path`` (same texts and architecture) instead of
            starting afresh; if no checkpoint exists yet, start afresh.

        Returns
        -------
        self : RNNLanguageModel

        Warns
        -----
        TrainingInterrupted
            When Ctrl-C stops the training; the estimator is fitted with the best parameters so far.
        """
        docs, kind = self._documents(texts, "texts")
        if validation_texts is not None:
            val_docs, _ = self._documents(validation_texts, "validation_texts", kind)
        elif self.early_stopping:
            docs, val_docs = self._split_validation(docs)
        else:
            val_docs = []
        if not any(len(d) for d in docs):
            raise ValueError("texts hold no tokens: the training corpus is empty. Pass non-empty "
                             "documents.")
        if validation_texts is not None and not any(len(d) for d in val_docs):
            raise ValueError("validation_texts hold no tokens; pass non-empty documents or None.")

        ckpt = None
        if resume:
            if self.checkpoint_path is None:
                raise ValueError("resume=True needs checkpoint_path, got None; set "
                                 "checkpoint_path to the checkpoint file of the interrupted run.")
            if os.path.exists(self.checkpoint_path):
                ckpt = self._read_checkpoint(self.checkpoint_path)
        if ckpt is None and self.checkpoint_path is not None:
            self._check_overwritable(self.checkpoint_path)

        rng = check_random_state(self.random_state)
        self.input_type_ = kind
        if ckpt is not None:
            meta, arrays = ckpt
            self.vocabulary_ = Vocabulary.from_dict(meta["vocabulary"])
            self.network_ = SequenceNetwork(**meta["network_config"], backend=self.backend,
                                            random_state=0)
            self._check_architecture(meta["network_config"])
        else:
            vocab = Vocabulary.build(docs, max_size=self.max_vocab, min_count=self.min_count)
            _check_vocabulary(vocab, docs, self.min_count, self.max_vocab)
            self.vocabulary_ = vocab
            self.network_ = self._build_network(len(self.vocabulary_),
                                                rng.randint(np.iinfo(np.int32).max))
        self._lm_cache = None
        train_ids = self._encode(docs)
        val_ids = self._encode(val_docs)
        fingerprint = self._fingerprint(train_ids, val_ids)
        run = _Run(self, rng, train_ids, val_ids, fingerprint)
        if ckpt is not None:
            run.restore(*ckpt)
        run.train()
        return self

    def _check_architecture(self, config):
        want = dict(cell=self.cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
                    embedding_dim=self._embedding_dim(), tie_weights=bool(self.tie_weights),
                    dtype=check_dtype(self.dtype).name)
        have = {k: config[k] for k in want}
        if have != want:
            diff = {k: (have[k], want[k]) for k in want if have[k] != want[k]}
            raise ValueError(
                f"the checkpoint at {self.checkpoint_path!r} has another architecture: "
                + ", ".join(f"{k}={a!r} there, {b!r} here" for k, (a, b) in diff.items())
                + "; use the same parameters to resume, or resume=False to start afresh."
            )

    @staticmethod
    def _fingerprint(train_ids, val_ids):
        h = hashlib.sha256()
        for part in (train_ids, val_ids):
            h.update(str(len(part)).encode())
            for d in part:
                h.update(np.asarray(d, np.int32).tobytes())
                h.update(b"|")
        return h.hexdigest()

    @staticmethod
    def _check_overwritable(path):
        """Refuse to start a run whose checkpoints would overwrite a file that is not a checkpoint
        of this class (a saved model, say), or that is no file at all."""
        if os.path.isdir(path):
            raise ValueError(
                f"checkpoint_path {os.fspath(path)!r} is a directory; pass a file path for the "
                f"checkpoint, e.g. {os.path.join(os.fspath(path), 'lm.ckpt')!r}."
            )
        try:
            check_destination(path)
        except OSError as exc:
            raise ValueError(f"checkpoint_path cannot be written: {exc}") from exc
        if not os.path.exists(path):
            return
        import json
        import zipfile

        try:
            with zipfile.ZipFile(path) as z:
                meta = json.loads(z.read("meta.json").decode("utf-8"))
            ours = meta.get("class") == _CLASS_NAME and "checkpoint" in meta
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            ours = False
        if not ours:
            raise ValueError(
                f"checkpoint_path {os.fspath(path)!r} is an existing file that is not a training "
                "checkpoint of an RNNLanguageModel; training would overwrite it. Choose another "
                "checkpoint_path, or move the file away."
            )

    def _read_checkpoint(self, path):
        try:
            meta, arrays = read_model(path)
        except ValueError as exc:
            raise ValueError(f"cannot resume: {exc}") from exc
        if meta.get("class") != _CLASS_NAME or "checkpoint" not in meta:
            raise ValueError(
                f"{os.fspath(path)!r} is not a training checkpoint of an RNNLanguageModel (it "
                f"holds a {meta.get('class')} "
                f"{'checkpoint' if 'checkpoint' in meta else 'saved model'}); "
                "point checkpoint_path at the checkpoint of the run to resume."
            )
        return meta, arrays

    # ------------------------------------------------------------------ persistence
    def _saved_params(self):
        params = self.get_params()
        if callable(params["level"]):
            params["level"] = None
        if not isinstance(params["optimizer"], str):
            params["optimizer"] = type(params["optimizer"]).__name__.lower()
        if not isinstance(params["random_state"], (int, np.integer, type(None))):
            params["random_state"] = None
        params["dtype"] = np.dtype(params["dtype"]).name
        if params["checkpoint_path"] is not None:
            params["checkpoint_path"] = os.fspath(params["checkpoint_path"])
        return params

    def _meta(self, fitted):
        """The JSON part of a saved model or checkpoint (``fitted``: the training summary)."""
        return dict(
            params=self._saved_params(),
            tokenizer=(None if not callable(self.level) else
                       getattr(self.level, "__qualname__", type(self.level).__name__)),
            vocabulary=self.vocabulary_.to_dict(),
            network_config=self.network_.config,
            input_type=self.input_type_,
            fitted=fitted,
        )

    def _to_saved(self):
        """``(meta, arrays)`` for :func:`fastrnn._persist.save_model`."""
        check_is_fitted(self, "network_")
        fitted = {k: getattr(self, k) for k in _FITTED}
        fitted["loss_curve_"] = [_json_float(x) for x in fitted["loss_curve_"]]
        fitted["validation_bits_per_token_"] = [
            _json_float(x) for x in fitted["validation_bits_per_token_"]]
        arrays = {k: v for k, v in self.network_.params.items()}
        return self._meta(fitted), arrays

    @classmethod
    def _from_saved(cls, meta, arrays):
        """Rebuild a fitted model from :meth:`_to_saved`'s output (or a checkpoint's), checked
        first: a bad file raises :class:`fastrnn.ModelFileError`."""
        check_language_model_file(cls, meta, arrays)
        try:
            params = dict(meta["params"])
            model = cls(**params)
            model.vocabulary_ = Vocabulary.from_dict(meta["vocabulary"])
            model.network_ = network_from_saved(meta["network_config"], arrays, "",
                                                params.get("backend", "auto"), "network_config")
            model.input_type_ = meta.get("input_type", "text")
            for k, v in meta.get("fitted", {}).items():
                setattr(model, k, v)
        except (KeyError, TypeError) as exc:
            raise ModelFileError(f"the model file is incomplete or from an incompatible version "
                                 f"({type(exc).__name__}: {exc})") from exc
        model.loss_curve_ = [np.nan if x is None else x for x in model.loss_curve_]
        return model

    def save(self, path):
        """Save the fitted model to ``path`` (atomically; reload with :func:`fastrnn.load`).

        A model trained with a custom tokenizer callable is saved without it: after loading, set it
        with ``model.set_params(level=tokenizer)`` (or pass lists of tokens).

        Parameters
        ----------
        path : str or path-like
        """
        meta, arrays = self._to_saved()
        save_model(path, _CLASS_NAME, meta, arrays)


# ------------------------------------------------------------------------------------------------
# One training run (fresh or resumed)
# --------------------------------------------------------------------------------------------------

class _Run:
    """The state of one training run and the loop.

    :meth:`checkpoint` / :meth:`restore` save and load all of it, so that a resumed run takes
    exactly the steps the uninterrupted one would have taken.
    """

    def __init__(self, est, rng, train_ids, val_ids, fingerprint):
        self.est = est
        self.rng = rng
        self.train_ids = train_ids
        self.val_ids = val_ids
        self.fingerprint = fingerprint
        self.lm = est._lm()
        net = est.network_
        opt = est.optimizer
        opt = copy.deepcopy(opt) if not isinstance(opt, str) else opt
        self.trainer = Trainer(self.lm, opt, learning_rate=est.learning_rate,
                               clip_norm=est.clip_norm)
        self._base_lr = float(self.trainer.optimizer.lr)
        self._last_lr, self._lr_factor = None, 1.0
        self.scheduler = None
        if val_ids and est.lr_decay < 1.0 and est.lr_schedule == "plateau":
            self.scheduler = ReduceLROnPlateau(self.trainer.optimizer, factor=est.lr_decay,
                                               patience=est.lr_patience, threshold=1e-4)
        self.epoch = 0          # completed epochs
        self.chunk = 0          # chunks done in the current epoch
        self.perm = None        # document order of the current epoch
        self.state = None       # carried recurrent state
        self.step = 0
        self.tokens = 0
        self.seconds = 0.0
        self.history = []
        self.loss_curve = []
        self.val_curve = []
        self.best_loss = math.inf
        self.best_params = None
        self.bad_evals = 0
        self.epoch_sum = 0.0
        self.epoch_count = 0
        self.recent_sum = 0.0
        self.recent_count = 0
        self.net = net
        self.saved_at = None    # (epoch, chunk, step) of the checkpoint on disk for this run

    # -------------------------------------------------------------- streams
    def _streams(self):
        B = int(self.est.batch_size)
        ids = np.concatenate([self.train_ids[i] for i in self.perm])
        n = len(ids) // B
        if n < 2:
            raise ValueError(
                f"the training texts give {len(ids)} tokens (with <bos>/<eos>), too few for "
                f"batch_size={B} streams of at least 2 tokens; lower batch_size or add text."
            )
        return ids[:B * n].reshape(B, n)

    def _row_state(self, stream, fresh):
        """Initial state of the rows of a chunk: the carried state of their stream, zero where a
        document starts (or nothing is carried yet)."""
        R = len(stream)
        zero = self.est._zero_state(R)
        if self.state is None:
            return zero
        keep = ~fresh
        if isinstance(zero, tuple):
            for z, s in zip(zero, self.state):
                z[:, keep] = s[:, stream[keep]]
        else:
            zero[:, keep] = self.state[:, stream[keep]]
        return zero

    def _new_perm(self):
        n = len(self.train_ids)
        return self.rng.permutation(n) if self.est.shuffle else np.arange(n)

    # -------------------------------------------------------------- evaluation
    def evaluate(self):
        """Validation loss (nats per token) of the current parameters; updates best / schedule."""
        total, count = self.est._score_ids(self.val_ids)
        loss = -total / count
        self.val_curve.append(loss / math.log(2.0))
        improved = loss < self.best_loss
        if improved:
            self.best_loss = loss
            self.best_params = {k: v.copy() for k, v in self.net.params.items()}
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        if self.scheduler is not None:
            self.scheduler.step(loss)
        return loss

    def record(self, t_start, val_loss=None):
        entry = dict(
            epoch=round(self.epoch + (self.chunk / self.n_chunks if self.n_chunks else 0.0), 4),
            step=self.step, tokens=self.tokens,
            seconds=round(self.seconds + time.perf_counter() - t_start, 2),
            train_bits=_json_float(self.recent_sum / self.recent_count / math.log(2.0))
            if self.recent_count else None,
            val_bits=None if val_loss is None else _json_float(val_loss / math.log(2.0)),
            lr=float(self.trainer.optimizer.lr))
        self.history.append(entry)
        self.recent_sum, self.recent_count = 0.0, 0
        return entry

    # -------------------------------------------------------------- the loop
    def train(self):
        est = self.est
        t_start = time.perf_counter()
        B, k = int(est.batch_size), int(est.bptt)
        bar = None
        reason = "max_iter"
        interrupted = False
        self.n_chunks = 0
        if est.verbose:
            from tqdm.auto import tqdm

            per_epoch = (sum(len(d) for d in self.train_ids) // B - 1) * B
            bar = tqdm(total=per_epoch * int(est.max_iter), initial=min(
                self.tokens, per_epoch * int(est.max_iter)), unit="tok", unit_scale=True,
                desc="fit", dynamic_ncols=True, mininterval=1.0, smoothing=0.1)

        def log(entry):
            if est.verbose:
                v = entry["val_bits"]
                tb = entry["train_bits"]
                msg = (f"epoch {entry['epoch']:.2f} step {entry['step']} tokens {entry['tokens']} "
                       f"time {entry['seconds']:.0f}s train "
                       f"{float('nan') if tb is None else tb:.4f} bits/token"
                       + (f" validation {v:.4f} bits/token" if v is not None else "")
                       + f" lr {entry['lr']:.3g}")
                if bar is not None:
                    bar.write(msg)

        in_step = False
        with _StopFlag() as stop:
            try:
                while self.epoch < int(est.max_iter) and reason == "max_iter":
                    if self.chunk == 0 or self.perm is None:
                        self.perm = self._new_perm()
                        self.chunk = 0
                        self.state = None
                    streams = self._streams()
                    chunks = list(truncated_bptt_batches(streams, k))
                    self.n_chunks = len(chunks)
                    for j in range(self.chunk, len(chunks)):
                        X, Y = chunks[j]
                        n_tok = X.shape[0] * X.shape[1]
                        Xr, Yr, lengths, stream, fresh, last = split_at_documents(X, Y)
                        valid = ((np.arange(Xr.shape[1])[None, :] < lengths[:, None])
                                 & (Yr != BOS))
                        init = self._row_state(stream, fresh)
                        self._anneal(t_start)
                        in_step = True
                        loss, h_n = self.trainer.step(Xr, lengths, self.lm.loss_fn(Yr, valid),
                                                      init)
                        in_step = False
                        if math.isfinite(loss):
                            self.state = (tuple(np.ascontiguousarray(s[:, last]) for s in h_n)
                                          if isinstance(h_n, tuple)
                                          else np.ascontiguousarray(h_n[:, last]))
                        else:
                            self.state = None
                        self.chunk = j + 1
                        self.step += 1
                        self.tokens += n_tok
                        if math.isfinite(loss):
                            n_valid = int(valid.sum())
                            self.epoch_sum += loss * n_valid
                            self.epoch_count += n_valid
                            self.recent_sum += loss * n_valid
                            self.recent_count += n_valid
                        if bar is not None:
                            bar.update(n_tok)
                            post = {"loss": f"{loss:.3f}"}
                            if self.val_curve:
                                post["val_bpt"] = f"{self.val_curve[-1]:.3f}"
                            bar.set_postfix(post, refresh=False)
                        if stop.requested:
                            interrupted = True
                            break
                        epoch_end = j + 1 == len(chunks)
                        if (est.eval_interval and self.val_ids and not epoch_end
                                and self.step % int(est.eval_interval) == 0):
                            log(self.record(t_start, self.evaluate()))
                            if self._should_stop_early():
                                reason = "early_stopping"
                                break
                        if est.time_budget and time.perf_counter() - t_start >= est.time_budget:
                            reason = "time_budget"
                            break
                    if interrupted:
                        break
                    if self.chunk >= len(chunks):
                        # end of an epoch
                        self.loss_curve.append(self.epoch_sum / self.epoch_count
                                               if self.epoch_count else math.nan)
                        self.epoch_sum, self.epoch_count = 0.0, 0
                        self.epoch += 1
                        self.chunk = 0
                        self.perm = None
                        self.state = None
                        val = self.evaluate() if self.val_ids else None
                        log(self.record(t_start, val))
                        if val is not None and self._should_stop_early():
                            reason = "early_stopping"
                        if est.checkpoint_path is not None:
                            self.checkpoint(t_start)
            except KeyboardInterrupt:
                interrupted = True
                if in_step:
                    # Interrupted inside an update (a second Ctrl-C, or not in the main thread):
                    # the parameters may be half-updated, so go back to the trainer's last good
                    # snapshot. The position in the epoch no longer matches them, so no checkpoint
                    # is written (the one of the last epoch stays valid).
                    params, opt_state = self.trainer._snapshot
                    self.net.load_state_dict(params)
                    self.trainer.optimizer.load_state_dict(opt_state)
        if interrupted:
            reason = "interrupted"
        if bar is not None:
            bar.close()
        if reason != "max_iter" and est.checkpoint_path is not None and not in_step:
            self.checkpoint(t_start)
        if reason == "time_budget" and self.val_ids and self.recent_count:
            # the steps since the last evaluation count too (after the checkpoint, so that a resumed
            # run takes exactly the steps of an uninterrupted one)
            log(self.record(t_start, self.evaluate()))
        self.finish(t_start, reason)
        if interrupted:
            what = ("the parameters with the best validation perplexity so far"
                    if self.best_params is not None else "the latest parameters")
            warnings.warn(
                f"training interrupted after {self.step} steps ({self.tokens} tokens); the model "
                f"keeps {what}{self._resume_note(in_step)}.", TrainingInterrupted, stacklevel=4)

    def _resume_note(self, in_step):
        """How an interrupted run can be resumed: only from a checkpoint that exists."""
        path = self.est.checkpoint_path
        if path is None:
            return ""
        if self.saved_at is None:
            return ("; no checkpoint was written (the run was interrupted inside a step, before "
                    "its first checkpoint), so it cannot be resumed")
        note = f" and the run can be resumed from {os.fspath(path)!r} with fit(..., resume=True)"
        if in_step:  # interrupted inside an update: the checkpoint on disk is an older one
            epoch, chunk, step = self.saved_at
            where = f"the end of epoch {epoch}" if chunk == 0 else f"step {step}"
            note += f", from its checkpoint at {where} (the steps since then are lost)"
        return note

    def _anneal(self, t_start):
        """Set the learning rate of the ``"cosine"`` / ``"linear"`` schedules from the progress."""
        est = self.est
        if est.lr_schedule == "plateau":
            return
        done = self.epoch + (self.chunk / self.n_chunks if self.n_chunks else 0.0)
        progress = done / int(est.max_iter)
        if est.time_budget:
            elapsed = self.seconds + time.perf_counter() - t_start
            progress = max(progress, elapsed / float(est.time_budget))
        frac = float(est.anneal_fraction)
        progress = min(max(progress - (1.0 - frac), 0.0) / frac, 1.0)
        shape = (0.5 * (1.0 + math.cos(math.pi * progress)) if est.lr_schedule == "cosine"
                 else 1.0 - progress)
        opt = self.trainer.optimizer
        if self._last_lr is not None and opt.lr < self._last_lr:
            # the trainer backed the learning rate off after a non-finite loss: keep that factor
            self._lr_factor *= opt.lr / self._last_lr
        lo, hi = float(est.min_learning_rate), self._base_lr
        opt.lr = self._last_lr = (lo + (hi - lo) * shape) * self._lr_factor

    def _should_stop_early(self):
        return bool(self.est.early_stopping and self.bad_evals >= int(self.est.n_iter_no_change))

    def summary(self, t_start, reason):
        """The fitted attributes of the estimator (``_FITTED``) at this point of the run."""
        return dict(
            n_iter_=self.epoch, n_steps_=self.step, n_tokens_seen_=self.tokens,
            loss_curve_=list(self.loss_curve), validation_bits_per_token_=list(self.val_curve),
            best_validation_bits_per_token_=(self.best_loss / math.log(2.0)
                                             if self.best_params is not None else None),
            history_=list(self.history), stop_reason_=reason,
            training_time_=self.seconds + time.perf_counter() - t_start)

    def finish(self, t_start, reason):
        self.lm.release()
        if self.best_params is not None:
            self.net.load_state_dict(self.best_params)
        for k, v in self.summary(t_start, reason).items():
            setattr(self.est, k, v)

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self, t_start):
        """Write everything needed to continue this run to ``checkpoint_path`` (atomically)."""
        est = self.est
        opt_state = self.trainer.optimizer.state_dict()
        arrays = {}
        best = self.best_params if self.best_params is not None else self.net.params
        for k, v in best.items():
            arrays[k] = v
        for k, v in self.net.params.items():
            arrays[f"train/param/{k}"] = v
        opt_ints = {}
        for pname, st in opt_state["state"].items():
            for key, val in st.items():
                if isinstance(val, np.ndarray):
                    arrays[f"train/opt/{pname}/{key}"] = val
                else:
                    opt_ints.setdefault(pname, {})[key] = val
        rngs = {}
        for name, r in (("est", self.rng), ("net", self.net.rng_), ("rnn", self.net.rnn.rng_)):
            keys, rest = _rng_state(r)
            arrays[f"train/rng/{name}"] = keys
            rngs[name] = rest
        if self.perm is not None:
            arrays["train/perm"] = np.asarray(self.perm, np.int64)
        for i, s in enumerate(_state_arrays(self.state)):
            arrays[f"train/state/{i}"] = s
        arrays["train/grad_norms"] = np.asarray(self.trainer.grad_norms_, np.float64)
        fitted = self.summary(t_start, "checkpoint")
        fitted["loss_curve_"] = [_json_float(x) for x in fitted["loss_curve_"]]
        fitted["validation_bits_per_token_"] = [
            _json_float(x) for x in fitted["validation_bits_per_token_"]]
        meta = est._meta(fitted)
        meta["checkpoint"] = dict(
            fingerprint=self.fingerprint, epoch=self.epoch, chunk=self.chunk, step=self.step,
            tokens=self.tokens, seconds=self.seconds + time.perf_counter() - t_start,
            history=self.history, loss_curve=[_json_float(x) for x in self.loss_curve],
            val_curve=[_json_float(x) for x in self.val_curve],
            best_loss=_json_float(self.best_loss), has_best=self.best_params is not None,
            bad_evals=self.bad_evals, epoch_sum=self.epoch_sum, epoch_count=self.epoch_count,
            recent_sum=self.recent_sum, recent_count=self.recent_count,
            optimizer=dict(name=opt_state["optimizer"], lr=opt_state["lr"],
                           step_count=opt_state["step_count"], ints=opt_ints),
            scheduler=(None if self.scheduler is None else
                       {k: (_json_float(v) if isinstance(v, float) else v)
                        for k, v in self.scheduler.state_dict().items()}),
            rngs=rngs, n_state=len(_state_arrays(self.state)),
            batch_size=int(est.batch_size), bptt=int(est.bptt),
            n_failures=self.trainer.n_failures_)
        save_model(est.checkpoint_path, _CLASS_NAME, meta, arrays)
        self.saved_at = (self.epoch, self.chunk, self.step)

    def restore(self, meta, arrays):
        """Load a checkpoint written by :meth:`checkpoint`."""
        c = meta["checkpoint"]
        est = self.est
        if c["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"the checkpoint at {est.checkpoint_path!r} was written for other training or "
                "validation texts; pass the same texts to resume, or resume=False to start afresh."
            )
        if int(c["chunk"]) > 0 and (c["batch_size"], c["bptt"]) != (est.batch_size, est.bptt):
            raise ValueError(
                f"the checkpoint at {est.checkpoint_path!r} stopped inside an epoch of "
                f"batch_size={c['batch_size']}, bptt={c['bptt']}; resume with those values (got "
                f"batch_size={est.batch_size}, bptt={est.bptt})."
            )
        self.net.load_state_dict({k: arrays[f"train/param/{k}"] for k in self.net.params})
        if c["has_best"]:
            self.best_params = {k: arrays[k].copy() for k in self.net.params}
        self.best_loss = math.inf if c["best_loss"] is None else c["best_loss"]
        opt = self.trainer.optimizer
        o = c["optimizer"]
        if o["name"] != type(opt).__name__:
            raise ValueError(f"the checkpoint was trained with {o['name']}, not "
                             f"{type(opt).__name__}; use the same optimizer to resume.")
        state = {}
        for key, val in arrays.items():
            if key.startswith("train/opt/"):
                pname, _, sub = key[len("train/opt/"):].rpartition("/")
                state.setdefault(pname, {})[sub] = val
        for pname, ints in o["ints"].items():
            state.setdefault(pname, {}).update(ints)
        opt.load_state_dict(dict(optimizer=o["name"], lr=o["lr"], step_count=o["step_count"],
                                 state=state))
        if self.scheduler is not None and c["scheduler"] is not None:
            sch = dict(c["scheduler"])
            if sch.get("best") is None:
                sch["best"] = math.inf
            self.scheduler.load_state_dict(sch)
        for name, r in (("est", self.rng), ("net", self.net.rng_), ("rnn", self.net.rnn.rng_)):
            _set_rng_state(r, arrays[f"train/rng/{name}"], c["rngs"][name])
        self.perm = arrays.get("train/perm")
        n_state = int(c["n_state"])
        if n_state:
            parts = [arrays[f"train/state/{i}"] for i in range(n_state)]
            self.state = tuple(parts) if self.net.rnn.has_cell else parts[0]
        self.trainer.grad_norms_ = list(arrays["train/grad_norms"])
        self.trainer.n_failures_ = int(c["n_failures"])
        self.trainer.take_snapshot()
        self.epoch, self.chunk, self.step = int(c["epoch"]), int(c["chunk"]), int(c["step"])
        self.saved_at = (self.epoch, self.chunk, self.step)
        self.tokens, self.seconds = int(c["tokens"]), float(c["seconds"])
        self.history = list(c["history"])
        self.loss_curve = [math.nan if x is None else x for x in c["loss_curve"]]
        self.val_curve = [math.nan if x is None else x for x in c["val_curve"]]
        self.bad_evals = int(c["bad_evals"])
        self.epoch_sum, self.epoch_count = float(c["epoch_sum"]), int(c["epoch_count"])
        self.recent_sum, self.recent_count = float(c["recent_sum"]), int(c["recent_count"])
