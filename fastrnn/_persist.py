"""Saving and loading models in a safe format: arrays as ``.npy`` members and JSON metadata in one zip
file, never pickle. Writes are atomic: a crash leaves either the old file or the new one, never half.

A saved file is a zip archive holding ``meta.json`` (``{"format": "fastrnn-model", "format_version":
1, "class": ..., "fastrnn_version": ..., ...}``) and one ``arrays/<name>.npy`` per array, read back
with ``allow_pickle=False``. Classes that can be saved are registered by name in ``_CLASSES`` and
implement ``_to_saved() -> (meta, arrays)`` and ``_from_saved(meta, arrays)``.
"""

import hashlib
import importlib
import io
import json
import os
import re
import secrets
import socket
import stat
import zipfile

import numpy as np

FORMAT = "fastrnn-model"
FORMAT_VERSION = 1

#: class name -> "module:attribute" of the classes that ``load`` may construct
_CLASSES = {
    "RNNClassifier": "fastrnn.estimators:RNNClassifier",
    "RNNRegressor": "fastrnn.estimators:RNNRegressor",
    "RNNTagger": "fastrnn.estimators:RNNTagger",
    "RNNLanguageModel": "fastrnn.estimators:RNNLanguageModel",
}


#: how each kind of file that is not a regular file is named in errors
_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO (named pipe)"),
          (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISSOCK, "socket"))


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "special file"


def _not_a_folder(path, parent):
    return NotADirectoryError(
        f"cannot write {path!r}: {parent!r} is a file, not a folder. Save into a folder (e.g. "
        f"{os.path.join(os.path.dirname(parent) or '.', 'model.fastrnn')!r}), or move that file "
        "away."
    )


def check_destination(path):
    """Check that a model can be written at ``path``; return the file that will be replaced.

    ``path`` may be absent (its folders are created when saving), a regular file, or a symbolic
    link to a regular file (the link is kept and its target is replaced). Anything else is
    refused, so saving never writes into a FIFO, a device or a directory. Nothing is created.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    target : str
        ``path``, or the file a symbolic link points to.

    Raises
    ------
    IsADirectoryError
        ``path`` is a directory.
    NotADirectoryError
        A parent of ``path`` is a file.
    FileExistsError
        ``path`` is a FIFO, a device, a socket, or a symbolic link to one of them or to nothing.
    """
    path = os.fspath(path)
    target = path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # a parent is a file: found below
    if st is not None and stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise FileExistsError(
                f"cannot write {path!r}: it is a symlink to {target!r}, which does not exist. "
                "Create that file first, or remove the link and save to a file path."
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise FileExistsError(
                f"cannot write {path!r}: it is a symlink to {target!r}, which is a "
                f"{_kind(st.st_mode)}, not a regular file. Save to a file path instead."
            )
        return target
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(
                f"cannot write {path!r}: it is a directory. Pass a file path inside it, e.g. "
                f"{os.path.join(path, 'model.fastrnn')!r}."
            )
        if not stat.S_ISREG(st.st_mode):
            raise FileExistsError(
                f"cannot write {path!r}: it is a {_kind(st.st_mode)}, not a regular file; saving "
                "replaces regular files only. Choose another path (or remove it first)."
            )
        return target
    # absent: the nearest existing ancestor must be a folder
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            parent = os.path.dirname(parent)
            continue
        except NotADirectoryError:
            parent = os.path.dirname(parent)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise _not_a_folder(path, parent)
        return target


#: temporary files are named ``.tmp-<pid>-<host>-<random>-<destination name>``
_TEMP = re.compile(r"\.tmp-(\d+)-([0-9a-f]{8})-[0-9a-f]{8}-(.*)\Z", re.DOTALL)


def _host_tag():
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process (or a pid we cannot ask about): leave it
    return True


def _remove_stale_temps(folder, name):
    """Remove the temporary files for ``name`` in ``folder`` left by writers of this host that no
    longer run (killed while saving)."""
    host = _host_tag()
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        m = _TEMP.match(entry)
        if m is None or m.group(3) != name or m.group(2) != host:
            continue
        if _pid_alive(int(m.group(1))):
            continue
        full = os.path.join(folder, entry)
        try:
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.unlink(full)
        except OSError:
            pass  # removed by another writer meanwhile, or not ours to remove


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then move it into place.

    A crash (even ``kill -9``) at any moment leaves either the old file or the new one at
    ``path``. The destination is checked first (:func:`check_destination`); through a symbolic link
    the link's target is replaced. A new file gets the mode ``open(path, "w")`` would give it
    (``0o666`` less the umask), a replaced one keeps its mode. The temporary file's name holds the
    writer's process id, so that the next save removes those of writers that were killed.
    """
    path = os.fspath(path)
    target = check_destination(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        check_destination(path)  # a parent became a file meanwhile: say which
        raise
    name = os.path.basename(target)
    _remove_stale_temps(folder, name)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{_host_tag()}-{secrets.token_hex(4)}-{name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_model(path, class_name, meta, arrays):
    """Write ``meta`` (JSON-able dict) and ``arrays`` (dict of name -> ndarray) to ``path`` atomically."""
    from . import __version__

    header = dict(format=FORMAT, format_version=FORMAT_VERSION, fastrnn_version=__version__,
                  **{"class": class_name}, **meta)
    text = json.dumps(header, indent=1, sort_keys=True)

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("meta.json", text)
            for name, a in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
                z.writestr(f"arrays/{name}.npy", buf.getvalue())

    atomic_write(path, write)


def read_model(path):
    """Read a file written by :func:`save_model`; returns ``(meta, arrays)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}; check the path.")
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json").decode("utf-8"))
            arrays = {}
            for name in z.namelist():
                if name.startswith("arrays/") and name.endswith(".npy"):
                    with z.open(name) as f:
                        arrays[name[7:-4]] = np.lib.format.read_array(
                            io.BytesIO(f.read()), allow_pickle=False)
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError, EOFError) as exc:
        raise ValueError(
            f"{path!r} is not a readable fastrnn model file ({type(exc).__name__}: {exc}). It may be "
            "truncated or corrupt; save the model again."
        ) from exc
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a fastrnn model file (format {meta.get('format')!r}).")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written by a newer fastrnn (format version {meta['format_version']}, this "
            f"one reads up to {FORMAT_VERSION}); upgrade fastrnn to load it."
        )
    return meta, arrays


def load(path):
    """Load a model saved with ``model.save(path)``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    model : the fitted estimator, ready to predict.
    """
    meta, arrays = read_model(path)
    target = _CLASSES.get(meta.get("class"))
    if target is None:
        raise ValueError(f"{path!r} holds an unknown model class {meta.get('class')!r}; known: "
                         f"{sorted(_CLASSES)}.")
    module, attr = target.split(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls._from_saved(meta, arrays)
