"""Prediction with a saved estimator, without the training stack.

:func:`load_predictor` reads a file written by ``save`` of
:class:`~fastrnn.estimators.RNNClassifier`, :class:`~fastrnn.estimators.RNNRegressor` or
:class:`~fastrnn.estimators.RNNTagger` and returns a :class:`Predictor`: the fitted network with
what prediction needs (the input's standardisation, the class labels, the target scaling), and the
estimator's prediction methods. It imports neither scikit-learn nor
Numba (a one-sequence prediction runs on the Cython backend when it is built), so a fresh process
that loads a model and predicts starts in a fraction of the time the estimator takes; the results
are those of the estimator loaded with :func:`fastrnn.load`, to the bit.

Use :func:`fastrnn.load` to continue training, to score, or to stream step by step.

Examples
--------
>>> import numpy as np, fastrnn
>>> from fastrnn import RNNClassifier
>>> X = np.random.default_rng(0).normal(size=(20, 8, 2)).astype(np.float32)
>>> y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "model.frnn")
>>> _ = RNNClassifier(max_iter=2, random_state=0).fit(X, y).save(path)
>>> model = fastrnn.load_predictor(path)
>>> model.predict(X[:3]).shape
(3,)
"""

import numpy as np

from ._persist import ModelFileError, read_model, rebuild
from .estimators._inference import (check_fitted_input, network_outputs, series_input,
                                    to_targets)
from .estimators._saved import (SAVED_ATTRIBUTES, check_fitted_file, check_format_version,
                                network_from_saved)
from .estimators._saving import labels_from_saved
from .losses import log_softmax, softmax

__all__ = ["Predictor", "load_predictor"]

#: the estimators a predictor can be loaded from, and whether each predicts one output per step
_KINDS = {"RNNClassifier": False, "RNNRegressor": False, "RNNTagger": True}

_BACKENDS = ("auto", "numba", "cython", "cuda", "numpy")


class Predictor:
    """A saved estimator loaded for prediction only (see :func:`load_predictor`).

    Its methods are those of the estimator it was saved from: ``predict``, and for a classifier or
    a tagger ``predict_proba``, ``predict_log_proba`` and ``decision_function``; they take the
    same input and return the same results. A predictor changes no state when it predicts, so
    several threads may use one at once.

    Attributes
    ----------
    estimator_class : str
        ``"RNNClassifier"``, ``"RNNRegressor"`` or ``"RNNTagger"``.
    network_ : fastrnn.nn.SequenceNetwork
        The fitted network, in inference mode.
    n_features_in_ : int
        Features (or token ids) per step.
    classes_ : ndarray of shape (n_classes,)
        Class labels (classifier and tagger).
    """

    def __init__(self, estimator_class, network, fitted):
        self.estimator_class = estimator_class
        self.network_ = network
        for name, value in fitted.items():
            setattr(self, name, value)

    def __repr__(self):
        return f"Predictor({self.estimator_class}, n_features_in_={self.n_features_in_})"

    @classmethod
    def _from_saved(cls, meta, arrays):
        name = meta["class"]
        check_format_version(name, meta)
        saved = SAVED_ATTRIBUTES[name]
        labels = ("classes_",) if "classes_" in saved else ()
        values = check_fitted_file(meta, arrays, name, saved, labels, _KINDS[name])
        for label in labels:
            values[label] = labels_from_saved(values[label], meta.get("label_kinds", {}).get(label))
        params = meta.get("params")
        backend = params.get("backend", "auto") if isinstance(params, dict) else "auto"
        if backend not in _BACKENDS:
            raise ModelFileError(f"parameter backend must be one of {list(_BACKENDS)}, got "
                                 f"{backend!r}")
        net = network_from_saved(meta["network"], arrays, "network/", backend)
        keep = ("n_features_in_", "vocab_size_", "feature_mean_", "feature_scale_", "classes_",
                "target_mean_", "target_scale_", "_y_ndim", "frame_size_", "difference_")
        return cls(name, net, {k: values[k] for k in keep if k in values})

    def _outputs(self, X):
        data = check_fitted_input(
            X, tokens=self.vocab_size_ is not None, n_features_in=self.n_features_in_,
            vocab_size=self.vocab_size_, feature_mean=self.feature_mean_,
            feature_scale=self.feature_scale_, dtype=self.network_.dtype,
            name=self.estimator_class)
        return network_outputs(self.network_, series_input(
            data, getattr(self, "frame_size_", 1), getattr(self, "difference_", False)))

    def _require_classes(self, method):
        if not hasattr(self, "classes_"):
            raise AttributeError(f"{method} is for classifiers and taggers; this predictor was "
                                 f"saved from an {self.estimator_class}: use predict.")

    def predict(self, X):
        """What the saved estimator's ``predict`` returns for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, T) or (n_samples, T, n_features), or list of arrays
            As for the estimator (token ids for a model fitted on token ids).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs), or list of ndarray
            Labels (classifier), targets (regressor), or one label array of shape (T_i,) per
            sequence (tagger).
        """
        out = self._outputs(X)
        if self.estimator_class == "RNNRegressor":
            return to_targets(np.array(out, dtype=np.float64), self.target_mean_,
                              self.target_scale_, self._y_ndim)
        if self.estimator_class == "RNNTagger":
            return [self.classes_[np.argmax(z, axis=1)] for z in out]
        return self.classes_[np.argmax(out, axis=1)]

    # ``X`` of each method below: as for :meth:`predict`
    def decision_function(self, X):
        """Unnormalised class scores, as the saved estimator's ``decision_function``: float64 of
        shape (n_samples, n_classes), (n_samples,) for two classes, or for a tagger a list of
        arrays of shape (T_i, n_classes)."""
        scores = self._probabilities(X, None, "decision_function")
        if isinstance(scores, list) or scores.shape[1] != 2:
            return scores
        return scores[:, 1] - scores[:, 0]

    def predict_proba(self, X):
        """Class probabilities, as the saved estimator's ``predict_proba``: float64 of shape
        (n_samples, n_classes), columns following ``classes_``, or for a tagger a list of arrays
        of shape (T_i, n_classes)."""
        return self._probabilities(X, softmax, "predict_proba")

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, as the saved estimator's ``predict_log_proba``."""
        return self._probabilities(X, log_softmax, "predict_log_proba")

    def _probabilities(self, X, fn, method):
        """The scores in float64 through ``fn`` (softmax, its logarithm, or None: the scores)."""
        self._require_classes(method)
        out = self._outputs(X)
        if fn is None:
            fn = lambda z, axis: z  # noqa: E731
        if self.estimator_class == "RNNTagger":
            return [fn(np.asarray(z, dtype=np.float64), axis=1) for z in out]
        return fn(np.asarray(out, dtype=np.float64), axis=1)


def load_predictor(path):
    """Load a saved classifier, regressor or tagger for prediction only.

    Parameters
    ----------
    path : str or path-like
        A file written by the estimator's ``save``.

    Returns
    -------
    Predictor

    Raises
    ------
    fastrnn.ModelFileError
        The file is not a valid model file, or holds a model a predictor cannot serve (a
        language model: load it with :func:`fastrnn.load`).
    """
    meta, arrays = read_model(path)
    name = meta.get("class")
    if name not in _KINDS:
        raise ModelFileError(f"it holds a {name!r}, but load_predictor reads only "
                             f"{', '.join(_KINDS)} files; load it with fastrnn.load(path)", path)
    return rebuild(Predictor, meta, arrays, path)
