"""Text utilities: tokenizers, vocabularies, vectorizing, padding and bucketing.

Special token ids are shared by the whole library: ``PAD`` = 0, ``UNK`` = 1,
``BOS`` = 2, ``EOS`` = 3 (strings ``"<pad>"``, ``"<unk>"``, ``"<bos>"``, ``"<eos>"``).
"""

from ._padding import length_buckets, pad_sequences, padding_waste
from ._tokenize import WORD_PATTERN, char_tokenize, get_tokenizer, word_tokenize
from ._vocab import (
    BOS,
    BOS_TOKEN,
    EOS,
    EOS_TOKEN,
    N_SPECIAL,
    PAD,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    UNK,
    UNK_TOKEN,
    Vocabulary,
)

__all__ = [
    "Vocabulary",
    "SequenceVectorizer",
    "TokenSequences",
    "subword_features",
    "pad_sequences",
    "length_buckets",
    "padding_waste",
    "char_tokenize",
    "word_tokenize",
    "get_tokenizer",
    "WORD_PATTERN",
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
]


def __getattr__(name):
    # SequenceVectorizer needs scikit-learn; import it on first use so that the inference path
    # (vocabularies, padding) stays free of sklearn's 1.5 s import.
    if name in ("SequenceVectorizer", "TokenSequences", "subword_features"):
        from . import _vectorizer

        return getattr(_vectorizer, name)
    raise AttributeError(f"module 'fastrnn.text' has no attribute {name!r}")
