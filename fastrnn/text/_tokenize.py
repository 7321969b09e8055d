"""Tokenizers: turn a string into a list of string tokens."""

import re

__all__ = ["char_tokenize", "word_tokenize", "get_tokenizer", "WORD_PATTERN"]

#: Regular expression used by :func:`word_tokenize`: a run of word characters
#: (letters, digits, underscore, Unicode-aware) or a single character that is
#: neither a word character nor whitespace (punctuation, symbols).
WORD_PATTERN = r"\w+|[^\w\s]"
_WORD_RE = re.compile(WORD_PATTERN)


def _check_text(text, func):
    if not isinstance(text, str):
        raise TypeError(
            f"{func} expects a str, got {type(text).__name__} {text!r:.60}. "
            "Decode bytes with .decode() or convert the value with str() first."
        )


def char_tokenize(text):
    """Split a string into its characters.

    Every character is a token, whitespace and newlines included (a
    character-level language model must learn them too).

    Parameters
    ----------
    text : str

    Returns
    -------
    tokens : list of str
        ``len(text)`` one-character strings.

    Examples
    --------
    >>> from fastrnn.text import char_tokenize
    >>> char_tokenize("Hi, you")
    ['H', 'i', ',', ' ', 'y', 'o', 'u']
    """
    _check_text(text, "char_tokenize")
    return list(text)


def word_tokenize(text):
    r"""Split a string into words and punctuation marks.

    Uses the regular expression ``\w+|[^\w\s]`` (:data:`WORD_PATTERN`): a token
    is either a maximal run of word characters (Unicode letters, digits and
    ``_``) or one single character that is neither a word character nor
    whitespace. Whitespace is dropped. Apostrophes and hyphens therefore split
    words (``"don't"`` -> ``don``, ``'``, ``t``).

    Parameters
    ----------
    text : str

    Returns
    -------
    tokens : list of str

    Examples
    --------
    >>> from fastrnn.text import word_tokenize
    >>> word_tokenize("Hello, world! It's 2024...")
    ['Hello', ',', 'world', '!', 'It', "'", 's', '2024', '.', '.', '.']
    """
    _check_text(text, "word_tokenize")
    return _WORD_RE.findall(text)


_TOKENIZERS = {"char": char_tokenize, "word": word_tokenize}


def get_tokenizer(tokenizer):
    """Resolve a tokenizer specification to a callable.

    Parameters
    ----------
    tokenizer : {"char", "word"} or callable
        ``"char"``: :func:`char_tokenize`; ``"word"``: :func:`word_tokenize`;
        a callable ``str -> list of str`` is returned unchanged.

    Returns
    -------
    tokenize : callable

    Examples
    --------
    >>> from fastrnn.text import get_tokenizer
    >>> get_tokenizer("word")("a b.")
    ['a', 'b', '.']
    >>> get_tokenizer(str.split)("a b.")
    ['a', 'b.']
    """
    if callable(tokenizer):
        return tokenizer
    if isinstance(tokenizer, str) and tokenizer in _TOKENIZERS:
        return _TOKENIZERS[tokenizer]
    raise ValueError(
        f"Unknown tokenizer {tokenizer!r}. Use 'char', 'word', or a callable that maps "
        "a str to a list of str tokens."
    )
