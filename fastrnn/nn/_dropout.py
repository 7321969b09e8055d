"""The inverted-dropout mask of :class:`fastrnn.nn.SequenceNetwork` (and of
:class:`fastrnn.nn.Seq2SeqNetwork`), drawn and applied in compiled code.

The mask keeps a value where a uniform float32 draw of ``np.random.Generator(PCG64(seed))`` is
below ``keep = 1 - p`` and scales the kept values by ``1 / keep``. Written with numpy it is the
draws, then four calls and three temporary arrays (compare, convert, scale, multiply). Here the
same generator is seeded and stepped in compiled code (:mod:`fastrnn.kernels._pcg64`: a third
of the cost of numpy's float32 draws, and none of the cost of creating numpy's generator per
call) and :func:`apply_bits` writes the mask and the product in one pass, with the same values:
each draw is compared with ``keep`` rounded to float32 (as numpy compares a float32 array with a
Python float), the mask holds ``1 / keep`` in the array's dtype or 0, and the output is the
product of the two. (Numba runs on little-endian machines only, where the 32-bit halves of a
64-bit draw come low half first, as numpy takes them.)
"""

import numba
import numpy as np

from .._config import NUMBA_OPTS
from ..kernels import _jitcache  # noqa: F401  (stamps the on-disk cache with all kernel sources)
from ..kernels._pcg64 import draw_raw, seeded_state, split_state

__all__ = ["dropout"]

_njit = numba.njit(**{**NUMBA_OPTS, "fastmath": False})


@_njit
def apply_bits(bits, keep, scale, x, mask, out):
    """``mask = where(u < keep, scale, 0)`` and ``out = x * mask`` over 1-D arrays, ``u`` the
    float32 values ``(bits >> 8) * 2**-24`` of numpy's ``Generator.random(dtype=float32)``.

    Parameters
    ----------
    bits : ndarray of shape (n,), uint32
        Random bits (the 32-bit halves of PCG64 draws, low half first).
    keep : float32
    scale : scalar in the dtype of ``x``
    x : ndarray of shape (n,)
    mask, out : ndarray of shape (n,), dtype of ``x``
        Written.
    """
    unit = np.float32(1.0 / 16777216.0)
    for i in range(x.shape[0]):
        m = scale * (np.float32(bits[i] >> np.uint32(8)) * unit < keep)  # scale * 1 or scale * 0
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
    seed = int(seed)  # PCG64(seed)'s state: computed here for a 32-bit seed, else by numpy
    state = seeded_state(seed) if 0 <= seed < 2**32 else split_state(np.random.PCG64(seed))
    x = np.ascontiguousarray(X)
    raw = np.empty((x.size + 1) // 2, np.uint64)
    draw_raw(state, raw)  # viewed as uint32 below: little-endian, the low half first
    mask, out = np.empty(x.shape, dtype), np.empty(x.shape, dtype)
    other = x.dtype != dtype  # another dtype: the product takes numpy's promotion
    apply_bits(raw.view(np.uint32)[:x.size], np.float32(keep), dtype.type(1.0 / keep),
               (np.ones(x.size, dtype) if other else x.reshape(-1)), mask.reshape(-1),
               out.reshape(-1))
    return (x * mask if other else out), mask
