"""The matrix products of the fast driver in bf16 (``precision="bf16"`` of the RNN, LSTM and GRU
layers).

Mixed precision: the operands of every matrix product of training are rounded to bfloat16 (to
nearest, ties to even) and their products summed in float32, by the C product of
:mod:`fastrnn._cy._bf16` (AVX-512 BF16's ``vdpbf16ps`` where the CPU has it, exact portable C
elsewhere). Everything else stays float32: the cell, the states, the gradients and the optimiser.

* The whole-sequence products of the backward are here: the weight gradients
  ``dW_ih = dg^T X``, ``dW_hh = dg^T h_{t-1}`` and the input gradient ``dX = dg W_ih``
  (:func:`weight_and_input_grads`). The arrays are those of :mod:`fastrnn.kernels._fastdriver`
  (1-D views, row-offset tables with ``-1`` for padded steps); the rows of each product are split
  over ``fastrnn._config.num_threads()`` threads (the C product releases the GIL).
* The products of the sweeps run inside the compiled sweeps, as in float32: the input projections
  ``X W_ih^T`` of a block of steps ahead, ``h_{t-1} W_hh^T`` at each step of the forward and
  ``dg_t W_hh`` at each step of the backward. The driver packs ``W_ih`` and ``W_hh`` in bf16 once
  per call (:func:`pack`) and the sweeps call the C product on the rows of their part of the batch
  (:func:`fastrnn.kernels._bf16step.step_gemm`).
"""

import numpy as np

from .. import _workspace as ws
from .._config import num_threads
from .._parallel import run_parts
from ._bf16step import register

__all__ = ["KINDS", "kernels", "pack", "weight_and_input_grads"]

#: the cells (``CellSpec.kind``) whose layers take ``precision="bf16"``
KINDS = ("lstm", "rnn", "gru", "gru_v1")

_MIN_ROWS_PER_THREAD = 64


def kernels():
    """The compiled bf16 product (:mod:`fastrnn._cy._bf16`), its step product registered for the
    sweeps; ``RuntimeError`` saying how to build it when it is missing."""
    try:
        from .._cy import _bf16
    except ImportError as exc:
        raise RuntimeError(
            "precision='bf16' needs the compiled extension fastrnn._cy._bf16, which does not load "
            f"here ({exc}). Build it with `pip install -e .` or `python setup.py build_ext "
            "--inplace` (Cython>=3 and a C compiler), or use precision='float32'.") from exc
    register(_bf16)  # the sweeps' step product calls into it
    return _bf16


def _gemm(A, a_rows, a_cs, K, Bp, N, C, c_rows, accumulate):
    """``C (+)= A B`` (:func:`fastrnn._cy._bf16.gemm`), the rows split over the threads."""
    bk = kernels()
    M = a_rows.shape[0]
    n = max(1, min(num_threads(), M // _MIN_ROWS_PER_THREAD))
    if n == 1:
        bk.gemm(A, a_rows, a_cs, K, Bp, N, C, c_rows, accumulate)
        return
    bounds = np.linspace(0, M, n + 1).astype(np.int64)
    run_parts(bk.gemm, [(A, a_rows[lo:hi], a_cs, K, Bp, N, C, c_rows[lo:hi], accumulate)
                        for lo, hi in zip(bounds[:-1], bounds[1:])])


def pack(b):
    """``b`` (K x N, any layout) rounded to bf16 and packed as the right operand of a product
    (:func:`fastrnn._cy._bf16.pack_b`): the recurrent weights of the sweeps' step products
    (:func:`fastrnn.kernels._bf16step.step_gemm`).

    Returns
    -------
    ndarray of uint16, 1-D
    """
    K, N = b.shape
    if b.dtype == np.float32 and b.T.flags.c_contiguous and not b.flags.c_contiguous:
        # the transpose of a row-major matrix (W^T): packed down its rows, without the transposed
        # copy (a 2048 x 512 weight: 1.2 ms against 4.4 ms for the copy and the packing)
        return kernels().pack_b(b.T.reshape(-1), np.arange(K, dtype=np.int64), K, N)
    b = np.ascontiguousarray(b, dtype=np.float32)
    return kernels().pack_b(b.reshape(-1), np.arange(K, dtype=np.int64) * N, 1, N)


def weight_and_input_grads(dg, x, xrow, F, hin, H, w_ih, gw_ih, gw_hh, dx, accumulate,
                           hh_parts=None):
    """``dW_ih = dg^T X``, ``dW_hh = dg^T hin`` (overwritten) and ``dX (+)= dg W_ih``.

    Parameters
    ----------
    dg : ndarray of shape (T, B, G), float32
        Pre-activation gradients (zero at padded steps).
    x : ndarray, 1-D float32
        The layer input, rows at the offsets ``xrow`` (``-1``: a padded step, read as zeros and
        not written in ``dx``).
    F : int
        Input features; with 0 (an input projected through a token table) only ``dW_hh`` is
        computed.
    hin : ndarray, 1-D float32
        The recurrent products' inputs ``h_{t-1}`` (T*B rows of ``H``).
    w_ih : ndarray of shape (G, F), float32
    gw_ih, gw_hh : ndarray of shapes (G, F) and (G, H), float32, C-contiguous
        Outputs.
    dx : ndarray, 1-D float32
        The input gradient, in the layout of ``xrow``.
    accumulate : bool
        Add to ``dx`` (the reverse direction of a bidirectional layer) instead of writing it.
    hh_parts : list of tuple, optional
        ``dW_hh`` in blocks of rows, for the GRU: ``(g, g0, rows, src, w_row0)`` gives
        ``gw_hh[w_row0 : w_row0 + rows] = g[:, g0 : g0 + rows]^T src`` with ``g`` of shape
        (T, B, W) and ``src`` 1-D (T*B rows of ``H``). Default: ``dg^T hin``, all rows.
    """
    T, B, G = dg.shape
    K = T * B
    bk = kernels()
    rows = np.arange(max(G, K), dtype=np.int64)
    xp = bk.pack_b(x, xrow, 1, F) if F > 0 else None  # F == 0: an input with no features to read
    if hh_parts is None and F > 0 and F % bk.NR == 0:
        # one product for both: with whole panels of X, the two packed matrices side by side are
        # [X | hin] packed (see fastrnn._cy._bf16.NR), and dg^T is packed once
        hp = bk.pack_b(hin, rows[:K] * H, 1, H)
        both = ws.aligned_empty(xp.size + hp.size, np.uint16)
        both[:xp.size], both[xp.size:] = xp, hp
        out = ws.aligned_empty((G, F + H), np.float32)
        _gemm(dg.reshape(-1), rows[:G], G, K, both, F + H, out.reshape(-1), rows[:G] * (F + H),
              False)
        gw_ih[...] = out[:, :F]
        gw_hh[...] = out[:, F:]
        hh_parts = []
    elif F > 0:
        _gemm(dg.reshape(-1), rows[:G], G, K, xp, F, gw_ih.reshape(-1), rows[:G] * F, False)
    for g, g0, M, src, w_row0 in [(dg, 0, G, hin, 0)] if hh_parts is None else hh_parts:
        sp = bk.pack_b(src, rows[:K] * H, 1, H)
        # row i of g^T: the column g0 + i of g, its steps g.shape[2] apart
        _gemm(g.reshape(-1), rows[g0:g0 + M], g.shape[2], K, sp, H, gw_hh.reshape(-1),
              (rows[w_row0:w_row0 + M]) * H, False)
    if F == 0:
        return
    w = np.ascontiguousarray(w_ih, dtype=np.float32).reshape(-1)
    wp = bk.pack_b(w, rows[:G] * F, 1, F)
    _gemm(dg.reshape(-1), rows[:K] * G, 1, G, wp, F, dx, xrow, accumulate)
