"""Token <-> integer id mapping with reserved special tokens.

Every :class:`Vocabulary` reserves the first four ids for special tokens:

====  ==========  ===========================================================
 id    string      meaning
====  ==========  ===========================================================
 0     ``<pad>``   padding (``PAD``); masked out, never learned from
 1     ``<unk>``   unknown / out-of-vocabulary token (``UNK``)
 2     ``<bos>``   beginning of sequence (``BOS``); start symbol for generation
 3     ``<eos>``   end of sequence (``EOS``); generation stops on it
====  ==========  ===========================================================

Regular tokens follow from id 4 on.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from numbers import Integral

import numpy as np

__all__ = [
    "PAD",
    "UNK",
    "BOS",
    "EOS",
    "PAD_TOKEN",
    "UNK_TOKEN",
    "BOS_TOKEN",
    "EOS_TOKEN",
    "SPECIAL_TOKENS",
    "N_SPECIAL",
    "Vocabulary",
]

PAD = 0
UNK = 1
BOS = 2
EOS = 3

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
BOS_TOKEN = "<bos>"
EOS_TOKEN = "<eos>"

#: String forms of the special tokens, indexed by their id.
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)
#: Number of reserved ids; the first regular token has this id.
N_SPECIAL = len(SPECIAL_TOKENS)

_FORMAT_VERSION = 1


def _check_token(token, where):
    if not isinstance(token, str):
        raise TypeError(
            f"Tokens must be str, got {type(token).__name__} {token!r} {where}. "
            "Convert tokens to strings (e.g. with str()) before building or encoding."
        )
    return token


def _check_optional_int(value, name, minimum):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(
            f"{name} must be None or an int >= {minimum}, got {value!r}. "
            f"Pass an integer such as {max(minimum, 1)} (or None for no limit)."
        )
    return int(value)


class Vocabulary:
    """Mapping between string tokens and integer ids, with special tokens.

    Ids ``0..3`` are reserved for ``<pad>``, ``<unk>``, ``<bos>`` and ``<eos>``
    (module constants ``PAD``, ``UNK``, ``BOS``, ``EOS``); the regular tokens
    get ids ``4, 5, ...`` in the order given. Use :meth:`build` (or
    :meth:`from_counts`) to build a vocabulary from a corpus.

    Parameters
    ----------
    tokens : iterable of str, default=()
        Regular tokens in id order. Duplicates and the special strings
        themselves are not allowed.
    counts : iterable of int, default=None
        Optional corpus counts, one per token (kept for inspection and saved
        by :meth:`to_dict`).

    Attributes
    ----------
    tokens : list of str
        All tokens in id order, specials first; ``tokens[i]`` is the token of id ``i``.
    counts : dict of str to int or None
        Corpus counts of the regular tokens when known.

    See Also
    --------
    fastrnn.text.SequenceVectorizer : scikit-learn transformer built on this class.

    Notes
    -----
    A string equal to a special token (e.g. ``"<unk>"``) is encoded as that
    special id, so it never becomes a regular token.

    Examples
    --------
    >>> from fastrnn.text import Vocabulary
    >>> vocab = Vocabulary.build([["a", "b", "a"], ["c", "a"]])
    >>> vocab.tokens
    ['<pad>', '<unk>', '<bos>', '<eos>', 'a', 'b', 'c']
    >>> vocab.encode(["a", "z", "c"], add_bos=True, add_eos=True)
    array([2, 4, 1, 6, 3], dtype=int32)
    >>> vocab.decode([2, 4, 1, 6, 3])
    ['a', '<unk>', 'c']
    >>> len(vocab)
    7
    """

    def __init__(self, tokens=(), counts=None):
        if isinstance(tokens, str):
            raise TypeError(
                f"tokens must be an iterable of str tokens, got a single string {tokens!r}. "
                "Wrap it in a list: Vocabulary([token])."
            )
        itos = list(SPECIAL_TOKENS)
        stoi = {tok: i for i, tok in enumerate(itos)}
        for tok in tokens:
            _check_token(tok, "in Vocabulary(tokens=...)")
            if tok in stoi:
                what = "a special token" if stoi[tok] < N_SPECIAL else "a duplicate"
                raise ValueError(
                    f"Token {tok!r} is {what}; every regular token must be unique and "
                    f"different from the special tokens {SPECIAL_TOKENS}. Remove it from tokens."
                )
            stoi[tok] = len(itos)
            itos.append(tok)
        self._itos = itos
        self._stoi = stoi
        if counts is None:
            self.counts = None
        else:
            counts = [int(c) for c in counts]
            if len(counts) != len(itos) - N_SPECIAL:
                raise ValueError(
                    f"counts has {len(counts)} entries but there are {len(itos) - N_SPECIAL} "
                    "tokens. Pass one count per regular token, in the same order."
                )
            self.counts = dict(zip(itos[N_SPECIAL:], counts))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_counts(cls, counts, max_size=None, min_count=1):
        """Build a vocabulary from token counts.

        Tokens are ordered by **descending count; ties are broken
        lexicographically** (by Unicode code point), so the result does not
        depend on the order of the corpus or of ``counts``.

        Parameters
        ----------
        counts : mapping of str to int
            Count of each token (e.g. a :class:`collections.Counter`).
            Entries for the special strings are ignored.
        max_size : int, default=None
            Keep at most this many regular tokens (the most frequent); the
            vocabulary then has at most ``max_size + 4`` ids. ``None``: no limit.
        min_count : int, default=1
            Drop tokens whose count is below this value.

        Returns
        -------
        vocab : Vocabulary

        Examples
        --------
        >>> from fastrnn.text import Vocabulary
        >>> Vocabulary.from_counts({"b": 2, "a": 2, "c": 5, "d": 1}, min_count=2).tokens[4:]
        ['c', 'a', 'b']
        """
        if not isinstance(counts, Mapping):
            raise TypeError(
                f"counts must be a mapping token -> count, got {type(counts).__name__}. "
                "Pass a dict or collections.Counter."
            )
        max_size = _check_optional_int(max_size, "max_size", 0)
        min_count = _check_optional_int(min_count, "min_count", 0)
        items = []
        for tok, c in counts.items():
            _check_token(tok, "in counts")
            if tok in SPECIAL_TOKENS:
                continue
            if c >= min_count:
                items.append((tok, int(c)))
        items.sort(key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            items = items[:max_size]
        return cls([t for t, _ in items], counts=[c for _, c in items])

    @classmethod
    def build(cls, sequences, max_size=None, min_count=1):
        """Build a vocabulary from an iterable of token sequences.

        Parameters
        ----------
        sequences : iterable of iterable of str
            The corpus, e.g. a list of token lists (a ``str`` item counts as a
            sequence of characters).
        max_size : int, default=None
            Keep at most this many regular tokens, the most frequent ones
            (specials are not counted). ``None``: no limit.
        min_count : int, default=1
            Drop tokens that occur fewer than ``min_count`` times in total.

        Returns
        -------
        vocab : Vocabulary
            Regular tokens ordered by descending count, ties broken
            lexicographically (see :meth:`from_counts`).

        Examples
        --------
        >>> from fastrnn.text import Vocabulary
        >>> Vocabulary.build(["hello", "help"], max_size=3).tokens
        ['<pad>', '<unk>', '<bos>', '<eos>', 'l', 'e', 'h']
        """
        if isinstance(sequences, str) or not isinstance(sequences, Iterable):
            raise TypeError(
                "sequences must be an iterable of token sequences, got "
                f"{type(sequences).__name__} {sequences!r:.60}. Pass e.g. a list of token lists."
            )
        counter = Counter()
        for i, seq in enumerate(sequences):
            if not isinstance(seq, Iterable):
                raise TypeError(
                    f"Sequence {i} is {type(seq).__name__} {seq!r:.60}, not an iterable of "
                    "tokens. Pass a list of token lists."
                )
            counter.update(seq)
        return cls.from_counts(counter, max_size=max_size, min_count=min_count)

    # ------------------------------------------------------------------ lookups
    @property
    def tokens(self):
        """list of str: all tokens in id order, specials first."""
        return list(self._itos)

    def __len__(self):
        return len(self._itos)

    def __contains__(self, token):
        return token in self._stoi

    def __iter__(self):
        return iter(self._itos)

    def __eq__(self, other):
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._itos == other._itos and self.counts == other.counts

    def __repr__(self):
        preview = ", ".join(repr(t) for t in self._itos[N_SPECIAL:N_SPECIAL + 5])
        more = ", ..." if len(self._itos) > N_SPECIAL + 5 else ""
        return f"Vocabulary(size={len(self)}, tokens=[{preview}{more}])"

    def token_to_id(self, token):
        """Id of ``token``; ``UNK`` (1) when the token is not in the vocabulary.

        Examples
        --------
        >>> from fastrnn.text import Vocabulary
        >>> v = Vocabulary(["x"])
        >>> v.token_to_id("x"), v.token_to_id("y"), v.token_to_id("<eos>")
        (4, 1, 3)
        """
        return self._stoi.get(token, UNK)

    def id_to_token(self, index):
        """Token of id ``index`` (specials give their string form).

        Raises
        ------
        IndexError
            If ``index`` is not in ``[0, len(self))``.
        """
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (Integral, np.integer)):
            raise TypeError(
                f"id must be an int, got {type(index).__name__} {index!r}. Pass an integer id."
            )
        if not 0 <= index < len(self._itos):
            raise IndexError(
                f"id {index} is out of range for a vocabulary of size {len(self._itos)}; "
                f"valid ids are 0..{len(self._itos) - 1}."
            )
        return self._itos[int(index)]

    @property
    def stoi(self):
        """dict of str to int: a copy of the token -> id mapping (specials included)."""
        return dict(self._stoi)

    # ------------------------------------------------------------------ encode/decode
    def encode(self, tokens, add_bos=False, add_eos=False):
        """Map a sequence of tokens to ids.

        Parameters
        ----------
        tokens : iterable of str
            The tokens (a ``str`` is read as a sequence of characters).
            Tokens not in the vocabulary map to ``UNK`` (1).
        add_bos : bool, default=False
            Prepend ``BOS`` (2).
        add_eos : bool, default=False
            Append ``EOS`` (3).

        Returns
        -------
        ids : ndarray of shape (n_tokens + add_bos + add_eos,), dtype int32

        Examples
        --------
        >>> from fastrnn.text import Vocabulary
        >>> Vocabulary(["h", "i"]).encode("hi!", add_eos=True)
        array([4, 5, 1, 3], dtype=int32)
        """
        get = self._stoi.get
        if isinstance(tokens, str) and len(tokens) > 256:
            ids = self._encode_chars(tokens)
            if ids is not None:
                if add_bos or add_eos:
                    parts = [[BOS]] if add_bos else []
                    parts.append(ids)
                    if add_eos:
                        parts.append([EOS])
                    ids = np.concatenate(parts)
                return ids.astype(np.int32, copy=False)
        ids = [get(tok, UNK) for tok in tokens]
        if add_bos:
            ids.insert(0, BOS)
        if add_eos:
            ids.append(EOS)
        return np.asarray(ids, dtype=np.int32).reshape(-1)

    def _encode_chars(self, text):
        # Vectorised lookup for long strings read character by character:
        # map each distinct code point once, then scatter with the inverse index.
        try:
            codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        except UnicodeEncodeError:  # lone surrogates: use the generic path
            return None
        uniq, inverse = np.unique(codes, return_inverse=True)
        get = self._stoi.get
        table = np.fromiter((get(chr(u), UNK) for u in uniq.tolist()), dtype=np.int32,
                            count=uniq.size)
        return table[inverse.reshape(-1)]

    def decode(self, ids, skip_special=True):
        """Map ids back to tokens.

        Parameters
        ----------
        ids : array-like of int of shape (n_ids,)
        skip_special : bool, default=True
            Drop ``PAD``, ``BOS`` and ``EOS``. ``UNK`` is always kept (as
            ``"<unk>"``) because it stands for a real token of the input.

        Returns
        -------
        tokens : list of str

        Raises
        ------
        ValueError
            If ``ids`` is not 1-D integer or an id is out of range.

        Examples
        --------
        >>> from fastrnn.text import Vocabulary
        >>> v = Vocabulary(["h", "i"])
        >>> v.decode([2, 4, 5, 1, 3, 0, 0])
        ['h', 'i', '<unk>']
        >>> v.decode([2, 4, 3], skip_special=False)
        ['<bos>', 'h', '<eos>']
        """
        arr = np.asarray(ids)
        if arr.size == 0:
            return []
        if arr.ndim != 1:
            raise ValueError(
                f"decode expects a 1-D sequence of ids, got an array of shape {arr.shape}. "
                "Decode one sequence at a time (iterate over the rows)."
            )
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            else:
                raise ValueError(
                    f"ids must be integers, got dtype {arr.dtype}. Pass an integer array."
                )
        n = len(self._itos)
        bad = np.flatnonzero((arr < 0) | (arr >= n))
        if bad.size:
            j = int(bad[0])
            raise ValueError(
                f"id {arr[j]} at position {j} is out of range for a vocabulary of size {n}; "
                f"valid ids are 0..{n - 1}. Were these ids produced by a different vocabulary?"
            )
        itos = self._itos
        if skip_special:
            return [itos[i] for i in arr.tolist() if i == UNK or i >= N_SPECIAL]
        return [itos[i] for i in arr.tolist()]

    # ------------------------------------------------------------------ serialisation
    def to_dict(self):
        """JSON-serialisable description of the vocabulary.

        Returns
        -------
        d : dict
            ``{"version": 1, "specials": [...], "tokens": [...regular tokens...],
            "counts": [...] or None}``.

        Examples
        --------
        >>> import json
        >>> from fastrnn.text import Vocabulary
        >>> v = Vocabulary.build([["a", "b", "a"]])
        >>> Vocabulary.from_dict(json.loads(json.dumps(v.to_dict()))) == v
        True
        """
        regular = self._itos[N_SPECIAL:]
        counts = None if self.counts is None else [self.counts[t] for t in regular]
        return {
            "version": _FORMAT_VERSION,
            "specials": list(SPECIAL_TOKENS),
            "tokens": list(regular),
            "counts": counts,
        }

    @classmethod
    def from_dict(cls, d):
        """Rebuild a vocabulary saved with :meth:`to_dict`.

        Parameters
        ----------
        d : dict
            Output of :meth:`to_dict` (possibly after a JSON round trip).

        Returns
        -------
        vocab : Vocabulary
        """
        if not isinstance(d, Mapping) or "tokens" not in d:
            raise ValueError(
                f"Expected a dict produced by Vocabulary.to_dict() with a 'tokens' key, "
                f"got {type(d).__name__}. Pass the dict saved from to_dict()."
            )
        version = d.get("version", _FORMAT_VERSION)
        if version != _FORMAT_VERSION:
            raise ValueError(
                f"Unsupported vocabulary format version {version!r}; this fastrnn reads "
                f"version {_FORMAT_VERSION}. Re-save the vocabulary with this version."
            )
        specials = d.get("specials", list(SPECIAL_TOKENS))
        if list(specials) != list(SPECIAL_TOKENS):
            raise ValueError(
                f"Saved special tokens {specials!r} differ from {list(SPECIAL_TOKENS)!r}; "
                "the ids would not match. Rebuild the vocabulary."
            )
        return cls(d["tokens"], counts=d.get("counts"))
