"""Checkpoints and saved files of :class:`~fastrnn.estimators.RNNLanguageModel`: writing and
resuming a training run's checkpoint, saving and loading the fitted model (safe format, never
pickle)."""

import hashlib
import math
import os

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._config import check_dtype
from .._persist import ModelFileError, save_model
from ..text import Vocabulary
from ._checkpoint import check_overwritable, read_checkpoint
from ._lm_task import SOFTMAX_HEAD
from ._saved import LM_FITTED as FITTED
from ._saved import check_language_model_file, network_from_saved

__all__ = ["LMSavingMixin", "FITTED"]

_CLASS_NAME = "RNNLanguageModel"


def _json_float(x):
    x = float(x)
    return x if math.isfinite(x) else None


class LMSavingMixin:
    """Checkpoints, ``save`` and loading of the language model."""

    def _write_checkpoint(self, loop, meta, arrays, fingerprint):
        """Write the run's state to ``checkpoint_path`` (atomically). The file also loads with
        :func:`fastrnn.load`, as the best model of the run so far."""
        best = loop.best_params if loop.best_params is not None else self.network_.params
        out = dict(best)
        out.update({f"train/{k}": v for k, v in arrays.items()})
        fitted = self._summary(loop, "checkpoint")
        fitted["loss_curve_"] = [_json_float(x) for x in fitted["loss_curve_"]]
        fitted["validation_bits_per_token_"] = [
            _json_float(x) for x in fitted["validation_bits_per_token_"]]
        full = self._meta(fitted)
        full["checkpoint"] = dict(meta, fingerprint=fingerprint)
        save_model(self.checkpoint_path, _CLASS_NAME, full, out)

    def _resume(self, loop, meta, arrays, fingerprint):
        c = meta["checkpoint"]
        if c.get("fingerprint") != fingerprint:
            raise ValueError(
                f"the checkpoint at {self.checkpoint_path!r} was written for other training or "
                "validation texts; pass the same texts to resume, or resume=False to start afresh."
            )
        try:
            loop.load_state_dict(c, {k[len("train/"):]: v for k, v in arrays.items()
                                     if k.startswith("train/")})
        except KeyError as exc:
            raise ValueError(
                f"the checkpoint at {self.checkpoint_path!r} lacks {exc} (it was written by another "
                "version of fastrnn), so its run cannot be resumed; it still loads as a model with "
                "fastrnn.load. Use resume=False to start afresh."
            ) from None

    def _check_architecture(self, config):
        want = dict(cell=self.cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
                    embedding_dim=self._embedding_dim(), tie_weights=bool(self.tie_weights),
                    dtype=check_dtype(self.dtype).name, skip=self.skip)
        have = {k: config.get(k) for k in want}
        if have != want:
            diff = {k: (have[k], want[k]) for k in want if have[k] != want[k]}
            raise ValueError(
                f"the checkpoint at {self.checkpoint_path!r} has another architecture: "
                + ", ".join(f"{k}={a!r} there, {b!r} here" for k, (a, b) in diff.items())
                + "; use the same parameters to resume, or resume=False to start afresh."
            )

    @staticmethod
    def _fingerprint(train_ids, val_ids):
        h = hashlib.sha256()
        for part in (train_ids, val_ids):
            h.update(str(len(part)).encode())
            for d in part:
                h.update(np.asarray(d, np.int32).tobytes())
                h.update(b"|")
        return h.hexdigest()

    @staticmethod
    def _check_overwritable(path):
        check_overwritable(path, _CLASS_NAME)

    @staticmethod
    def _read_checkpoint(path):
        return read_checkpoint(path, _CLASS_NAME)

    # ------------------------------------------------------------------ persistence
    def _saved_params(self):
        params = self.get_params()
        if callable(params["level"]):
            params["level"] = None
        if not isinstance(params["optimizer"], str):
            params["optimizer"] = type(params["optimizer"]).__name__.lower()
        if not isinstance(params["random_state"], (int, np.integer, type(None))):
            params["random_state"] = None
        params["dtype"] = np.dtype(params["dtype"]).name
        params["callbacks"] = None  # code, not part of the model
        if params["checkpoint_path"] is not None:
            params["checkpoint_path"] = os.fspath(params["checkpoint_path"])
        return params

    def _meta(self, fitted):
        """The JSON part of a saved model or checkpoint (``fitted``: the training summary)."""
        return dict(
            params=self._saved_params(),
            tokenizer=(None if not callable(self.level) else
                       getattr(self.level, "__qualname__", type(self.level).__name__)),
            vocabulary=self.vocabulary_.to_dict(),
            network_config=self.network_.config,
            input_type=self.input_type_,
            fitted=fitted,
        )

    def _to_saved(self):
        """``(meta, arrays)`` for :func:`fastrnn._persist.save_model`."""
        check_is_fitted(self, "network_")
        fitted = {k: getattr(self, k) for k in FITTED}
        fitted["loss_curve_"] = [_json_float(x) for x in fitted["loss_curve_"]]
        fitted["validation_bits_per_token_"] = [
            _json_float(x) for x in fitted["validation_bits_per_token_"]]
        arrays = {k: v for k, v in self.network_.params.items()}
        arrays.update(self.network_.quantized_state())
        meta = self._meta(fitted)
        meta["ngram"], ngram_arrays = self._ngram_saved()
        arrays.update(ngram_arrays)
        return meta, arrays

    @classmethod
    def _from_saved(cls, meta, arrays):
        """Rebuild a fitted model from :meth:`_to_saved`'s output (or a checkpoint's), checked
        first: a bad file raises :class:`fastrnn.ModelFileError`."""
        check_language_model_file(cls, meta, arrays)
        try:
            params = dict(meta["params"])
            if "ngram" not in meta:  # saved before the n-gram part, or a training checkpoint
                params.setdefault("ngram_order", None)
            model = cls(**params)
            model.vocabulary_ = Vocabulary.from_dict(meta["vocabulary"])
            model.network_ = network_from_saved(
                meta["network_config"],
                {k: v for k, v in arrays.items() if not k.startswith("ngram/")}, "",
                params.get("backend", "auto"),
                "network_config", overrides=SOFTMAX_HEAD)
            model.input_type_ = meta.get("input_type", "text")
            model._ngram_from_saved(meta, arrays)
            for k, v in meta.get("fitted", {}).items():
                setattr(model, k, v)
        except (KeyError, TypeError) as exc:
            raise ModelFileError(f"the model file is incomplete or from an incompatible version "
                                 f"({type(exc).__name__}: {exc})") from exc
        model.loss_curve_ = [np.nan if x is None else x for x in model.loss_curve_]
        return model

    def save(self, path):
        """Save the fitted model to ``path`` (atomically; reload with :func:`fastrnn.load`).

        A model trained with a custom tokenizer callable is saved without it: after loading, set it
        with ``model.set_params(level=tokenizer)`` (or pass lists of tokens).

        Parameters
        ----------
        path : str or path-like
        """
        meta, arrays = self._to_saved()
        save_model(path, _CLASS_NAME, meta, arrays)
