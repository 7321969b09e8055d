"""Fitted attributes and constructor parameters in the safe model format (numbers, strings and
arrays; never pickle): the helpers behind the estimators' ``save`` and :func:`fastrnn.load`."""

import os
from numbers import Integral, Real

import numpy as np

from .._persist import read_model, rebuild, save_model
from ..nn.init import check_random_state
from ._saved import ESTIMATOR_FORMAT_VERSION, check_estimator_file, network_from_saved

__all__ = ["labels_to_saved", "labels_from_saved", "params_to_json", "params_from_json",
           "json_scalar", "SavingMixin"]


def labels_to_saved(labels, name):
    """Turn an array of class labels into ``(array, kind)`` storable without pickle.

    numpy arrays of numbers, booleans or strings are stored as they are (``kind`` None); object
    arrays whose elements are all ``str`` (or all ``int``, ``float``, ``bool``) are stored as such
    an array and ``kind`` records that they were objects, so :func:`labels_from_saved` restores the
    same dtype. Other labels (tuples, mixed types) raise ``ValueError``.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind in "biufUS":
        return labels, None
    values = labels.tolist()
    for kind, types in (("str", (str,)), ("bool", (bool, np.bool_)),
                        ("int", (int, np.integer)), ("float", (float, np.floating))):
        if all(isinstance(v, types) for v in values):
            if kind == "int" and any(isinstance(v, (bool, np.bool_)) for v in values):
                continue
            return np.asarray(values), kind
    example = next(v for v in values if not isinstance(v, (str, int, float, bool)))
    raise ValueError(
        f"{name} holds labels of type {type(example).__name__} (e.g. {example!r:.40}), which the "
        "safe model format cannot store (it holds numbers and strings, never pickled objects). "
        "Encode the labels as strings or integers before fitting, or pickle the estimator instead."
    )


def labels_from_saved(array, kind):
    """Inverse of :func:`labels_to_saved`."""
    if kind is None:
        return array
    out = np.empty(len(array), dtype=object)
    out[:] = array.tolist()
    return out


def json_scalar(v, what):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (Integral, np.integer)):
        return int(v)
    if isinstance(v, (Real, np.floating)):
        return float(v)
    raise ValueError(f"{what} = {v!r:.60} cannot be saved in the safe model format "
                     "(only numbers, strings, booleans and None). Pickle the estimator instead.")


def params_to_json(params):
    """Constructor parameters as a JSON-able dict for ``save``.

    A ``random_state`` that is a ``RandomState`` instance and ``callbacks`` are stored as ``None``
    (they only matter for re-fitting); a path-like ``checkpoint_path`` as a string; a
    ``class_weight`` dict is stored as a list of ``[label, weight]`` pairs. Any other value that
    is not a number, string, boolean or None raises ``ValueError``.
    """
    out = {}
    for k, v in params.items():
        if k == "random_state" and isinstance(v, np.random.RandomState):
            out[k] = None
        elif k == "callbacks":  # code run during fit, not part of the model
            out[k] = None
        elif k == "checkpoint_path" and v is not None:
            out[k] = os.fspath(v)
        elif k == "class_weight" and isinstance(v, dict):
            out[k] = {"__pairs__": [[json_scalar(a, f"class_weight key {a!r}"),
                                     json_scalar(b, "class_weight value")] for a, b in v.items()]}
        else:
            out[k] = json_scalar(v, f"parameter {k}")
    return out


def params_from_json(params):
    out = dict(params)
    cw = out.get("class_weight")
    if isinstance(cw, dict) and "__pairs__" in cw:
        out["class_weight"] = {a: b for a, b in cw["__pairs__"]}
    return out


class SavingMixin:
    """``save`` and ``load`` of the recurrent estimators in the safe model format.

    What is written: the constructor parameters, the network's configuration and arrays, and the
    fitted attributes named by the class attribute ``_saved_attributes`` (label attributes, named
    by ``_label_attributes()``, keep their dtype).
    """

    def _optimizer_names(self):
        return sorted(self._parameter_constraints["optimizer"][0].options)

    def save(self, path):
        """Save the fitted estimator to ``path`` in fastrnn's safe format.

        The file is a zip of ``.npy`` arrays and JSON metadata (no pickle), written atomically.
        Load it with :func:`fastrnn.load`. The optimiser state is not saved: ``partial_fit`` or
        ``warm_start`` after loading continue with a fresh optimiser.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        self
        """
        meta, arrays = self._to_saved()
        save_model(path, type(self).__name__, meta, arrays)
        return self

    def _to_saved(self):
        """``(meta, arrays)`` describing the fitted estimator (see :mod:`fastrnn._persist`)."""
        self._check_fitted()
        if not isinstance(self.optimizer, str):
            raise ValueError(
                "save() stores the optimizer by name, but optimizer is an instance "
                f"({self.optimizer!r:.60}). Use one of {self._optimizer_names()} with learning_rate, or "
                "pickle the estimator instead."
            )
        meta = {
            "estimator_format_version": ESTIMATOR_FORMAT_VERSION,
            "params": params_to_json(self.get_params(deep=False)),
            "network": self.network_.config,
            "fitted": {},
            "array_attributes": [],
            "label_kinds": {},
        }
        arrays = {f"network/{k}": v for k, v in self.network_.state_dict().items()}
        quantized = getattr(self.network_, "quantized_state", dict)  # networks that quantise
        arrays.update({f"network/{k}": v for k, v in quantized().items()})
        for name in self._saved_attributes:
            if not hasattr(self, name):
                continue
            value = getattr(self, name)
            if name in self._label_attributes():
                a, kind = labels_to_saved(value, name)
                arrays[f"attr/{name}"] = a
                meta["label_kinds"][name] = kind
                meta["array_attributes"].append(name)
            elif isinstance(value, np.ndarray):
                arrays[f"attr/{name}"] = value
                meta["array_attributes"].append(name)
            elif isinstance(value, list):
                arrays[f"attr/{name}"] = np.asarray(value, dtype=np.float64)
                meta["fitted"][name] = "__list__"
            else:
                meta["fitted"][name] = json_scalar(value, name)
        return meta, arrays

    def _label_attributes(self):
        """Names of fitted attributes that hold class labels (saved with their dtype)."""
        return ()

    @classmethod
    def _from_saved(cls, meta, arrays):
        """Rebuild a fitted estimator from what :meth:`_to_saved` returned (checked first: a bad
        file raises :class:`fastrnn.ModelFileError`)."""
        check_estimator_file(cls, meta, arrays)
        est = cls(**params_from_json(meta["params"]))
        for name, value in meta["fitted"].items():
            if value == "__list__":
                value = arrays[f"attr/{name}"].tolist()
            setattr(est, name, value)
        for name in meta["array_attributes"]:
            value = arrays[f"attr/{name}"]
            if name in meta.get("label_kinds", {}):
                value = labels_from_saved(value, meta["label_kinds"][name])
            setattr(est, name, value)
        est.network_ = network_from_saved(meta["network"], arrays, "network/", est.backend)
        est._trainer = None
        est._counter = None
        est._rng = check_random_state(est.random_state)
        return est

    @classmethod
    def load(cls, path):
        """Load an estimator of this class saved with :meth:`save` (see :func:`fastrnn.load`)."""
        meta, arrays = read_model(path)
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{path!r} holds a {meta.get('class')}, not a {cls.__name__}; use "
                             "fastrnn.load(path) to load any model.")
        return rebuild(cls, meta, arrays, path)
