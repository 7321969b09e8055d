"""Fitted attributes and constructor parameters in the safe model format (numbers, strings and
arrays; never pickle): the helpers behind the estimators' ``save`` and :func:`fastrnn.load`."""

import os
from numbers import Integral, Real

import numpy as np

__all__ = ["labels_to_saved", "labels_from_saved", "params_to_json", "params_from_json",
           "json_scalar"]


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
