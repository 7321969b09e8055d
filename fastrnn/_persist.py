"""Saving and loading models in a safe format: arrays as ``.npy`` members and JSON metadata in one zip
file, never pickle. Writes are atomic: a crash leaves either the old file or the new one, never half.

A saved file is a zip archive holding ``meta.json`` (``{"format": "fastrnn-model", "format_version":
1, "class": ..., "fastrnn_version": ..., ...}``) and one ``arrays/<name>.npy`` per array, read back
with ``allow_pickle=False``. Classes that can be saved are registered by name in ``_CLASSES`` and
implement ``_to_saved() -> (meta, arrays)`` and ``_from_saved(meta, arrays)``.
"""

import importlib
import io
import json
import os
import tempfile
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


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then move it into place."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
