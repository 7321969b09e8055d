"""Sequence to sequence: :class:`RNNSeq2Seq`, an encoder–decoder with attention.

The estimator maps each input sequence to an output sequence of tokens (spelling to
pronunciation, a sentence to its translation, a date format to another): a conditional language
model :math:`p(y_1 \\dots y_n\\ \\texttt{<eos>} \\mid x)` whose network is
:class:`fastrnn.nn.seq2seq.Seq2SeqNetwork`. Input validation, training (the shared
:class:`fastrnn.train.TrainingLoop`, early stopping, schedules, progress, ``warm_start``) and the
safe model format come from :class:`fastrnn.estimators._base.BaseRNNEstimator`; this module adds
the target vocabulary, teacher-forced minibatches, greedy and beam-search decoding, sequence
scores and the checks of a saved file.
"""

import math
from numbers import Integral, Number, Real

import numpy as np
from sklearn.base import TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .._params import store_params
from .._persist import ModelFileError, _describe
from ..losses import log_softmax, sequence_softmax_cross_entropy
from ..nn.seq2seq import BOS, EOS, Seq2SeqNetwork
from ..text import length_buckets
from ..train import Batch
from ._base import BaseRNNEstimator, _SequenceTask, auto_embedding_dim
from ._docs import document_parameters
from ._inference import PREDICT_BATCH_SIZE
from ._inputs import check_sample_weight
from ._saved import (SAVED_ATTRIBUTES, _check_attribute, _check_params, _check_weight,
                     _fitted_value, _mapping, check_format_version)
from .classifier import _encode_labels, _object_labels, _unique_labels

__all__ = ["RNNSeq2Seq"]

#: the output ids before the target tokens: ``<bos>`` and ``<eos>``
SPECIAL_TOKENS = ("<bos>", "<eos>")
#: the largest batch of ``batch_size="auto"``
AUTO_MAX_BATCH = 128
N_SPECIAL = len(SPECIAL_TOKENS)


def _as_token_lists(y, n, name="y"):
    """``y`` as a list of ``n`` lists of tokens: a string is the sequence of its characters, a
    single number a sequence of one token."""
    if y is None:
        raise ValueError(f"This RNNSeq2Seq estimator requires {name} to be passed, but the target "
                         f"{name} is None. Pass one target sequence (a list of tokens) per input "
                         "sequence.")
    if isinstance(y, (str, bytes)):
        raise ValueError(f"{name} must be a list of target sequences, got a single string "
                         f"{y!r:.40}. Pass one sequence per input sequence, e.g. [{y!r:.20}].")
    if not isinstance(y, (list, tuple, np.ndarray)) and hasattr(y, "__array__"):
        y = np.asarray(y)  # array-likes (pandas objects, wrappers) as numpy reads them
    try:
        items = y.tolist() if isinstance(y, np.ndarray) and y.dtype != object else list(y)
    except TypeError:
        raise ValueError(f"{name} must be a list of target sequences (lists of tokens), got "
                         f"{type(y).__name__}.") from None
    if len(items) != n:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: X has {n} sequences but "
            f"{name} has {len(items)} target sequences. Pass one target sequence per sequence.")
    out = []
    for i, s in enumerate(items):
        if isinstance(s, str):
            out.append(list(s))
            continue
        if isinstance(s, (Number, np.generic)) and not isinstance(s, (bytes, np.bytes_)):
            s = [s.item() if isinstance(s, np.generic) else s]
        if isinstance(s, np.ndarray) and s.ndim != 1:
            raise ValueError(f"{name}[{i}] has shape {s.shape}; a target sequence is 1-D (one "
                             "token per step).")
        try:
            seq = s.tolist() if isinstance(s, np.ndarray) else list(s)
        except TypeError:
            raise ValueError(
                f"{name}[{i}] = {s!r:.40} is not a sequence; each item of {name} must be a "
                "sequence of tokens (a list, an array or a string of characters).") from None
        for v in seq:
            try:
                hash(v)
            except TypeError:
                raise ValueError(f"{name}[{i}] holds {v!r:.40}, which is not hashable; tokens "
                                 "must be hashable (str, int, ...).") from None
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{name}[{i}] holds {v!r}; NaN or infinite tokens are not "
                                 "allowed. Remove them or give them a name.")
        out.append(seq)
    return out


def _target_batch(targets, idx):
    """Teacher-forcing arrays of the targets ``idx``: the decoder's input ``<bos> y_1 .. y_n``,
    the outputs ``y_1 .. y_n <eos>`` (both (B, T), padded with ``<eos>``), and the lengths
    ``n + 1``."""
    seqs = [targets[i] for i in idx]
    ylen = np.array([len(s) + 1 for s in seqs], np.int64)
    T = int(ylen.max())
    yin = np.full((len(seqs), T), EOS, np.intp)
    yout = np.full((len(seqs), T), EOS, np.intp)
    yin[:, 0] = BOS
    for b, s in enumerate(seqs):
        yin[b, 1:len(s) + 1] = s
        yout[b, :len(s)] = s
    return yin, yout, ylen


class _Seq2SeqTask(_SequenceTask):
    """Minibatches of (source, teacher-forced target) pairs for the training loop."""

    def batch(self, j):
        idx = self.batches[j]
        swb = None if self.sw is None else self.sw[idx]
        if swb is not None and not swb.any():
            return None
        X, L = self.data.batch(idx)
        yin, yout, ylen = _target_batch(self.targets, idx)
        w = float(ylen.sum() if swb is None else (swb * ylen).sum())

        def loss_fn(logits):
            return sequence_softmax_cross_entropy(logits, yout, ylen, sample_weight=swb)

        return Batch((X, yin, ylen), L, loss_fn, None, w, len(idx))


@document_parameters
class RNNSeq2Seq(TransformerMixin, BaseRNNEstimator):
    r"""Recurrent encoder–decoder with attention: maps each sequence to a sequence of tokens.

    An encoder (stacked, optionally bidirectional recurrent layers) reads the input; a decoder
    (a recurrent layer of the same cell, started from the encoder's final state through a learned
    linear bridge where the sizes differ) generates the output one token at a time, reading the
    previous token's embedding and attending over the encoder's outputs (masked by the input
    lengths). Training maximises the log-probability of each target followed by ``<eos>``
    (teacher forcing); :meth:`predict` decodes greedily or with a beam search.

    Parameters
    ----------
    [shared parameters: cell]
    hidden_size : int, default=128
        Units of each encoder layer per direction, and of each decoder layer.
    [shared parameters: num_layers]
    bidirectional : bool, default=True
        A bidirectional encoder (the decoder always runs forwards). Its final state, both
        halves, is mapped to the decoder's initial state by a learned linear bridge.
    attention : {"general", "dot", "additive"} or None, default="general"
        How a decoder state scores the encoder outputs: Luong's ``"dot"`` (needs a
        unidirectional encoder) or ``"general"`` (a bilinear form), Bahdanau's ``"additive"``
        (a one-layer network), or no attention (the output reads the decoder state only).
    input_feeding : bool, default=False
        Feed each step's attentional state to the decoder's next step (Luong et al. 2015). The
        decoder then trains one step at a time, which is slower.
    scheduled_sampling : float, default=0.0
        Probability that a training step reads the model's own most probable previous token
        instead of the true one (Bengio et al. 2015); the decoder then trains one step at a time.
    [shared parameters: dropout recurrent_dropout embedding_dim]
    target_embedding_dim : int or "auto", default="auto"
        Size of the vectors of the target tokens that the decoder reads; ``"auto"`` follows the
        rule of ``embedding_dim`` on the target vocabulary's size.
    [shared parameters: vocab_size standardize optimizer]
    learning_rate : float, default=5e-3
        Learning rate of a named optimiser.
    batch_size : int or "auto", default="auto"
        Pairs per minibatch, grouped by input length. ``"auto"``: about 32 batches per epoch, of
        8 to 128 pairs (``min(128, max(8, n_train // 32))``).
    [shared parameters: max_iter clip_norm lr_schedule weight_decay]
    [shared parameters: time_budget early_stopping validation_fraction n_iter_no_change tol]
    [shared parameters: random_state verbose backend warm_start dtype callbacks]

    Attributes
    ----------
    classes_ : ndarray of shape (n_tokens,)
        The target tokens seen in ``fit``, sorted. The decoder's output vocabulary is
        ``vocabulary_``: ``"<bos>"`` (id 0), ``"<eos>"`` (id 1), then ``classes_`` (ids 2, 3, ...).
    vocabulary_ : list
        ``["<bos>", "<eos>", *classes_]``, the output of the decoder's softmax.
    max_target_length_ : int
        Longest target sequence seen in ``fit``; :meth:`predict` generates at most twice as
        many tokens by default.
    [shared attributes: n_features_in_ vocab_size_ feature_mean_,feature_scale_]
    network_ : fastrnn.nn.seq2seq.Seq2SeqNetwork
        The encoder–decoder.
    [shared attributes: loss_curve_ grad_norm_curve_ lr_curve_]
    validation_scores_ : list of float or None
        Minus the mean cross-entropy per target token (``<eos>`` included) of the validation
        data, after each epoch (teacher forcing), with early stopping.
    [shared attributes: best_validation_score_]
    [shared attributes: best_loss_ n_iter_ t_ history_ stop_reason_]

    See Also
    --------
    RNNLanguageModel : the unconditional model of a token stream.
    RNNTagger : one label per input step (input and output of the same length).

    Notes
    -----
    ``X`` takes the forms of the other estimators (float sequences, token ids, text through
    :class:`fastrnn.text.SequenceVectorizer` in a pipeline). ``y`` is a list of target
    sequences: lists (or 1-D arrays) of hashable tokens that numpy can sort, or strings, read as
    sequences of characters. :meth:`predict` returns lists of tokens.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn import RNNSeq2Seq
    >>> rng = np.random.RandomState(0)
    >>> X = [rng.randint(2, 8, size=rng.randint(2, 6)) for _ in range(300)]  # token ids
    >>> y = [[int(v) for v in x[::-1]] for x in X]                           # reversed
    >>> model = RNNSeq2Seq(hidden_size=32, max_iter=30, random_state=0).fit(X, y)
    >>> model.predict([np.array([2, 3, 7])])
    [[7, 3, 2]]
    """

    _parameter_constraints = {
        **{k: v for k, v in BaseRNNEstimator._parameter_constraints.items()
           if k != "checkpoint_path"},
        "attention": [StrOptions({"dot", "general", "additive"}), None],
        "input_feeding": ["boolean"],
        "scheduled_sampling": [Interval(Real, 0, 1, closed="both")],
        "target_embedding_dim": [Interval(Integral, 1, None, closed="left"),
                                 StrOptions({"auto"})],
    }
    _saved_attributes = SAVED_ATTRIBUTES["BaseRNNEstimator"] + ("classes_", "max_target_length_")
    _task_class = _Seq2SeqTask
    #: checkpoints of a run are not written for this estimator (no ``checkpoint_path``)
    checkpoint_path = None

    def __init__(self, cell="lstm", hidden_size=128, num_layers=1, bidirectional=True,
                 attention="general", input_feeding=False, scheduled_sampling=0.0, dropout=0.1,
                 recurrent_dropout=0.0, embedding_dim="auto", target_embedding_dim="auto",
                 vocab_size=None, standardize=True, optimizer="adam", learning_rate=5e-3,
                 batch_size="auto", max_iter="auto", clip_norm=5.0, lr_schedule="cosine",
                 weight_decay=0.0, time_budget=None, early_stopping="auto",
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, random_state=None,
                 verbose=0, backend="auto", warm_start=False, dtype="float32", callbacks=None):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ hooks
    def _pooling(self):
        return None

    def _n_outputs(self):
        return N_SPECIAL + len(self.classes_)

    @property
    def vocabulary_(self):
        self._check_fitted()
        return list(SPECIAL_TOKENS) + self.classes_.tolist()

    def _label_attributes(self):
        return ("classes_",)

    def _validate_targets(self, y, data, reset, incremental=False):
        seqs = _as_token_lists(y, len(data))
        flat = _object_labels([v for s in seqs for v in s])
        if reset:
            if not len(flat):
                raise ValueError("y holds no token at all (every target sequence is empty); "
                                 "pass target sequences with tokens.")
            classes = _unique_labels(flat)
            if classes.dtype == object:
                try:  # numbers or strings of one kind: a plain array (savable, fast search)
                    plain = np.asarray(classes.tolist())
                    if plain.dtype.kind in "biufU" and len(np.unique(plain)) == len(classes):
                        classes = plain
                except (TypeError, ValueError):
                    pass
            self.classes_ = classes
            self.max_target_length_ = int(max(len(s) for s in seqs))
        elif len(flat):
            known = set(self.classes_.tolist())
            unknown = list(dict.fromkeys(v for v in flat.tolist() if v not in known))
            if unknown:
                raise ValueError(
                    f"y holds token(s) {unknown[:5]} that the training targets do not have "
                    f"(the model knows {len(known)} tokens: {self.classes_[:10].tolist()}...). "
                    "Use targets made of the training tokens, or refit on data that has them.")
        codes = (_encode_labels(np.asarray(flat.tolist()) if self.classes_.dtype != object
                                else flat, self.classes_, "the model was fitted with,")
                 if len(flat) else np.zeros(0, np.intp))
        bounds = np.cumsum([len(s) for s in seqs])[:-1]
        return [c + N_SPECIAL for c in np.split(codes.astype(np.intp), bounds)]

    def _subset_targets(self, targets, idx):
        return [targets[i] for i in idx]

    def _make_loss(self, targets, idx, lengths, sample_weight):
        _, yout, ylen = _target_batch(targets, idx)
        w = float(ylen.sum() if sample_weight is None else (sample_weight * ylen).sum())
        return (lambda z: sequence_softmax_cross_entropy(z, yout, ylen, sample_weight)), w

    def _reference_loss(self, targets):
        return math.log(self._n_outputs() - 1)

    def _build_network(self, rng):
        kw = dict(cell=self.cell, hidden_size=int(self.hidden_size),
                  num_layers=int(self.num_layers), bidirectional=bool(self.bidirectional),
                  attention=self.attention, input_feeding=bool(self.input_feeding),
                  dropout=float(self.dropout), recurrent_dropout=float(self.recurrent_dropout),
                  dtype=self._dtype, backend=self.backend)
        if self.vocab_size_ is not None:
            dim = self.embedding_dim
            if isinstance(dim, str) or dim is None:
                dim = auto_embedding_dim(self.vocab_size_)
            kw.update(vocab_size=self.vocab_size_, embedding_dim=int(dim))
        else:
            kw.update(n_features=self.n_features_in_)
        tdim = self.target_embedding_dim
        if isinstance(tdim, str):
            tdim = auto_embedding_dim(self._n_outputs())
        return Seq2SeqNetwork(self._n_outputs(), target_embedding_dim=int(tdim),
                              random_state=int(rng.randint(np.iinfo(np.int32).max)), **kw)

    def _batch_size(self, n_train):
        """``batch_size``, or with ``"auto"`` about 32 batches per epoch of 8 to
        :data:`AUTO_MAX_BATCH` pairs: larger batches than the other estimators' at most, since a
        decoder step is cheap next to the fixed cost of a training step on large data sets."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        return int(min(AUTO_MAX_BATCH, max(8, n_train // 32)))

    def _make_trainer(self):
        self.network_.scheduled_sampling = float(self.scheduled_sampling)
        return super()._make_trainer()

    def _validation_score(self, data, targets, sample_weight):
        """Minus the mean cross-entropy per target token (teacher forcing)."""
        total, weight = 0.0, 0.0
        sw = np.ones(len(data)) if sample_weight is None else sample_weight
        for idx, logits, yout, ylen in self._teacher_forced(data, targets):
            lp = log_softmax(logits.astype(np.float64), axis=-1)
            got = np.take_along_axis(lp, yout[:, :, None], axis=2)[:, :, 0]
            real = np.arange(yout.shape[1])[None, :] < ylen[:, None]
            total += float((np.where(real, got, 0.0).sum(axis=1) * sw[idx]).sum())
            weight += float((ylen * sw[idx]).sum())
        return total / weight if weight > 0 else 0.0

    def _teacher_forced(self, data, targets):
        """``(idx, logits, yout, ylen)`` of every inference batch of ``data``."""
        for idx in length_buckets(data.lengths, PREDICT_BATCH_SIZE, shuffle=False):
            X, L = data.batch(idx)
            yin, yout, ylen = _target_batch(targets, idx)
            yield idx, self.network_.logits((X, yin, ylen), L), yout, ylen

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    @document_parameters
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train the encoder–decoder on pairs of sequences.

        Parameters
        ----------
        [shared parameters: X]
        y : list of sequences of tokens
            One target sequence per input sequence: a list or 1-D array of hashable tokens
            (numpy must be able to sort them), a string (its characters) or a single number (a
            sequence of one token). A sequence may be empty.
        [shared parameters: sample_weight validation_data]

        Returns
        -------
        self : RNNSeq2Seq
        """
        return self._fit(X, y, sample_weight, validation_data=validation_data)

    # ------------------------------------------------------------------ inference
    def _data(self, X):
        self._check_fitted()
        return self._validate_X(X, reset=False)

    def _check_decoding(self, beam_width, max_length):
        if (isinstance(beam_width, bool) or not isinstance(beam_width, (Integral, np.integer))
                or beam_width < 1):
            raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}. Use 1 "
                             "for greedy decoding, or e.g. 5 for a beam search.")
        if max_length is None:
            return 2 * int(self.max_target_length_)
        if (isinstance(max_length, bool) or not isinstance(max_length, (Integral, np.integer))
                or max_length < 0):
            raise ValueError(f"max_length must be None or an integer >= 0 (the most tokens "
                             f"generated per sequence), got {max_length!r}.")
        return int(max_length)

    def _decode(self, data, beam_width, max_length):
        """Token ids (without ``<bos>``/``<eos>``) and log-probabilities of the decoded
        sequences."""
        n = len(data)
        ids, scores = [None] * n, np.empty(n)
        rows = max(1, PREDICT_BATCH_SIZE // beam_width)
        for idx in length_buckets(data.lengths, rows, shuffle=False):
            X, L = data.batch(idx)
            Henc, h0 = self.network_.encode(X, L)
            seqs, sc = _greedy(self.network_, Henc, h0, L, max_length)
            if beam_width > 1:
                bseqs, bsc = _beam_search(self.network_, Henc, h0, L, max_length, beam_width)
                better = bsc >= sc  # the greedy sequence is a candidate of the beam too
                seqs = [b if k else g for b, g, k in zip(bseqs, seqs, better)]
                sc = np.where(better, bsc, sc)
            for b, i in enumerate(idx):
                ids[i] = seqs[b]
            scores[idx] = sc
        return ids, scores

    def predict(self, X, beam_width=1, max_length=None):
        """Generate the output sequence of each input.

        Parameters
        ----------
        X : array-like or list of arrays
        beam_width : int, default=1
            1: greedy decoding (the most probable token at every step). Larger: a beam search
            keeping that many hypotheses per input; it returns the most probable complete
            sequence it found, which is never less probable than the greedy one.
        max_length : int or None, default=None
            Most tokens generated per sequence (``<eos>`` is then forced); ``None``: twice
            ``max_target_length_``.

        Returns
        -------
        y : list of list
            The tokens of each output sequence (from ``classes_``), without ``<bos>``/``<eos>``.
        """
        data = self._data(X)
        max_length = self._check_decoding(beam_width, max_length)
        ids, _ = self._decode(data, int(beam_width), max_length)
        return [self.classes_[s - N_SPECIAL].tolist() for s in ids]

    def score_sequences(self, X, y):
        """Log-probability of each target sequence given its input under the model.

        Parameters
        ----------
        X : array-like or list of arrays
        y : list of sequences of tokens
            As in :meth:`fit`; a token the model never saw has probability 0.

        Returns
        -------
        log_proba : ndarray of shape (n_samples,), float64
            :math:`\\log p(y_1 \\dots y_n\\ \\texttt{<eos>} \\mid x)` (natural logarithm);
            ``-inf`` for a sequence with an unknown token.
        """
        data = self._data(X)
        seqs = _as_token_lists(y, len(data))
        index = {v: i + N_SPECIAL for i, v in enumerate(self.classes_.tolist())}
        targets, known = [], np.ones(len(seqs), bool)
        for i, s in enumerate(seqs):
            try:
                targets.append(np.array([index[v] for v in s], np.intp))
            except (KeyError, TypeError):
                targets.append(np.zeros(0, np.intp))
                known[i] = False
        out = np.empty(len(data))
        for idx, logits, yout, ylen in self._teacher_forced(data, targets):
            lp = log_softmax(logits.astype(np.float64), axis=-1)
            got = np.take_along_axis(lp, yout[:, :, None], axis=2)[:, :, 0]
            real = np.arange(yout.shape[1])[None, :] < ylen[:, None]
            out[idx] = np.where(real, got, 0.0).sum(axis=1)
        out[~known] = -np.inf
        return out

    def score(self, X, y, sample_weight=None):
        """Exact-sequence accuracy of the greedy predictions: the share of outputs equal to
        their target, token for token.

        Parameters
        ----------
        X : array-like or list of arrays
        y : list of sequences of tokens
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        data = self._data(X)
        true = _as_token_lists(y, len(data))
        sw = check_sample_weight(sample_weight, len(data))
        pred = self.predict(X)
        correct = np.array([p == t for p, t in zip(pred, true)], float)
        return float(np.average(correct, weights=sw))

    def transform(self, X):
        """The encoder's pooled representation of each input: its output at the last step (a
        bidirectional encoder: the backward half at the first step).

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        Z : ndarray of shape (n_samples, num_directions * hidden_size)
            In the model's dtype.
        """
        data = self._data(X)
        out = None
        for idx in length_buckets(data.lengths, PREDICT_BATCH_SIZE, shuffle=False):
            Xb, L = data.batch(idx)
            z = self.network_.pooled(Xb, L)
            if out is None:
                out = np.empty((len(data), z.shape[1]), z.dtype)
            out[idx] = z
        return out

    def attention_weights(self, X, y=None):
        """The attention weights of each output step over the input steps.

        Parameters
        ----------
        X : array-like or list of arrays
        y : list of sequences of tokens, optional
            Targets to read (teacher forcing); by default the greedy predictions.

        Returns
        -------
        weights : list of ndarray of shape (n_i + 1, T_i)
            Row ``t`` holds the weights of output step ``t`` (the last row: the step that
            emits ``<eos>``) over the ``T_i`` input steps; each row sums to 1.
        """
        if self.attention is None:
            raise ValueError("attention_weights needs a model with attention; this one was "
                             "fitted with attention=None.")
        data = self._data(X)
        if y is None:
            y = self.predict(X)
        seqs = _as_token_lists(y, len(data))
        index = {v: i + N_SPECIAL for i, v in enumerate(self.classes_.tolist())}
        unknown = [v for s in seqs for v in s if v not in index]
        if unknown:
            raise ValueError(f"y holds token(s) {unknown[:5]} that the model never saw; pass "
                             "tokens of classes_.")
        targets = [np.array([index[v] for v in s], np.intp) for s in seqs]
        out = [None] * len(data)
        net = self.network_
        for i in range(len(data)):
            Xb, L = data.batch([i])
            yin, _, _ = _target_batch(targets, [i])
            Henc, h0 = net.encode(Xb, L)
            dec = net.start(Henc, h0, L)
            rows = []
            for t in range(yin.shape[1]):
                net.attend_step(yin[:, t], dec)
                rows.append(dec.alpha[0, :L[0]].astype(np.float64))
            out[i] = np.array(rows)
        return out

    # ------------------------------------------------------------------ not available
    def init_state(self, n_streams=1):
        """Not available: an encoder–decoder reads its whole input before it writes; use
        :meth:`predict`."""
        raise NotImplementedError(
            "RNNSeq2Seq has no step-by-step reading of its input: the decoder starts after the "
            "encoder has read the whole sequence. Use predict(X) on complete sequences.")

    step = init_state

    # ------------------------------------------------------------------ saving
    @classmethod
    def _from_saved(cls, meta, arrays):
        """Rebuild a fitted estimator from a file, after checking it (a bad file raises
        :class:`fastrnn.ModelFileError`)."""
        values, net = _check_seq2seq_file(cls, meta, arrays)
        from ._saving import params_from_json

        est = cls(**params_from_json(meta["params"]))
        for name, value in values.items():
            setattr(est, name, value)
        est.network_ = net
        est._trainer = None
        est._counter = None
        from ..nn.init import check_random_state

        est._rng = check_random_state(est.random_state)
        return est


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------


def _greedy(net, Henc, h0, lengths, max_length):
    """Greedy decoding of an encoded batch: the token ids of each output (a list of arrays) and
    their log-probabilities (``<eos>`` included; forced after ``max_length`` tokens)."""
    B = len(lengths)
    dec = net.start(Henc, h0, lengths)
    ids = np.full(B, BOS, np.intp)
    done = np.zeros(B, bool)
    score = np.zeros(B)
    toks = np.zeros((B, max_length), np.intp)
    n = np.zeros(B, np.int64)
    rows = np.arange(B)
    for t in range(max_length + 1):
        logp = net.step_log_probs(ids, dec)
        nxt = np.full(B, EOS, np.intp) if t == max_length else np.argmax(logp, axis=1)
        live = ~done
        score[live] += logp[rows[live], nxt[live]]
        grow = live & (nxt != EOS)
        if t < max_length:
            toks[grow, t] = nxt[grow]
        n[grow] = t + 1
        done |= nxt == EOS
        if done.all():
            break
        ids = nxt
    return [toks[b, :n[b]].copy() for b in range(B)], score


def _beam_search(net, Henc, h0, lengths, max_length, k):
    """Beam search of width ``k`` over an encoded batch: the most probable complete output found
    for each input, and its log-probability.

    Every step expands each live hypothesis by every token; a hypothesis that emits ``<eos>`` is
    complete and stays in the beam with its score, competing with the live ones. The search of an
    input ends when its best complete hypothesis is at least as probable as its best live one
    (a live one can only lose probability), or after ``max_length`` tokens (``<eos>`` forced).
    """
    B, V = len(lengths), net.n_outputs
    dec = net.start(Henc, h0, lengths, repeat=k)
    scores = np.full((B, k), -np.inf)
    scores[:, 0] = 0.0
    finished = np.zeros((B, k), bool)
    ids = np.full(B * k, BOS, np.intp)
    offset = (np.arange(B) * k)[:, None]
    parents, tokens = [], []
    cand = np.empty((B, k, V + 1))
    for t in range(max_length + 1):
        logp = net.step_log_probs(ids, dec).reshape(B, k, V)
        if t == max_length:
            eos = logp[:, :, EOS].copy()
            logp[...] = -np.inf
            logp[:, :, EOS] = eos
        cand[:, :, :V] = np.where(finished[:, :, None], -np.inf, scores[:, :, None] + logp)
        cand[:, :, V] = np.where(finished, scores, -np.inf)
        flat = cand.reshape(B, -1)
        top = np.argsort(-flat, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(flat, top, axis=1)
        parent, col = top // (V + 1), top % (V + 1)
        finished = (col == V) | (col == EOS) | ~np.isfinite(scores)
        parents.append(parent)
        tokens.append(col)
        dec.reorder((offset + parent).ravel())
        ids = np.where(col >= V, EOS, col).ravel().astype(np.intp)
        best_done = np.where(finished, scores, -np.inf).max(axis=1)
        best_live = np.where(finished, -np.inf, scores).max(axis=1)
        if (best_done >= best_live).all():
            break
    final = np.where(finished, scores, -np.inf)
    slot = np.argmax(final, axis=1)
    best = final[np.arange(B), slot]
    out = []
    for b in range(B):
        j, seq = slot[b], []
        for t in range(len(tokens) - 1, -1, -1):
            tok = tokens[t][b, j]
            if tok != EOS and tok != V:
                seq.append(tok)
            j = parents[t][b, j]
        out.append(np.array(seq[::-1], np.intp))
    return out, best


# ---------------------------------------------------------------------------------------------
# the checks of a saved file
# ---------------------------------------------------------------------------------------------

_NETWORK_CONFIG = {
    "n_outputs": "int", "n_features": "int?", "vocab_size": "int?", "embedding_dim": "int?",
    "target_embedding_dim": "int", "cell": "str", "hidden_size": "int", "num_layers": "int",
    "bidirectional": "bool", "attention": "str?", "input_feeding": "bool", "dropout": "real",
    "recurrent_dropout": "real", "cell_options": "dict", "dtype": "str",
}


def _fail(problem, cause=None):
    raise ModelFileError(problem) from cause


def _check_network(config, arrays, backend="auto"):
    """Check the saved network's configuration against the arrays before building it; returns
    the network with the file's weights."""
    if not isinstance(config, dict) or set(config) != set(_NETWORK_CONFIG):
        _fail(f"meta.json 'network' must be an object with the entries "
              f"{sorted(_NETWORK_CONFIG)}, got {_describe(config)}")
    for key, kind in _NETWORK_CONFIG.items():
        v = config[key]
        if kind.endswith("?") and v is None:
            continue
        ok = {"int": lambda: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
              "bool": lambda: isinstance(v, bool),
              "real": lambda: isinstance(v, (int, float)) and not isinstance(v, bool)
              and 0 <= v < 1,
              "str": lambda: isinstance(v, str), "dict": lambda: isinstance(v, dict)}
        if not ok[kind.rstrip("?")]():
            _fail(f"network {key} is {_describe(v)}, which is not a valid value")
    # the sizes against the arrays, before anything of that size is allocated
    expect = {"out.bias": (config["n_outputs"],),
              "tgt_embedding.weight": (config["n_outputs"], config["target_embedding_dim"])}
    if config["vocab_size"] is not None:
        expect["src_embedding.weight"] = (config["vocab_size"], config["embedding_dim"] or 0)
    for name, shape in expect.items():
        a = arrays.get("network/" + name)
        if a is None or a.shape != shape:
            _fail(f"network config gives {name} the shape {shape}, but the file holds "
                  f"{_describe(a) if a is None else a.shape}")
    w = arrays.get("network/out.weight")
    if w is None or w.ndim != 2 or w.shape[1] != config["hidden_size"]:
        _fail(f"network hidden_size is {config['hidden_size']}, which does not match the array "
              "'network/out.weight'")
    try:
        net = Seq2SeqNetwork(**config, backend=backend, random_state=0)
    except (ValueError, TypeError) as exc:
        _fail(f"network cannot be built ({exc})", exc)
    state = {}
    for k, target in net.params.items():
        a = arrays.get("network/" + k)
        if a is None:
            _fail(f"array {'network/' + k!r} is missing")
        _check_weight("network/" + k, a, target.shape, net.dtype)
        state[k] = a
    extra = sorted(n for n in arrays if n.startswith("network/") and n[8:] not in net.params)
    if extra:
        _fail(f"the file holds array(s) {extra} that are no parameter of its network")
    net.load_state_dict(state)
    return net.eval()


def _check_seq2seq_file(cls, meta, arrays):
    """Check a saved :class:`RNNSeq2Seq` (parameters, fitted attributes, network, and their
    agreement); returns the fitted attributes and the network."""
    from ._saving import labels_from_saved

    check_format_version(cls.__name__, meta)
    _check_params(cls, _mapping(meta, "params"))
    fitted = _mapping(meta, "fitted")
    listed = meta.get("array_attributes")
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        _fail(f"meta.json 'array_attributes' must be a list of names, got {_describe(listed)}")
    kinds = _mapping(meta, "label_kinds", {})
    allowed = set(cls._saved_attributes)
    unknown = sorted((set(fitted) | set(listed)) - allowed)
    if unknown:
        _fail(f"the file sets attribute(s) {unknown}, which a {cls.__name__} does not save")
    missing = sorted(allowed - set(fitted) - set(listed) - {"lr_curve_"})
    if missing:
        _fail(f"fitted attribute(s) {missing} are missing")
    if "classes_" not in listed or set(kinds) != {"classes_"}:
        _fail("classes_ must be an array with a label kind")
    expected = {f"attr/{n}" for n in listed}
    expected |= {f"attr/{n}" for n, v in fitted.items() if v == "__list__"}
    extra = sorted(n for n in arrays if not n.startswith("network/") and n not in expected)
    if extra:
        _fail(f"the file holds unexpected array(s) {extra}")
    values = {n: _fitted_value(n, v, arrays) for n, v in fitted.items()}
    for n in listed:
        values[n] = arrays[f"attr/{n}"]
    for n, v in values.items():
        _check_attribute(n, v)
    kind = kinds["classes_"]
    classes = values["classes_"]
    if kind not in (None, "str", "bool", "int", "float") or classes.ndim != 1 or not len(classes):
        _fail(f"classes_ must be a non-empty 1-D array of tokens, got {_describe(classes)}")
    values["classes_"] = labels_from_saved(classes, kind)
    mtl = values.get("max_target_length_")
    if not (isinstance(mtl, int) and not isinstance(mtl, bool) and mtl >= 0):
        _fail(f"fitted max_target_length_ must be an integer >= 0, got {_describe(mtl)}")
    backend = meta["params"].get("backend", "auto")
    net = _check_network(meta.get("network"), arrays, backend)
    if net.n_outputs != N_SPECIAL + len(classes):
        _fail(f"classes_ holds {len(classes)} tokens, but the network's output layer has "
              f"{net.n_outputs} outputs (2 + the tokens)")
    config = net.config
    if values.get("vocab_size_") != config["vocab_size"]:
        _fail(f"fitted vocab_size_ is {values.get('vocab_size_')!r}, but the network's "
              f"vocab_size is {config['vocab_size']!r}")
    if config["vocab_size"] is None and values["n_features_in_"] != config["n_features"]:
        _fail(f"fitted n_features_in_ is {values['n_features_in_']}, but the network reads "
              f"{config['n_features']} features per step")
    for name in ("feature_mean_", "feature_scale_"):
        v = values.get(name)
        if v is not None and (v.ndim != 1 or len(v) != values["n_features_in_"]
                              or not np.isfinite(v).all()):
            _fail(f"fitted {name} must hold n_features_in_ finite values, got {_describe(v)}")
    return values, net
