"""The inverted-dropout mask of :class:`fastrnn.nn.SequenceNetwork`, applied in one compiled pass.

The mask keeps a value where a uniform float32 draw is below ``keep = 1 - p`` and scales the kept
values by ``1 / keep``. Written with numpy it is four calls and three temporary arrays (compare,
convert, scale, multiply); :func:`apply_mask` does it in one pass with the same values: the draw is
compared with ``keep`` rounded to float32 (as numpy compares a float32 array with a Python float),
the mask holds ``1 / keep`` in the array's dtype or 0, and the output is the product of the two.
"""

import numba
import numpy as np

from .._config import NUMBA_OPTS
from ..kernels import _jitcache  # noqa: F401  (stamps the on-disk cache with all kernel sources)

__all__ = ["dropout"]

_njit = numba.njit(**{**NUMBA_OPTS, "fastmath": False})


@_njit
def apply_mask(u, keep, scale, x, mask, out):
    """``mask = where(u < keep, scale, 0)`` and ``out = x * mask`` over 1-D arrays.

    Parameters
    ----------
    u : ndarray of shape (n,), float32
        Uniform draws in [0, 1).
    keep : float32
    scale : scalar in the dtype of ``x``
    x : ndarray of shape (n,)
    mask, out : ndarray of shape (n,), dtype of ``x``
        Written.
    """
    zero = scale - scale
    for i in range(x.shape[0]):
        m = scale if u[i] < keep else zero
        mask[i] = m
        out[i] = x[i] * m


def dropout(X, p, seed, dtype):
    """Inverted dropout of ``X`` with probability ``p`` and a mask drawn from PCG64(``seed``).

    Parameters
    ----------
    X : ndarray
    p : float
        Drop probability, in (0, 1).
    seed : int
    dtype : numpy dtype
        Of the mask (and of ``X``, for the compiled pass; another dtype of ``X`` goes through
        numpy).

    Returns
    -------
    out, mask : ndarray of the shape of ``X``
        ``X * mask`` and the mask (``1 / (1 - p)`` where kept, else 0).
    """
    keep = 1.0 - p
    u = np.random.Generator(np.random.PCG64(seed)).random(X.shape, dtype=np.float32)
    if np.asarray(X).dtype != dtype:  # another dtype: the product takes numpy's promotion
        mask = (u < keep).astype(dtype)
        mask *= dtype.type(1.0 / keep)
        return X * mask, mask
    x = np.ascontiguousarray(X)
    mask = np.empty(X.shape, dtype)
    out = np.empty(X.shape, dtype)
    apply_mask(u.reshape(-1), np.float32(keep), dtype.type(1.0 / keep), x.reshape(-1),
               mask.reshape(-1), out.reshape(-1))
    return out, mask
