"""Training checkpoints of the estimators: the file a ``fit`` with ``checkpoint_path`` rewrites
after every epoch, and how ``fit(..., resume=True)`` continues from it.

A checkpoint is a saved-model file (:func:`fastrnn._persist.save_model`, written atomically) of
the model so far, so :func:`fastrnn.load` reads it as a fitted model; ``meta["checkpoint"]`` and
the arrays named ``train/...`` add the state of the run
(:meth:`fastrnn.train.TrainingLoop.state_dict`). The functions here are shared by every estimator:
which file a run resumes from (:func:`checkpoint_to_resume`), and the refusal to overwrite a file
that is no checkpoint of the estimator's class. :class:`EstimatorCheckpoint` is the checkpoint of
a fit of the classifier, the regressor or the tagger; the language model writes its own
(:mod:`fastrnn.estimators._lm_saving`).
"""

import hashlib
import json
import os
import zipfile

import numpy as np

from .._persist import check_destination, read_model, rebuild, save_model
from ._inputs import SequenceData
from ._saving import params_to_json

__all__ = ["check_overwritable", "read_checkpoint", "checkpoint_to_resume",
           "EstimatorCheckpoint"]


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


# ---------------------------------------------------------------------------------------------
# the classifier, the regressor and the tagger
# ---------------------------------------------------------------------------------------------

#: parameters a resumed fit must share with its checkpoint: they make the model, read its input
#: and define its loss (the others, such as ``max_iter``, ``time_budget`` or ``callbacks``, may
#: change)
RESUME_FIXED = ("cell", "hidden_size", "num_layers", "bidirectional", "pooling", "dropout",
                "recurrent_dropout", "embedding_dim", "vocab_size", "standardize", "dtype",
                "class_weight", "optimizer", "validation_fraction", "bag_of_embeddings", "skip",
                "frame_size", "crop_fraction", "difference", "linear")

#: fitted attributes a run sets from its loop only when it ends (see ``_run_results``)
_RESULTS = ("validation_scores_", "best_validation_score_", "best_loss_")


def _feed(h, obj):
    """Hash ``obj`` (arrays, validated sequences, lists and tuples of them, None) into ``h``."""
    if obj is None:
        h.update(b"N")
    elif isinstance(obj, SequenceData):
        h.update(b"S%d" % int(obj.tokens))
        _feed(h, obj.lengths)
        for s, n in zip(obj.seqs, obj.lengths):
            _feed(h, s[:n])
    elif isinstance(obj, (list, tuple)):
        h.update(b"L%d" % len(obj))
        for item in obj:
            _feed(h, item)
    else:
        a = np.ascontiguousarray(obj)
        h.update(f"A{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())


def fingerprint(obj):
    """SHA-256 of validated data (see :func:`_feed`), as hex."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _json(value):
    return json.loads(json.dumps(value))


class EstimatorCheckpoint:
    """The checkpoint of one ``fit`` of a :class:`~fastrnn.estimators._base.BaseRNNEstimator`.

    Besides the training loop's state, a checkpoint holds what the fit adds to it: the
    fingerprints of the data (``X``, ``y``, ``sample_weight``, ``validation_data``, validated),
    the validation split, the estimator's counts and history before the run
    (``warm_start``), and the file is a whole saved model (with the best parameters so far). A
    resumed fit restores the estimator from the file, checks that its parameters and its data are
    those of the checkpointed fit, and continues the loop where it stopped.

    ``fit`` uses it in this order: :meth:`open` (reads the checkpoint to resume, and restores the
    fitted attributes from it), :meth:`initialize` (instead of a fresh initialisation, when
    resuming), :meth:`check_data`, :meth:`validation_split`, :meth:`attach` (to the loop).

    Parameters
    ----------
    est : BaseRNNEstimator
    saved : tuple (meta, arrays) or None
        The checkpoint to resume, or None for a run that starts afresh.
    """

    def __init__(self, est, saved):
        self.est = est
        self.path = os.fspath(est.checkpoint_path)
        self.saved = saved
        self.resuming = saved is not None
        self.fingerprint = None
        self.split = None
        self.loop = None
        self.done = None
        self.has_val = self.early = False

    @classmethod
    def open(cls, est, resume, incremental):
        """The checkpoint of a ``fit`` (None without ``checkpoint_path``, and for
        ``partial_fit``, which writes none). When resuming, the estimator's fitted attributes
        and network are restored from the file."""
        if incremental:
            return None
        saved = checkpoint_to_resume(est.checkpoint_path, resume, type(est).__name__)
        if est.checkpoint_path is None:
            return None
        if not isinstance(est.optimizer, str):
            raise ValueError(
                "checkpoint_path needs the optimizer by name (a checkpoint stores it so), but "
                f"optimizer is an instance ({est.optimizer!r:.60}). Use one of 'adam', 'adamw', "
                "'sgd', 'momentum', 'nesterov', 'adagrad' with learning_rate, or "
                "checkpoint_path=None."
            )
        ckpt = cls(est, saved)
        if ckpt.resuming:
            ckpt._restore()
        return ckpt

    # ------------------------------------------------------------------ resuming
    def _refuse(self, problem, what="parameters"):
        raise ValueError(f"the checkpoint at {self.path!r} {problem}; pass the same {what} to "
                         "resume, or resume=False to start afresh.")

    def _section(self, key):
        """An entry of the checkpoint's ``meta["checkpoint"]["run"]``."""
        try:
            return self.saved[0]["checkpoint"]["run"][key]
        except (KeyError, TypeError):
            raise ValueError(
                f"the checkpoint at {self.path!r} lacks the run's {key!r} (it was written by "
                "another version of fastrnn), so its run cannot be resumed; it still loads as a "
                "model with fastrnn.load. Use resume=False to start afresh."
            ) from None

    def _restore(self):
        """Check the parameters against the checkpoint's, then restore the fitted attributes and
        the network from it (as :func:`fastrnn.load` would), whatever the estimator held."""
        est = self.est
        meta, arrays = self.saved
        there = meta.get("params") if isinstance(meta.get("params"), dict) else {}
        here = _json(params_to_json(est.get_params(deep=False)))
        diff = [(k, there.get(k), here[k]) for k in RESUME_FIXED
                if k in here and there.get(k) != here[k]]
        if diff:
            self._refuse("was written by a fit with other parameters ("
                         + ", ".join(f"{k}={a!r} there, {b!r} here" for k, a, b in diff)
                         + "): a resumed fit keeps the model, the input and the loss it started "
                         "with")
        # built on this estimator's backend, which may differ from the checkpointed run's
        meta = dict(meta, params=dict(there, backend=est.backend))
        try:
            model = rebuild(type(est), meta, arrays, self.path)
        except ValueError as exc:
            raise ValueError(f"cannot resume: {exc}") from exc
        for name in est._saved_attributes:
            if hasattr(model, name):
                setattr(est, name, getattr(model, name))
        est.network_ = model.network_

    def initialize(self, early, active):
        """A resumed fit's initialisation: a fresh optimiser, random generator and stopping rule,
        whose states :meth:`attach` then loads, and the history before the run."""
        est = self.est
        if bool(self._section("early")) != early:
            was = "watched" if self._section("early") else "did not watch"
            now = "does" if early else "does not"
            self._refuse(f"was written by a fit that {was} validation data for early stopping, "
                         f"and this one {now}", what="early_stopping and validation_data")
        est._trainer = est._make_trainer()
        est._rng = np.random.RandomState(0)  # its state is the checkpoint's
        est._seconds = 0.0
        est._new_counter(early, active)
        scores = self._section("validation_scores")
        est.validation_scores_ = None if scores is None else [float(v) for v in scores]
        est.history_ = [dict(h) for h in self._section("history")]

    def check_data(self, data, targets, sample_weight, validation):
        """Fingerprint the validated data of the fit; when resuming, refuse other data than the
        checkpointed fit's. Also make sure that a checkpoint can hold this model, before any
        training (a label the safe format cannot store would otherwise fail after an epoch)."""
        self.fingerprint = {"X": fingerprint(data), "y": fingerprint(targets),
                            "sample_weight": fingerprint(sample_weight),
                            "validation_data": fingerprint(validation)}
        if self.resuming:
            there = self._section("fingerprint")
            diff = [k for k, v in self.fingerprint.items() if there.get(k) != v]
            if diff:
                self._refuse(f"was written for other training data ({', '.join(diff)} "
                             f"differ{'s' if len(diff) == 1 else ''})",
                             what="X, y, sample_weight and validation_data")
            return
        try:
            self.est._to_saved()
        except ValueError as exc:
            raise ValueError(f"checkpoint_path is set, but a checkpoint cannot hold this model: "
                             f"{exc}") from exc

    def validation_split(self, data, targets):
        """``(train, validation)`` indices: the checkpoint's when resuming, else a new split."""
        if not self.resuming:
            self.split = self.est._validation_split(data, targets)
            return self.split
        arrays = self.saved[1]
        tr, va = arrays.get("train/split_train"), arrays.get("train/split_val")
        n = len(data)
        if tr is None or va is None or not np.array_equal(
                np.sort(np.concatenate([tr, va])), np.arange(n)):
            self._refuse(f"holds no validation split of {n} sequences",
                         what="early_stopping and validation_data")
        self.split = (tr.astype(np.int64), va.astype(np.int64))
        return self.split

    # ------------------------------------------------------------------ the loop
    def attach(self, loop, done, has_val, early):
        """Make ``loop`` write this checkpoint; when resuming, load the checkpointed state into
        it. Returns the estimator's ``(n_iter_, t_)`` before the run."""
        self.loop, self.has_val, self.early = loop, has_val, early
        loop.checkpoint_path = self.path
        loop.checkpoint = self._write
        if not self.resuming:
            self.done = tuple(done)
            return self.done
        meta, arrays = self.saved
        self.done = tuple(int(v) for v in self._section("done"))
        try:
            loop.load_state_dict(meta["checkpoint"], {
                k[len("train/"):]: v for k, v in arrays.items() if k.startswith("train/")})
        except KeyError as exc:
            raise ValueError(
                f"the checkpoint at {self.path!r} lacks {exc} (it was written by another "
                "version of fastrnn), so its run cannot be resumed; it still loads as a model "
                "with fastrnn.load. Use resume=False to start afresh."
            ) from None
        return self.done

    def _write(self, meta, arrays):
        """The loop's ``checkpoint``: the estimator as a saved model with the attributes the run
        would end with now and the best parameters so far, plus the run's state."""
        est, loop = self.est, self.loop
        before = {n: getattr(est, n) for n in _RESULTS}
        try:
            for name, value in est._run_results(loop, self.has_val, self.early).items():
                setattr(est, name, value)
            out_meta, out = est._to_saved()
        finally:
            for name, value in before.items():
                setattr(est, name, value)
        if loop.best_params is not None:
            out.update({f"network/{k}": v for k, v in loop.best_params.items()})
        out.update({f"train/{k}": v for k, v in arrays.items()})
        if self.split is not None:
            out["train/split_train"], out["train/split_val"] = self.split
        run = dict(done=list(self.done), early=self.early, fingerprint=self.fingerprint,
                   validation_scores=before["validation_scores_"], history=est.history_)
        out_meta["checkpoint"] = dict(meta, run=run)
        save_model(self.path, type(est).__name__, out_meta, out)
