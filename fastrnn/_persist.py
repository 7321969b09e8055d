"""Saving and loading models in a safe format: arrays as ``.npy`` members and JSON metadata in one
zip file, never pickle. Writes are atomic: a crash leaves either the old file or the new one, never
half; loading checks the whole file and raises :class:`ModelFileError` on a bad one.

A saved file is a zip archive holding ``meta.json`` (``{"format": "fastrnn-model", "format_version":
1, "class": ..., "fastrnn_version": ..., ...}``) and one ``arrays/<name>.npy`` per array, read back
with ``allow_pickle=False``. Classes that can be saved are registered by name in ``_CLASSES`` and
implement ``_to_saved() -> (meta, arrays)`` and ``_from_saved(meta, arrays)``; ``_from_saved``
checks what it reads and raises :class:`ModelFileError` (see
:mod:`fastrnn.estimators._saved`). This module imports neither scikit-learn nor the estimators
until a file's class is known.
"""

import hashlib
import importlib
import io
import json
import os
import re
import stat
import zipfile

import numpy as np

FORMAT = "fastrnn-model"
FORMAT_VERSION = 1

#: the fix of a file written by a newer fastrnn
UPGRADE = "Install a newer fastrnn (pip install --upgrade fastrnn) to load it."

#: class name -> "module:attribute" of the classes that ``load`` may construct
_CLASSES = {
    "RNNClassifier": "fastrnn.estimators:RNNClassifier",
    "RNNRegressor": "fastrnn.estimators:RNNRegressor",
    "RNNTagger": "fastrnn.estimators:RNNTagger",
    "RNNLanguageModel": "fastrnn.estimators:RNNLanguageModel",
    "RNNSeq2Seq": "fastrnn.estimators:RNNSeq2Seq",
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
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise IsADirectoryError(
            f"cannot write {path!r}: it names a directory (it ends with a separator). Pass a file "
            f"path, e.g. {os.path.join(path, 'model.fastrnn')!r}."
        )
    # absent: the nearest existing ancestor must be a folder
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            st = os.stat(parent)
        except (FileNotFoundError, NotADirectoryError):
            parent = os.path.dirname(parent)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise _not_a_folder(path, parent)
        return target


#: temporary files are named ``.tmp-<pid>-<host>-<random>-<destination>``, where ``<destination>``
#: is the destination's name (or a hash of it, for a name too long to extend)
_TEMP = re.compile(r"\.tmp-(\d+)-([0-9a-f]{8})-[0-9a-f]{8}-(.*)\Z", re.DOTALL)


def _temp_tag(name):
    if len(name.encode("utf-8", "surrogateescape")) <= 160:
        return name
    return "h" + hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()


def _host_tag():
    import socket  # only when saving: importing fastrnn stays light

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
    host, tag = _host_tag(), _temp_tag(name)
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        m = _TEMP.match(entry)
        if m is None or m.group(3) != tag or m.group(2) != host:
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
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{_host_tag()}-{os.urandom(4).hex()}-"
                               f"{_temp_tag(name)}")
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
    """Write ``meta`` (JSON-able dict) and ``arrays`` (dict of name -> ndarray) to ``path``
    atomically (:func:`atomic_write`)."""
    from ._version import __version__

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


class ModelFileError(ValueError):
    """A model file that cannot be loaded: damaged, incomplete, inconsistent or from a newer
    fastrnn. The message names the file (``path``) and the problem.

    Parameters
    ----------
    problem : str
        What is wrong with the file.
    path : str or path-like, optional
        The file (added by :func:`load` when a check deeper down did not know it).
    fix : str, optional
        What to do about it; by default, save the model again.
    """

    DEFAULT_FIX = ("The file is damaged or was not written by fastrnn's save(); save the model "
                   "again.")

    def __init__(self, problem, path=None, fix=None):
        self.problem = str(problem).rstrip(". ")
        self.path = None if path is None else os.fspath(path)
        self.fix = self.DEFAULT_FIX if fix is None else fix
        where = "" if self.path is None else f"model file {self.path!r}: "
        super().__init__(f"{where}{self.problem}. {self.fix}")

    def with_path(self, path):
        """The same error naming ``path``."""
        return ModelFileError(self.problem, path, self.fix)


def _describe(value):
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _read_npy(z, info):
    """One ``.npy`` member, its header checked against the member's size before reading."""
    data = z.read(info)
    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    if dtype.hasobject:
        raise ValueError("it holds Python objects, which a model file never stores")
    count = 1
    for n in shape:
        count *= int(n)
    expected = f.tell() + count * dtype.itemsize
    if expected != len(data):
        raise ValueError(f"its header promises {count} values of {dtype} (shape {shape}) in "
                         f"{expected} bytes, but the member holds {len(data)}")
    f.seek(0)
    return np.lib.format.read_array(f, allow_pickle=False)


def read_model(path):
    """Read a file written by :func:`save_model`; returns ``(meta, arrays)``.

    The container is checked here (a zip with a JSON object ``meta.json`` of this format and
    readable ``.npy`` arrays); what the arrays mean is checked by the class that loads them.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    ModelFileError
        Anything else that makes it not a readable model file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}; check the path.")
    if os.path.isdir(path):
        raise ModelFileError("it is a directory, not a model file", path,
                             "Pass the path of a file written by save().")
    with open(path, "rb") as fileobj:
        try:
            with zipfile.ZipFile(fileobj) as z:
                names = z.namelist()
                if len(set(names)) != len(names):
                    raise ValueError("the zip archive holds the same member twice")
                try:
                    text = z.read("meta.json")
                except KeyError:
                    raise ValueError("the zip archive has no meta.json") from None
                try:
                    meta = json.loads(text.decode("utf-8"))
                except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                    raise ModelFileError(f"meta.json is not valid JSON ({type(exc).__name__}: "
                                         f"{exc})", path) from exc
                if not isinstance(meta, dict):
                    raise ModelFileError(f"meta.json must hold a JSON object, got "
                                         f"{_describe(meta)}", path)
                arrays = {}
                for info in z.infolist():
                    name = info.filename
                    if name.startswith("arrays/") and name.endswith(".npy"):
                        try:
                            arrays[name[7:-4]] = _read_npy(z, info)
                        except Exception as exc:  # noqa: BLE001 - any failure is a bad member
                            raise ModelFileError(f"array {name[7:-4]!r} cannot be read "
                                                 f"({type(exc).__name__}: {exc})", path) from exc
                    elif name != "meta.json":
                        raise ValueError(f"unexpected member {name!r} in the zip archive")
        except ModelFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parse failure of these bytes is a bad file
            # zipfile and json raise many types on damaged input (BadZipFile, zlib.error,
            # EOFError, NotImplementedError, UnicodeDecodeError, ...): all mean the same here
            raise ModelFileError(
                f"it is not a readable fastrnn model file ({type(exc).__name__}: {exc}); it may "
                "be truncated or corrupt", path) from exc
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"it is not a fastrnn model file (format {meta.get('format')!r}, "
                             f"expected {FORMAT!r})", path)
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"format_version must be a positive integer, got "
                             f"{_describe(version)}", path)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"it was written by a newer fastrnn (format version {version}, this one reads up to "
            f"{FORMAT_VERSION})", path, UPGRADE)
    if not isinstance(meta.get("class"), str):
        raise ModelFileError(f"'class' must be a class name, got {_describe(meta.get('class'))}",
                             path)
    return meta, arrays


def model_class(meta, path):
    """The class named by a model file's ``meta`` (imported on demand)."""
    target = _CLASSES.get(meta["class"])
    if target is None:
        raise ModelFileError(f"it holds an unknown model class {meta['class']!r} (known: "
                             f"{', '.join(sorted(_CLASSES))})", path)
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def rebuild(cls, meta, arrays, path):
    """``cls._from_saved(meta, arrays)``; a :class:`ModelFileError` raised there names ``path``."""
    try:
        return cls._from_saved(meta, arrays)
    except ModelFileError as exc:
        if exc.path is not None:
            raise
        raise exc.with_path(path) from exc.__cause__


def load(path):
    """Load a model saved with ``model.save(path)``.

    The whole file is checked: its container, its metadata, the model's parameters and the
    consistency of its arrays (shapes, finite values, the labels against the output layer, ...).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    model : the fitted estimator, ready to predict.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFileError
        A file that is not a valid model file (a subclass of ``ValueError``); the message names
        the file and the problem.
    """
    meta, arrays = read_model(path)
    return rebuild(model_class(meta, path), meta, arrays, path)
