"""Compile, or load from Numba's on-disk cache, the kernels of a fit and a prediction ahead of use."""

import time

__all__ = ["warm_up"]

#: 32 sequences per batch: enough rows for the float32 kernels to split a batch over two threads,
#: so the threaded variants are loaded too
_N_SEQUENCES = 32


def warm_up(cells=("lstm", "gru"), dtype="float32", backend="auto"):
    """Load the compiled kernels that fitting and predicting with each cell use, and return.

    The first fit in a fresh process pays for loading the Numba kernels from the on-disk cache
    (or for compiling them when the cache is empty or disabled); later fits pay nothing. Calling
    this once per worker process, before a search or a batch of predictions is spread over the
    workers, moves that cost out of the first task (for Dask: :func:`fastrnn.dask.warm_up`).

    Each cell is fitted for one epoch as a tiny :class:`~fastrnn.estimators.RNNClassifier` on random data,
    then asked for probabilities, so the training kernels (forward, backward, loss, optimiser) and
    the inference kernels are all touched; nothing is kept.

    Parameters
    ----------
    cells : str or sequence of str, default=("lstm", "gru")
        The ``cell`` values to prepare (any value :class:`~fastrnn.estimators.RNNClassifier` accepts).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the models that will run.
    backend : str, default="auto"
        Kernel backend of the models that will run.

    Returns
    -------
    dict of str to float
        Wall seconds spent on each cell.
    """
    import numpy as np

    from .estimators import RNNClassifier

    if isinstance(cells, str):
        cells = (cells,)
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((int(n), 2)) for n in rng.integers(2, 6, _N_SEQUENCES)]
    y = np.arange(_N_SEQUENCES) % 2
    spent = {}
    for cell in cells:
        t0 = time.perf_counter()
        model = RNNClassifier(cell=cell, hidden_size=4, max_iter=1, batch_size=_N_SEQUENCES,
                              dtype=dtype, backend=backend, random_state=0)
        model.fit(X, y).predict_proba(X)
        spent[cell] = time.perf_counter() - t0
    return spent
