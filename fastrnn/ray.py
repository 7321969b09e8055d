"""Batch prediction over a Ray Dataset.

Ray is optional: this module imports it on first use and asks for the ``ray`` extra
(``pip install 'fastrnn[ray]'``) when it is missing. See :doc:`/scaling_out`.
"""

import numpy as np

from ._scaleout import apply_method, check_method, require

__all__ = ["predict"]


def _ray():
    return require("ray", "ray", "fastrnn.ray")


def _as_model_input(column):
    """A batch column -> what the estimators take: a padded array stays an array, an object
    column (ragged sequences, strings) becomes a list."""
    if isinstance(column, np.ndarray) and column.dtype != object and column.ndim >= 2:
        return column
    return list(column)


#: models read from the object store by this worker process, by object id (the last few only)
_models = {}


def _model_from_store(ref):
    """The model behind ``ref``, read from the object store once per worker process."""
    key = ref.hex()
    if key not in _models:
        if len(_models) >= 4:
            _models.pop(next(iter(_models)))
        _models[key] = _ray().get(ref)
    return _models[key]


def _predict_batch(batch, model_ref, method, column, output_column):
    model = _model_from_store(model_ref)
    out = np.asarray(apply_method(model, method, _as_model_input(batch[column])))
    batch = dict(batch)
    batch[output_column] = out
    return batch


def predict(model, dataset, method="predict", column=None, output_column=None,
            batch_size=256):
    """Apply a fitted model to every row of a Ray Dataset through ``map_batches``, lazily.

    The model is put in Ray's object store once (``ray.put``); each worker process reads it from
    there once and keeps it for the following batches.

    Parameters
    ----------
    model : fitted estimator or Pipeline
        Anything with the requested method (an ``RNNClassifier``, a pipeline ending in one, ...).
    dataset : ray.data.Dataset
        One row per sequence. The input column holds a sequence per row: ragged arrays of shape
        ``(T_i, n_features)`` (``ray.data.from_items([{"x": seq}, ...])``), fixed-length ones
        (``ray.data.from_numpy(X)``, column ``"data"``) or raw strings for a pipeline.
    method : {"predict", "predict_proba", "predict_log_proba", "decision_function", \
"transform"}, default="predict"
        The method to call on each batch.
    column : str, default=None
        The input column; may be left out when the dataset has a single column.
    output_column : str, default=None
        The column the outputs go to (default: the method's name). The other columns are kept.
    batch_size : int, default=256
        Rows per call of the method.

    Returns
    -------
    ray.data.Dataset
        Not executed: the input's columns plus ``output_column``, one output per row (a label,
        a row of probabilities, ...).
    """
    ray = _ray()
    require("ray.data", "ray", "fastrnn.ray")
    check_method(model, method)
    if not isinstance(dataset, ray.data.Dataset):
        raise TypeError(f"dataset must be a ray.data.Dataset, got {type(dataset).__name__}; "
                        f"build one with ray.data.from_items(...) or ray.data.from_numpy(...).")
    if column is None:
        names = dataset.columns()
        if len(names) != 1:
            raise ValueError(f"the dataset has the columns {names}: pass column=... to say which "
                             f"holds the sequences.")
        column = names[0]
    if output_column is None:
        output_column = method
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    model_ref = ray.put(model)
    return dataset.map_batches(_predict_batch, batch_size=int(batch_size), batch_format="numpy",
                               fn_args=(model_ref, method, column, output_column))
