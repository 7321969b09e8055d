"""Interpolated modified Kneser-Ney n-gram model over token ids: :class:`KneserNeyModel`.

The n-gram part of :class:`fastrnn.estimators.RNNLanguageModel`, usable on its own. Everything is
numpy: an n-gram of ids ``w_1 .. w_n`` is coded as the integer ``sum_k w_k V^(n-k)`` (``V`` the
vocabulary size), the codes of each order are counted with :func:`numpy.unique` and looked up
with :func:`numpy.searchsorted`.
"""

import math

import numpy as np

from ._vocab import BOS, PAD

__all__ = ["KneserNeyModel"]

#: ids that are never predicted (they get probability 0)
NEVER = (PAD, BOS)


def max_order(vocab_size):
    """The highest order whose n-gram codes fit in 62 bits for ``vocab_size`` ids."""
    return max(1, int(62 / math.log2(max(int(vocab_size), 2))))


class KneserNeyModel:
    """Interpolated modified Kneser-Ney n-gram model (Chen and Goodman, "An empirical study of
    smoothing techniques for language modeling", 1999), three discounts per order.

    Documents are id arrays ``[BOS, w_1, ..., w_n, EOS]`` (as
    :meth:`fastrnn.text.Vocabulary.encode` gives them with ``add_bos=True, add_eos=True``); each is
    read after ``order - 1`` ``<bos>`` ids, and its tokens and its ``<eos>`` are predicted. The
    highest order uses counts, the lower ones continuation counts (the number of distinct ids
    seen before an n-gram); below order 1 the distribution is uniform over every id but
    ``<pad>`` and ``<bos>``, which get probability 0 at every order.

    Parameters
    ----------
    order : int, default 7
        Length of the longest n-gram (context of ``order - 1`` tokens). ``vocab_size ** order``
        must stay below ``2 ** 62`` (see ``fit``).

    Attributes
    ----------
    vocab_size_ : int
    tables_ : list of dict
        ``tables_[n - 1]`` holds the sorted codes of the n-grams seen (``grams``, int64), their
        counts (``counts``, int64) and, derived from them, the contexts, their totals and the
        probability mass each context leaves to the order below.
    discounts_ : ndarray of shape (order, 3)
        Discounts of counts 1, 2 and 3 or more at each order (row ``n - 1``).
    """

    def __init__(self, order=7):
        self.order = order

    # ------------------------------------------------------------------ fitting
    def fit(self, docs, vocab_size):
        """Count the n-grams of ``docs``.

        Parameters
        ----------
        docs : list of 1-D int arrays
            ``[BOS, ..., EOS]`` id sequences, ids in ``0 .. vocab_size - 1``.
        vocab_size : int

        Returns
        -------
        self : KneserNeyModel
        """
        order, V = int(self.order), int(vocab_size)
        if order < 1:
            raise ValueError(f"order must be at least 1, got {self.order!r}.")
        if order > max_order(V):
            raise ValueError(f"an n-gram order of {order} over {V} token ids does not fit the "
                             f"64-bit n-gram codes; use order <= {max_order(V)}.")
        self.vocab_size_ = V
        seq, targets = self._padded(docs)
        if len(targets) == 0:
            raise ValueError("docs hold no token to count; pass non-empty documents.")
        grams, counts = np.unique(self._codes(seq, targets)[-1], return_counts=True)
        tables = [None] * order
        for n in range(order, 0, -1):
            tables[n - 1] = (grams, counts)
            if n > 1:  # continuation counts of the (n-1)-grams: distinct ids seen before them
                grams, counts = np.unique(grams % V ** (n - 1), return_counts=True)
        self._set_tables(tables)
        return self

    def _set_tables(self, tables):
        """Derive the lookup tables from the ``(grams, counts)`` of every order."""
        V = self.vocab_size_
        self.tables_, self.discounts_ = [], np.zeros((len(tables), 3))
        for n, (grams, counts) in enumerate(tables, start=1):
            discounts = np.zeros(4)  # indexed by min(count, 3); an unseen n-gram gets none
            discounts[1:] = self._discounts(counts)
            self.discounts_[n - 1] = discounts[1:]
            ctx = grams // V  # sorted codes: each context is one contiguous run
            start = np.flatnonzero(np.r_[True, ctx[1:] != ctx[:-1]])
            self.tables_.append(dict(
                grams=grams, counts=counts, discounts=discounts, contexts=ctx[start],
                totals=np.add.reduceat(counts, start).astype(np.float64),
                back_mass=np.add.reduceat(discounts[np.minimum(counts, 3)], start)))

    @staticmethod
    def _discounts(counts):
        """Discounts of counts 1, 2 and 3+ from the numbers ``n_k`` of n-grams seen exactly
        ``k`` times: ``D_k = k - (k + 1) Y n_(k+1) / n_k`` with ``Y = n_1 / (n_1 + 2 n_2)``.
        Where one falls outside ``(0, k]`` (too few counts), all three are ``Y`` (plain
        Kneser-Ney), so that every seen context keeps some mass for the order below."""
        n = [int(np.count_nonzero(counts == k)) for k in (1, 2, 3, 4)]
        y = n[0] / (n[0] + 2 * n[1]) if n[0] > 0 and n[1] > 0 else 0.5
        d = [k - (k + 1) * y * n[k] / n[k - 1] if n[k - 1] > 0 else -1.0 for k in (1, 2, 3)]
        return d if all(0 < dk <= k for k, dk in zip((1, 2, 3), d)) else [y, y, y]

    # ------------------------------------------------------------------ codes
    def _padded(self, docs):
        """The documents, each after ``order - 2`` more ``<bos>``, concatenated; and the indices
        of the ids to predict (all but the leading ``<bos>`` of each)."""
        pad = max(self.order - 2, 0)
        parts, targets, pos = [], [], 0
        for d in docs:
            d = np.asarray(d, np.int64)
            parts += [np.full(pad, BOS, np.int64), d]
            targets.append(np.arange(pos + pad + 1, pos + pad + len(d)))
            pos += pad + len(d)
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(parts), np.concatenate(targets)

    def _codes(self, seq, targets):
        """The codes of the n-grams ending at ``targets``, for n = 1 .. order."""
        code = seq[targets].copy()
        out = [code]
        for n in range(2, self.order + 1):
            code = seq[targets - n + 1] * self.vocab_size_ ** (n - 1) + code
            out.append(code)
        return out

    # ------------------------------------------------------------------ probabilities
    def _interpolate(self, codes, p):
        """Raise the order of ``p`` (the order-0 probabilities of the n-grams ``codes[n - 1]``)
        one order at a time, in place of ``p``."""
        V = self.vocab_size_
        for tab, code in zip(self.tables_, codes):
            ctx = code // V
            i = np.minimum(np.searchsorted(tab["contexts"], ctx), len(tab["contexts"]) - 1)
            seen = tab["contexts"][i] == ctx
            j = np.minimum(np.searchsorted(tab["grams"], code), len(tab["grams"]) - 1)
            count = np.where(tab["grams"][j] == code, tab["counts"][j], 0)
            num = np.maximum(count - tab["discounts"][np.minimum(count, 3)], 0.0)
            total = np.where(seen, tab["totals"][i], 1.0)
            p = np.where(seen, (num + tab["back_mass"][i] * p) / total, p)
        return p

    def _uniform(self):
        return 1.0 / (self.vocab_size_ - len(NEVER))

    def token_proba(self, docs):
        """Probability of every predicted token of ``docs``.

        Parameters
        ----------
        docs : list of 1-D int arrays
            ``[BOS, ..., EOS]`` id sequences.

        Returns
        -------
        proba : ndarray of shape (sum(len(d) - 1 for d in docs),), dtype float64
            Document after document, the probabilities of its ids after ``<bos>``.
        """
        seq, targets = self._padded(docs)
        p = np.full(len(targets), self._uniform())
        return self._interpolate(self._codes(seq, targets), p)

    def next_proba(self, context):
        """Distribution of the next id after each context.

        Parameters
        ----------
        context : int array of shape (B, order - 1)
            The last ``order - 1`` ids read, oldest first (``<bos>`` before a document's start).

        Returns
        -------
        proba : ndarray of shape (B, V), dtype float64
            Rows sum to 1; ``<pad>`` and ``<bos>`` get 0.
        """
        V = self.vocab_size_
        context = np.asarray(context, np.int64).reshape(len(context), self.order - 1)
        ids = np.arange(V, dtype=np.int64)
        codes, ctx = [], np.zeros(len(context), np.int64)
        for n in range(1, self.order + 1):
            if n > 1:
                ctx = ctx + context[:, -(n - 1)] * V ** (n - 2)
            codes.append((ctx * V)[:, None] + ids[None, :])
        p = np.full((len(context), V), self._uniform())
        p[:, list(NEVER)] = 0.0
        return self._interpolate(codes, p)

    # ------------------------------------------------------------------ saving
    def to_arrays(self):
        """``{name: array}`` of the counts (what :meth:`from_arrays` needs)."""
        out = {}
        for n, tab in enumerate(self.tables_, start=1):
            out[f"{n}/grams"] = tab["grams"]
            out[f"{n}/counts"] = tab["counts"]
        return out

    @classmethod
    def from_arrays(cls, order, vocab_size, arrays):
        """Rebuild a fitted model from :meth:`to_arrays`' output."""
        model = cls(order)
        model.vocab_size_ = int(vocab_size)
        model._set_tables([(np.asarray(arrays[f"{n}/grams"], np.int64),
                            np.asarray(arrays[f"{n}/counts"], np.int64))
                           for n in range(1, int(order) + 1)])
        return model
