"""Compilation options and numeric policy, in one place.

Every Numba kernel takes its options from here so that the choice is made once:

* ``fastmath`` is a set of LLVM flags that allows re-association and contraction (FMA) but **not**
  ``nnan``/``ninf``: kernels must see NaN and Inf so training can detect divergence.
* ``error_model="numpy"`` removes the zero-division checks that stop LLVM from vectorizing divisions.
* ``cache=True`` writes compiled kernels next to the sources so a second process starts fast; their
  stamp holds the hash of every kernel source (``fastrnn.kernels._jitcache``), so a change of a
  function that a kernel calls from another file compiles the kernel again.

Environment overrides
---------------------
FASTRNN_BACKEND
    ``auto`` (default), ``numba``, ``cython``, ``cuda`` or ``numpy``: forces the backend of every layer
    whose ``backend`` argument is ``"auto"``.
FASTRNN_NUMBA_CACHE
    ``0`` disables the on-disk cache of compiled kernels.
FASTRNN_NUM_THREADS
    Threads of the fast float32 kernels of the Numba backend (default: ``NUMBA_NUM_THREADS``,
    which defaults to the number of CPUs, or ``OMP_NUM_THREADS`` where that is set and smaller).
    Each thread runs single-threaded matrix products, so BLAS threads are not involved;
    :func:`set_num_threads` changes it at run time.
FASTRNN_FAST_PATH
    ``0`` switches the fast float32 kernels off: float32 layers on the Numba backend then run the
    general kernels shared with the other backends (for comparisons and debugging).
"""

import os

import numpy as np

FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

NUMBA_OPTS = dict(
    cache=os.environ.get("FASTRNN_NUMBA_CACHE", "1") != "0",
    nogil=True,
    error_model="numpy",
    fastmath=FASTMATH,
)

#: dtypes a layer can compute in; everything else is rejected with a clear message.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype):
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ``ValueError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}.") from exc
    if dt not in SUPPORTED_DTYPES:
        raise ValueError(
            f"dtype must be float32 or float64, got {dt}. Pass dtype=np.float32 (fast) or "
            "dtype=np.float64 (exact gradients)."
        )
    return dt


def env_backend():
    """The backend forced by ``FASTRNN_BACKEND``, or ``None``."""
    value = os.environ.get("FASTRNN_BACKEND", "").strip().lower()
    return value or None


_num_threads = None


def num_threads():
    """Number of threads the fast float32 kernels use.

    Returns
    -------
    int
        At least 1: the value given to :func:`set_num_threads`, else ``$FASTRNN_NUM_THREADS``, else
        Numba's ``NUMBA_NUM_THREADS``, lowered to ``$OMP_NUM_THREADS`` where that is set.

    Notes
    -----
    ``OMP_NUM_THREADS`` is how process pools tell a worker how many cores it was given: joblib's
    ``inner_max_num_threads``, Dask's nanny (1 per worker process) and Ray (the task's
    ``num_cpus``) all set it, and BLAS libraries and PyTorch follow it. Following it too keeps
    the workers of such a pool from running more threads than there are cores. A list such as
    ``"4,2"`` (nested OpenMP levels) counts by its first entry; a value that is not a positive
    integer is ignored.
    """
    if _num_threads is not None:
        return _num_threads
    value = os.environ.get("FASTRNN_NUM_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(
                f"FASTRNN_NUM_THREADS must be a positive integer, got {value!r}."
            ) from None
    import numba

    threads = max(1, int(numba.config.NUMBA_NUM_THREADS))
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp.isdigit() and int(omp) > 0:
        threads = min(threads, int(omp))
    return threads


def set_num_threads(n):
    """Set the number of threads of the fast float32 kernels.

    Parameters
    ----------
    n : int or None
        A positive number of threads; ``None`` restores the default (see :func:`num_threads`).
    """
    global _num_threads
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1):
        raise ValueError(f"the number of threads must be a positive integer or None, got {n!r}.")
    _num_threads = None if n is None else int(n)


#: a batch is split over threads only if every thread gets at least this many sequences
MIN_ROWS_PER_THREAD = 8


def min_rows_per_thread():
    """Smallest number of sequences per thread worth a thread of its own."""
    return MIN_ROWS_PER_THREAD


def fast_path_enabled():
    """Whether float32 layers on the Numba backend use the fast kernels (``$FASTRNN_FAST_PATH``)."""
    return os.environ.get("FASTRNN_FAST_PATH", "1").strip() != "0"
