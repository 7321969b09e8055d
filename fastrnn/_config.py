"""Compilation options and numeric policy, in one place.

Every Numba kernel takes its options from here so that the choice is made once:

* ``fastmath`` is a set of LLVM flags that allows re-association and contraction (FMA) but **not**
  ``nnan``/``ninf``: kernels must see NaN and Inf so training can detect divergence (SPEC §3).
* ``error_model="numpy"`` removes the zero-division checks that stop LLVM from vectorizing divisions.
* ``cache=True`` writes compiled kernels next to the sources so a second process starts fast.

Environment overrides
---------------------
FASTRNN_BACKEND
    ``auto`` (default), ``numba``, ``cython``, ``cuda`` or ``numpy``: forces the backend of every layer
    whose ``backend`` argument is ``"auto"``.
FASTRNN_NUMBA_CACHE
    ``0`` disables the on-disk cache of compiled kernels.
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
