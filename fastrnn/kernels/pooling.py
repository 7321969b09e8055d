"""Numba kernels of max pooling over each sequence's real steps, used in training
(:func:`fastrnn.nn.layers.pool` with ``compiled=True``, :func:`fastrnn.nn.layers.pool_backward`).

numpy does it with a masked copy of the outputs, an ``argmax`` along the middle axis (a strided
reduction) and two index gathers; here one pass reads each real step once. The results are
numpy's exactly: the first step of the largest value wins a tie, and a NaN, like numpy's
``argmax``, wins over everything (the first NaN).
"""

from ._jit import njit


@njit
def max_pool(Y, lengths, P, arg):
    """``P[b, f] = Y[b, arg[b, f], f]``, ``arg[b, f]`` the step of the largest value of feature
    ``f`` over the first ``lengths[b]`` steps (step 0 for a length of 0).

    Parameters
    ----------
    Y : ndarray of shape (B, T, F)
    lengths : ndarray of shape (B,), int64
        In ``[0, T]``.
    P : ndarray of shape (B, F), dtype of ``Y``
        Written.
    arg : ndarray of shape (B, F), intp
        Written.
    """
    B, _, F = Y.shape
    for b in range(B):
        for f in range(F):
            P[b, f] = Y[b, 0, f]
            arg[b, f] = 0
        for t in range(1, lengths[b]):
            for f in range(F):
                v, best = Y[b, t, f], P[b, f]
                if v > best or (v != v and best == best):
                    P[b, f] = v
                    arg[b, f] = t


@njit
def max_pool_backward(dP, arg, dY):
    """``dY[b, arg[b, f], f] = dP[b, f]``, zero elsewhere.

    Parameters
    ----------
    dP : ndarray of shape (B, F)
    arg : ndarray of shape (B, F), intp
        From :func:`max_pool`.
    dY : ndarray of shape (B, T, F), dtype of ``dP``
        Written.
    """
    B, T, F = dY.shape
    for b in range(B):
        for t in range(T):
            for f in range(F):
                dY[b, t, f] = 0
        for f in range(F):
            dY[b, arg[b, f], f] = dP[b, f]
