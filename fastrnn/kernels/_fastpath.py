"""Building blocks shared by the fast (float32, Numba-only) recurrent kernels.

Conventions of the fast path (the eight shared kernels keep theirs, see :mod:`fastrnn.kernels.rnn`):

* The batch is sorted by length, longest first, and processed time-major: step ``t`` updates rows
  ``0 .. batch_sizes[t]-1``. Internal arrays (gates, states, their gradients) are time-major and
  C-contiguous, e.g. ``hs`` of shape ``(T+1, B, H)``.
* The layer's own input and output arrays stay in the caller's layout (batch-first ``(B, T, F)``,
  any order of sequences): a table ``xrow`` of shape ``(T, B)`` (int64) gives the flat offset of
  the row read at step ``t`` by sorted sequence ``b``, and ``-1`` for a padded step. One table
  serves the forward and the reverse direction, plain and gathered layouts, with no transposed
  copy.
* The work is split into parts that write disjoint outputs: contiguous ranges ``[r0, r1)`` of sorted
  rows for the recurrent sweeps and the input products, ranges of rows of the weight gradients
  (which splits the reads of the large gradient array too).
  The layer runs the parts on threads (:func:`fastrnn._parallel.run_parts`); every matrix
  product inside a part is single-threaded (:mod:`fastrnn.kernels._gemm`).
"""

from collections import namedtuple

import numpy as np

from ._bf16step import step_gemm
from ._gemm import MR, gemm, gemm_pack, gemm_pack2, long_kc
from ._jit import njit, njit_inline


#: bytes of input projections computed ahead of the recurrent sweep (kept in the L2 cache)
PROJECT_AHEAD_BYTES = 256 * 1024


@njit
def active_rows(batch_sizes, B, r0, r1, t0, t1):
    """Flat indices ``t*B + b`` of the rows ``r0 <= b < min(r1, batch_sizes[t])`` of the steps
    ``t0 <= t < t1``, in step order."""
    count = 0
    for t in range(t0, t1):
        count += max(0, min(r1, batch_sizes[t]) - r0)
    out = np.empty(count, np.int64)
    k = 0
    for t in range(t0, t1):
        for b in range(r0, min(r1, batch_sizes[t])):
            out[k] = t * B + b
            k += 1
    return out


@njit
def project_ahead(rows, G):
    """Steps whose input projections :func:`project` computes at once inside a sweep: enough to
    use the packed weights well, few enough for the results to stay in the L2 cache."""
    return max(1, PROJECT_AHEAD_BYTES // (4 * max(1, rows) * G))


@njit
def project_tables(xrow, batch_sizes, B, r0, r1, G):
    """Row tables of :func:`project` for the part's real rows, once per sweep: ``a_rows``
    (offsets in the input), ``c_rows`` (offsets in the ``(T, B, G)`` output) and ``start``
    (``start[t]``: first entry of step ``t``)."""
    T = batch_sizes.shape[0]
    idx = active_rows(batch_sizes, B, r0, r1, 0, T)
    a_rows = np.empty(idx.shape[0], np.int64)
    c_rows = np.empty(idx.shape[0], np.int64)
    for k in range(idx.shape[0]):
        a_rows[k] = xrow[idx[k]]
        c_rows[k] = idx[k] * G
    start = np.empty(T + 1, np.int64)
    start[0] = 0
    for t in range(T):
        start[t + 1] = start[t] + max(0, min(r1, batch_sizes[t]) - r0)
    return a_rows, c_rows, start


@njit
def project(X, F, wp, out, G, a_rows, c_rows, start, t0, t1):
    """Input projection of the part's real rows of steps ``[t0, t1)``:
    ``out[t, b, :G] = X_row(t, b) W^T`` (no bias), with the tables of :func:`project_tables`.

    ``X`` is 1-D with rows of ``F`` features, ``wp`` ``W^T`` (``F x G``) packed for
    :func:`~fastrnn.kernels._bf16step.step_gemm` (float32, or uint16 for the bf16 product),
    ``out`` a 1-D view of a ``(T, B, G)`` array.
    """
    k0 = start[t0]
    step_gemm(start[t1] - k0, G, F, X, a_rows[k0:], 0, wp, out, c_rows[k0:], 0, False)


# ------------------------------------------------------------------- the skeleton of a sweep
# Every fast recurrent kernel sweeps the sorted rows [r0, r1) of its part over the steps. Forward:
# the input projections of a block of steps ahead, the recurrent product of the rows still running
# (h_{t-1}, through the recurrent-dropout mask) added to them, the cell row by row, then the rows of
# finished sequences carry their state. Backward: the cell back row by row, zeros for the finished
# rows, the product with W_hh. These inlined helpers are that skeleton; the kernels of rnn, lstm and
# gru add their cell. Arrays are the kernels' 1-D views of C-contiguous (T, B, W) arrays.

#: The state of a forward sweep (see :func:`forward_sweep`).
Sweep = namedtuple("Sweep", "X F wih_p xg G a_rows c_rows start ahead T batch_sizes r0 r1 hs mask "
                            "use_mask hin B H hrow grow")


@njit_inline
def flat(a):
    """The 1-D view of a C-contiguous array."""
    return a.reshape(a.size)


@njit_inline
def forward_sweep(X, xrow, F, wih_p, xg, batch_sizes, r0, r1, hs, hmask, use_mask, hin):
    """The state of the forward sweep of the sorted rows ``[r0, r1)``, built once per sweep for
    :func:`forward_step`: the layer input ``X`` (1-D, rows of ``F`` features at the offsets
    ``xrow``), ``W_ih^T`` packed (``wih_p``), the pre-activations ``xg`` (T, B, G), the states
    ``hs`` (T+1, B, H), the recurrent-dropout mask ``hmask`` (B, H) and its scratch ``hin``
    (B, H); with the row tables of the input projections and of the products (``hrow``,
    ``grow``: the offsets ``b*H``, ``b*G``)."""
    T, B, G = xg.shape
    H = hs.shape[2]
    a_rows, c_rows, start = project_tables(xrow, batch_sizes, B, r0, r1, G)
    return Sweep(X, F, wih_p, flat(xg), G, a_rows, c_rows, start, project_ahead(r1 - r0, G), T,
                 batch_sizes, r0, r1, flat(hs), flat(hmask), use_mask, flat(hin), B, H,
                 np.arange(B) * H, np.arange(B) * G)


@njit_inline
def forward_step(sw, t, w_p, N):
    """Step ``t`` of a forward sweep up to the cell: the input projections of the steps
    ``[t, t + ahead)`` when ``t`` starts such a block, then ``xg[t, b, :N] += hin_b W^T`` for the
    rows ``r0 <= b < hi`` still running, ``W^T`` (H x N) packed in ``w_p`` (float32, or uint16 for
    the bf16 product: :func:`~fastrnn.kernels._bf16step.step_gemm`) and ``hin_b`` the row's
    ``h_{t-1}`` (times the mask with ``use_mask``). Returns ``hi`` and the product's left operand
    (an array and the offset of row 0, rows ``H`` apart), for the cells that need it again.

    A sweep built with ``F == 0`` finds the input projections already in ``xg`` (the caller
    computed them, as the bf16 precision does) and only adds the recurrent products."""
    if sw.F > 0 and t % sw.ahead == 0:
        project(sw.X, sw.F, sw.wih_p, sw.xg, sw.G, sw.a_rows, sw.c_rows, sw.start, t,
                min(sw.T, t + sw.ahead))
    r0, B, H, G = sw.r0, sw.B, sw.H, sw.G
    hi = min(sw.r1, sw.batch_sizes[t])
    a, a_off = recurrent_rows(sw.hs, t, B, H, sw.mask, sw.use_mask, sw.hin, r0, hi)
    step_gemm(hi - r0, N, H, a, sw.hrow[r0:], a_off, w_p, sw.xg, sw.grow[r0:], t * B * G, True)
    return hi, a, a_off


@njit_inline
def recurrent_rows(hs, t, B, H, mask, use_mask, hin, r0, hi):
    """Left operand of the recurrent product of step ``t``, rows ``[r0, hi)``: ``h_{t-1}`` read in
    place from the states ``hs`` (T+1, B, H), or, with ``use_mask``, multiplied by the recurrent-
    dropout ``mask`` (B, H) into ``hin`` (B, H). Returns the array and the offset of row 0 (rows
    are ``H`` apart)."""
    if use_mask:
        for b in range(r0, hi):
            for j in range(H):
                hin[b * H + j] = hs[(t * B + b) * H + j] * mask[b * H + j]
        return hin, 0
    return hs, t * B * H


@njit_inline
def carry_rows(a, t, B, H, b0, b1):
    """``a[t + 1, b] = a[t, b]`` for the rows ``b0 <= b < b1`` of ``a`` (T+1, B, H): the state of
    finished sequences."""
    for b in range(b0, b1):
        src = (t * B + b) * H
        for j in range(H):
            a[src + B * H + j] = a[src + j]


@njit_inline
def zero_rows(a, t, B, W, b0, b1):
    """``a[t, b] = 0`` for the rows ``b0 <= b < b1`` of ``a`` (T, B, W)."""
    for b in range(b0, b1):
        for j in range(W):
            a[(t * B + b) * W + j] = 0.0


#: The state of a backward sweep (see :func:`backward_sweep`).
BackSweep = namedtuple("BackSweep", "dg dh mask use_mask batch_sizes r0 r1 B H G hrow grow")


@njit_inline
def backward_sweep(dg, dh, hmask, use_mask, batch_sizes, r0, r1):
    """The state of the backward sweep of the sorted rows ``[r0, r1)``, built once per sweep for
    :func:`backward_step` and :func:`backward_product`: the gate gradients ``dg`` (T, B, G), the
    gradient ``dh`` (B, H) of the state, the recurrent-dropout mask ``hmask`` (B, H), and the row
    offsets ``b*H``, ``b*G`` (``hrow``, ``grow``)."""
    T, B, G = dg.shape
    H = dh.shape[1]
    return BackSweep(flat(dg), flat(dh), flat(hmask), use_mask, batch_sizes, r0, r1, B, H, G,
                     np.arange(B) * H, np.arange(B) * G)


@njit_inline
def backward_step(bw, t):
    """Step ``t`` of a backward sweep before the cell: zeros in ``dg[t, b]`` for the finished rows
    ``hi <= b < r1``; returns ``hi``, the end of the rows still running."""
    hi = min(bw.r1, bw.batch_sizes[t])
    zero_rows(bw.dg, t, bw.B, bw.G, max(bw.r0, hi), bw.r1)
    return hi


@njit_inline
def backward_product(bw, t, hi, w_p):
    """Gradient of ``h_{t-1}`` through the recurrent product, rows ``[r0, hi)``: ``dh = dg[t] W_hh``
    (``W_hh`` (G x H) packed in ``w_p``, float32 or bf16 as in :func:`forward_step`), times the
    recurrent-dropout mask with ``use_mask``."""
    r0, H = bw.r0, bw.H
    step_gemm(hi - r0, H, bw.G, bw.dg, bw.grow[r0:], t * bw.B * bw.G, w_p, bw.dh, bw.hrow[r0:], 0,
              False)
    if bw.use_mask:
        for b in range(r0, hi):
            for j in range(H):
                bw.dh[b * H + j] *= bw.mask[b * H + j]


@njit
def input_grads(dg, G, wp, batch_sizes, B, r0, r1, dX, xrow, F, accumulate):
    """Gradient of the part's real input rows: ``dX_row(t, b) (+)= dg[t, b, :G] W`` (``W`` is
    ``G x F``, packed by :func:`~fastrnn.kernels._gemm.pack_b` in blocks of
    ``long_kc(G)`` rows; ``dX`` has the layout of ``xrow``)."""
    idx = active_rows(batch_sizes, B, r0, r1, 0, batch_sizes.shape[0])
    M = idx.shape[0]
    a_rows = np.empty(M, np.int64)
    c_rows = np.empty(M, np.int64)
    for k in range(M):
        a_rows[k] = idx[k] * G
        c_rows[k] = xrow[idx[k]]
    gemm(M, F, G, dg, a_rows, 0, 1, wp, long_kc(G), dX, c_rows, 0, accumulate)


@njit
def weight_grad(dg, ldg, g0, M, K, src, src_rows, N, gw, ldw, w_row0, q0, q1, buf):
    """Rows ``[q0, q1)`` (clipped to ``[w_row0, w_row0 + M)``) of a weight gradient:
    ``gw[w_row0 + i, j] = sum_k dg[k, g0 + i] * src_row(k)[j]`` for ``j < N``.

    ``dg`` is a 1-D view of ``K`` rows of ``ldg`` values; ``src_rows`` the ``(K,)`` row offsets
    into ``src`` (``-1``: a row of zeros); ``gw`` a 1-D view of a matrix with ``ldw`` columns
    (overwritten);
    ``buf`` a packing buffer of at least ``KC_LONG * (N + NR)`` elements. Splitting the rows over
    parts splits the reads of ``dg`` too.
    """
    lo = max(q0, w_row0)
    hi = min(q1, w_row0 + M)
    if hi <= lo or N <= 0:
        return
    a_rows = np.arange(hi - lo) + (g0 + lo - w_row0)
    c_rows = np.arange(lo, hi) * ldw
    gemm_pack(hi - lo, N, K, dg, a_rows, 0, ldg, src, src_rows, 0, 1, gw, c_rows, 0, False, buf)


@njit
def weight_grad2(dg, ldg, g0, M, K, src1, rows1, N1, gw1, src2, rows2, N2, gw2, w_row0, q0, q1,
                 buf):
    """Like :func:`weight_grad` for two sources at once (one pass over ``dg``): rows
    ``[q0, q1) & [w_row0, w_row0 + M)`` of ``gw1 = dg^T src1`` (``N1`` columns) and
    ``gw2 = dg^T src2`` (``N2`` columns); ``buf`` of at least ``KC_LONG * (N1 + N2 + 2*NR)``
    elements."""
    lo = max(q0, w_row0)
    hi = min(q1, w_row0 + M)
    if hi <= lo:
        return
    a_rows = np.arange(hi - lo) + (g0 + lo - w_row0)
    gemm_pack2(hi - lo, K, dg, a_rows, 0, ldg, src1, rows1, N1, gw1, np.arange(lo, hi) * N1,
               src2, rows2, N2, gw2, np.arange(lo, hi) * N2, buf)


def split_range(N, parts, unit=MR):
    """``parts`` contiguous ranges covering ``[0, N)``, boundaries on multiples of ``unit``."""
    blocks = -(-N // unit)
    bounds = [min(N, unit * ((blocks * p) // parts)) for p in range(parts + 1)]
    return [(bounds[p], bounds[p + 1]) for p in range(parts)]


def split_rows(lengths_sorted, parts, min_rows):
    """Split the sorted rows into at most ``parts`` contiguous ranges of similar total length.

    Boundaries fall on multiples of 8 (the micro-kernel's rows) when every part still gets
    ``min_rows`` rows; fewer parts are used for small batches.
    """
    B = len(lengths_sorted)
    parts = max(1, min(parts, B // max(1, min_rows)))
    if parts == 1:
        return [(0, B)]
    step = 8 if B >= 8 * parts else 1
    work = np.concatenate([[0], np.cumsum(lengths_sorted)])
    bounds = [0]
    for p in range(1, parts):
        target = work[-1] * p / parts
        b = int(np.searchsorted(work, target))
        b = int(round(b / step)) * step
        b = min(max(b, bounds[-1] + 1), B - (parts - p))
        bounds.append(b)
    bounds.append(B)
    return [(bounds[p], bounds[p + 1]) for p in range(parts)]


@njit
def grads_part(dg, G, K, x, xrow, F, hin, hrow, H, gwih, gwhh, q0, q1, wih_p, batch_sizes, B,
               r0, r1, dx, accumulate, buf):
    """One part of the gradients after a backward sweep: rows ``[q0, q1)`` of ``dW_ih = dg^T X``
    and of ``dW_hh = dg^T hin``, and the input gradient of the sorted rows ``[r0, r1)``,
    ``dx (+)= dg W_ih`` (``wih_p``: ``W_ih`` packed, ``G x I``)."""
    weight_grad2(dg, G, 0, G, K, x, xrow, F, gwih, hin, hrow, H, gwhh, 0, q0, q1, buf)
    input_grads(dg, G, wih_p, batch_sizes, B, r0, r1, dx, xrow, F, accumulate)
