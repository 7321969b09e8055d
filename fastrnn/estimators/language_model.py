"""Recurrent language models: :class:`RNNLanguageModel`.

A language model reads text as a stream of tokens (characters or words) and learns the
distribution of the next token given the ones before it. :class:`RNNLanguageModel` is the
scikit-learn style estimator: tokenising, vocabulary, training on parallel streams with truncated
back-propagation through time and carried state (:mod:`fastrnn.estimators._lm_task` under the
shared :class:`fastrnn.train.TrainingLoop`), evaluation (perplexity, bits per token), next-token
prediction, sampling, checkpoints and resuming. Its network is a
:class:`fastrnn.nn.SequenceNetwork` with a softmax head (:class:`fastrnn.nn.SoftmaxHead`), whose
loss is computed a block of rows at a time (:func:`fastrnn.losses.blocked_softmax_cross_entropy`).
"""

import copy
import math
import os
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._params import store_params
from .._config import check_dtype
from ..losses import blocked_log_probs, blocked_softmax_cross_entropy, softmax
from ..nn import SequenceNetwork
from ..nn.init import check_random_state
from ..nn.layers import SoftmaxHead
from ..nn.sampling import check_sampling_options, sample_token
from ..optim import AnnealingLR, ReduceLROnPlateau
from ..text import BOS, EOS, UNK, Vocabulary
from ..train import StoppingRule, Trainer, TrainingInterrupted, TrainingLoop, split_at_documents
from ._lm_ngram import LMNgramMixin
from ._lm_saving import LMSavingMixin
from ._lm_task import EXCLUDED_OUTPUTS, SOFTMAX_HEAD, LMTask
from ._lm_text import LMTextMixin, check_vocabulary
from ._quantize import QuantizeMixin
from ._streaming import EstimatorStream, softmax_into

__all__ = [
    "RNNLanguageModel",
    "LMNetwork",
    "blocked_softmax_cross_entropy",
    "blocked_log_probs",
    "sample_token",
    "split_at_documents",
    "TrainingInterrupted",
]

#: Steps per chunk when scoring held-out text (the state is carried across chunks, so the result
#: does not depend on this number; it bounds memory).
EVAL_CHUNK = 256


def perplexity_of(nll):
    """``exp(nll)`` as a float: ``inf`` where it overflows (a diverged model), never an error."""
    try:
        return float(math.exp(nll))
    except OverflowError:
        return math.inf


class LMNetwork:
    """Deprecated: a language model's network is a :class:`fastrnn.nn.SequenceNetwork` built with
    ``head="softmax"`` (its ``forward`` returns the hidden states, its ``loss_fn(targets, valid)``
    is the blocked softmax cross-entropy). Removed in the next version.

    ``LMNetwork(network)`` turns the dense head of ``network`` (built with ``vocab_size``,
    ``embedding_dim``, ``pooling=None``) into such a head, sharing its arrays, and returns the
    network's own methods.
    """

    def __init__(self, network, block_rows=None):
        warnings.warn("LMNetwork is deprecated and will be removed in the next version; build "
                      "SequenceNetwork(..., pooling=None, head='softmax') instead.", FutureWarning,
                      stacklevel=2)
        if network.embedding is None or network.pooling is not None:
            raise ValueError("LMNetwork needs a SequenceNetwork built with vocab_size and "
                             f"pooling=None, got {network.config}.")
        if not isinstance(network.head, SoftmaxHead):
            old = network.head
            head = SoftmaxHead(old.in_features, old.out_features, dtype=old.dtype,
                               excluded=EXCLUDED_OUTPUTS, block_rows=block_rows)
            head.params, head.grads = old.params, old.grads
            network.head = head
        self.network = network
        self.params, self.grads = network.params, network.grads
        self.forward = self.__call__ = network.forward
        self.backward = network.backward
        self.loss_fn = network.loss_fn
        self.release = network.release
        self.logits = network.head.logits

    def train(self, mode=True):
        self.network.train(mode)
        return self

    def eval(self):
        return self.train(False)


class _LMStream(EstimatorStream):
    """Streaming state of a language model: it reads ``<bos>`` whenever it (re)starts; with an
    n-gram part it also keeps the last ``order - 1`` ids of every stream."""

    def __init__(self, est, n_streams):
        self._est = est
        k = est.ngram_.order - 1 if est._has_ngram() else 0
        self._context = np.full((int(n_streams), k), BOS, np.int64)
        super().__init__(est, n_streams, len(est.vocabulary_))

    def read(self, ids):
        self.advance(ids)
        if self._context.shape[1]:
            self._context[:, :-1] = self._context[:, 1:]
            self._context[:, -1] = ids
        softmax_into(self.logits, self.output, EXCLUDED_OUTPUTS)
        return self._est._mix_into(self.output, self._context)

    def reset(self):
        super().reset()
        self._context[...] = BOS
        self._ids[...] = BOS
        self.read(self._ids)
        self._stream.steps = 0
        return self


class RNNLanguageModel(LMTextMixin, LMSavingMixin, LMNgramMixin, QuantizeMixin, BaseEstimator):
    r"""Recurrent language model over characters or words.

    The documents are tokenised, wrapped in ``<bos>`` ... ``<eos>``, concatenated (in a new random
    order every epoch when ``shuffle``) and cut into ``batch_size`` parallel streams. Training runs
    over chunks of ``bptt`` steps of all streams at once with teacher forcing: the input is the true
    token ``t``, the target the true token ``t+1``. The final recurrent state of a chunk is
    the initial state of the next one (truncated back-propagation through time: the state carries
    the context
    forward, the gradient stops at the chunk border). Documents are independent: where a stream
    crosses into a new document the state restarts from zero
    (:func:`~fastrnn.train.split_at_documents`), exactly as when a document is scored or a text
    generated, so the model never learns to rely on a state carried over from an unrelated text.
    Since text is scored from a zero state, every stream also restarts from one every 2,048
    tokens (rounded up to whole chunks, the streams in turn;
    ``fastrnn.estimators._lm_task.RESTART_TOKENS``), so that a corpus of long documents does
    not train the model on carried states only.
    The output softmax and the cross-entropy are fused and computed a block of rows at a time
    (:func:`~fastrnn.losses.blocked_softmax_cross_entropy`).

    With ``ngram_order`` set (the default), the model's next-token distribution is a mixture of
    the network's softmax and an interpolated Kneser-Ney n-gram model of the same training
    tokens (:class:`fastrnn.text.KneserNeyModel`), weighted to fit the validation text best
    (``ngram_weight_``): every score, prediction, step and sample uses the mixture. The n-gram
    model is exact on the contexts it has seen often and costs a second to count, so a short
    fit already predicts well; the longer the network trains, the more weight it gets.

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
    cell : {"lstm", "gru", "rnn", "mingru", "minlstm", "indrnn"}, default "lstm"
    embedding_dim : int, optional
        Size of the token vectors; default ``hidden_size`` when ``tie_weights`` else 64.
    hidden_size : int, default 256
    num_layers : int, default 1
    skip : {None, "residual", "dense", "highway"}, default None
        Connections between the stacked layers (see :class:`fastrnn.nn.LSTM`); ``None``: plain
        stacking.
    dropout : float, default 0.2
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
        the documents (or of the tokens of a single document) is held out, for this and for the
        weight of the n-gram part.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 3
    max_iter : int or "auto", default "auto"
        Maximum number of epochs (passes over the training texts). ``"auto"``: 10 epochs, but
        no more than 2 million training tokens (stopping inside an epoch if need be), and
        proportionally fewer for a network of more than 400,000 weights per token (every
        parameter but the embedding table: a larger model or a word vocabulary's softmax), so
        that a fit costs about a minute on two cores whatever the size; the n-gram part
        covers what the network has not learned yet. Pass a number of epochs to train longer.
    ngram_order : int, "auto" or None, default "auto"
        Order of the Kneser-Ney n-gram model mixed with the network (see above); ``"auto"``: 7
        at character level, 4 for words and token lists (lower where the vocabulary is too large
        for 64-bit n-gram codes); ``None``: the network alone. Needs validation text (given,
        or held out as for ``early_stopping``).
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
    precision : {"float32", "bf16"}, default "float32"
        Arithmetic of training: ``"bf16"`` rounds the operands of the recurrent layer's large
        matrix products (input projection, weight and input gradients) to bfloat16 and sums in
        float32 (see :class:`fastrnn.nn.LSTM`); needs ``dtype="float32"``, ``cell`` ``"lstm"``,
        ``"gru"`` or ``"rnn"`` and ``backend`` ``"auto"`` or ``"numba"``. Evaluation, generation
        and scoring compute in float32.
    backend : {"auto", "numba", "cython", "cuda", "numpy"}, default "auto"
    random_state : int, RandomState or None
        Seeds the initialisation, the dropout masks and the document order.
    verbose : int, default 0
        1 or more: a progress bar (tokens/s, loss, validation bits per token) and one line per
        evaluation.
    callbacks : list of fastrnn.callbacks.Callback or None, default None
        Called at the start of ``fit``, around every epoch (with its history entry: ``loss`` in
        nats per token, ``val_loss``, ``val_bits``, ``lr`` ...) and at the end; a callback can
        stop training (see :mod:`fastrnn.callbacks`).

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
        The best of them; the fitted parameters are those of that evaluation. These are the
        network's own figures, before the n-gram part is mixed in.
    ngram_ : fastrnn.text.KneserNeyModel or None
        The n-gram part (None with ``ngram_order=None``).
    ngram_weight_ : float
        Its weight in the mixture, in [0, 1] (0 without it).
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
        "cell": [StrOptions({"rnn", "lstm", "gru", "mingru", "minlstm", "indrnn"})],
        "embedding_dim": [Interval(Integral, 1, None, closed="left"), None],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
        "skip": [StrOptions({"residual", "dense", "highway"}), None],
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
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "ngram_order": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "eval_interval": [Interval(Integral, 1, None, closed="left"), None],
        "time_budget": [Interval(Real, 0, None, closed="neither"), None],
        "shuffle": ["boolean"],
        "checkpoint_path": [str, os.PathLike, None],
        "dtype": [StrOptions({"float32", "float64"}), type, np.dtype],
        "backend": [StrOptions({"auto", "numba", "cython", "cuda", "numpy"})],
        "precision": [StrOptions({"float32", "bf16"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
    }

    def __init__(self, level="char", max_vocab=None, min_count=1, cell="lstm", embedding_dim=None,
                 hidden_size=256, num_layers=1, dropout=0.2, recurrent_dropout=0.0,
                 tie_weights=False, bptt=64, batch_size=32, optimizer="adam", learning_rate=2e-3,
                 clip_norm=5.0, lr_decay=0.5, lr_patience=0, lr_schedule="plateau",
                 min_learning_rate=0.0, anneal_fraction=1.0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=3, max_iter="auto", eval_interval=None,
                 time_budget=None, shuffle=True, checkpoint_path=None, dtype="float32",
                 backend="auto", random_state=None, verbose=0, callbacks=None, skip=None,
                 precision="float32", ngram_order="auto"):
        store_params(self, locals())

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
        return self._network(dict(
            n_outputs=vocab_size, vocab_size=vocab_size, embedding_dim=E, cell=self.cell,
            hidden_size=self.hidden_size, num_layers=self.num_layers, dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout, pooling=None, tie_weights=self.tie_weights,
            dtype=check_dtype(self.dtype).name,
            **({} if self.skip is None else dict(skip=self.skip))), int(seed),
            precision=self.precision)

    def _network(self, config, seed=0, backend=None, precision="float32"):
        """The network of ``config`` with the language model's softmax head (also for configs
        saved before the head was part of it)."""
        config = dict(config, **SOFTMAX_HEAD)
        return SequenceNetwork(**config, backend=self.backend if backend is None else backend,
                               random_state=seed, precision=precision)

    def _zero_state(self, B):
        rnn = self.network_.rnn
        shape = (rnn.num_layers * rnn.num_directions, B, rnn.hidden_size)
        z = np.zeros(shape, self.network_.dtype)
        return (z, z.copy()) if rnn.has_cell else z

    # ------------------------------------------------------------------ scoring
    def _score_ids(self, docs):
        """Sum of the network's log-probabilities (nats) and number of predicted tokens of id
        documents (the validation score of training)."""
        logp, total = self._token_log_probs(docs, with_sum=True)
        return total, len(logp)

    def _token_log_probs(self, docs, with_sum=False):
        """The network's log-probability (nats) of every predicted token of the id documents
        ``docs``, document after document (and, ``with_sum``, their sum, added chunk by chunk).

        Documents are scored in groups of ``batch_size``, longest first, each from a zero state
        and in chunks of :data:`EVAL_CHUNK` steps with the state carried. Nothing of the model
        changes (several threads may score at once).
        """
        net = self.network_
        per_doc = [np.empty(max(len(d) - 1, 0)) for d in docs]
        total = 0.0
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
                hidden, h_n = net.infer(X, L, st, output="hidden")
                if not all(np.isfinite(s).all() for s in (h_n if isinstance(h_n, tuple)
                                                          else (h_n,))):
                    raise FloatingPointError(
                        f"the network's state became non-finite within the first {t0 + Tc} "
                        "tokens of a document: the model's recurrent state grows without "
                        "bound over a long stream (an IndRNN with relu and no recurrent_max "
                        "can), so it cannot score this text. Score shorter documents (split "
                        "the text) or train another cell.")
                real = (np.arange(Tc)[None, :] < L[:, None]).ravel()
                logp = net.head.log_probs(hidden.reshape(k * Tc, -1)[real], Y.reshape(-1)[real])
                total += float(logp.sum())
                for b, row in enumerate(np.split(logp, np.cumsum(L[:-1]))):
                    per_doc[order[g0 + b]][t0:t0 + L[b]] = row
                if isinstance(state, tuple):
                    for s, s_n in zip(state, h_n):
                        s[:, :k] = s_n
                else:
                    state[:, :k] = h_n
        logp = np.concatenate(per_doc) if per_doc else np.zeros(0)
        return (logp, total) if with_sum else logp

    def _mean_nll(self, texts):
        check_is_fitted(self, "network_")
        docs, _ = self._documents(texts, "texts", self.input_type_)
        if not docs:
            raise ValueError("texts is empty; pass at least one document.")
        ids = self._encode(docs)
        if not self._has_ngram():
            total, count = self._score_ids(ids)
            return -total / count
        return -float(np.mean(self._mixed_log_probs(ids)))

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
        state = self._zero_state(1)
        hidden = None
        for t0 in range(0, len(ids), EVAL_CHUNK):
            X = np.asarray(ids[t0:t0 + EVAL_CHUNK], np.int32)[None, :]
            hidden, state = self.network_.infer(X, np.array([X.shape[1]]), state, output="hidden")
        return hidden[:, -1].copy(), state

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
        ids = self._prompt_ids(prefix)
        h, _ = self._run_prefix(ids)
        p = softmax(self.network_.head.logits(h)[0])
        if self._has_ngram():  # (the head's logits are -inf, its softmax 0, at the excluded ids)
            p = self._mix_into(p[None, :], self._ngram_context(ids))[0]
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
        check_sampling_options(temperature, top_k, top_p)
        rng = check_random_state(random_state)
        state = self.init_state(1)
        # without an n-gram part only the logits are needed (sample_token normalises them), not
        # the stream's softmax; with one, the log of the mixture
        mixed = self._has_ngram()
        feed = state.read if mixed else state.advance
        for i in self._prompt_ids(prompt, "prompt")[1:]:  # <bos> is read by init_state
            state._ids[0] = i
            feed(state._ids)
        out = []
        z = np.empty(len(self.vocabulary_), np.float64)
        for _ in range(int(max_length)):
            if mixed:
                with np.errstate(divide="ignore"):
                    np.log(state.output[0], out=z)
            else:
                z[...] = state.logits[0]
            z[list(EXCLUDED_OUTPUTS)] = -np.inf
            z[UNK] = -np.inf
            nxt = sample_token(z, temperature, top_k, top_p, greedy, rng)
            if nxt == EOS:
                break
            out.append(nxt)
            state._ids[0] = nxt
            feed(state._ids)
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
            raise ValueError("early_stopping and the n-gram part (ngram_order) need validation "
                             "text, but the single training document is too short to split; "
                             "pass validation_texts (or set ngram_order=None).")
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
            steps) to decay the learning rate, stop early and keep the best parameters, and used
            to weigh the n-gram part.
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
        elif self.early_stopping or self.ngram_order is not None:
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
            self.network_ = self._network(meta["network_config"])
            self._check_architecture(meta["network_config"])
        else:
            vocab = Vocabulary.build(docs, max_size=self.max_vocab, min_count=self.min_count)
            check_vocabulary(vocab, docs, self.min_count, self.max_vocab)
            self.vocabulary_ = vocab
            self.network_ = self._build_network(len(self.vocabulary_),
                                                rng.randint(np.iinfo(np.int32).max))
        train_ids = self._encode(docs)
        val_ids = self._encode(val_docs)
        fingerprint = self._fingerprint(train_ids, val_ids)
        # the latest validation pass, which the n-gram part may reuse
        scored = {} if self.ngram_order is not None else None
        loop = self._training_loop(rng, train_ids, val_ids, fingerprint, scored)
        if ckpt is not None:
            self._resume(loop, *ckpt, fingerprint)
        reason = loop.run()
        for k, v in self._summary(loop, reason).items():
            setattr(self, k, v)
        self._fit_ngram(train_ids, val_ids, scored)
        return self

    def _training_loop(self, rng, train_ids, val_ids, fingerprint, scored=None):
        """The :class:`~fastrnn.train.TrainingLoop` of a fit: optimiser, schedules, stopping rule
        on the validation loss, checkpoints. ``scored`` (a dict) receives the token
        log-probabilities of every validation pass with the parameters they were computed with
        (:meth:`_network_scores`)."""
        opt = self.optimizer
        opt = copy.deepcopy(opt) if not isinstance(opt, str) else opt
        n_outputs = len(self.vocabulary_) - len(EXCLUDED_OUTPUTS)
        trainer = Trainer(self.network_, opt, learning_rate=self.learning_rate,
                          clip_norm=self.clip_norm, reference_loss=math.log(max(n_outputs, 2)))
        plateau = annealing = None
        if self.lr_schedule == "plateau":
            if val_ids and self.lr_decay < 1.0:
                plateau = ReduceLROnPlateau(trainer.optimizer, factor=self.lr_decay,
                                            patience=self.lr_patience, threshold=1e-4)
        else:
            annealing = AnnealingLR(trainer.optimizer, self.lr_schedule, self.min_learning_rate,
                                    self.anneal_fraction)
        def score(docs):
            logp, total = self._token_log_probs(docs, with_sum=True)
            if scored is not None:
                scored.update(docs=docs, logp=logp, params=self._network_scores_key())
            return total, len(logp)

        task = LMTask(self.network_, train_ids, val_ids, self.batch_size, self.bptt, self.shuffle,
                      score)
        max_epochs, max_tokens = self._epoch_budget(train_ids)
        loop = TrainingLoop(
            trainer, task, rng, max_epochs, max_items=max_tokens, time_budget=self.time_budget,
            eval_interval=self.eval_interval,
            stopping=StoppingRule("val_loss", "min", 0.0, self.n_iter_no_change,
                                   active=self.early_stopping),
            plateau=plateau, plateau_monitor="val_loss", annealing=annealing,
            verbose=self.verbose, log_level=1, callbacks=self.callbacks, estimator=self)
        if self.checkpoint_path is not None:
            loop.checkpoint_path = os.fspath(self.checkpoint_path)
            loop.checkpoint = lambda meta, arrays: self._write_checkpoint(loop, meta, arrays,
                                                                         fingerprint)
        return loop

    @staticmethod
    def _summary(loop, reason):
        """The fitted attributes (``_FITTED``) at this point of a run."""
        ln2 = math.log(2.0)
        history = [dict(epoch=h["epoch"], step=h["step"], tokens=h["tokens"], seconds=h["seconds"],
                        train_bits=None if h["loss"] is None else h["loss"] / ln2,
                        val_bits=h.get("val_bits"), lr=h["lr"]) for h in loop.history]
        best = loop.stopping.best if loop.best_params is not None else None
        return dict(
            n_iter_=loop.epoch, n_steps_=loop.step, n_tokens_seen_=loop.items,
            loss_curve_=list(loop.loss_curve),
            validation_bits_per_token_=[e["val_bits"] for e in loop.evaluations],
            best_validation_bits_per_token_=None if best is None else best / ln2,
            history_=history, stop_reason_=reason, training_time_=loop.elapsed())
