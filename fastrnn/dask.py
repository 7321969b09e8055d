"""Batch prediction and incremental training over Dask collections.

Dask is optional: this module imports it on first use and asks for the ``dask`` extra
(``pip install 'fastrnn[dask]'``) when it is missing. Nothing here needs a cluster: the functions
build task graphs that run on whatever scheduler is active (a ``distributed.Client``, the threaded
default, ...). See :doc:`/scaling_out`.
"""

import numpy as np

from ._scaleout import apply_method, check_method, require

__all__ = ["predict", "fit_incremental", "warm_up"]


def _dask():
    return require("dask", "dask", "fastrnn.dask")


def _predict_list(partition, model, method):
    """A bag partition (an iterable of sequences) -> one output per sequence, as a list."""
    items = list(partition)
    if not items:
        return []
    return list(apply_method(model, method, items))


def _predict_block(block, model, method):
    """A block of a dask array (whole sequences along axis 0) -> the method's output rows."""
    return np.asarray(apply_method(model, method, block))


def predict(model, data, method="predict"):
    """Apply a fitted model to every sequence of a Dask collection, lazily.

    The model enters the task graph once (as one ``dask.delayed`` object): a distributed
    scheduler sends it to each worker once, whatever the number of partitions.

    Parameters
    ----------
    model : fitted estimator or Pipeline
        Anything with the requested method: an ``RNNClassifier``, ``RNNRegressor``,
        ``RNNTagger``, or a pipeline ending in one (raw strings then work as input).
    data : dask.bag.Bag or dask.array.Array
        A bag whose elements are sequences (arrays of shape ``(T_i, n_features)`` or ``(T_i,)``
        of token ids, with ragged lengths, or raw strings for a pipeline), or an array of
        fixed-length sequences of shape ``(n_samples, T, n_features)`` or ``(n_samples, T)``.
        An array is rechunked so that each block holds whole sequences (only axis 0 is split).
    method : {"predict", "predict_proba", "predict_log_proba", "decision_function", \
"transform"}, default="predict"
        The method to call on each partition.

    Returns
    -------
    dask.bag.Bag or dask.array.Array
        Not computed. For a bag, a bag with one element per sequence (a label, a row of
        probabilities, ...). For an array, an array whose axis 0 has the input's chunks: shape
        ``(n_samples,)`` for ``predict``, ``(n_samples, n_classes)`` for ``predict_proba``.
    """
    dask = _dask()
    check_method(model, method)
    model_d = dask.delayed(model, pure=False, traverse=False)
    import dask.array as da
    import dask.bag as db

    if isinstance(data, db.Bag):
        return data.map_partitions(_predict_list, model=model_d, method=method)
    if isinstance(data, da.Array):
        if data.ndim not in (2, 3):
            raise ValueError(
                f"a dask array of sequences must have shape (n_samples, T, n_features) or "
                f"(n_samples, T), got {data.ndim} dimension(s) (shape {data.shape}). Put ragged "
                f"sequences in a dask.bag instead."
            )
        if data.dtype.kind not in "biuf":
            raise ValueError(
                f"a dask array of sequences must hold numbers (features or token ids), got dtype "
                f"{data.dtype}. Put strings or other objects in a dask.bag instead."
            )
        data = data.rechunk({i: -1 for i in range(1, data.ndim)})
        # the output's shape past axis 0 and its dtype, from one made-up sequence run locally
        sample = np.ones((1,) + tuple(int(s) for s in data.shape[1:]), dtype=data.dtype)
        meta_out = np.asarray(apply_method(model, method, sample))
        chunks = (data.chunks[0],) + tuple((s,) for s in meta_out.shape[1:])
        drop = list(range(1, data.ndim)) if meta_out.ndim == 1 else list(range(2, data.ndim))
        return da.map_blocks(_predict_block, data, model_d, method, dtype=meta_out.dtype,
                             chunks=chunks, drop_axis=drop,
                             meta=np.empty((0,) * meta_out.ndim, dtype=meta_out.dtype))
    raise TypeError(
        f"data must be a dask.bag.Bag (ragged sequences) or a dask.array.Array (fixed-length "
        f"sequences), got {type(data).__name__}. Wrap a list of sequences with "
        f"dask.bag.from_sequence(...)."
    )


def _partial_fit(model, X_part, y_part, kwargs):
    X_items = list(X_part)
    y_items = list(y_part)
    if len(X_items) != len(y_items):
        raise ValueError(
            f"a partition of X_bag holds {len(X_items)} sequence(s) but the matching partition "
            f"of y_bag holds {len(y_items)} target(s); build both bags with the same partitions "
            f"(the same npartitions over data of the same length)."
        )
    if not X_items:
        return model
    # a list works for every estimator: labels, numbers, or a tagger's ragged tag sequences
    return model.partial_fit(X_items, y_items, **kwargs)


def fit_incremental(model, X_bag, y_bag, epochs=1, classes=None, compute=True):
    """Train with ``partial_fit``, one partition at a time, on the workers.

    Every epoch visits the partitions in order; the model travels from one task to the next
    (the data stay where they are), so only one worker trains at a time -- this spreads the
    reading of the data over the cluster, not the training.

    Parameters
    ----------
    model : estimator with ``partial_fit``
        ``RNNClassifier``, ``RNNRegressor`` or ``RNNTagger`` (fitted or not).
    X_bag : dask.bag.Bag
        The sequences.
    y_bag : dask.bag.Bag
        Their targets, with the same number of partitions and the same lengths per partition.
    epochs : int, default=1
        Passes over all the partitions.
    classes : array-like, default=None
        Every label of the problem, for a classifier or tagger; given to the first
        ``partial_fit`` call.
    compute : bool, default=True
        Whether to run the graph now. ``False`` returns it as a ``dask.delayed`` object that
        computes to the trained model.

    Returns
    -------
    model or dask.delayed.Delayed
        With ``compute=True``, ``model`` itself, holding the trained state (as after the same
        ``partial_fit`` calls made by hand).
    """
    dask = _dask()
    import dask.bag as db

    for name, bag in (("X_bag", X_bag), ("y_bag", y_bag)):
        if not isinstance(bag, db.Bag):
            raise TypeError(f"{name} must be a dask.bag.Bag, got {type(bag).__name__}; build it "
                            f"with dask.bag.from_sequence(...).")
    if X_bag.npartitions != y_bag.npartitions:
        raise ValueError(
            f"X_bag has {X_bag.npartitions} partitions but y_bag has {y_bag.npartitions}; "
            f"build both with the same npartitions."
        )
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if not callable(getattr(model, "partial_fit", None)):
        raise ValueError(f"{type(model).__name__} has no partial_fit method.")

    X_parts = X_bag.to_delayed()
    y_parts = y_bag.to_delayed()
    state = dask.delayed(model, pure=False, traverse=False)
    first = True
    for _ in range(int(epochs)):
        for X_part, y_part in zip(X_parts, y_parts):
            kwargs = {"classes": classes} if (first and classes is not None) else {}
            state = dask.delayed(_partial_fit, pure=False)(state, X_part, y_part, kwargs)
            first = False
    if not compute:
        return state
    trained = state.compute()
    if trained is not model:  # it came back from another process: take over its state
        model.__dict__.update(trained.__dict__)
    return model


def warm_up(client, cells=("lstm", "gru"), dtype="float32", backend="auto"):
    """Load the compiled kernels in every worker of a Dask cluster before tasks need them.

    Runs :func:`fastrnn.warm_up` once on each worker that is connected now (workers that join
    later pay for it in their first task, as without this call).

    Parameters
    ----------
    client : distributed.Client
        The client of the cluster.
    cells, dtype, backend
        As for :func:`fastrnn.warm_up`.

    Returns
    -------
    dict
        Worker address -> the seconds :func:`fastrnn.warm_up` spent there, per cell.
    """
    from ._warmup import warm_up as _warm_up

    if not hasattr(client, "run"):
        raise TypeError("client must be a distributed.Client (it runs the warm-up on every "
                        f"worker), got {type(client).__name__}.")
    return client.run(_warm_up, cells=cells, dtype=dtype, backend=backend)
