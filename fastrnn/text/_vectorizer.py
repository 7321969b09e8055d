"""SequenceVectorizer: raw text documents -> ragged arrays of token ids."""

import zlib
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._params import store_params
from ._tokenize import char_tokenize, get_tokenizer
from ._vocab import N_SPECIAL, Vocabulary

__all__ = ["SequenceVectorizer", "TokenSequences", "subword_features"]

#: the subword features of a word: its first and last 1, 2 and 3 characters (lower-cased) and its
#: shape (upper- and lower-case letters, digits and other characters, runs collapsed)
SUBWORD_FEATURES = ("p1", "p2", "p3", "s1", "s2", "s3", "shape")


class TokenSequences(list):
    """The output of :meth:`SequenceVectorizer.transform`: a list of id arrays that also says how
    many ids there are (``vocab_size``), so an estimator sizes its embedding for every id the
    vectorizer can produce, including subword ids that the training data did not show."""

    def __init__(self, seqs, vocab_size):
        super().__init__(seqs)
        self.vocab_size = int(vocab_size)


def _shape(word):
    out = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


@lru_cache(maxsize=1 << 17)
def _hashed_features(word):
    low = word.lower()
    values = (low[:1], low[:2], low[:3], low[-1:], low[-2:], low[-3:], _shape(word))
    return tuple(zlib.crc32(f"{name}={v}".encode("utf-8", "surrogatepass"))
                 for name, v in zip(SUBWORD_FEATURES, values))


def subword_features(word, n_buckets):
    """Hashed subword feature ids of ``word``, each in ``[0, n_buckets)``.

    Parameters
    ----------
    word : str
        The token as written (its case is part of its shape).
    n_buckets : int

    Returns
    -------
    tuple of int
        One id per subword feature: the first and the last 1, 2 and 3 characters (lower-cased)
        and the shape of the word, in that order (a stable hash, the same in every process).

    Examples
    --------
    >>> from fastrnn.text import subword_features
    >>> a, b = subword_features("Running", 1000), subword_features("jumping", 1000)
    >>> len(a), a[3:6] == b[3:6]  # same suffixes -ing, -ng, -g
    (7, True)
    """
    return tuple(h % n_buckets for h in _hashed_features(word))


def _check_documents(raw_documents, method):
    """Return ``raw_documents`` as a list of documents (str, or lists of str tokens), or raise a
    helpful error."""
    where = f"SequenceVectorizer.{method}"
    if isinstance(raw_documents, (str, bytes)):
        raise ValueError(
            f"{where} expects an iterable of str documents, but got a single "
            f"{type(raw_documents).__name__} {raw_documents!r:.60}. "
            "Iterable over raw text documents expected, string object received. "
            "Wrap it in a list: [text]."
        )
    if isinstance(raw_documents, np.ndarray) and raw_documents.ndim != 1:
        raise ValueError(
            f"{where} expects a 1-D collection of str documents, got an array of shape "
            f"{raw_documents.shape}. Pass one string per document, e.g. X.ravel() or a list."
        )
    if not isinstance(raw_documents, Iterable):
        raise TypeError(
            f"{where} expects an iterable of str documents, got {type(raw_documents).__name__} "
            f"{raw_documents!r:.60}. Pass a list of strings."
        )
    docs = list(raw_documents)
    for i, doc in enumerate(docs):
        if isinstance(doc, str):
            continue
        if isinstance(doc, (list, tuple)) and all(isinstance(t, str) for t in doc):
            continue
        raise TypeError(
            f"{where}: document {i} is {type(doc).__name__} {doc!r:.60}, neither a str nor a "
            "list of str tokens. Every document must be a string (or a tokenised sentence: a "
            "list of str); decode bytes, convert values with str(), or drop missing values "
            "(None/NaN) first."
        )
    return docs


class SequenceVectorizer(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Turn raw text documents into sequences of token ids.

    Each document becomes an int32 array of ids (one row per token, in order), ready for the
    recurrent estimators. Unlike :class:`sklearn.feature_extraction.text.CountVectorizer` the
    token order is kept and the output is a ragged list, not a matrix.

    Ids ``0..3`` are the special tokens ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``; regular tokens
    follow from 4 in order of descending corpus count, ties broken lexicographically. Tokens not
    seen in ``fit`` (or pruned by ``min_df``/``max_features``) become ``<unk>`` (1).

    With subword features (the default for words) each row also holds hashed ids of the token's
    first and last one to three characters and of its shape (``"Xxx"``, ``"dd"``, ``"X."``), in
    ``subword_buckets`` ids after the vocabulary's: a word never seen in ``fit`` is then still
    read through its spelling (an estimator sums the vectors of a row's ids), as suffix and shape
    features let a tagger guess the part of speech of an unknown word (Ratnaparkhi 1996) and
    subword vectors represent rare words (Bojanowski et al. 2017).

    Parameters
    ----------
    analyzer : {"word", "char"} or callable, default="word"
        ``"word"``: words and punctuation marks, regex ``\\w+|[^\\w\\s]`` (see
        :func:`fastrnn.text.word_tokenize`); ``"char"``: every character is a token; a callable
        maps a str to a list of str tokens. Documents given as lists of str are already tokens:
        the analyzer is not applied to them.
    lowercase : bool, default=True
        Lower-case tokens before looking them up (subword features still see the case).
    max_features : int, default=None
        Keep only the ``max_features`` regular tokens with the highest total count in the corpus
        (specials are not counted). ``None``: keep all.
    min_df : int or float, default=1
        Drop tokens that occur in fewer documents than this. An int is a number of documents; a
        float in (0, 1] is a proportion: tokens are kept when
        ``document_frequency / n_documents >= min_df``. Applied before ``max_features``.
    add_bos : bool, default=False
        Start every sequence with ``<bos>`` (2).
    add_eos : bool, default=False
        End every sequence with ``<eos>`` (3).
    subwords : bool or "auto", default="auto"
        Add the subword feature ids of every token. ``"auto"``: for words (``analyzer="word"``, a
        callable, or tokenised documents), not for characters.
    subword_buckets : int, default=8192
        Number of hashed subword ids (collisions share a vector).
    max_length : int or None, default=None
        Keep at most this many tokens of each document (the first ones; ``<bos>``/``<eos>``
        included). ``None``: keep every token.

    Attributes
    ----------
    vocab_ : Vocabulary
        The fitted vocabulary.
    vocabulary_ : dict of str to int
        Token -> id, special tokens included.
    vocab_size_ : int
        Number of ids, special tokens and subword ids included (the size an embedding needs).
    subwords_ : bool
        Whether rows hold subword ids.

    See Also
    --------
    fastrnn.text.Vocabulary : the underlying token <-> id mapping.
    fastrnn.text.pad_sequences : stack the output into a padded array.

    Examples
    --------
    >>> from fastrnn.text import SequenceVectorizer
    >>> vec = SequenceVectorizer(add_eos=True, subwords=False)
    >>> ids = vec.fit_transform(["the cat sat", "The dog!"])
    >>> ids[0], ids[1]
    (array([4, 6, 8, 3], dtype=int32), array([4, 7, 5, 3], dtype=int32))
    >>> vec.get_feature_names_out()[4:].tolist()
    ['the', '!', 'cat', 'dog', 'sat']
    >>> vec.transform(["the bird"])[0]
    array([4, 1, 3], dtype=int32)
    >>> vec.inverse_transform(ids)
    [['the', 'cat', 'sat'], ['the', 'dog', '!']]
    >>> rows = SequenceVectorizer().fit_transform([["Tagged", "words", "."]])[0]
    >>> rows.shape  # per token: its id and 7 subword ids
    (3, 8)
    """

    _parameter_constraints = {
        "analyzer": [StrOptions({"char", "word"}), callable],
        "lowercase": ["boolean"],
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "min_df": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ],
        "add_bos": ["boolean"],
        "add_eos": ["boolean"],
        "subwords": ["boolean", StrOptions({"auto"})],
        "subword_buckets": [Interval(Integral, 1, None, closed="left")],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        analyzer="word",
        lowercase=True,
        max_features=None,
        min_df=1,
        add_bos=False,
        add_eos=False,
        subwords="auto",
        subword_buckets=8192,
        max_length=None,
    ):
        store_params(self, locals())

    # ------------------------------------------------------------------ helpers
    def build_analyzer(self):
        """Return the callable that turns one raw document into its tokens.

        Returns
        -------
        analyze : callable
            ``str -> sequence of str``; applies ``lowercase`` then the analyzer.

        Examples
        --------
        >>> from fastrnn.text import SequenceVectorizer
        >>> SequenceVectorizer(analyzer="word").build_analyzer()("Hi there!")
        ['hi', 'there', '!']
        """
        tokenize = get_tokenizer(self.analyzer)
        lower = self.lowercase
        if tokenize is char_tokenize:
            # A str already is a sequence of characters: skip building a list.
            if lower:
                return lambda doc: doc.lower()
            return lambda doc: doc
        if lower:
            return lambda doc: tokenize(doc.lower())
        return tokenize

    def _use_subwords(self, docs):
        if self.subwords == "auto":
            return self.analyzer != "char" or any(not isinstance(d, str) for d in docs)
        return bool(self.subwords)

    def _analyze_all(self, docs, raw=False):
        """Tokens of every document: lower-cased as ``lowercase`` says, or (``raw``) as written.
        Tokenised documents are taken as they are."""
        tokenize = get_tokenizer(self.analyzer) if raw else self.build_analyzer()
        custom = callable(self.analyzer)
        out = []
        for i, doc in enumerate(docs):
            if not isinstance(doc, str):
                toks = list(doc) if raw or not self.lowercase else [t.lower() for t in doc]
                out.append(toks)
                continue
            toks = tokenize(doc)
            if custom:
                if isinstance(toks, str) or not isinstance(toks, Iterable):
                    raise TypeError(
                        f"The analyzer {self.analyzer!r} returned {type(toks).__name__} "
                        f"{toks!r:.60} for document {i}; it must return a list of str tokens."
                    )
                toks = list(toks)
                for tok in toks:
                    if not isinstance(tok, str):
                        raise TypeError(
                            f"The analyzer {self.analyzer!r} returned a token of type "
                            f"{type(tok).__name__} ({tok!r:.40}) for document {i}; tokens "
                            "must be str. Convert them with str() inside the analyzer."
                        )
            out.append(toks)
        return out

    def _tokens(self, docs, subwords):
        """``(raw tokens or None, vocabulary tokens)`` of every document; the tokens as written
        only when ``subwords`` need them."""
        if not subwords:
            return None, self._analyze_all(docs)
        raw = self._analyze_all(docs, raw=True)
        if not self.lowercase:
            return raw, raw
        return raw, [[t.lower() for t in toks] for toks in raw]

    def _fit_vocab(self, docs, token_lists):
        n_docs = len(docs)
        if n_docs == 0:
            raise ValueError(
                "SequenceVectorizer.fit got no documents (an empty collection). "
                "Pass at least one non-empty str document."
            )
        tf = Counter()
        df = Counter()
        for toks in token_lists:
            tf.update(toks)
            df.update(set(toks))
        if not tf:
            raise ValueError(
                f"Empty vocabulary: none of the {n_docs} documents contains a token. "
                "Check the documents and the analyzer."
            )
        min_df = self.min_df
        if isinstance(min_df, Integral):
            keep = {t: c for t, c in tf.items() if df[t] >= min_df}
        else:
            keep = {t: c for t, c in tf.items() if df[t] / n_docs >= min_df}
        vocab = Vocabulary.from_counts(keep, max_size=self.max_features)
        if len(vocab) == N_SPECIAL:
            raise ValueError(
                f"After pruning, no tokens remain (min_df={self.min_df!r} with {n_docs} "
                "documents). Try a lower min_df."
            )
        self.vocab_ = vocab
        self.vocabulary_ = vocab.stoi
        self.subwords_ = self._use_subwords(docs)
        self.vocab_size_ = len(vocab) + (int(self.subword_buckets) if self.subwords_ else 0)
        return self

    def _encode(self, docs, raw_lists, token_lists):
        vocab = self.vocab_
        add_bos, add_eos = bool(self.add_bos), bool(self.add_eos)
        V, NB = len(vocab), int(self.subword_buckets)
        limit = self.max_length
        out = []
        for i, toks in enumerate(token_lists):
            ids = vocab.encode(toks, add_bos=add_bos, add_eos=add_eos)
            if ids.size == 0:
                raise ValueError(
                    f"Document {i} ({docs[i]!r:.60}) has no tokens, and an empty sequence "
                    "cannot be fed to a recurrent network. Remove empty documents, or set "
                    "add_bos=True or add_eos=True so every sequence has at least one id."
                )
            if self.subwords_:
                rows = np.zeros((ids.size, 1 + len(SUBWORD_FEATURES)), np.int32)
                rows[:, 0] = ids
                start = int(add_bos)
                for j, tok in enumerate(raw_lists[i]):
                    rows[start + j, 1:] = subword_features(tok, NB)
                rows[start:start + len(raw_lists[i]), 1:] += V
                ids = rows
            if limit is not None:
                ids = ids[:limit]
            out.append(ids)
        return TokenSequences(out, self.vocab_size_)

    # ------------------------------------------------------------------ API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, raw_documents, y=None):
        """Learn the vocabulary from raw documents.

        Parameters
        ----------
        raw_documents : iterable of str, or of lists of str
            Training documents (a list, array or Series of strings, not a single string), or
            tokenised sentences (lists of str tokens).
        y : None
            Ignored.

        Returns
        -------
        self : SequenceVectorizer
        """
        docs = _check_documents(raw_documents, "fit")
        return self._fit_vocab(docs, self._tokens(docs, self._use_subwords(docs))[1])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, raw_documents, y=None):
        """Learn the vocabulary and return the id sequences (tokenizes once).

        Parameters
        ----------
        raw_documents : iterable of str, or of lists of str
        y : None
            Ignored.

        Returns
        -------
        X : TokenSequences
            One array per document (see :meth:`transform`).
        """
        docs = _check_documents(raw_documents, "fit_transform")
        raw, token_lists = self._tokens(docs, self._use_subwords(docs))
        self._fit_vocab(docs, token_lists)
        return self._encode(docs, raw, token_lists)

    def transform(self, raw_documents):
        """Encode documents as id sequences.

        Parameters
        ----------
        raw_documents : iterable of str, or of lists of str

        Returns
        -------
        X : TokenSequences (a list) of int32 ndarray
            One array per document: of shape ``(n_tokens_i + add_bos + add_eos,)``, or
            ``(n_tokens_i + add_bos + add_eos, 8)`` with subword features (the token's id, then
            its 7 subword ids; zeros for ``<bos>``/``<eos>``). Unknown tokens are ``UNK`` (1).
            ``X.vocab_size`` is ``vocab_size_``.

        Raises
        ------
        ValueError
            If a document yields no ids (empty, and neither ``add_bos`` nor
            ``add_eos``); the message names its index.
        """
        check_is_fitted(self, "vocab_")
        docs = _check_documents(raw_documents, "transform")
        return self._encode(docs, *self._tokens(docs, self.subwords_))

    def inverse_transform(self, X):
        """Map id sequences back to tokens.

        Parameters
        ----------
        X : iterable of array-like of int, or ndarray of shape (n_samples, T)
            Id sequences, e.g. the output of :meth:`transform` or a padded
            array (``<pad>``, ``<bos>`` and ``<eos>`` are dropped; ``<unk>``
            is kept).

        Returns
        -------
        tokens : list of list of str
            One token list per sequence.
        """
        check_is_fitted(self, "vocab_")
        if isinstance(X, (str, bytes)) or not isinstance(X, Iterable):
            raise TypeError(
                f"inverse_transform expects a list of id sequences, got {type(X).__name__} "
                f"{X!r:.60}. Pass the output of transform()."
            )
        seqs = list(X)
        if seqs and np.ndim(seqs[0]) == 0:
            raise ValueError(
                "inverse_transform expects a list of id sequences, but got a single "
                "sequence of ids. Wrap it in a list: inverse_transform([ids])."
            )
        # with subword features a step is a row: its first id is the token's
        return [self.vocab_.decode(np.asarray(s)[..., 0] if np.ndim(s) == 2 else s)
                for s in seqs]

    def get_feature_names_out(self, input_features=None):
        """Tokens in id order, special tokens first.

        Parameters
        ----------
        input_features : None
            Ignored (text input has no feature names).

        Returns
        -------
        feature_names_out : ndarray of str objects of shape (n_ids,)
            ``feature_names_out[i]`` is the token of id ``i`` (``"<subword j>"`` for subword id
            ``j``); ``n_ids`` is ``vocab_size_``.
        """
        check_is_fitted(self, "vocab_")
        names = list(self.vocab_.tokens)
        if getattr(self, "subwords_", False):
            names += [f"<subword {j}>" for j in range(int(self.subword_buckets))]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["string"]}
