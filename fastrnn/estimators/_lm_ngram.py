"""The n-gram part of :class:`~fastrnn.estimators.language_model.RNNLanguageModel`.

A fitted language model with ``ngram_order`` set predicts the mixture

    p(w | h) = (1 - a) p_network(w | h) + a p_ngram(w | h)

of its network's softmax and an interpolated Kneser-Ney model of the same training tokens
(:class:`fastrnn.text.KneserNeyModel`), with the weight ``a`` (``ngram_weight_``) that maximises
the likelihood of the validation text (a linear interpolation of language models, as in Jelinek
and Mercer, 1980; with a recurrent network, Mikolov et al., 2011). This mixin fits the part,
mixes it into every distribution the model gives, and saves it.
"""

import hashlib
import math

import numpy as np
from scipy.optimize import minimize_scalar

from ..text import BOS
from ..text._ngram import KneserNeyModel, max_order

__all__ = ["LMNgramMixin", "AUTO_ORDERS", "AUTO_TOKENS", "AUTO_EPOCHS"]

#: ``ngram_order="auto"``: the order at character level and at every other level (capped by
#: :func:`fastrnn.text._ngram.max_order` of the vocabulary size)
AUTO_ORDERS = {"char": 7, "other": 4}
#: ``max_iter="auto"``: at most this many epochs, and no more training tokens than
#: :data:`AUTO_TOKENS` (summed over the streams) in all, for a network of up to
#: :data:`AUTO_WEIGHTS` weights per token (the default character model has about 350,000);
#: proportionally fewer for a larger one, whose tokens cost more (a word model's softmax)
AUTO_EPOCHS = 10
AUTO_TOKENS = 2_000_000
AUTO_WEIGHTS = 400_000


class LMNgramMixin:
    """The n-gram part: ``ngram_`` (a :class:`~fastrnn.text.KneserNeyModel` or None) and
    ``ngram_weight_`` (its weight in the mixture)."""

    # ------------------------------------------------------------------ fitting
    def _ngram_order(self, vocab_size):
        """The order the fit uses, or None without an n-gram part."""
        if self.ngram_order is None:
            return None
        if self.ngram_order != "auto":
            return int(self.ngram_order)
        char = self.level == "char" and self.input_type_ == "text"
        return min(AUTO_ORDERS["char" if char else "other"], max_order(vocab_size))

    def _weights_per_token(self):
        """The weights a token of training reads: every parameter but the embedding table (of
        which it reads one row), which a tied head reads whole."""
        params = self.network_.params
        n = sum(p.size for name, p in params.items() if not name.startswith("embedding."))
        return n + (params["embedding.weight"].size if self.tie_weights else 0)

    def _epoch_budget(self, train_ids):
        """``(max_epochs, max_tokens)`` of the run for ``max_iter``."""
        if self.max_iter != "auto":
            return int(self.max_iter), None
        budget = AUTO_TOKENS * min(1.0, AUTO_WEIGHTS / self._weights_per_token())
        budget = max(int(budget), 1)
        tokens = sum(len(d) - 1 for d in train_ids)
        if tokens * AUTO_EPOCHS <= budget:
            return AUTO_EPOCHS, None
        return math.ceil(budget / max(tokens, 1)), budget

    def _network_scores_key(self):
        """A digest of the network's parameters: a validation pass made with the same digest
        holds the same log-probabilities."""
        h = hashlib.blake2b(digest_size=16)
        for name in sorted(self.network_.params):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.network_.params[name]).view(np.uint8))
        return h.hexdigest()

    def _network_scores(self, docs, scored):
        """The network's token log-probabilities of ``docs``: those of the last validation pass
        of training (``scored``) when it read the same documents with the same parameters."""
        if scored and scored["docs"] is docs and scored["params"] == self._network_scores_key():
            return scored["logp"]
        return self._token_log_probs(docs)

    def _fit_ngram(self, train_ids, val_ids, scored=None):
        """Count the n-grams of ``train_ids`` and weigh them against the network on ``val_ids``
        (after the network is trained)."""
        order = self._ngram_order(len(self.vocabulary_))
        self.ngram_, self.ngram_weight_ = None, 0.0
        if order is None:
            return
        self.ngram_ = KneserNeyModel(order).fit(train_ids, len(self.vocabulary_))
        log_net = self._network_scores(val_ids, scored)
        log_gram = np.log(self.ngram_.token_proba(val_ids))

        def nll(a):
            with np.errstate(divide="ignore"):
                return -np.mean(np.logaddexp(np.log1p(-a) + log_net, np.log(a) + log_gram))

        # the mean log-likelihood of a mixture is concave in its weight: one bounded search,
        # and the two ends (one model alone)
        res = minimize_scalar(nll, bounds=(0.0, 1.0), method="bounded", options=dict(xatol=1e-6))
        self.ngram_weight_ = float(min((res.x, 0.0, 1.0), key=nll))

    # ------------------------------------------------------------------ mixing
    def _has_ngram(self):
        return getattr(self, "ngram_", None) is not None

    def _mixed_log_probs(self, docs):
        """Log-probability (nats) of every predicted token of the id documents ``docs``, document
        after document, under the model (the mixture when it has an n-gram part)."""
        log_net = self._token_log_probs(docs)
        if not self._has_ngram():
            return log_net
        a = self.ngram_weight_
        with np.errstate(divide="ignore"):
            return np.logaddexp(np.log1p(-a) + log_net,
                                np.log(a) + np.log(self.ngram_.token_proba(docs)))

    def _ngram_context(self, ids):
        """The last ``order - 1`` ids of a prompt ``[BOS, ...]``, ``<bos>`` before its start."""
        k = self.ngram_.order - 1
        padded = np.concatenate([np.full(k, BOS, np.int64), np.asarray(ids, np.int64)])
        return padded[len(padded) - k:][None, :]

    def _mix_into(self, proba, context):
        """``proba`` (B, V), the network's distributions, becomes the model's, in place."""
        if self._has_ngram():
            a = self.ngram_weight_
            proba *= 1.0 - a
            proba += a * self.ngram_.next_proba(context)
        return proba

    # ------------------------------------------------------------------ saving
    def _ngram_saved(self):
        """``(meta, arrays)`` of the n-gram part (``(None, {})`` without one)."""
        if not self._has_ngram():
            return None, {}
        meta = dict(order=int(self.ngram_.order), weight=float(self.ngram_weight_))
        return meta, {f"ngram/{k}": v for k, v in self.ngram_.to_arrays().items()}

    def _ngram_from_saved(self, meta, arrays):
        info = meta.get("ngram")
        if info is None:
            self.ngram_, self.ngram_weight_ = None, 0.0
            return
        grams = {k[len("ngram/"):]: v for k, v in arrays.items() if k.startswith("ngram/")}
        self.ngram_ = KneserNeyModel.from_arrays(info["order"], len(self.vocabulary_), grams)
        self.ngram_weight_ = float(info["weight"])
