"""The model file container (``fastrnn._persist``): safe atomic saving and full validation at load.

Saving never follows a path into something that is not a regular file, gives files the mode a
plain ``open(path, "w")`` would, cleans the temporary files of killed writers and survives
``kill -9`` at any moment. Loading checks every part of a file and raises only
:class:`fastrnn.ModelFileError` (or ``FileNotFoundError``) on a bad one.
"""

import io
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import SOAK
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
                        early_stopping=False, backend="numpy")
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


def test_a_long_file_name_can_still_be_saved_and_its_temp_files_cleaned(tmp_path):
    path = tmp_path / ("m" * 240 + ".fastrnn")  # 248 bytes: no room for a prefix and a suffix
    save_small(path, 1)
    dead = _kill_during_save(path)
    assert len(temp_files(tmp_path)) == 1 and str(dead) in temp_files(tmp_path)[0]
    save_small(path, 2)
    assert read_value(path) == 2 and temp_files(tmp_path) == []


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
    with pytest.raises(IsADirectoryError, match="ends with a separator"):
        save_small(str(tmp_path / "new") + os.sep)
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
    mid_write = 0  # kills that hit a save while it wrote its temporary file
    for k in range(10 * SOAK):
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
        mid_write += bool(temp_files(tmp_path))
        if not dest.exists():
            assert last is None
            continue
        model = fastrnn.load(dest)
        gen = model.t_
        assert gen == last or start <= gen < start + 1000, (gen, last, start)
        np.testing.assert_array_equal(model.predict_proba(X), expected)
        last = gen
    assert last is not None and mid_write > 0, (last, mid_write)
    # the temporary files of the killed writers go at the next save
    save_small(tmp_path / "m.fastrnn")
    assert temp_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# B: loading validates the whole file and raises only ModelFileError
# ---------------------------------------------------------------------------------------------


def read_members(path):
    """``(meta, {member name: bytes})`` of a model file, read with zipfile only."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    return json.loads(members.pop("meta.json")), members


def write_members(path, meta, members, raw_meta=None):
    """Write a zip like a model file from a meta object (or raw meta.json text) and members."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json", json.dumps(meta) if raw_meta is None else raw_meta)
        for name, data in members.items():
            z.writestr(name, data)
    return path


def npy(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def edited(src, dest, meta_edit=None, arrays=None, drop=()):
    """A copy of the model file ``src`` with ``meta_edit(meta)`` applied and arrays replaced
    (``{name: ndarray}``, names without ``arrays/`` and ``.npy``) or dropped."""
    meta, members = read_members(src)
    if meta_edit is not None:
        meta = meta_edit(meta) or meta
    for name, a in (arrays or {}).items():
        members[f"arrays/{name}.npy"] = npy(a)
    for name in drop:
        del members[f"arrays/{name}.npy"]
    return write_members(dest, meta, members)


def assert_bad_file(path, *needles):
    with pytest.raises(fastrnn.ModelFileError) as info:
        fastrnn.load(path)
    msg = str(info.value)
    assert repr(str(path)) in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_model_file_error_is_a_value_error_exported_from_fastrnn():
    assert issubclass(fastrnn.ModelFileError, ValueError)
    assert "ModelFileError" in fastrnn.__all__


def _set(path, value):
    def edit(meta):
        d = meta
        for key in path[:-1]:
            d = d[key]
        if value is _DELETE:
            del d[path[-1]]
        else:
            d[path[-1]] = value
    return edit


_DELETE = object()


@pytest.mark.parametrize("raw,needles", [
    ("[1, 2]", ["meta.json", "list"]),
    ("null", ["meta.json", "None"]),
    ('"text"', ["meta.json", "str"]),
    ("{not json", ["meta.json"]),
])
def test_a_malformed_meta_json_is_a_model_file_error(small_model, tmp_path, raw, needles):
    src = small_model[0]
    meta, members = read_members(src)
    path = write_members(tmp_path / "bad.fastrnn", None, members, raw_meta=raw)
    assert_bad_file(path, *needles)


@pytest.mark.parametrize("what,edit,needles", [
    ("string format_version", _set(["format_version"], "1"), ["format_version", "'1'"]),
    ("class mismatch", _set(["class"], "RNNRegressor"), ["RNNRegressor"]),
    ("unknown class", _set(["class"], "os.system"), ["os.system", "unknown"]),
    ("no params", _set(["params"], _DELETE), ["params"]),
    ("params a list", _set(["params"], [1, 2]), ["params", "list"]),
    ("unknown parameter", _set(["params", "colour"], 3), ["colour"]),
    ("hidden_size < 1", _set(["params", "hidden_size"], -1), ["hidden_size", "-1"]),
    ("unknown pooling", _set(["params", "pooling"], "median"), ["pooling", "median"]),
    ("negative learning rate", _set(["params", "learning_rate"], -0.5), ["learning_rate"]),
    ("random_state -1", _set(["params", "random_state"], -1), ["random_state", "-1"]),
    ("string estimator version", _set(["estimator_format_version"], "x"),
     ["estimator_format_version"]),
    ("fitted a list", _set(["fitted"], []), ["fitted"]),
    ("a method as fitted attribute", _set(["fitted", "predict"], 1), ["predict"]),
    ("n_features_in_ a string", _set(["fitted", "n_features_in_"], "2"), ["n_features_in_"]),
    ("missing n_iter_", _set(["fitted", "n_iter_"], _DELETE), ["n_iter_"]),
    ("network None", _set(["network"], None), ["network"]),
    ("network hidden_size", _set(["network", "hidden_size"], 10 ** 9), ["hidden_size"]),
    ("network cell", _set(["network", "cell"], "transformer"), ["cell", "transformer"]),
    ("network pooling None", _set(["network", "pooling"], None), ["pooling"]),
    ("label kind", _set(["label_kinds", "classes_"], "tuple"), ["classes_", "tuple"]),
    ("array attribute unknown", _set(["array_attributes"], ["feature_mean_", "nope_"]),
     ["nope_"]),
])
def test_a_malformed_meta_field_is_a_model_file_error(small_model, tmp_path, what, edit,
                                                      needles):
    path = edited(small_model[0], tmp_path / "bad.fastrnn", edit)
    assert_bad_file(path, *needles)


@pytest.mark.parametrize("drop", ["network/head.bias", "network/rnn.weight_hh_l0",
                                  "attr/classes_", "attr/feature_scale_", "attr/loss_curve_"])
def test_a_missing_array_is_a_model_file_error(small_model, tmp_path, drop):
    path = edited(small_model[0], tmp_path / "bad.fastrnn", drop=[drop])
    assert_bad_file(path, drop.split("/")[1])


def _weights(src, name):
    return read_model(src)[1][name]


@pytest.mark.parametrize("what,replace,needles", [
    ("NaN weight", lambda a: {"network/rnn.weight_ih_l0": np.where(
        np.arange(a["network/rnn.weight_ih_l0"].size).reshape(
            a["network/rnn.weight_ih_l0"].shape) == 1, np.nan, a["network/rnn.weight_ih_l0"])},
     ["rnn.weight_ih_l0", "non-finite"]),
    ("weight overflowing float32", lambda a: {"network/head.weight": np.full(
        a["network/head.weight"].shape, 1e300)}, ["head.weight", "float32"]),
    ("weight of the wrong shape", lambda a: {"network/head.weight": np.zeros((3, 4), np.float32)},
     ["head.weight", "shape"]),
    ("string weight", lambda a: {"network/head.bias": np.array(["a", "b", "c"])},
     ["head.bias"]),
    ("classes_ longer than the head", lambda a: {"attr/classes_": np.arange(4)},
     ["classes_", "4", "3"]),
    ("classes_ shorter than the head", lambda a: {"attr/classes_": np.arange(2)},
     ["classes_", "2", "3"]),
    ("classes_ repeated", lambda a: {"attr/classes_": np.array([0, 1, 1])}, ["classes_"]),
    ("feature_mean_ of the wrong length", lambda a: {"attr/feature_mean_": np.zeros(3)},
     ["feature_mean_", "3", "2"]),
    ("zero feature_scale_", lambda a: {"attr/feature_scale_": np.array([1.0, 0.0])},
     ["feature_scale_"]),
    ("NaN feature_mean_", lambda a: {"attr/feature_mean_": np.array([np.nan, 0.0])},
     ["feature_mean_"]),
    ("2-D loss curve", lambda a: {"attr/loss_curve_": np.zeros((2, 2))}, ["loss_curve_"]),
    ("unknown array", lambda a: {"attr/extra_": np.zeros(2)}, ["attr/extra_"]),
])
def test_inconsistent_arrays_are_a_model_file_error(small_model, tmp_path, what, replace,
                                                    needles):
    src = small_model[0]
    path = edited(src, tmp_path / "bad.fastrnn", arrays=replace(read_model(src)[1]))
    assert_bad_file(path, *needles)


def test_container_errors_name_the_file(small_model, tmp_path):
    src = small_model[0]
    data = src.read_bytes()
    (tmp_path / "cut.fastrnn").write_bytes(data[: len(data) // 2])
    assert_bad_file(tmp_path / "cut.fastrnn", "corrupt")
    (tmp_path / "text.fastrnn").write_text("hello")
    assert_bad_file(tmp_path / "text.fastrnn", "corrupt")
    (tmp_path / "folder.fastrnn").mkdir()
    assert_bad_file(tmp_path / "folder.fastrnn", "is a directory")
    meta, members = read_members(src)
    name = "arrays/network/head.bias.npy"
    members[name] = members[name][:-4]  # the header promises more data than the member holds
    assert_bad_file(write_members(tmp_path / "short.fastrnn", meta, members), "head.bias")
    with pytest.raises(FileNotFoundError):
        fastrnn.load(tmp_path / "absent.fastrnn")
    msg = assert_bad_file(edited(src, tmp_path / "new.fastrnn",
                                 _set(["format_version"], 99)), "upgrade fastrnn")
    assert "99" in msg


def test_the_estimator_load_method_names_the_file_too(small_model, tmp_path):
    from fastrnn import RNNClassifier

    path = edited(small_model[0], tmp_path / "bad.fastrnn",
                  _set(["params", "hidden_size"], 0))
    with pytest.raises(fastrnn.ModelFileError, match=r"bad\.fastrnn.*hidden_size"):
        RNNClassifier.load(path)


def test_a_failed_load_does_not_import_scikit_learn(small_model, tmp_path):
    (tmp_path / "text.fastrnn").write_text("hello")
    edited(small_model[0], tmp_path / "alien.fastrnn", _set(["class"], "Alien"))
    code = ("import sys, fastrnn\n"
            "for name in sys.argv[1:]:\n"
            "    try:\n"
            "        fastrnn.load(name)\n"
            "    except fastrnn.ModelFileError:\n"
            "        pass\n"
            "print('sklearn' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "text.fastrnn"),
                          str(tmp_path / "alien.fastrnn")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# B: fuzzing load with corrupted files
# ---------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=100 * SOAK, deadline=None, derandomize=False,
                suppress_health_check=list(HealthCheck))
LM_TEXTS = ["the cat sat. ", "a dog ran. ", "the cat ran. ", "a cat sat. "]


@pytest.fixture(scope="module")
def saved_files(small_model, tmp_path_factory):
    """Real small files of every kind: a classifier on float input, a regressor on token ids with
    two targets and its training checkpoint, a language model and its training checkpoint."""
    from fastrnn import RNNRegressor
    from fastrnn.estimators.language_model import RNNLanguageModel

    folder = tmp_path_factory.mktemp("fuzz")
    rng = np.random.RandomState(1)
    tokens = [rng.randint(1, 9, size=rng.randint(2, 6)) for _ in range(10)]
    reg = RNNRegressor(embedding_dim=3, hidden_size=3, max_iter=1, batch_size=4,
                       checkpoint_path=folder / "reg.ckpt", random_state=0, backend="numpy")
    with pytest.warns(Warning):
        reg.fit(tokens, rng.randn(10, 2))
    reg.save(folder / "reg.fastrnn")
    lm = RNNLanguageModel(hidden_size=4, embedding_dim=3, bptt=4, batch_size=2, max_iter=2,
                          checkpoint_path=folder / "lm.ckpt", random_state=0, backend="numpy")
    lm.fit(LM_TEXTS, validation_texts=LM_TEXTS[:1])
    lm.save(folder / "lm.fastrnn")
    files = {"clf": small_model[0], "reg": folder / "reg.fastrnn", "lm": folder / "lm.fastrnn",
             "ckpt": folder / "lm.ckpt", "reg_ckpt": folder / "reg.ckpt"}
    inputs = {"clf": small_model[2], "reg": tokens, "reg_ckpt": tokens}
    return _Files({k: (p.read_bytes(), inputs.get(k)) for k, p in files.items()}), folder


class _Files(dict):
    """The fuzzed files' bytes and inputs (with a short repr for hypothesis' reports)."""

    def __repr__(self):
        return f"<saved files {sorted(self)}>"


def exercise(model, X):
    """Use a model that loaded; it must work (or refuse an input it cannot scale, clearly)."""
    try:
        if hasattr(model, "vocabulary_"):
            if model.level is None:
                model.set_params(level="char")
            docs = [["t", "h"]] if model.input_type_ == "tokens" else ["the cat"]
            assert isinstance(model.perplexity(docs), float)
            model.generate(docs[0], max_length=3, random_state=0)
            return
        pred = model.predict(X)
        assert pred.shape[0] == len(X)
        if hasattr(model, "classes_"):
            assert set(pred.tolist()) <= set(model.classes_.tolist())
            proba = model.predict_proba(X)
            assert proba.shape == (len(X), len(model.classes_))
    except ValueError as exc:
        assert "overflows" in str(exc), exc
    except RuntimeError as exc:  # a backend this machine lacks
        assert "not available" in str(exc), exc


def load_or_refuse(path, X):
    """Load ``path`` with :func:`fastrnn.load` and, for the classes it serves, with
    :func:`fastrnn.load_predictor`: each refuses with a ``ModelFileError`` naming the file or
    gives a model that works; when both load, they predict the same."""
    model = predictor = None
    try:
        model = fastrnn.load(path)
    except fastrnn.ModelFileError as exc:
        assert repr(str(path)) in str(exc)
    try:
        predictor = fastrnn.load_predictor(path)
    except fastrnn.ModelFileError as exc:
        assert repr(str(path)) in str(exc)
    if type(model).__name__ in ("RNNClassifier", "RNNRegressor", "RNNTagger"):
        assert predictor is not None  # never stricter than fastrnn.load
    if model is not None:
        exercise(model, X)
    if predictor is not None:
        exercise(predictor, X)
    if model is not None and predictor is not None:
        try:
            expected = model.predict(X)
        except (ValueError, RuntimeError):
            return
        np.testing.assert_array_equal(predictor.predict(X), expected)


def _draw_file(saved_files, data):
    """One of the saved model files, drawn: its bytes, an input it predicts on and the folder."""
    files, folder = saved_files
    raw, X = files[data.draw(st.sampled_from(sorted(files)))]
    return raw, X, folder


def _draw_members(saved_files, data):
    """The members of a drawn saved model file (:func:`read_members`: the metadata and the raw
    arrays), an input it predicts on and the folder."""
    raw, X, folder = _draw_file(saved_files, data)
    src = folder / "src.fastrnn"
    src.write_bytes(raw)
    meta, members = read_members(src)
    return meta, members, X, folder


@FUZZ
@given(data=st.data())
def test_fuzz_byte_flips_and_truncations(saved_files, data):
    raw, X, folder = _draw_file(saved_files, data)
    blob = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        if data.draw(st.booleans()):
            blob[pos] ^= data.draw(st.integers(1, 255))
        else:
            del blob[pos:pos + data.draw(st.integers(1, 64))]
        if not blob:
            break
    path = folder / "fuzzed.fastrnn"
    path.write_bytes(bytes(blob))
    load_or_refuse(path, X)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 10 ** 20) | st.sampled_from([0, 1, 2, 3, -1])
    | st.floats() | st.text(max_size=8)
    | st.sampled_from(["numpy", "max", "last", "float64", "gru", "rnn", "str", "tokens",
                       "__list__", "word", "adam", "sgd"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


def _json_edit(data, meta):
    """One random edit somewhere in ``meta``: replace a value, delete an entry or add one."""
    node, key = None, None
    value = meta
    while isinstance(value, (dict, list)) and value and data.draw(st.integers(0, 3)) > 0:
        node = value
        key = data.draw(st.sampled_from(sorted(value) if isinstance(value, dict)
                                        else range(len(value))))
        value = node[key]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if node is None:
        return data.draw(JSON_VALUES) if action == "replace" else meta
    if action == "replace":
        node[key] = data.draw(JSON_VALUES)
    elif action == "delete":
        del node[key]
    elif isinstance(node, dict):
        node[data.draw(st.text(max_size=8))] = data.draw(JSON_VALUES)
    else:
        node.append(data.draw(JSON_VALUES))
    return meta


@FUZZ
@given(data=st.data())
def test_fuzz_meta_json_edits(saved_files, data):
    meta, members, X, folder = _draw_members(saved_files, data)
    for _ in range(data.draw(st.integers(1, 3))):
        meta = _json_edit(data, meta)
    path = folder / "fuzzed.fastrnn"
    write_members(path, None, members, raw_meta=json.dumps(meta))
    load_or_refuse(path, X)


ARRAY_DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.uint8, np.bool_,
                                np.complex128, "<U3", "S2"])
ARRAY_VALUES = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1.0, 0.5, 3.0, 1e39, 1e300, -1e300]


@st.composite
def replacement_arrays(draw, like):
    dtype = np.dtype(draw(ARRAY_DTYPES))
    shape = like.shape if draw(st.booleans()) else draw(hnp.array_shapes(min_dims=0, max_dims=3,
                                                                          min_side=0, max_side=5))
    if dtype.kind in "fc":
        elements = st.sampled_from(ARRAY_VALUES) if dtype.kind == "f" else st.complex_numbers(
            max_magnitude=10)
        with np.errstate(over="ignore"):
            return np.asarray(draw(hnp.arrays(np.float64 if dtype.kind == "f" else dtype, shape,
                                              elements=elements))).astype(dtype)
    return draw(hnp.arrays(dtype, shape))


@FUZZ
@given(data=st.data())
def test_fuzz_array_replacements(saved_files, data):
    meta, members, X, folder = _draw_members(saved_files, data)
    names = sorted(members)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(names + ["arrays/attr/new_.npy"]))
        if name in members and data.draw(st.integers(0, 4)) == 0:
            del members[name]
            continue
        like = (np.lib.format.read_array(io.BytesIO(members[name]), allow_pickle=False)
                if name in members else np.zeros(2))
        members[name] = npy(data.draw(replacement_arrays(like)))
    path = write_members(folder / "fuzzed.fastrnn", meta, members)
    load_or_refuse(path, X)
