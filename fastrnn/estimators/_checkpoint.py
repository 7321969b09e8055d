"""Training checkpoints of the estimators: the file a ``fit`` with ``checkpoint_path`` rewrites
after every epoch, and how ``fit(..., resume=True)`` continues from it.

A checkpoint is a saved-model file (:func:`fastrnn._persist.save_model`, written atomically) of
the model so far, so :func:`fastrnn.load` reads it as a fitted model; ``meta["checkpoint"]`` and
the arrays named ``train/...`` add the state of the run
(:meth:`fastrnn.train.TrainingLoop.state_dict`). The functions here are shared by every estimator:
which file a run resumes from (:func:`checkpoint_to_resume`), and the refusal to overwrite a file
that is no checkpoint of the estimator's class. The language model writes its own
(:mod:`fastrnn.estimators._lm_saving`).
"""

import json
import os
import zipfile

from .._persist import check_destination, read_model

__all__ = ["check_overwritable", "read_checkpoint", "checkpoint_to_resume"]


def check_overwritable(path, class_name):
    """Refuse to start a run whose checkpoints would overwrite a file that is not a checkpoint of
    ``class_name`` (a saved model, say), or that is no file at all."""
    if os.path.isdir(path):
        raise ValueError(
            f"checkpoint_path {os.fspath(path)!r} is a directory; pass a file path for the "
            f"checkpoint, e.g. {os.path.join(os.fspath(path), 'run.ckpt')!r}."
        )
    try:
        check_destination(path)
    except OSError as exc:
        raise ValueError(f"checkpoint_path cannot be written: {exc}") from exc
    if not os.path.exists(path):
        return
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json").decode("utf-8"))
        ours = meta.get("class") == class_name and "checkpoint" in meta
    except (OSError, KeyError, ValueError, AttributeError, zipfile.BadZipFile):
        ours = False
    if not ours:
        raise ValueError(
            f"checkpoint_path {os.fspath(path)!r} is an existing file that is not a training "
            f"checkpoint of an {class_name}; training would overwrite it. Choose another "
            "checkpoint_path, or move the file away."
        )


def read_checkpoint(path, class_name):
    """``(meta, arrays)`` of the training checkpoint of a ``class_name`` at ``path``."""
    try:
        meta, arrays = read_model(path)
    except ValueError as exc:
        raise ValueError(f"cannot resume: {exc}") from exc
    if meta.get("class") != class_name or "checkpoint" not in meta:
        raise ValueError(
            f"{os.fspath(path)!r} is not a training checkpoint of an {class_name} (it "
            f"holds a {meta.get('class')} "
            f"{'checkpoint' if 'checkpoint' in meta else 'saved model'}); "
            "point checkpoint_path at the checkpoint of the run to resume."
        )
    return meta, arrays


def checkpoint_to_resume(path, resume, class_name):
    """The checkpoint a ``fit`` continues, ``(meta, arrays)``, or ``None`` to start afresh.

    ``resume=True`` needs a ``path``; with no file there yet the run starts afresh. A run that
    starts afresh with a ``path`` must be allowed to overwrite it (:func:`check_overwritable`).
    """
    if resume and path is None:
        raise ValueError("resume=True needs checkpoint_path, got None; set checkpoint_path to "
                         "the checkpoint file of the interrupted run.")
    if path is None:
        return None
    if resume and os.path.exists(path):
        return read_checkpoint(path, class_name)
    check_overwritable(path, class_name)
    return None
