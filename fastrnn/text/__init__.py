"""Text utilities: tokenizers, vocabularies, vectorizing, padding and bucketing.

Special token ids are shared by the whole library: ``PAD`` = 0, ``UNK`` = 1,
``BOS`` = 2, ``EOS`` = 3 (strings ``"<pad>"``, ``"<unk>"``, ``"<bos>"``, ``"<eos>"``).
"""

# each submodule names its public objects once, in its ``__all__``; the package offers them all
from . import _ngram, _padding, _tokenize, _vocab
from ._ngram import *  # noqa: F401,F403
from ._padding import *  # noqa: F401,F403
from ._tokenize import *  # noqa: F401,F403
from ._vocab import *  # noqa: F401,F403

#: the public names of ``_vectorizer``, which needs scikit-learn: imported on first use so that the
#: inference path (vocabularies, padding) stays free of sklearn's 1.5 s import
_LAZY = ("SequenceVectorizer", "TokenSequences", "subword_features")

__all__ = [*_vocab.__all__, *_LAZY, *_padding.__all__, *_tokenize.__all__, *_ngram.__all__]


def __getattr__(name):
    if name in _LAZY:
        from . import _vectorizer

        return getattr(_vectorizer, name)
    raise AttributeError(f"module 'fastrnn.text' has no attribute {name!r}")
