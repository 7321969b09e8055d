"""The model file container (``fastrnn._persist``): safe atomic saving and full validation at load.

Saving never follows a path into something that is not a regular file, gives files the mode a
plain ``open(path, "w")`` would, cleans the temporary files of killed writers and survives
``kill -9`` at any moment. Loading checks every part of a file and raises only
:class:`fastrnn.ModelFileError` (or ``FileNotFoundError``) on a bad one.
"""

import os
import random
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import fastrnn
from fastrnn import _persist
from fastrnn._persist import read_model, save_model

ARRAYS = {"a": np.arange(3.0)}


def save_small(path, value=0):
    """A small container (not an estimator) written through the same atomic path as models."""
    save_model(path, "RNNClassifier", {"value": value}, ARRAYS)


def read_value(path):
    meta, arrays = read_model(path)
    np.testing.assert_array_equal(arrays["a"], ARRAYS["a"])
    return meta["value"]


def temp_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A real saved RNNClassifier (tiny, numpy backend) and the data it was fitted on."""
    from fastrnn import RNNClassifier

    rng = np.random.RandomState(0)
    X = rng.randn(12, 5, 2)
    y = np.array([0, 1, 2] * 4)
    clf = RNNClassifier(hidden_size=3, max_iter=2, batch_size=4, random_state=0,
                        backend="numpy")
    with pytest.warns(Warning):  # ConvergenceWarning after 2 epochs
        clf.fit(X, y)
    path = tmp_path_factory.mktemp("model") / "clf.fastrnn"
    clf.save(path)
    return path, clf, X


# ---------------------------------------------------------------------------------------------
# A1: the destination must be a regular file (or a symlink to one)
# ---------------------------------------------------------------------------------------------


def test_save_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.fastrnn"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"pipe\.fastrnn.*FIFO.*not a regular file"):
        save_small(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="making a device node needs root")
def test_save_refuses_a_device_node(tmp_path):
    dev = tmp_path / "null.fastrnn"
    os.mknod(dev, stat.S_IFCHR | 0o600, os.stat("/dev/null").st_rdev)
    with pytest.raises(OSError, match=r"null\.fastrnn.*character device.*not a regular file"):
        save_small(dev)
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_save_through_a_symlink_writes_its_target_atomically(tmp_path):
    target = tmp_path / "real.fastrnn"
    save_small(target, 1)
    inode = os.stat(target).st_ino
    link = tmp_path / "link.fastrnn"
    link.symlink_to(target.name)  # relative link
    save_small(link, 2)
    assert link.is_symlink() and os.readlink(link) == target.name
    assert read_value(target) == 2
    assert os.stat(target).st_ino != inode  # replaced by a new file, not rewritten in place
    assert temp_files(tmp_path) == []


def test_save_refuses_a_symlink_to_a_fifo_or_to_nothing(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "to_fifo.fastrnn"
    link.symlink_to(fifo)
    with pytest.raises(OSError, match=r"to_fifo\.fastrnn.*symlink.*FIFO"):
        save_small(link)
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    dangling = tmp_path / "dangling.fastrnn"
    dangling.symlink_to(tmp_path / "missing" / "m.fastrnn")
    with pytest.raises(OSError, match=r"dangling\.fastrnn.*symlink.*does not exist"):
        save_small(dangling)
    assert dangling.is_symlink() and not (tmp_path / "missing").exists()


# ---------------------------------------------------------------------------------------------
# A2: file mode as open(path, "w") gives it
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_of_open(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain", "w"):
        pass
    expected = stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    assert expected == 0o666 & ~mask
    save_small(tmp_path / "m.fastrnn")
    assert stat.S_IMODE(os.stat(tmp_path / "m.fastrnn").st_mode) == expected


def test_overwriting_keeps_the_mode_of_the_existing_file(tmp_path, umask):
    umask(0o077)
    path = tmp_path / "m.fastrnn"
    save_small(path, 1)
    os.chmod(path, 0o644)
    save_small(path, 2)
    assert read_value(path) == 2
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    os.chmod(path, 0o640)
    save_small(path, 3)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


# ---------------------------------------------------------------------------------------------
# A3: temporary files of killed writers are cleaned at the next save
# ---------------------------------------------------------------------------------------------

_DIE_BEFORE_REPLACE = """
import os, signal, sys
import numpy as np
from fastrnn import _persist
def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)
_persist.os.replace = die
_persist.save_model(sys.argv[1], "RNNClassifier", {"value": -1}, {"a": np.zeros(2)})
"""


def _kill_during_save(path):
    """Run a writer that is killed with SIGKILL just before it moves its temporary file into
    place; returns its pid (now dead)."""
    proc = subprocess.Popen([sys.executable, "-c", _DIE_BEFORE_REPLACE, str(path)])
    assert proc.wait(timeout=60) == -signal.SIGKILL
    return proc.pid


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    path = tmp_path / "m.fastrnn"
    save_small(path, 1)
    dead = _kill_during_save(path)
    leftovers = temp_files(tmp_path)
    assert len(leftovers) == 1 and str(dead) in leftovers[0]  # identifiable by the writer's pid
    assert read_value(path) == 1  # the old file is intact
    # a temporary file of a live writer (this process) and files that are not ours stay
    live = leftovers[0].replace(str(dead), str(os.getpid()))
    (tmp_path / live).write_bytes(b"being written")
    other_dest = _kill_during_save(tmp_path / "other.fastrnn")
    (tmp_path / ".tmp-unrelated").write_bytes(b"x")
    save_small(path, 2)
    assert read_value(path) == 2
    remaining = temp_files(tmp_path)
    assert leftovers[0] not in remaining
    assert live in remaining and ".tmp-unrelated" in remaining
    assert any(str(other_dest) in name and "other.fastrnn" in name for name in remaining)
    save_small(tmp_path / "other.fastrnn", 3)
    assert not any(str(other_dest) in name for name in temp_files(tmp_path))


# ---------------------------------------------------------------------------------------------
# A4: clear errors for a parent that is a file and a destination that is a directory
# ---------------------------------------------------------------------------------------------


def test_a_parent_that_is_a_file_gives_a_clear_error(tmp_path):
    (tmp_path / "a_file").write_text("x")
    for dest in (tmp_path / "a_file" / "m.fastrnn", tmp_path / "a_file" / "sub" / "m.fastrnn"):
        with pytest.raises(NotADirectoryError) as info:
            save_small(dest)
        msg = str(info.value)
        assert str(dest) in msg and "'" + str(tmp_path / "a_file") + "'" in msg
        assert "is a file, not a folder" in msg
    assert (tmp_path / "a_file").read_text() == "x"


def test_a_directory_as_destination_gives_a_clear_error(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        save_small(folder)
    msg = str(info.value)
    assert str(folder) in msg and "is a directory" in msg and "m.fastrnn" not in msg
    assert ".tmp-" not in msg and "model.fastrnn" in msg  # the fix: a file path inside it
    assert list(folder.iterdir()) == [] and temp_files(tmp_path) == []


def test_check_destination_is_what_save_checks(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        _persist.check_destination(folder)
    assert _persist.check_destination(tmp_path / "new" / "m") == str(tmp_path / "new" / "m")
    assert not (tmp_path / "new").exists()  # checking creates nothing


# ---------------------------------------------------------------------------------------------
# A5: kill -9 at random moments never leaves a broken destination
# ---------------------------------------------------------------------------------------------

_SAVE_FOREVER = """
import sys
from fastrnn._persist import read_model, save_model
src, dest, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta, arrays = read_model(src)
cls = meta.pop("class")
for key in ("format", "format_version", "fastrnn_version"):
    meta.pop(key)
generation = start
while True:
    meta["fitted"]["t_"] = generation
    save_model(dest, cls, meta, arrays)
    if generation == start:
        print("saved", flush=True)
    generation += 1
"""


def test_kill_minus_9_during_saves_leaves_the_old_or_the_new_file(small_model, tmp_path):
    src, clf, X = small_model
    dest = tmp_path / "m.fastrnn"
    rng = random.Random(0)
    expected = clf.predict_proba(X)
    last = None  # generation in the destination (None: absent)
    for k in range(10):
        start = 1000 * (k + 1)
        proc = subprocess.Popen([sys.executable, "-c", _SAVE_FOREVER, str(src), str(dest),
                                 str(start)], stdout=subprocess.PIPE)
        if k % 3 == 0:
            time.sleep(rng.uniform(0.0, 0.3))  # often before the first save completes
        else:
            assert proc.stdout.readline() == b"saved\n"
            time.sleep(rng.uniform(0.0, 0.05))
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
        if not dest.exists():
            assert last is None
            continue
        model = fastrnn.load(dest)
        gen = model.t_
        assert gen == last or start <= gen < start + 1000, (gen, last, start)
        np.testing.assert_array_equal(model.predict_proba(X), expected)
        last = gen
    assert last is not None
    # the temporary files of the killed writers go at the next save
    save_small(tmp_path / "m.fastrnn")
    assert temp_files(tmp_path) == []
