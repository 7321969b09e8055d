"""Compiled loops of the optimiser step and the gradient norm over one buffer of all parameters.

:class:`fastrnn.optim.Adam` and :class:`fastrnn.optim.AdamW` make a dozen numpy calls per step;
over the buffer of a network's parameters (see ``fastrnn._flat.FlatArrays``) one pass of
:func:`adam_step` does the same. Every element goes through the same operations in the same order
and dtype as in the numpy calls (a product, then a sum; no fused multiply-add, no reciprocal), so
the results are equal bit for bit: the kernels are compiled without ``fastmath``, and the scalars
arrive in the arrays' dtype, as numpy converts a Python float before a product with a float32
array.
"""

import numba
import numpy as np

from .._config import NUMBA_OPTS
from ..kernels import _jitcache  # noqa: F401  (stamps the on-disk cache with all kernel sources)

__all__ = ["adam_step", "sum_squares"]

_njit = numba.njit(**{**NUMBA_OPTS, "fastmath": False})


@_njit
def adam_step(p, g, m, v, decoupled, shrink, l2, decay, b1, one_b1, b2, one_b2, bc2_sqrt, eps,
              step_size):
    """One Adam step over 1-D arrays, in place.

    Parameters
    ----------
    p, g, m, v : ndarray of shape (n,)
        Parameters, gradients, first and second moments; one dtype. ``p``, ``m`` and ``v`` are
        updated, ``g`` is only read.
    decoupled : bool
        AdamW's decoupled decay: ``p *= shrink`` first.
    shrink : scalar
        ``1 - lr * weight_decay`` (read with ``decoupled``).
    l2 : bool
        Adam's L2 term: the gradient is ``p * decay + g``.
    decay : scalar
        ``weight_decay`` (read with ``l2``).
    b1, one_b1, b2, one_b2, bc2_sqrt, eps, step_size : scalars
        ``beta1``, ``1 - beta1``, ``beta2``, ``1 - beta2``, ``sqrt(1 - beta2 ** t)``, ``eps`` and
        ``lr / (1 - beta1 ** t)``, in the arrays' dtype.
    """
    # one branch-free loop per variant, so that the compiler can vectorise it
    if decoupled:
        for i in range(p.shape[0]):
            pi = p[i] * shrink
            gi = g[i]
            mi = m[i] * b1 + gi * one_b1
            vi = v[i] * b2 + (gi * gi) * one_b2
            m[i] = mi
            v[i] = vi
            p[i] = pi - (mi / (np.sqrt(vi) / bc2_sqrt + eps)) * step_size
    elif l2:
        for i in range(p.shape[0]):
            pi = p[i]
            gi = pi * decay + g[i]
            mi = m[i] * b1 + gi * one_b1
            vi = v[i] * b2 + (gi * gi) * one_b2
            m[i] = mi
            v[i] = vi
            p[i] = pi - (mi / (np.sqrt(vi) / bc2_sqrt + eps)) * step_size
    else:
        for i in range(p.shape[0]):
            gi = g[i]
            mi = m[i] * b1 + gi * one_b1
            vi = v[i] * b2 + (gi * gi) * one_b2
            m[i] = mi
            v[i] = vi
            p[i] = p[i] - (mi / (np.sqrt(vi) / bc2_sqrt + eps)) * step_size


@_njit
def sum_squares(x):
    """Sum of the squares of the 1-D array ``x``, accumulated in float64 (eight running sums)."""
    n = x.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n8 = n - n % 8
    for i in range(0, n8, 8):
        a0 = np.float64(x[i])
        a1 = np.float64(x[i + 1])
        a2 = np.float64(x[i + 2])
        a3 = np.float64(x[i + 3])
        a4 = np.float64(x[i + 4])
        a5 = np.float64(x[i + 5])
        a6 = np.float64(x[i + 6])
        a7 = np.float64(x[i + 7])
        s0 += a0 * a0
        s1 += a1 * a1
        s2 += a2 * a2
        s3 += a3 * a3
        s4 += a4 * a4
        s5 += a5 * a5
        s6 += a6 * a6
        s7 += a7 * a7
    for i in range(n8, n):
        a = np.float64(x[i])
        s0 += a * a
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
