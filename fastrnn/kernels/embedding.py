"""Numba kernels of the token embedding: the gather-sum of the forward and the scatter-add of the
backward. The numpy reference in :mod:`fastrnn.kernels.numpy_ref` has the same signatures.

Conventions:

* ``ids`` of shape ``(R, K)``, integers (``np.intp``) in ``[0, V)``, C-contiguous: the ``K`` ids of
  each of the ``R`` steps (``K = 1`` for one id per step). The caller checks the range; the
  kernels do not.
* ``weight`` and its gradient ``g`` are of shape ``(V, E)``; the step vectors ``out`` and their
  gradients ``dY`` of shape ``(R, E)``, all C-contiguous and of one dtype.
* Outputs are preallocated by the caller and overwritten.

Both kernels run in one thread: they do one add per element moved and are bound by memory, and
the backward with its columns split over two threads (so that no element is written by both)
measured slower than on one thread on a two-core machine. Every element of an output is summed in
a fixed order, that of the steps and of the ids within a step, so a call gives the same bits every
time.
"""

from ._jit import njit


@njit
def embedding_forward(weight, ids, out):
    """Sum the vectors of every step's ids: ``out[r] = sum_k weight[ids[r, k]]``.

    Parameters
    ----------
    weight : ndarray of shape (V, E)
    ids : ndarray of shape (R, K), intp
        Ids in ``[0, V)`` (padding ids included: their row of ``weight`` is added like any other).
    out : ndarray of shape (R, E)
        Output, overwritten.
    """
    R, K = ids.shape
    E = weight.shape[1]
    for r in range(R):
        for e in range(E):
            out[r, e] = 0.0
        for k in range(K):
            i = ids[r, k]
            for e in range(E):
                out[r, e] += weight[i, e]


@njit
def embedding_backward(ids, dY, padding_idx, g):
    """Scatter-add the step gradients into the rows of their ids: ``g[v]`` is the sum of the rows
    ``dY[r]`` over every ``(r, k)`` with ``ids[r, k] == v`` (an id that occurs twice in a step gets
    the step's gradient twice), and zero for ids that occur nowhere.

    Parameters
    ----------
    ids : ndarray of shape (R, K), intp
        Ids in ``[0, V)``.
    dY : ndarray of shape (R, E)
        Gradient of the loss with respect to the step vectors.
    padding_idx : int
        Id skipped (its row of ``g`` stays zero); ``-1`` for none.
    g : ndarray of shape (V, E)
        Output: gradient of the loss with respect to the weight, overwritten.
    """
    V, E = g.shape
    for v in range(V):
        for e in range(E):
            g[v, e] = 0.0
    R, K = ids.shape
    for r in range(R):
        for k in range(K):
            i = ids[r, k]
            if i != padding_idx:
                for e in range(E):
                    g[i, e] += dY[r, e]
